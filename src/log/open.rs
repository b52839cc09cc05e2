//! Opening a core's log at start-up, through the disk seam.
//!
//! ```text
//!   list files --> read the superblock, each snapshot's header and the segments in order
//!              --> choose the superblock; recover each segment as it arrives
//!              --> zero the leftovers of a torn batch (write + sync), remove stray files
//!              --> Log
//! ```
//!
//! Memory stays bounded whatever the size of the log: segments are read in ascending order
//! with at most [`OPEN_READ_AHEAD_BYTES`] of reads in flight, each segment is handed to the
//! streaming [`Recovery`] as soon as it is complete, and recovery holds at most one segment
//! back (the newest one with data, which may turn out to be the last).
//!
//! The rules (see `docs/design/log-format.md`):
//! - no files at all: a new log; the superblock file is created and formatted;
//! - a superblock but no segments, or segments and a superblock: recover both; the first
//!   superblock write is the mandatory recovery rewrite;
//! - segments without a readable superblock: refused. The node lost its acceptor metadata and
//!   may only rejoin the cluster as a new member (`../shared/VERIFICATION.md` 4.4);
//! - corruption in the segments is not a refusal: it is reported in [`Opened::corruption`] and
//!   the affected groups must not vote until repaired; an unreadable newer format is;
//! - the superblock names each group's installed snapshot: that file's header must check, or
//!   the group is reported in [`Opened::snapshot_damage`] (and is suspect); staging files and
//!   snapshot files the superblock does not name are leftovers of an interrupted install or
//!   removal and are removed; the superblock's truncation points apply to the index.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use super::disk::{Completion, DISK_SECTOR_SIZE_BYTES, DiskError, FileId, OpId, Request, Response};
use super::log::Log;
use super::recovery::{Damage, Recovered, Recovery, RecoveryError};
use super::snapshot::{self, SnapshotInfo};
use super::superblock::{self, Chosen, Superblock};
use super::superblock_store::SuperblockStore;
use super::writer::{Writer, WriterOptions};
use crate::constants::{SUPERBLOCK_COPIES_COUNT, SUPERBLOCK_COPY_SIZE_BYTES};
use crate::types::GroupId;

/// The first operation id the opener uses.
pub const OPEN_OP_BASE: u64 = 3 << 48;

/// Size of each segment read while opening, in bytes.
pub const OPEN_READ_SIZE_BYTES: usize = 1024 * 1024;

/// Most bytes of segment reads in flight while opening.
pub const OPEN_READ_AHEAD_BYTES: usize = 16 * 1024 * 1024;

/// Most segments being put together from their reads at once (besides the one recovery
/// holds): with the read-ahead, this bounds the memory opening takes to about three segments.
const OPEN_SEGMENTS_ASSEMBLING_MAX: usize = 2;

const _: () = assert!(OPEN_READ_AHEAD_BYTES >= OPEN_READ_SIZE_BYTES);

/// Why a log cannot be opened.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    /// Reading, zeroing or creating a file failed.
    #[error("opening the log: {file}: {error}")]
    Disk {
        /// The file.
        file: FileId,
        /// The disk's error.
        error: DiskError,
    },
    /// Segments exist but the acceptor metadata is gone or unreadable.
    #[error("the log has segments but its superblock is {0}; rejoin as a new member")]
    SuperblockLost(String),
    /// A record this build must not interpret.
    #[error(transparent)]
    Unreadable(#[from] RecoveryError),
}

/// A log opened and ready, with what recovery found.
#[derive(Debug)]
pub struct Opened {
    /// The log.
    pub log: Log,
    /// Corruption found in the segments (never silently dropped).
    pub corruption: Vec<Damage>,
    /// Whether every group of the core must be treated as suspect (corruption whose group is
    /// unknown).
    pub every_group_suspect: bool,
    /// Groups seen near corruption.
    pub suspect_groups: Vec<GroupId>,
    /// Whether a torn tail was cut off.
    pub had_torn_tail: bool,
    /// Groups whose installed snapshot (named by the superblock) is missing or fails its
    /// checks, with why: they are suspect like `suspect_groups`.
    pub snapshot_damage: Vec<(GroupId, String)>,
    /// Segment bytes read and scanned.
    pub bytes_scanned: u64,
}

/// One read of the opening.
#[derive(Debug, Clone, Copy)]
enum Chunk {
    Superblock { offset: u64 },
    Segment { number: u64, offset: u64 },
    SnapshotHeader { file: FileId, size: u64 },
}

/// A segment being put together from its reads.
#[derive(Debug)]
struct Assembly {
    bytes: Vec<u8>,
    reads_missing: usize,
}

/// The opening of one core's log. Submit [`Opener::pump`]'s requests, feed completions to
/// [`Opener::on_completion`] until it returns the opened log.
#[derive(Debug)]
pub struct Opener {
    options: WriterOptions,
    identity: Superblock,
    listing: Vec<(FileId, u64)>,
    next_op: u64,
    requests: Vec<(OpId, Request)>,
    reads: BTreeMap<OpId, (Chunk, usize)>,
    superblock: Option<Vec<u8>>,
    superblock_reads_missing: usize,
    snapshot_headers: BTreeMap<FileId, Result<SnapshotInfo, String>>,
    /// Segments still to read (number, size), in ascending order, and where the next read of
    /// the first one starts.
    to_read: VecDeque<(u64, u64)>,
    next_read_offset: u64,
    read_bytes_in_flight: usize,
    assembling: BTreeMap<u64, Assembly>,
    recovery: Option<Recovery<Vec<u8>>>,
    /// Segment buffers recovery gave back, reused for the next segments.
    free_buffers: Vec<Vec<u8>>,
    failed: Option<OpenError>,
    /// Requests that must complete, one after the other (a sync only after its write), before
    /// the log is handed out; and the one in flight.
    steps: VecDeque<(FileId, Request)>,
    step_in_flight: Option<(OpId, FileId)>,
    ready: Option<Result<Opened, OpenError>>,
}

impl Opener {
    /// Starts opening the log whose files are `listing` (from `Disk::list`); `identity` is
    /// the superblock a new log is formatted with (sequence 0, no groups).
    ///
    /// # Panics
    /// If a listed file does not fit in memory.
    #[must_use]
    pub fn new(
        options: WriterOptions,
        identity: Superblock,
        listing: Vec<(FileId, u64)>,
    ) -> Opener {
        let mut opener = Opener {
            options,
            identity,
            listing: listing.clone(),
            next_op: OPEN_OP_BASE,
            requests: Vec::new(),
            reads: BTreeMap::new(),
            superblock: None,
            superblock_reads_missing: 0,
            snapshot_headers: BTreeMap::new(),
            to_read: VecDeque::new(),
            next_read_offset: 0,
            read_bytes_in_flight: 0,
            assembling: BTreeMap::new(),
            recovery: Some(Recovery::new()),
            free_buffers: Vec::new(),
            failed: None,
            steps: VecDeque::new(),
            step_in_flight: None,
            ready: None,
        };
        let mut segments: Vec<(u64, u64)> = Vec::new();
        for (file, size) in listing {
            match file {
                FileId::Superblock => {
                    opener.superblock = Some(vec![0; usize::try_from(size).expect("small")]);
                    let mut offset = 0;
                    while offset < size {
                        let length =
                            usize::try_from((size - offset).min(OPEN_READ_SIZE_BYTES as u64))
                                .expect("small");
                        opener.read(Chunk::Superblock { offset }, file, offset, length);
                        opener.superblock_reads_missing += 1;
                        offset += length as u64;
                    }
                }
                FileId::Segment(number) => segments.push((number, size)),
                FileId::Snapshot { .. } if size >= DISK_SECTOR_SIZE_BYTES as u64 => {
                    let chunk = Chunk::SnapshotHeader { file, size };
                    opener.read(chunk, file, 0, DISK_SECTOR_SIZE_BYTES);
                }
                FileId::Snapshot { .. } => {
                    opener.snapshot_headers.insert(file, Err(format!("{file}: {size} bytes")));
                }
                FileId::SnapshotStaging { .. } => {}
            }
        }
        segments.sort_unstable();
        opener.to_read = segments.into();
        opener.read_segments();
        opener.decide_if_read();
        opener
    }

    fn read(&mut self, chunk: Chunk, file: FileId, offset: u64, length: usize) {
        let op = self.allocate();
        self.requests.push((op, Request::Read { file, offset, length }));
        self.reads.insert(op, (chunk, length));
    }

    /// Issues segment reads in order while the read-ahead and assembly bounds allow.
    fn read_segments(&mut self) {
        while self.failed.is_none()
            && let Some(&(number, size)) = self.to_read.front()
        {
            let starting = self.next_read_offset == 0;
            if self.read_bytes_in_flight >= OPEN_READ_AHEAD_BYTES
                || (starting && self.assembling.len() >= OPEN_SEGMENTS_ASSEMBLING_MAX)
            {
                return;
            }
            if starting {
                let size = usize::try_from(size).expect("a segment fits memory");
                // Every byte is overwritten by the reads, so a reused buffer needs no zeroing.
                let mut bytes = self.free_buffers.pop().unwrap_or_default();
                bytes.resize(size, 0);
                self.assembling.insert(number, Assembly { bytes, reads_missing: 0 });
            }
            if self.next_read_offset >= size {
                // An empty file: complete at once.
                self.to_read.pop_front();
                self.next_read_offset = 0;
                self.push_complete_segments();
                continue;
            }
            let offset = self.next_read_offset;
            let length =
                usize::try_from((size - offset).min(OPEN_READ_SIZE_BYTES as u64)).expect("small");
            self.read(Chunk::Segment { number, offset }, FileId::Segment(number), offset, length);
            self.assembling.get_mut(&number).expect("assembling").reads_missing += 1;
            self.read_bytes_in_flight += length;
            self.next_read_offset += length as u64;
            if self.next_read_offset >= size {
                self.to_read.pop_front();
                self.next_read_offset = 0;
            }
        }
    }

    /// Hands complete segments to recovery, oldest first, as long as the oldest is complete.
    fn push_complete_segments(&mut self) {
        while let Some(entry) = self.assembling.first_entry() {
            let number = *entry.key();
            let complete = entry.get().reads_missing == 0
                && self.to_read.front().is_none_or(|(next, _)| *next != number);
            if !complete {
                return;
            }
            let assembly = entry.remove();
            if self.failed.is_some() {
                continue;
            }
            let recovery = self.recovery.as_mut().expect("recovery runs until decided");
            match recovery.push_segment(number, assembly.bytes) {
                Ok(freed) => self.free_buffers.extend(freed),
                Err(error) => self.failed = Some(OpenError::Unreadable(error)),
            }
        }
    }

    fn is_read(&self) -> bool {
        self.reads.is_empty()
            && (self.failed.is_some() || (self.to_read.is_empty() && self.assembling.is_empty()))
    }

    fn decide_if_read(&mut self) {
        if self.ready.is_none() && self.is_read() {
            self.decide();
        }
    }

    fn allocate(&mut self) -> OpId {
        let op = OpId(self.next_op);
        self.next_op += 1;
        op
    }

    /// Whether `op` is one of the opener's requests.
    #[must_use]
    pub fn owns(op: OpId) -> bool {
        (OPEN_OP_BASE..OPEN_OP_BASE + (1 << 48)).contains(&op.0)
    }

    /// The requests to submit now.
    pub fn pump(&mut self) -> Vec<(OpId, Request)> {
        std::mem::take(&mut self.requests)
    }

    /// Handles a completion; returns the result once the log is open (or cannot be).
    ///
    /// # Panics
    /// If a read returns more bytes than were asked for (a disk bug).
    pub fn on_completion(&mut self, completion: &Completion) -> Option<Result<Opened, OpenError>> {
        if let Some((chunk, length)) = self.reads.remove(&completion.op) {
            let bytes = match &completion.result {
                Ok(Response::Read(bytes)) if bytes.len() == length => Some(bytes),
                other => {
                    let file = match chunk {
                        Chunk::Superblock { .. } => FileId::Superblock,
                        Chunk::Segment { number, .. } => FileId::Segment(number),
                        Chunk::SnapshotHeader { file, .. } => file,
                    };
                    if let (Chunk::SnapshotHeader { file, .. }, Ok(_)) = (chunk, other) {
                        // A snapshot whose bytes are not all there is damage of its group, not
                        // a refusal. A read that failed (I/O error) fails the opening like any
                        // other read, so the caller may retry a transient error (klein-sim
                        // seed 1892247077 retired a healthy node for one).
                        let error = DiskError::of_unexpected(other);
                        self.snapshot_headers.insert(file, Err(format!("{file}: {error}")));
                    } else if self.failed.is_none() {
                        self.failed = Some(failure(file, other));
                    }
                    None
                }
            };
            match (chunk, bytes) {
                (Chunk::Superblock { offset }, Some(bytes)) => {
                    let start = usize::try_from(offset).expect("small");
                    let contents = self.superblock.as_mut().expect("listed");
                    contents[start..start + bytes.len()].copy_from_slice(bytes);
                    self.superblock_reads_missing -= 1;
                }
                (Chunk::Segment { number, offset }, bytes) => {
                    self.read_bytes_in_flight -= length;
                    let assembly = self.assembling.get_mut(&number).expect("assembling");
                    assembly.reads_missing -= 1;
                    if let Some(bytes) = bytes {
                        let start = usize::try_from(offset).expect("fits memory");
                        assembly.bytes[start..start + bytes.len()].copy_from_slice(bytes);
                    }
                    self.push_complete_segments();
                    self.read_segments();
                }
                (Chunk::SnapshotHeader { file, size }, Some(bytes)) => {
                    let header = snapshot::decode_header(file, bytes, size);
                    self.snapshot_headers.insert(file, header.map_err(|error| error.to_string()));
                }
                _ => {}
            }
            self.decide_if_read();
        } else if let Some((op, file)) = self.step_in_flight
            && op == completion.op
        {
            self.step_in_flight = None;
            if let Err(error) = &completion.result {
                return Some(Err(OpenError::Disk { file, error: error.clone() }));
            }
            self.next_step();
        }
        self.poll_ready()
    }

    /// The result, once nothing is left to read or write (also usable before any completion,
    /// when opening needed no I/O or failed at once).
    pub fn poll_ready(&mut self) -> Option<Result<Opened, OpenError>> {
        let idle = self.reads.is_empty() && self.step_in_flight.is_none() && self.steps.is_empty();
        if idle { self.ready.take() } else { None }
    }

    fn next_step(&mut self) {
        if let Some((file, request)) = self.steps.pop_front() {
            let op = self.allocate();
            self.requests.push((op, request));
            self.step_in_flight = Some((op, file));
        }
    }

    /// Everything is read: decide, queue the wipes and removals, build the log.
    fn decide(&mut self) {
        let result = match self.failed.take() {
            Some(error) => Err(error),
            None => self.build(),
        };
        if result.is_err() {
            self.steps.clear();
        }
        self.ready = Some(result);
        self.next_step();
    }

    /// The superblock store to continue with, and the superblock recovery chose (none for a
    /// new log). A never-formatted superblock is formatted when the segments beside it never
    /// held a record (`never_written`): nothing was ever durable, so nothing was announced.
    fn choose_superblock(
        &mut self,
        never_written: bool,
    ) -> Result<(SuperblockStore, Option<Superblock>), OpenError> {
        let mut chosen: Option<Superblock> = None;
        let has_segments = self.listing.iter().any(|(file, _)| matches!(file, FileId::Segment(_)));
        let store = match &self.superblock {
            None if has_segments => return Err(OpenError::SuperblockLost("missing".into())),
            None => {
                // A new log: create the superblock file, then format it.
                let size_bytes = (SUPERBLOCK_COPIES_COUNT * SUPERBLOCK_COPY_SIZE_BYTES) as u64;
                self.steps.push_back((
                    FileId::Superblock,
                    Request::Create { file: FileId::Superblock, size_bytes },
                ));
                self.steps.push_back((FileId::Superblock, Request::SyncDirectory));
                SuperblockStore::format(self.identity.clone())
            }
            Some(bytes) => {
                let areas: Vec<&[u8]> = bytes.chunks(SUPERBLOCK_COPY_SIZE_BYTES).collect();
                match superblock::choose(&areas) {
                    Err(error) => return Err(OpenError::SuperblockLost(error.to_string())),
                    Ok(Chosen::Fresh) if has_segments && !never_written => {
                        return Err(OpenError::SuperblockLost("blank".into()));
                    }
                    Ok(Chosen::Fresh) => SuperblockStore::format(self.identity.clone()),
                    Ok(Chosen::Found(found)) => {
                        let (rewrite, plan) = found.rewrite();
                        chosen = Some(found.superblock.clone());
                        SuperblockStore::recovered(found.superblock, rewrite, plan)
                    }
                }
            }
        };
        Ok((store, chosen))
    }

    fn build(&mut self) -> Result<Opened, OpenError> {
        let finished = self.recovery.take().expect("decided once").finish();
        // Segments that never held a record (the spare a new log's writer creates at once)
        // beside a never-formatted superblock are a new log whose format write was lost.
        let never_written =
            finished.as_ref().is_ok_and(|recovered| {
                recovered.records_read == 0
                    && recovered.corruption.is_empty()
                    && recovered.torn_tail.is_none()
                    && !recovered.every_group_suspect
            }) && !self.listing.iter().any(|(file, _)| matches!(file, FileId::Snapshot { .. }));
        let (store, chosen) = self.choose_superblock(never_written)?;
        let mut recovered = finished?;
        // Snapshots: the one the superblock names per group must check; any other is stray.
        let mut installed = BTreeMap::new();
        let mut snapshot_damage = Vec::new();
        let mut named = BTreeSet::new();
        for meta in chosen.iter().flat_map(|superblock| &superblock.groups) {
            recovered.index.truncate_prefix(meta.group, meta.truncated_before);
            let Some(slot) = meta.snapshot_slot else { continue };
            let file = FileId::Snapshot { group: meta.group, number: slot.0 };
            named.insert(file);
            match self.snapshot_headers.get(&file) {
                Some(Ok(info)) => {
                    installed.insert(meta.group, *info);
                }
                Some(Err(reason)) => snapshot_damage.push((meta.group, reason.clone())),
                None => snapshot_damage.push((meta.group, format!("{file} is missing"))),
            }
        }
        let mut removed_any = false;
        for (file, _) in &self.listing {
            let stray = match file {
                FileId::SnapshotStaging { .. } => true,
                FileId::Snapshot { .. } => !named.contains(file),
                _ => false,
            };
            if stray {
                self.steps.push_back((*file, Request::Remove { file: *file }));
                removed_any = true;
            }
        }
        let (segments, newest_segment) = self.check_spares(&mut recovered, &mut removed_any);
        if removed_any {
            self.steps.push_back((FileId::Superblock, Request::SyncDirectory));
        }
        for wipe in &recovered.wipes {
            let file = FileId::Segment(wipe.segment);
            let data = vec![0; wipe.length];
            self.steps.push_back((file, Request::Write { file, offset: wipe.offset, data }));
            self.steps.push_back((file, Request::Sync { file }));
        }

        let writer = Writer::resume(
            self.options,
            recovered.resume_segment,
            recovered.resume_offset,
            newest_segment,
        );
        let mut suspect_groups: BTreeSet<GroupId> = recovered.suspect_groups.clone();
        suspect_groups.extend(snapshot_damage.iter().map(|(group, _)| *group));
        let mut log = Log::new(writer, store, recovered.index);
        log.restore(segments, installed);
        Ok(Opened {
            corruption: recovered.corruption,
            every_group_suspect: recovered.every_group_suspect,
            suspect_groups: suspect_groups.into_iter().collect(),
            had_torn_tail: recovered.torn_tail.is_some(),
            snapshot_damage,
            bytes_scanned: recovered.bytes_scanned,
            log,
        })
    }
}

impl Opener {
    /// Empty spares after the last batch must be whole: a power loss between a failed
    /// `Create` (a full disk) and its cleanup can leave a short one. It and every spare after
    /// it are removed (the writer creates them again). Returns the segments that remain and
    /// the newest of them.
    fn check_spares(
        &mut self,
        recovered: &mut Recovered,
        removed_any: &mut bool,
    ) -> (BTreeSet<u64>, u64) {
        let mut newest_segment = recovered.resume_segment;
        let mut short_found = false;
        let mut segments: BTreeSet<u64> = BTreeSet::new();
        let mut listed: Vec<(u64, u64)> = self
            .listing
            .iter()
            .filter_map(|(file, size)| match file {
                FileId::Segment(number) => Some((*number, *size)),
                _ => None,
            })
            .collect();
        listed.sort_unstable();
        for (number, size) in listed {
            if number > recovered.resume_segment {
                short_found |= size != self.options.segment_size_bytes;
                if short_found {
                    let file = FileId::Segment(number);
                    self.steps.push_back((file, Request::Remove { file }));
                    recovered.wipes.retain(|wipe| wipe.segment != number);
                    *removed_any = true;
                    continue;
                }
                newest_segment = number;
            }
            segments.insert(number);
        }
        (segments, newest_segment)
    }
}

fn failure(file: FileId, result: &Result<Response, DiskError>) -> OpenError {
    OpenError::Disk { file, error: DiskError::of_unexpected(result) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::disk::Disk;
    use crate::log::format::RecordKind;
    use crate::log::log::Progress;
    use crate::log::sim_disk::{SimDisk, SimDiskOptions};
    use crate::log::writer::Entry;
    use crate::types::{Ballot, CoreIndex, NodeId, Slot};

    const OPTIONS: WriterOptions =
        WriterOptions { segment_size_bytes: 8 * 4096, staged_bytes_max: 6 * 4096 };

    fn identity() -> Superblock {
        Superblock::new(9, NodeId::new(1).unwrap(), CoreIndex(0))
    }

    fn open(disk: &mut SimDisk) -> Result<Opened, OpenError> {
        let mut opener = Opener::new(OPTIONS, identity(), disk.list());
        let mut completions = Vec::new();
        for _ in 0..10_000 {
            if let Some(result) = opener.poll_ready() {
                return result;
            }
            for (op, request) in opener.pump() {
                disk.submit(op, request);
            }
            disk.poll(&mut completions);
            for completion in completions.drain(..) {
                if let Some(result) = opener.on_completion(&completion) {
                    return result;
                }
            }
        }
        panic!("opening did not finish");
    }

    fn settle(log: &mut Log, disk: &mut SimDisk) -> Vec<super::super::log::Durable> {
        settle_all(log, disk).durable
    }

    fn entry(slot: u64) -> Entry<'static> {
        Entry {
            kind: RecordKind::Accepted,
            group: GroupId(2),
            slot: Slot(slot),
            ballot: Ballot { round: 3, node: 1 },
            payload: b"value",
        }
    }

    #[test]
    fn a_new_log_is_created_written_and_reopened_after_crashes() {
        let mut disk = SimDisk::new(8, SimDiskOptions::default());
        let mut opened = open(&mut disk).unwrap();
        assert!(opened.corruption.is_empty());
        let mut acknowledged = Vec::new();
        for round in 0..5_u64 {
            for slot in round * 20..round * 20 + 20 {
                opened.log.append(&entry(slot)).unwrap();
            }
            acknowledged.extend(settle(&mut opened.log, &mut disk));
            assert!(opened.log.superblock().is_some(), "formatted or rewritten");
            disk = disk.crash(round);
            opened = open(&mut disk).unwrap();
            assert!(opened.corruption.is_empty());
            for durable in &acknowledged {
                let location = opened.log.location(durable.record.group, durable.record.slot);
                assert!(location.is_some(), "lost {:?}", durable.record);
            }
        }
        assert_eq!(acknowledged.len(), 100);
    }

    #[test]
    fn segments_without_a_superblock_are_refused() {
        let mut disk = SimDisk::new(8, SimDiskOptions::default());
        let mut opened = open(&mut disk).unwrap();
        opened.log.append(&entry(0)).unwrap();
        settle(&mut opened.log, &mut disk);
        disk.submit(OpId(1), Request::Remove { file: FileId::Superblock });
        disk.submit(OpId(2), Request::SyncDirectory);
        let mut completions = Vec::new();
        while disk.in_flight_count() > 0 {
            disk.poll(&mut completions);
        }
        let error = open(&mut disk).unwrap_err();
        assert!(matches!(error, OpenError::SuperblockLost(_)), "{error}");
        assert!(error.to_string().contains("new member"));
    }

    /// Regression: a power loss after a new log's writer created its first segment but
    /// before the superblock's format write was durable left an empty segment beside a blank
    /// superblock, and the log could never be opened again (`SuperblockLost("blank")`).
    #[test]
    fn a_crash_before_the_first_format_write_leaves_a_new_log() {
        use crate::log::superblock_store::SuperblockStore;

        for seed in 0..4 {
            let mut disk = SimDisk::new(seed, SimDiskOptions::default());
            let mut opened = open(&mut disk).unwrap();
            let mut completions = Vec::new();
            // Everything but the superblock's writes: the segment is created, its directory
            // entry synced.
            for _ in 0..10 {
                for (op, request) in opened.log.pump() {
                    if !SuperblockStore::owns(op) {
                        disk.submit(op, request);
                    }
                }
                disk.poll(&mut completions);
                for completion in completions.drain(..) {
                    opened.log.on_completion(&completion).unwrap();
                }
            }
            let mut crashed = disk.crash(seed);
            assert!(segments_of(&crashed).contains(&1), "the first segment is durable");
            let mut reopened = open(&mut crashed).unwrap();
            assert!(reopened.corruption.is_empty());
            reopened.log.append(&entry(0)).unwrap();
            let durable = settle(&mut reopened.log, &mut crashed);
            assert_eq!(durable.len(), 1);
            let mut again = crashed.crash(seed + 10);
            let opened = open(&mut again).unwrap();
            assert!(opened.log.location(GroupId(2), Slot(0)).is_some(), "seed {seed}");
        }
    }

    #[test]
    fn a_read_error_while_opening_is_reported() {
        let mut disk = SimDisk::new(8, SimDiskOptions::default());
        let mut opened = open(&mut disk).unwrap();
        opened.log.append(&entry(0)).unwrap();
        settle(&mut opened.log, &mut disk);
        disk.add_latent_sector_error(FileId::Segment(1), 0);
        let error = open(&mut disk).unwrap_err();
        assert!(matches!(error, OpenError::Disk { file: FileId::Segment(1), .. }), "{error}");
    }

    /// Drives the log until idle; returns everything it reported.
    fn settle_all(log: &mut Log, disk: &mut SimDisk) -> Progress {
        let mut total = Progress::default();
        let mut completions = Vec::new();
        for _ in 0..100_000 {
            for (op, request) in log.pump() {
                disk.submit(op, request);
            }
            disk.poll(&mut completions);
            if completions.is_empty() && disk.in_flight_count() == 0 && log.is_idle() {
                return total;
            }
            for completion in completions.drain(..) {
                let progress = log.on_completion(&completion).expect("no faults");
                total.durable.extend(progress.durable);
                total.snapshots_installed.extend(progress.snapshots_installed);
                total.snapshots_aborted.extend(progress.snapshots_aborted);
                total.snapshot_chunks.extend(progress.snapshot_chunks);
                total.segments_reclaimed.extend(progress.segments_reclaimed);
            }
        }
        panic!("log did not settle");
    }

    fn segments_of(disk: &SimDisk) -> Vec<u64> {
        let listed = disk.list().into_iter();
        listed
            .filter_map(|(file, _)| if let FileId::Segment(n) = file { Some(n) } else { None })
            .collect()
    }

    /// A log of 300 slots over many segments; a snapshot at slot 199 with truncation behind
    /// it: once installed, the index forgets slots below 200, the segments holding only them
    /// are removed, the snapshot reads back, and all of it holds after a restart.
    #[test]
    fn a_snapshot_truncates_the_log_and_reclaims_segments_across_restarts() {
        let mut disk = SimDisk::new(21, SimDiskOptions::default());
        let mut opened = open(&mut disk).unwrap();
        for slot in 0..300 {
            opened.log.append(&entry(slot)).unwrap();
            if slot % 5 == 4 {
                settle_all(&mut opened.log, &mut disk);
            }
        }
        settle_all(&mut opened.log, &mut disk);
        let before = segments_of(&disk);
        assert!(before.len() >= 4, "several segments: {before:?}");
        let log = &mut opened.log;
        log.begin_snapshot(GroupId(2), Slot(199)).unwrap();
        log.push_snapshot_chunk(GroupId(2), b"state up to 199, part 1").unwrap();
        log.push_snapshot_chunk(GroupId(2), b"part 2").unwrap();
        log.finish_snapshot(GroupId(2), Slot(200)).unwrap();
        let progress = settle_all(log, &mut disk);
        assert_eq!(progress.snapshots_installed.len(), 1);
        assert!(!progress.segments_reclaimed.is_empty(), "segments reclaimed");
        let after = segments_of(&disk);
        assert!(after.len() < before.len());
        for segment in &progress.segments_reclaimed {
            assert!(!after.contains(segment));
        }
        let check = |log: &Log| {
            for slot in 0..300 {
                assert_eq!(log.location(GroupId(2), Slot(slot)).is_some(), slot >= 200, "{slot}");
            }
            let info = log.snapshot(GroupId(2)).expect("installed");
            assert_eq!((info.slot, info.chunk_count), (Slot(199), 2));
            let meta = log.superblock().unwrap().group(GroupId(2)).unwrap().clone();
            assert_eq!((meta.snapshot_slot, meta.truncated_before), (Some(Slot(199)), Slot(200)));
        };
        check(&opened.log);
        for seed in 0..3 {
            disk = disk.crash(seed);
            opened = open(&mut disk).unwrap();
            settle_all(&mut opened.log, &mut disk);
            assert!(opened.corruption.is_empty() && opened.snapshot_damage.is_empty());
            check(&opened.log);
            opened.log.read_snapshot_chunk(GroupId(2), 1).unwrap();
            let progress = settle_all(&mut opened.log, &mut disk);
            let [Ok(chunk)] = progress.snapshot_chunks.as_slice() else { panic!() };
            assert_eq!(chunk.payload, b"part 2");
        }
        // A second snapshot replaces the first; the old file goes.
        let log = &mut opened.log;
        assert!(log.begin_snapshot(GroupId(2), Slot(199)).is_err(), "not newer");
        log.begin_snapshot(GroupId(2), Slot(250)).unwrap();
        log.push_snapshot_chunk(GroupId(2), b"state up to 250").unwrap();
        log.finish_snapshot(GroupId(2), Slot(251)).unwrap();
        settle_all(log, &mut disk);
        let snapshots: Vec<FileId> = disk
            .list()
            .into_iter()
            .map(|(file, _)| file)
            .filter(|file| matches!(file, FileId::Snapshot { .. }))
            .collect();
        assert_eq!(snapshots, vec![FileId::Snapshot { group: GroupId(2), number: 250 }]);
    }

    /// A power loss at every step of a snapshot install leaves the old state or the new one:
    /// never a superblock naming a snapshot that is not there, never a lost record at or
    /// past the truncation point that recovery reports, and stray files are cleaned up.
    #[test]
    fn a_crash_anywhere_in_a_snapshot_install_leaves_old_or_new() {
        let mut outcomes = [0_u32; 2];
        for crash_after in 0..60 {
            for seed in 0..4 {
                let options =
                    SimDiskOptions { completion_delay_polls_max: 1, ..SimDiskOptions::default() };
                let mut disk = SimDisk::new(seed, options);
                let mut opened = open(&mut disk).unwrap();
                for slot in 0..120 {
                    opened.log.append(&entry(slot)).unwrap();
                }
                settle_all(&mut opened.log, &mut disk);
                let log = &mut opened.log;
                log.begin_snapshot(GroupId(2), Slot(79)).unwrap();
                log.push_snapshot_chunk(GroupId(2), &[5; 9000]).unwrap();
                log.finish_snapshot(GroupId(2), Slot(80)).unwrap();
                let mut completions = Vec::new();
                for _ in 0..crash_after {
                    for (op, request) in log.pump() {
                        disk.submit(op, request);
                    }
                    disk.poll(&mut completions);
                    for completion in completions.drain(..) {
                        log.on_completion(&completion).expect("no faults");
                    }
                }
                let mut after = disk.crash(seed * 1000 + crash_after);
                let mut reopened = open(&mut after).unwrap();
                settle_all(&mut reopened.log, &mut after);
                assert!(reopened.snapshot_damage.is_empty(), "{:?}", reopened.snapshot_damage);
                assert!(reopened.corruption.is_empty());
                let log = &reopened.log;
                let installed = log.snapshot(GroupId(2)).is_some();
                outcomes[usize::from(installed)] += 1;
                let first_kept = if installed { 80 } else { 0 };
                for slot in 0..120 {
                    let present = log.location(GroupId(2), Slot(slot)).is_some();
                    assert_eq!(present, slot >= first_kept, "crash {crash_after} slot {slot}");
                }
                let stray = after.list().into_iter().filter(|(file, _)| match file {
                    FileId::SnapshotStaging { .. } => true,
                    FileId::Snapshot { .. } => !installed,
                    _ => false,
                });
                assert_eq!(stray.count(), 0, "stray snapshot files removed");
            }
        }
        assert!(outcomes[0] > 0 && outcomes[1] > 0, "both outcomes occur: {outcomes:?}");
    }

    /// A short spare segment (a power loss between a failed `Create` on a full disk and its
    /// cleanup) is removed at start-up and created again whole, not written past its end.
    #[test]
    fn a_short_spare_segment_is_removed_and_recreated() {
        let mut disk = SimDisk::new(3, SimDiskOptions::default());
        let mut opened = open(&mut disk).unwrap();
        opened.log.append(&entry(0)).unwrap();
        settle_all(&mut opened.log, &mut disk);
        let spare = FileId::Segment(2);
        let mut completions = Vec::new();
        for (op, request) in [
            (OpId(1), Request::Remove { file: spare }),
            (OpId(2), Request::Create { file: spare, size_bytes: 4096 }),
            (OpId(3), Request::SyncDirectory),
        ] {
            disk.submit(op, request);
            disk.poll(&mut completions);
        }
        assert!(completions.iter().all(|completion| completion.result.is_ok()));
        let mut opened = open(&mut disk).unwrap();
        for slot in 1..200 {
            opened.log.append(&entry(slot)).unwrap();
            if slot % 5 == 0 {
                settle_all(&mut opened.log, &mut disk);
            }
        }
        let durable = settle_all(&mut opened.log, &mut disk).durable.len();
        assert!(durable > 0);
        let sizes: Vec<u64> = disk
            .list()
            .into_iter()
            .filter_map(|(file, size)| matches!(file, FileId::Segment(_)).then_some(size))
            .collect();
        assert!(sizes.len() > 2 && sizes.iter().all(|size| *size == OPTIONS.segment_size_bytes));
        for slot in 0..200 {
            assert!(opened.log.location(GroupId(2), Slot(slot)).is_some(), "slot {slot}");
        }
    }
}
