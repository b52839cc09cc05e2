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
//! ```

use std::collections::VecDeque;
use std::ops::RangeBounds;

use super::disk::{Completion, OpId, Request};
use super::format::RecordKind;
use super::index::{Index, Location};
use super::reader::{ReadError, ReadRecord, Reader};
use super::row_locks::{RowLocks, Version};
use super::superblock::Superblock;
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
}

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
        }
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

    /// Whether nothing is staged, being written or being read.
    #[must_use]
    pub fn is_idle(&self) -> bool {
        self.writer.is_idle() && self.store.is_idle() && self.reader.pending_count() == 0
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
