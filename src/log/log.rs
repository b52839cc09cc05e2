//! The log of one core: the pieces of this module behind one completion-driven interface.
//!
//! The shard that owns a core's groups talks only to [`Log`]: it appends records, asks for
//! superblock changes and catch-up reads, hands every disk completion back, and learns what
//! became durable. `Log` routes each completion to the part that submitted it (by operation id
//! range), keeps the index and the row locks in step with durability, and never reports an
//! update of a slot before an earlier update of the same slot.
//!
//! ```text
//!   append ------> RowLocks (version) --> Writer --(Write, Sync)--> durable --> Index
//!   update_superblock ------------------> SuperblockStore --------> durable sequence
//!   read_range --> Index --> Reader --(Read)--> verified records
//!   begin/push/finish_snapshot --> Snapshots --(staging, rename)--> superblock names it
//!   superblock durable --> truncate the Index --> Remove segments no group needs
//! ```
//!
//! # Snapshots, truncation and reclamation
//! The superblock is the authority on a group's installed snapshot (`snapshot_slot`) and its
//! truncation point (`truncated_before`). A snapshot is installed in three durable steps: its
//! file under the final name (synced, directory synced), then the superblock naming it, and
//! only when that superblock is durable does the log act on it: the group's index entries below
//! the truncation point are dropped, the previous snapshot file is removed, and every segment
//! that no index entry points into, and that the writer has left behind, is removed. A crash
//! anywhere in between leaves either the old snapshot and truncation or the new ones; files
//! left over are found and removed by the opener.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::ops::RangeBounds;

use super::disk::{Completion, DiskError, FileId, OpId, Request};
use super::format::RecordKind;
use super::index::{Index, Location};
use super::reader::{ReadError, ReadRecord, Reader};
use super::row_locks::{RowLocks, Version};
use super::snapshot::{SnapshotError, SnapshotEvent, SnapshotInfo, SnapshotReadError, Snapshots};
use super::superblock::{GroupMeta, Superblock};
use super::superblock_store::{StoreError, SuperblockStore};
use super::writer::{AppendError, Appended, Entry, Writer, WriterError};
use crate::types::{GroupId, Slot};

/// A record that became durable, with its place in its slot's update order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Durable {
    /// The record.
    pub record: Appended,
    /// Its version in the slot's row lock: updates of a slot become durable in this order.
    pub version: Version,
}

/// What one completion produced.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Progress {
    /// Records now durable, in log order.
    pub durable: Vec<Durable>,
    /// The superblock sequence now durable, if one became durable.
    pub superblock_durable: Option<u64>,
    /// Catch-up records read back (or why not).
    pub reads: Vec<Result<ReadRecord, ReadError>>,
    /// Snapshots now installed and named by a durable superblock (the group's index is
    /// truncated behind them).
    pub snapshots_installed: Vec<SnapshotInfo>,
    /// Snapshots given up (a full disk), with why; nothing of them remains.
    pub snapshots_aborted: Vec<(GroupId, String)>,
    /// Snapshot chunks read back (or why not).
    pub snapshot_chunks: Vec<Result<super::snapshot::SnapshotChunk, SnapshotReadError>>,
    /// Segments removed because no group needs them any more.
    pub segments_reclaimed: Vec<u64>,
}

/// The first operation id of segment removals.
pub const RECLAIM_OP_BASE: u64 = 5 << 48;

/// A failure that makes the log's durability unknown: the process must stop, with
/// [`crate::constants::EXIT_CODE_STORAGE_FAILURE`] (see `log/disk.rs`). Its `Display` is one
/// line naming the operation, the file and the cause.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LogError {
    /// A segment write, sync or creation failed.
    #[error(transparent)]
    Writer(#[from] WriterError),
    /// A superblock write or sync failed.
    #[error(transparent)]
    Superblock(#[from] StoreError),
    /// A snapshot write or sync failed (other than for a full disk).
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    /// Removing a segment no group needs failed.
    #[error("removing {file}: {error}")]
    Reclaim {
        /// The segment.
        file: FileId,
        /// The disk's error.
        error: DiskError,
    },
}

/// The log of one core. See the module documentation.
#[derive(Debug)]
pub struct Log {
    writer: Writer,
    store: SuperblockStore,
    reader: Reader,
    index: Index,
    row_locks: RowLocks,
    /// Versions of appended records not yet durable, in append order.
    versions: VecDeque<(Appended, Version)>,
    snapshots: Snapshots,
    /// Each group's installed snapshot named by the durable superblock.
    installed: BTreeMap<GroupId, SnapshotInfo>,
    /// Snapshots installed on disk, waiting for the superblock sequence that names them, with
    /// the truncation point asked for; and the truncation points asked for in `finish`.
    naming: Vec<(u64, SnapshotInfo)>,
    truncate_after_install: BTreeMap<GroupId, Slot>,
    /// Segment files that exist, and removals in flight.
    segments: BTreeSet<u64>,
    removals: BTreeMap<OpId, u64>,
    next_removal: u64,
    /// A reclamation pass is due (deferred while catch-up reads are in flight).
    reclaim_due: bool,
}

impl Log {
    /// A log over `writer` (new or resumed), `store` (formatting or recovered) and `index`
    /// (empty or recovered).
    #[must_use]
    pub fn new(writer: Writer, store: SuperblockStore, index: Index) -> Log {
        Log {
            writer,
            store,
            reader: Reader::new(),
            index,
            row_locks: RowLocks::new(),
            versions: VecDeque::new(),
            snapshots: Snapshots::new(),
            installed: BTreeMap::new(),
            naming: Vec::new(),
            truncate_after_install: BTreeMap::new(),
            segments: BTreeSet::new(),
            removals: BTreeMap::new(),
            next_removal: 0,
            reclaim_due: false,
        }
    }

    /// Tells a reopened log which segment files exist and which snapshots are installed (the
    /// opener's findings); truncation points of the superblock apply to the index at once and
    /// a reclamation pass is due.
    pub fn restore(&mut self, segments: BTreeSet<u64>, installed: BTreeMap<GroupId, SnapshotInfo>) {
        self.segments = segments;
        self.installed = installed;
        self.apply_truncation();
        self.reclaim_due = true;
    }

    /// Appends a record; it is reported in [`Progress::durable`] once on disk.
    ///
    /// # Errors
    /// [`AppendError::Backpressure`] when the disk is behind.
    pub fn append(&mut self, entry: &Entry<'_>) -> Result<Durable, AppendError> {
        let appended = self.writer.append(entry)?;
        let version = self.row_locks.acquire(entry.group, entry.slot);
        self.versions.push_back((appended, version));
        Ok(Durable { record: appended, version })
    }

    /// Changes the next superblock version; returns the sequence that will carry the change.
    pub fn update_superblock(&mut self, change: impl FnOnce(&mut Superblock)) -> u64 {
        self.store.update(change)
    }

    /// The newest durable superblock.
    #[must_use]
    pub fn superblock(&self) -> Option<&Superblock> {
        self.store.durable()
    }

    /// Reads `group`'s durable records in `slots` back for catch-up.
    pub fn read_range(&mut self, group: GroupId, slots: impl RangeBounds<Slot>) {
        self.reader.read_range(&self.index, group, slots);
    }

    /// Starts writing a snapshot of `group` covering its slots up to `slot`.
    ///
    /// # Errors
    /// [`SnapshotError::InProgress`] or [`SnapshotError::Stale`].
    pub fn begin_snapshot(&mut self, group: GroupId, slot: Slot) -> Result<(), SnapshotError> {
        let installed = self.installed.get(&group).map(|info| info.slot);
        let naming = self.naming.iter().filter(|(_, info)| info.group == group);
        let newest = naming.map(|(_, info)| info.slot).chain(installed).max();
        self.snapshots.begin(group, slot, newest)
    }

    /// Adds the next chunk (at most `SNAPSHOT_CHUNK_PAYLOAD_BYTES_MAX` bytes) of `group`'s
    /// snapshot.
    ///
    /// # Errors
    /// [`SnapshotError::Backpressure`] when the chunk writes are behind, and misuse.
    pub fn push_snapshot_chunk(
        &mut self,
        group: GroupId,
        payload: &[u8],
    ) -> Result<(), SnapshotError> {
        self.snapshots.push_chunk(group, payload)
    }

    /// Ends `group`'s snapshot. Once it is installed and named by a durable superblock, the
    /// group's slots below `truncate_before` (at most one past the snapshot's slot) leave the
    /// log; [`Progress::snapshots_installed`] reports it.
    ///
    /// # Errors
    /// [`SnapshotError::NotInProgress`].
    pub fn finish_snapshot(
        &mut self,
        group: GroupId,
        truncate_before: Slot,
    ) -> Result<(), SnapshotError> {
        self.snapshots.finish(group)?;
        self.truncate_after_install.insert(group, truncate_before);
        Ok(())
    }

    /// Abandons `group`'s snapshot being written.
    ///
    /// # Errors
    /// [`SnapshotError::NotInProgress`] when none is, or it is already being installed.
    pub fn abort_snapshot(&mut self, group: GroupId) -> Result<(), SnapshotError> {
        self.snapshots.abort(group)
    }

    /// The installed snapshot of `group`, if any.
    #[must_use]
    pub fn snapshot(&self, group: GroupId) -> Option<&SnapshotInfo> {
        self.installed.get(&group)
    }

    /// Reads chunk `index` of `group`'s installed snapshot back (to send it to a replica or
    /// load it); reported in [`Progress::snapshot_chunks`].
    ///
    /// # Errors
    /// [`SnapshotError::NotInstalled`].
    pub fn read_snapshot_chunk(&mut self, group: GroupId, index: u32) -> Result<(), SnapshotError> {
        let info =
            *self.installed.get(&group).ok_or(SnapshotError::NotInstalled { group, index })?;
        self.snapshots.read_chunk(info, index)
    }

    /// Number of (group, slot) entries in the index.
    #[must_use]
    pub fn index_len(&self) -> usize {
        self.index.len()
    }

    /// The segment files that exist.
    #[must_use]
    pub fn segments(&self) -> &BTreeSet<u64> {
        &self.segments
    }

    /// The latest durable record of a slot.
    #[must_use]
    pub fn location(&self, group: GroupId, slot: Slot) -> Option<&Location> {
        self.index.get(group, slot)
    }

    /// Every request to submit to the disk now.
    pub fn pump(&mut self) -> Vec<(OpId, Request)> {
        let mut requests = self.writer.pump();
        requests.extend(self.store.pump());
        requests.extend(self.reader.pump());
        requests.extend(self.snapshots.pump());
        self.reclaim(&mut requests);
        requests
    }

    /// Handles one disk completion.
    ///
    /// # Errors
    /// A [`LogError`] when a write or sync failed: fatal for the process.
    ///
    /// # Panics
    /// If records become durable in an order the writer never produces (a bug).
    pub fn on_completion(&mut self, completion: &Completion) -> Result<Progress, LogError> {
        let mut progress = Progress::default();
        if Reader::owns(completion.op) {
            progress.reads = self.reader.on_completion(completion);
        } else if SuperblockStore::owns(completion.op) {
            progress.superblock_durable = self.store.on_completion(completion)?;
            if let Some(sequence) = progress.superblock_durable {
                self.on_superblock_durable(sequence, &mut progress);
            }
        } else if Snapshots::owns(completion.op) {
            match self.snapshots.on_completion(completion)? {
                Some(SnapshotEvent::Installed(info)) => self.name_snapshot(info),
                Some(SnapshotEvent::Aborted { group, reason }) => {
                    self.truncate_after_install.remove(&group);
                    progress.snapshots_aborted.push((group, reason));
                }
                Some(SnapshotEvent::Chunk(chunk)) => progress.snapshot_chunks.push(chunk),
                None => {}
            }
        } else if let Some(segment) = self.removals.remove(&completion.op) {
            match &completion.result {
                Ok(_) | Err(DiskError::NotFound(_)) => {
                    self.segments.remove(&segment);
                    progress.segments_reclaimed.push(segment);
                }
                Err(error) => {
                    let file = FileId::Segment(segment);
                    return Err(LogError::Reclaim { file, error: error.clone() });
                }
            }
        } else {
            for record in self.writer.on_completion(completion)? {
                let (appended, version) = self.versions.pop_front().expect("appended first");
                assert_eq!(appended, record, "records become durable in append order");
                self.row_locks.on_durable(record.group, record.slot, version);
                let location = Location {
                    position: record.position,
                    size_bytes: record.size_bytes,
                    ballot: record.ballot,
                    is_chosen: record.kind == RecordKind::Chosen,
                };
                if record.kind == RecordKind::Truncated {
                    self.index.truncate_prefix(record.group, record.slot);
                } else {
                    self.index.insert(record.group, record.slot, location);
                }
                progress.durable.push(Durable { record, version });
            }
        }
        Ok(progress)
    }

    /// Names an installed snapshot in the next superblock, with the truncation it allows.
    fn name_snapshot(&mut self, info: SnapshotInfo) {
        let asked = self.truncate_after_install.remove(&info.group).unwrap_or(Slot(0));
        let truncate_before = Slot(asked.0.min(info.slot.0 + 1));
        let sequence = self.store.update(|superblock| {
            let index = match superblock.groups.binary_search_by_key(&info.group, |g| g.group) {
                Ok(index) => index,
                Err(index) => {
                    superblock.groups.insert(index, GroupMeta::new(info.group));
                    index
                }
            };
            let meta = &mut superblock.groups[index];
            meta.snapshot_slot = Some(info.slot);
            meta.truncated_before = meta.truncated_before.max(truncate_before);
        });
        self.naming.push((sequence, info));
    }

    /// A superblock is durable: snapshots it names are installed, truncation applies, and
    /// segments may be reclaimed.
    fn on_superblock_durable(&mut self, sequence: u64, progress: &mut Progress) {
        let (named, waiting): (Vec<_>, Vec<_>) =
            self.naming.drain(..).partition(|(needed, _)| *needed <= sequence);
        self.naming = waiting;
        for (_, info) in named {
            if let Some(old) = self.installed.insert(info.group, info) {
                self.snapshots.remove_installed(old.file());
            }
            progress.snapshots_installed.push(info);
        }
        self.apply_truncation();
        self.reclaim_due = true;
    }

    /// Drops the index entries below every group's durable truncation point.
    fn apply_truncation(&mut self) {
        let Some(superblock) = self.store.durable() else {
            return;
        };
        for meta in &superblock.groups {
            self.index.truncate_prefix(meta.group, meta.truncated_before);
        }
    }

    /// Removes the segments no index entry points into and the writer has left behind. Runs
    /// when due and no catch-up read is in flight (a read may point into such a segment).
    fn reclaim(&mut self, requests: &mut Vec<(OpId, Request)>) {
        let newest = self.writer.durable_segment();
        let known = self.segments.last().copied().unwrap_or(0);
        self.segments.extend(known + 1..=newest);
        if !self.reclaim_due || self.reader.pending_count() > 0 {
            return;
        }
        self.reclaim_due = false;
        let active = self.writer.active_segment();
        let removing: BTreeSet<u64> = self.removals.values().copied().collect();
        let candidates: Vec<u64> = self
            .segments
            .range(..active)
            .copied()
            .filter(|segment| {
                !self.index.is_segment_needed(*segment) && !removing.contains(segment)
            })
            .collect();
        for segment in candidates {
            let op = OpId(RECLAIM_OP_BASE + self.next_removal);
            self.next_removal += 1;
            self.removals.insert(op, segment);
            requests.push((op, Request::Remove { file: FileId::Segment(segment) }));
        }
    }

    /// Whether nothing is staged, being written, read or removed.
    #[must_use]
    pub fn is_idle(&self) -> bool {
        self.writer.is_idle()
            && self.store.is_idle()
            && self.reader.pending_count() == 0
            && self.snapshots.is_idle()
            && self.removals.is_empty()
            && self.naming.is_empty()
    }

    /// Slots with updates not yet durable.
    #[must_use]
    pub fn latched_count(&self) -> usize {
        self.row_locks.latched_count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::constants::SUPERBLOCK_COPY_SIZE_BYTES;
    use crate::log::disk::{Disk, FileId};
    use crate::log::format::RecordKind;
    use crate::log::sim_disk::{SimDisk, SimDiskOptions};
    use crate::log::superblock::GroupMeta;
    use crate::log::writer::WriterOptions;
    use crate::types::{Ballot, CoreIndex, NodeId};

    const OPTIONS: WriterOptions =
        WriterOptions { segment_size_bytes: 8 * 4096, staged_bytes_max: 6 * 4096 };

    fn new_log(seed: u64, delay: u32) -> (Log, SimDisk) {
        let options =
            SimDiskOptions { completion_delay_polls_max: delay, ..SimDiskOptions::default() };
        let mut disk = SimDisk::new(seed, options);
        let size_bytes = 4 * SUPERBLOCK_COPY_SIZE_BYTES as u64;
        disk.submit(OpId(u64::MAX - 1), Request::Create { file: FileId::Superblock, size_bytes });
        disk.submit(OpId(u64::MAX), Request::SyncDirectory);
        let mut completions = Vec::new();
        while disk.in_flight_count() > 0 {
            disk.poll(&mut completions);
        }
        let store =
            SuperblockStore::format(Superblock::new(1, NodeId::new(1).unwrap(), CoreIndex(0)));
        (Log::new(Writer::new(OPTIONS), store, Index::new()), disk)
    }

    fn step(log: &mut Log, disk: &mut SimDisk) -> Progress {
        let mut total = Progress::default();
        for (op, request) in log.pump() {
            disk.submit(op, request);
        }
        let mut completions = Vec::new();
        disk.poll(&mut completions);
        for completion in completions {
            let progress = log.on_completion(&completion).expect("no faults");
            total.durable.extend(progress.durable);
            total.superblock_durable = total.superblock_durable.or(progress.superblock_durable);
            total.reads.extend(progress.reads);
        }
        total
    }

    fn entry(slot: u64, round: u64, payload: &[u8]) -> Entry<'_> {
        Entry {
            kind: RecordKind::Accepted,
            group: GroupId(1),
            slot: Slot(slot),
            ballot: Ballot { round, node: 1 },
            payload,
        }
    }

    /// Row locks, end to end: updates of one slot racing across flushes (an accept at b1, an
    /// accept at b2, then the learn) are reported durable in decision order, and the index
    /// ends on the last one; other slots go through in the same flushes meanwhile.
    #[test]
    fn updates_of_one_slot_become_durable_in_decision_order() {
        for seed in 0..20 {
            let (mut log, mut disk) = new_log(seed, 2);
            let mut durable = Vec::new();
            log.append(&entry(5, 1, b"a")).unwrap();
            durable.extend(step(&mut log, &mut disk).durable);
            log.append(&entry(5, 2, b"b")).unwrap();
            log.append(&entry(6, 2, b"other slot")).unwrap();
            durable.extend(step(&mut log, &mut disk).durable);
            let learn = Entry { kind: RecordKind::Chosen, ..entry(5, 2, b"b") };
            log.append(&learn).unwrap();
            while !log.is_idle() || disk.in_flight_count() > 0 {
                durable.extend(step(&mut log, &mut disk).durable);
            }
            let slot5: Vec<(u64, RecordKind)> = durable
                .iter()
                .filter(|d| d.record.slot == Slot(5))
                .map(|d| (d.version.0, d.record.kind))
                .collect();
            assert_eq!(
                slot5,
                vec![(1, RecordKind::Accepted), (2, RecordKind::Accepted), (3, RecordKind::Chosen)],
                "seed {seed}"
            );
            let location = log.location(GroupId(1), Slot(5)).unwrap();
            assert!(location.is_chosen);
            assert_eq!(location.ballot.round, 2);
            assert!(log.location(GroupId(1), Slot(6)).is_some());
            assert_eq!(log.latched_count(), 0, "every latch released");
        }
    }

    #[test]
    fn superblock_changes_and_catch_up_reads_go_through_the_same_log() {
        let (mut log, mut disk) = new_log(3, 0);
        while log.superblock().is_none() {
            step(&mut log, &mut disk);
        }
        let sequence = log.update_superblock(|superblock| {
            let mut meta = GroupMeta::new(GroupId(1));
            meta.promised = Ballot { round: 4, node: 2 };
            superblock.groups = vec![meta];
        });
        for slot in 0..20 {
            log.append(&entry(slot, 4, format!("v{slot}").as_bytes())).unwrap();
        }
        let mut superblock_durable = None;
        while !log.is_idle() || disk.in_flight_count() > 0 {
            superblock_durable =
                superblock_durable.or(step(&mut log, &mut disk).superblock_durable);
        }
        assert_eq!(superblock_durable, Some(sequence));
        log.read_range(GroupId(1), Slot(5)..Slot(15));
        let mut reads = Vec::new();
        while !log.is_idle() || disk.in_flight_count() > 0 {
            reads.extend(step(&mut log, &mut disk).reads);
        }
        let slots: Vec<u64> = reads.into_iter().map(|read| read.unwrap().slot.0).collect();
        assert_eq!(slots.len(), 10);
        assert!(slots.iter().all(|slot| (5..15).contains(slot)));
    }

    /// The line an operator reads when the process stops on a full disk (`log/disk.rs`).
    #[test]
    fn a_full_disk_is_one_line_naming_the_operation_the_file_and_enospc() {
        use crate::log::disk::DiskError;

        let error = LogError::from(WriterError {
            operation: "create",
            file: FileId::Segment(5),
            error: DiskError::NoSpace,
        });
        assert_eq!(
            error.to_string(),
            "log create of segment-00000000000000000005.log failed: \
             no space left on device (ENOSPC)"
        );
        let error = LogError::from(StoreError { operation: "write", error: DiskError::NoSpace });
        assert_eq!(error.to_string(), "superblock write failed: no space left on device (ENOSPC)");
    }

    #[test]
    fn a_durable_truncation_drops_older_slots_from_the_index() {
        let (mut log, mut disk) = new_log(5, 0);
        for slot in 0..10 {
            log.append(&entry(slot, 1, b"x")).unwrap();
        }
        let truncate = Entry { kind: RecordKind::Truncated, ..entry(6, 1, b"") };
        log.append(&truncate).unwrap();
        while !log.is_idle() || disk.in_flight_count() > 0 {
            step(&mut log, &mut disk);
        }
        assert!(log.location(GroupId(1), Slot(5)).is_none());
        assert!(log.location(GroupId(1), Slot(6)).is_some());
    }
}
