//! Opening a core's log at start-up, through the disk seam.
//!
//! ```text
//!   list files --> read superblock + every segment --> choose superblock, recover segments
//!              --> zero the leftovers of a torn batch (write + sync) --> Log
//! ```
//!
//! The rules (see `docs/design/log-format.md`):
//! - no files at all: a new log; the superblock file is created and formatted;
//! - a superblock but no segments, or segments and a superblock: recover both; the first
//!   superblock write is the mandatory recovery rewrite;
//! - segments without a readable superblock: refused. The node lost its acceptor metadata and
//!   may only rejoin the cluster as a new member (`../shared/VERIFICATION.md` 4.4);
//! - corruption in the segments is not a refusal: it is reported in [`Opened::corruption`] and
//!   the affected groups must not vote until repaired; an unreadable newer format is.

use std::collections::{BTreeMap, VecDeque};

use super::disk::{Completion, DiskError, FileId, OpId, Request, Response};
use super::log::Log;
use super::recovery::{Damage, RecoveryError, recover};
use super::superblock::{self, Chosen, Superblock};
use super::superblock_store::SuperblockStore;
use super::writer::{Writer, WriterOptions};
use crate::constants::{SUPERBLOCK_COPIES_COUNT, SUPERBLOCK_COPY_SIZE_BYTES};
use crate::types::GroupId;

/// The first operation id the opener uses.
pub const OPEN_OP_BASE: u64 = 3 << 48;

/// Size of each read while opening, in bytes.
const OPEN_READ_SIZE_BYTES: usize = 1024 * 1024;

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
}

/// One read of the opening.
#[derive(Debug)]
struct Chunk {
    file: FileId,
    offset: u64,
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
    reads: BTreeMap<OpId, Chunk>,
    contents: BTreeMap<FileId, Vec<u8>>,
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
            contents: BTreeMap::new(),
            steps: VecDeque::new(),
            step_in_flight: None,
            ready: None,
        };
        for (file, size) in listing {
            if !matches!(file, FileId::Superblock | FileId::Segment(_)) {
                continue;
            }
            opener.contents.insert(file, vec![0; usize::try_from(size).expect("fits memory")]);
            let mut offset = 0;
            while offset < size {
                let length = usize::try_from((size - offset).min(OPEN_READ_SIZE_BYTES as u64))
                    .expect("small");
                let op = opener.allocate();
                opener.requests.push((op, Request::Read { file, offset, length }));
                opener.reads.insert(op, Chunk { file, offset });
                offset += length as u64;
            }
        }
        if opener.reads.is_empty() {
            opener.decide();
        }
        opener
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
        if let Some(chunk) = self.reads.remove(&completion.op) {
            match &completion.result {
                Ok(Response::Read(bytes)) => {
                    let start = usize::try_from(chunk.offset).expect("fits memory");
                    let contents = self.contents.get_mut(&chunk.file).expect("listed");
                    contents[start..start + bytes.len()].copy_from_slice(bytes);
                }
                other => return Some(Err(failure(chunk.file, other))),
            }
            if self.reads.is_empty() {
                self.decide();
            }
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

    /// Everything is read: decide, queue the wipes, build the log.
    fn decide(&mut self) {
        let result = self.build();
        if result.is_err() {
            self.steps.clear();
        }
        self.ready = Some(result);
        self.next_step();
    }

    fn build(&mut self) -> Result<Opened, OpenError> {
        let has_segments = self.listing.iter().any(|(file, _)| matches!(file, FileId::Segment(_)));
        let store = match self.contents.get(&FileId::Superblock) {
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
                    Ok(Chosen::Fresh) if has_segments => {
                        return Err(OpenError::SuperblockLost("blank".into()));
                    }
                    Ok(Chosen::Fresh) => SuperblockStore::format(self.identity.clone()),
                    Ok(Chosen::Found(found)) => {
                        let (rewrite, plan) = found.rewrite();
                        SuperblockStore::recovered(found.superblock, rewrite, plan)
                    }
                }
            }
        };
        let mut segments: Vec<(u64, &[u8])> = self
            .contents
            .iter()
            .filter_map(|(file, bytes)| match file {
                FileId::Segment(number) => Some((*number, bytes.as_slice())),
                _ => None,
            })
            .collect();
        let recovered = recover(&mut segments)?;
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
            recovered.newest_segment,
        );
        Ok(Opened {
            corruption: recovered.corruption.clone(),
            every_group_suspect: recovered.every_group_suspect,
            suspect_groups: recovered.suspect_groups.iter().copied().collect(),
            had_torn_tail: recovered.torn_tail.is_some(),
            log: Log::new(writer, store, recovered.index),
        })
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
        let mut durable = Vec::new();
        let mut completions = Vec::new();
        for _ in 0..10_000 {
            for (op, request) in log.pump() {
                disk.submit(op, request);
            }
            disk.poll(&mut completions);
            if completions.is_empty() && disk.in_flight_count() == 0 && log.is_idle() {
                return durable;
            }
            for completion in completions.drain(..) {
                durable.extend(log.on_completion(&completion).expect("no faults").durable);
            }
        }
        panic!("log did not settle");
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
}
