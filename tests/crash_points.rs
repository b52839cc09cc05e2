//! Crash-point enumeration of the log and the superblock (`../shared/VERIFICATION.md`, L4).
//!
//! The bug story this guards against: the original design kept its log in memory, so a
//! restarted acceptor forgot what it had promised and accepted. Here a workload runs the real
//! writer, superblock protocol and snapshot install over the simulated disk: 240 appends from 3
//! groups across several segment roll-overs, promise updates, and a snapshot followed by a
//! truncation. At every operation boundary the test builds the disks a power loss could leave
//! (every subset of the writes not yet durable, plus torn variants of each at 512-byte
//! granularity, a prefix and a prefix with a garbage piece), recovers each, and checks:
//! - recovery succeeds on every torn tail and reports no corruption after a plain crash;
//! - every record whose fsync completed (and so may have been acknowledged) is present, at its
//!   position or a later one, never an older version;
//! - the superblock is the last synced version or the one being written, never a mix, never
//!   an error, and no promised ballot goes backwards;
//! - an installed snapshot (rename and directory sync completed) survives;
//! - writing resumes after recovery and survives a second crash.
//!
//! Separately, rot in the synced region followed by later batches must be reported as
//! corruption, never truncated. And a planted bug (acknowledging a batch when its write
//! completes, before the fdatasync) must make the checks fail.
//!
//! Run with `cargo test --release --test crash_points -- --nocapture`; it prints
//! `crash-points: images=N violations=0`.

use std::collections::BTreeMap;
use std::time::Instant;

use klein::constants::SUPERBLOCK_COPY_SIZE_BYTES;
use klein::log::disk::{Completion, Disk, FileId, OpId, Request, Response};
use klein::log::format::RecordKind;
use klein::log::index::Position;
use klein::log::recovery::{Recovered, recover};
use klein::log::sim_disk::{SimDisk, SimDiskOptions};
use klein::log::superblock::{Chosen, GroupMeta, Superblock, choose};
use klein::log::superblock_store::SuperblockStore;
use klein::log::writer::{Appended, Entry, Writer, WriterOptions};
use klein::types::{Ballot, CoreIndex, GroupId, NodeId, Slot};

/// Small segments so the workload rolls over several times.
const OPTIONS: WriterOptions =
    WriterOptions { segment_size_bytes: 6 * 4096, staged_bytes_max: 4 * 4096 };
const GROUPS: u32 = 3;
const APPENDS: u64 = 900;
/// Ids of the harness's own requests (superblock, snapshot), apart from the writer's.
const HARNESS_OPS: u64 = 1 << 40;
const SNAPSHOT_GROUP: GroupId = GroupId(0);
const SNAPSHOT_SLOT: u64 = 40;
const SNAPSHOT_FILE: FileId = FileId::Snapshot { group: SNAPSHOT_GROUP, number: 1 };
const SNAPSHOT_STAGING: FileId = FileId::SnapshotStaging { group: SNAPSHOT_GROUP, number: 1 };

/// Which rule the harness breaks on purpose, to prove the checks bite.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Plant {
    None,
    /// Acknowledge a batch's records when its write completes, before the fdatasync.
    AcknowledgeBeforeSync,
}

/// A step of the harness's own protocols (file creation, snapshot install), one request at a
/// time.
#[derive(Clone, Debug)]
enum Step {
    Submit(Request),
    /// The superblock file exists durably: its store may start formatting it.
    SuperblockFileReady,
    /// Marks the snapshot as installed.
    SnapshotInstalled,
}

struct Harness {
    disk: SimDisk,
    writer: Writer,
    plant: Plant,
    next_op: u64,
    /// Records acknowledged durable: (group, slot) -> latest acknowledged record.
    acknowledged: BTreeMap<(u32, u64), Appended>,
    /// Records handed to the disk in a write not yet acknowledged (for the planted bug).
    written: BTreeMap<OpId, Vec<Appended>>,
    appended: Vec<Appended>,
    store: SuperblockStore,
    superblock_file_ready: bool,
    superblock_synced: Option<Superblock>,
    snapshot_installed: bool,
    truncation_acknowledged: bool,
    steps: Vec<Step>,
    waiting_on: Option<OpId>,
    images: u64,
    violations: Vec<String>,
}

impl Harness {
    fn new(plant: Plant) -> Harness {
        let mut harness = Harness {
            disk: SimDisk::new(7, SimDiskOptions::default()),
            writer: Writer::new(OPTIONS),
            plant,
            next_op: HARNESS_OPS,
            acknowledged: BTreeMap::new(),
            written: BTreeMap::new(),
            appended: Vec::new(),
            store: SuperblockStore::format(Superblock::new(
                0xC1,
                NodeId::new(1).unwrap(),
                CoreIndex(0),
            )),
            superblock_file_ready: false,
            superblock_synced: None,
            snapshot_installed: false,
            truncation_acknowledged: false,
            steps: Vec::new(),
            waiting_on: None,
            images: 0,
            violations: Vec::new(),
        };
        let size_bytes = 4 * SUPERBLOCK_COPY_SIZE_BYTES as u64;
        harness.steps.push(Step::Submit(Request::Create { file: FileId::Superblock, size_bytes }));
        harness.steps.push(Step::Submit(Request::SyncDirectory));
        harness.steps.push(Step::SuperblockFileReady);
        harness
    }

    /// Raises the promised ballot of every group (through the superblock store).
    fn promise(&mut self, round: u64) {
        self.store.update(|superblock| {
            superblock.groups = (0..GROUPS)
                .map(|group| {
                    let mut meta = GroupMeta::new(GroupId(group));
                    meta.promised = Ballot { round, node: 1 };
                    meta
                })
                .collect();
        });
    }

    fn install_snapshot(&mut self) {
        let size_bytes = 4096;
        let mut data = vec![0_u8; 4096];
        data[..8].copy_from_slice(&SNAPSHOT_SLOT.to_le_bytes());
        let checksum = crc32c::crc32c(&data[..4092]);
        data[4092..].copy_from_slice(&checksum.to_le_bytes());
        for request in [
            Request::Create { file: SNAPSHOT_STAGING, size_bytes },
            Request::Write { file: SNAPSHOT_STAGING, offset: 0, data },
            Request::Sync { file: SNAPSHOT_STAGING },
            Request::Rename { from: SNAPSHOT_STAGING, to: SNAPSHOT_FILE },
            Request::SyncDirectory,
        ] {
            self.steps.push(Step::Submit(request));
        }
        self.steps.push(Step::SnapshotInstalled);
    }

    fn append(&mut self, group: u32, slot: u64, kind: RecordKind, round: u64) {
        let payload =
            format!("g{group}s{slot}r{round}").repeat(usize::try_from(slot % 9).unwrap() + 1);
        let entry = Entry {
            kind,
            group: GroupId(group),
            slot: Slot(slot),
            ballot: Ballot { round, node: 1 },
            payload: payload.as_bytes(),
        };
        loop {
            match self.writer.append(&entry) {
                Ok(appended) => {
                    self.appended.push(appended);
                    return;
                }
                Err(_) => self.round(), // Backpressure: let the disk catch up.
            }
        }
    }

    /// One round of I/O: submit what is ready, complete what the disk finished, then check
    /// every crash image of the moment.
    fn round(&mut self) {
        for (op, request) in self.writer.pump() {
            if let Request::Write { .. } = request {
                let records = std::mem::take(&mut self.appended);
                self.written.insert(op, records);
            }
            self.disk.submit(op, request);
        }
        if self.superblock_file_ready {
            for (op, request) in self.store.pump() {
                self.disk.submit(op, request);
            }
        }
        self.advance_steps();
        self.enumerate();
        let mut completions = Vec::new();
        self.disk.poll(&mut completions);
        for completion in completions {
            self.on_completion(&completion);
            self.enumerate();
        }
    }

    fn advance_steps(&mut self) {
        while self.waiting_on.is_none() {
            let Some(step) = (!self.steps.is_empty()).then(|| self.steps.remove(0)) else {
                return;
            };
            match step {
                Step::Submit(request) => {
                    let op = OpId(self.next_op);
                    self.next_op += 1;
                    self.disk.submit(op, request);
                    self.waiting_on = Some(op);
                }
                Step::SuperblockFileReady => self.superblock_file_ready = true,
                Step::SnapshotInstalled => self.snapshot_installed = true,
            }
        }
    }

    fn on_completion(&mut self, completion: &Completion) {
        if SuperblockStore::owns(completion.op) {
            if self.store.on_completion(completion).expect("no faults").is_some() {
                self.superblock_synced = self.store.durable().cloned();
            }
            return;
        }
        if completion.op.0 >= HARNESS_OPS {
            assert!(completion.result.is_ok(), "{completion:?}");
            assert_eq!(self.waiting_on, Some(completion.op));
            self.waiting_on = None;
            self.advance_steps();
            return;
        }
        if self.plant == Plant::AcknowledgeBeforeSync
            && completion.result == Ok(Response::Written)
            && let Some(records) = self.written.remove(&completion.op)
        {
            self.acknowledge(&records);
        }
        let durable = self.writer.on_completion(completion).expect("no faults injected");
        self.acknowledge(&durable);
    }

    fn acknowledge(&mut self, records: &[Appended]) {
        for record in records {
            if record.kind == RecordKind::Truncated {
                self.truncation_acknowledged = true;
                continue;
            }
            let key = (record.group.0, record.slot.0);
            let newer =
                self.acknowledged.get(&key).is_none_or(|old| old.position < record.position);
            if newer {
                self.acknowledged.insert(key, *record);
            }
        }
    }

    fn settle(&mut self) {
        for _ in 0..1000 {
            let idle = self.writer.is_idle() && self.store.is_idle();
            if idle && self.steps.is_empty() && self.waiting_on.is_none() {
                return;
            }
            self.round();
        }
        panic!("did not settle");
    }

    /// Recovers every crash image of this moment and checks it.
    fn enumerate(&mut self) {
        let seed = self.images;
        let images = self.disk.crash_images(8, 64, seed);
        for (index, image) in images.into_iter().enumerate() {
            self.images += 1;
            let context = format!("image {}", self.images);
            self.check_image(&image, &context);
            if index % 16 == 0 {
                self.check_restart(image, &context);
            }
        }
    }

    fn violation(&mut self, message: String) {
        if self.violations.len() < 5 && self.plant == Plant::None {
            eprintln!("violation: {message}");
        }
        self.violations.push(message);
    }

    fn check_image(&mut self, image: &SimDisk, context: &str) {
        let recovered = match recover_image(image) {
            Ok(recovered) => recovered,
            Err(error) => return self.violation(format!("{context}: recovery failed: {error}")),
        };
        if !recovered.corruption.is_empty() {
            let damage = &recovered.corruption[0];
            self.violation(format!("{context}: plain crash reported corruption: {damage:?}"));
        }
        self.check_acknowledged(&recovered, context);
        self.check_superblock(image, context);
        if self.snapshot_installed && !snapshot_is_valid(image) {
            self.violation(format!("{context}: installed snapshot lost"));
        }
    }

    fn check_acknowledged(&mut self, recovered: &Recovered, context: &str) {
        let truncated = recovered
            .truncations
            .iter()
            .filter(|truncation| truncation.group == SNAPSHOT_GROUP)
            .map(|truncation| truncation.before.0)
            .max()
            .unwrap_or(0);
        let mut missing = Vec::new();
        for ((group, slot), record) in &self.acknowledged {
            if GroupId(*group) == SNAPSHOT_GROUP && *slot < truncated {
                continue; // Covered by the snapshot.
            }
            match recovered.index.get(GroupId(*group), Slot(*slot)) {
                Some(location) if location.position >= record.position => {}
                Some(location) => missing.push(format!(
                    "{group}/{slot} went back to {:?} from {:?}",
                    location.position, record.position
                )),
                None => missing.push(format!("{group}/{slot} lost (at {:?})", record.position)),
            }
        }
        let truncation_found = recovered.truncations.iter().any(|truncation| {
            truncation.group == SNAPSHOT_GROUP && truncation.before == Slot(SNAPSHOT_SLOT)
        });
        if self.truncation_acknowledged && !truncation_found {
            missing.push("the acknowledged truncation marker".into());
        }
        if let Some(first) = missing.first() {
            let count = missing.len();
            self.violation(format!(
                "{context}: {count} acknowledged records missing, e.g. {first}"
            ));
        }
    }

    fn check_superblock(&mut self, image: &SimDisk, context: &str) {
        let Some(bytes) = image.contents(FileId::Superblock) else {
            if self.superblock_synced.is_some() {
                self.violation(format!("{context}: superblock file lost"));
            }
            return;
        };
        let areas: Vec<&[u8]> = bytes.chunks(SUPERBLOCK_COPY_SIZE_BYTES).collect();
        match choose(&areas) {
            Err(error) => self.violation(format!("{context}: superblock unreadable: {error}")),
            Ok(Chosen::Fresh) => {
                if self.superblock_synced.is_some() {
                    self.violation(format!("{context}: synced superblock came back fresh"));
                }
            }
            Ok(Chosen::Found(found)) => {
                let found = found.superblock;
                if let Some(synced) = self.superblock_synced.clone() {
                    if found.sequence < synced.sequence {
                        self.violation(format!("{context}: superblock went back"));
                    }
                    for meta in &synced.groups {
                        let promised = found.group(meta.group).map_or(Ballot::ZERO, |g| g.promised);
                        if promised < meta.promised {
                            self.violation(format!("{context}: promise went back"));
                        }
                    }
                }
                let expected = [self.superblock_synced.as_ref(), self.store.in_flight()];
                if !expected.iter().flatten().any(|sb| **sb == found) {
                    self.violation(format!("{context}: superblock is a mix"));
                }
            }
        }
    }

    /// Resumes writing on a recovered image, appends, syncs, crashes again, recovers: every
    /// acknowledged record must still be there (leftovers of a torn batch must not come back).
    fn check_restart(&mut self, mut image: SimDisk, context: &str) {
        let Ok(recovered) = recover_image(&image) else { return };
        for wipe in &recovered.wipes {
            let file = FileId::Segment(wipe.segment);
            let data = vec![0; wipe.length];
            run(&mut image, Request::Write { file, offset: wipe.offset, data });
            run(&mut image, Request::Sync { file });
        }
        let mut writer = Writer::resume(
            OPTIONS,
            recovered.resume_segment,
            recovered.resume_offset,
            recovered.newest_segment,
        );
        let entry = Entry {
            kind: RecordKind::Accepted,
            group: GroupId(9),
            slot: Slot(0),
            ballot: Ballot { round: 99, node: 1 },
            payload: b"after restart",
        };
        writer.append(&entry).expect("room after recovery");
        let mut durable = Vec::new();
        let mut completions = Vec::new();
        for _ in 0..100 {
            for (op, request) in writer.pump() {
                image.submit(op, request);
            }
            image.poll(&mut completions);
            for completion in completions.drain(..) {
                durable.extend(writer.on_completion(&completion).expect("no faults"));
            }
        }
        if durable.is_empty() {
            return self.violation(format!("{context}: no progress after restart"));
        }
        let again = image.crash(self.images);
        let Ok(recovered) = recover_image(&again) else {
            return self.violation(format!("{context}: second recovery failed"));
        };
        if recovered.index.get(GroupId(9), Slot(0)).is_none() {
            self.violation(format!("{context}: record written after restart lost"));
        }
        self.check_acknowledged(&recovered, &format!("{context} after restart"));
    }
}

fn run(disk: &mut SimDisk, request: Request) {
    disk.submit(OpId(u64::MAX), request);
    let mut completions = Vec::new();
    while disk.in_flight_count() > 0 {
        disk.poll(&mut completions);
    }
    assert!(completions.iter().all(|completion| completion.result.is_ok()));
}

fn recover_image(image: &SimDisk) -> Result<Recovered, klein::log::recovery::RecoveryError> {
    let segments = image.segment_images();
    let mut borrowed: Vec<(u64, &[u8])> =
        segments.iter().map(|(number, bytes)| (*number, bytes.as_slice())).collect();
    recover(&mut borrowed)
}

fn snapshot_is_valid(image: &SimDisk) -> bool {
    image.contents(SNAPSHOT_FILE).is_some_and(|data| {
        data.len() == 4096
            && data[4092..] == crc32c::crc32c(&data[..4092]).to_le_bytes()
            && data[..8] == SNAPSHOT_SLOT.to_le_bytes()
    })
}

/// Runs the workload, enumerating crash images at every boundary; returns the harness.
fn run_workload(plant: Plant) -> Harness {
    let mut harness = Harness::new(plant);
    harness.settle();
    let mut round = 1;
    for index in 0..APPENDS {
        let group = u32::try_from(index % u64::from(GROUPS)).unwrap();
        let slot = index / u64::from(GROUPS);
        // Every 7th record rewrites an earlier slot under a higher ballot, and every 5th marks
        // one chosen: several updates of one slot in flight.
        let (slot, kind) = match index % 35 {
            7 | 14 => (slot.saturating_sub(2), RecordKind::Accepted),
            5 | 20 => (slot.saturating_sub(1), RecordKind::Chosen),
            _ => (slot, RecordKind::Accepted),
        };
        harness.append(group, slot, kind, round);
        if index == 60 || index == 150 {
            round += 1;
            harness.promise(round);
        }
        if index == 130 {
            harness.install_snapshot();
        }
        if harness.snapshot_installed && index == 170 {
            harness.append(0, SNAPSHOT_SLOT, RecordKind::Truncated, round);
        }
        if index % 2 == 1 {
            harness.round();
        }
    }
    harness.settle();
    harness
}

#[test]
fn crash_points_find_no_violation() {
    let started = Instant::now();
    let harness = run_workload(Plant::None);
    let segments = harness.writer.stats.segments_created;
    println!(
        "crash-points: images={} violations={} (acknowledged records {}, segments {}, {:.1}s)",
        harness.images,
        harness.violations.len(),
        harness.acknowledged.len(),
        segments,
        started.elapsed().as_secs_f64()
    );
    assert!(harness.violations.is_empty(), "first: {}", harness.violations[0]);
    assert!(harness.images >= 10_000, "only {} images", harness.images);
    assert!(segments >= 3, "the workload must roll over segments");
    assert!(harness.snapshot_installed);
    assert!(harness.truncation_acknowledged);
    assert_eq!(harness.superblock_synced.as_ref().map(|sb| sb.sequence), Some(2));
}

#[test]
fn planted_bug_acknowledging_before_fsync_is_caught() {
    let harness = run_workload(Plant::AcknowledgeBeforeSync);
    println!(
        "crash-points (planted: acknowledge before fsync): images={} violations={}",
        harness.images,
        harness.violations.len()
    );
    assert!(!harness.violations.is_empty(), "the planted bug went unnoticed");
}

#[test]
fn rot_in_the_synced_region_is_reported_not_truncated() {
    let harness = run_workload(Plant::None);
    let mut reported = 0;
    // Rot a record in each fully synced segment but the last: later batches vouch for it.
    let last_segment = harness.acknowledged.values().map(|r| r.position.segment).max().unwrap();
    let victims: Vec<Appended> = harness
        .acknowledged
        .values()
        .filter(|record| record.position.segment < last_segment)
        .copied()
        .collect();
    for victim in victims.iter().step_by(7) {
        let mut image = harness.disk.crash(1);
        let offset = usize::try_from(victim.position.offset).unwrap() + 64;
        image.flip_bit(FileId::Segment(victim.position.segment), offset, 1);
        let recovered = recover_image(&image).expect("rot is reported, not fatal");
        let at = Position { segment: victim.position.segment, offset: victim.position.offset };
        assert!(
            recovered
                .corruption
                .iter()
                .any(|damage| { damage.segment == at.segment && damage.offset == at.offset }),
            "rot at {at:?} not reported: {:?}",
            recovered.corruption
        );
        assert!(recovered.torn_tail.is_none(), "rot must not be taken for a torn tail");
        // Records after the rot are kept: nothing was truncated.
        let later = harness.acknowledged.values().filter(|record| record.position > at).count();
        assert!(later > 0);
        let kept_in_log = |record: &&Appended| {
            record.position > at
                && !(record.group == SNAPSHOT_GROUP && record.slot.0 < SNAPSHOT_SLOT)
        };
        for record in harness.acknowledged.values().filter(kept_in_log) {
            let location = recovered.index.get(record.group, record.slot);
            assert!(
                location.is_some(),
                "record {record:?} after the rot at {at:?} was dropped; corruption {:?}",
                recovered.corruption
            );
        }
        reported += 1;
    }
    println!("crash-points: rot reported as corruption in {reported} of {reported} images");
    assert!(reported >= 5);
}
