//! The append path of a core's log: staging, self-clocking group commit, segment roll-over.
//!
//! Records of every group on the core are appended to one staging buffer. At most one *flush*
//! is in flight: its batch is written with one `Write` and made durable with one `Sync`, and
//! while it is in flight the next batch accumulates. When the sync completes, every record of
//! the batch is reported durable at once, and the next batch leaves immediately. So the batch
//! size follows the disk's speed by itself (self-clocking): a slow fsync gathers a big batch,
//! an idle log flushes a single record at once.
//!
//! ```text
//!   append ----> staged batch --pump--> Write --done--> Sync --done--> durable records
//!                  (bounded)            \_______ one flush in flight ______/
//! ```
//!
//! # Layout of a batch
//! A batch starts at a sector boundary and ends with a `Padding` record that fills it up to
//! the next sector boundary (the *batch end*). Batches therefore never share a sector, so a
//! write torn by a power loss can damage only the batch being written, never acknowledged
//! data of an earlier one; the cost is up to one sector of padding per flush. Each record's
//! header names the offset of its batch's first record (`batch_offset`), which recovery uses
//! to tell a torn batch (damage followed only by records of the same batch) from corruption
//! (damage followed by a later batch, which was only written after this one was durable).
//!
//! A batch never spans segments. Segments are created (preallocated, zeroed) one ahead of use,
//! and a batch is written to a new segment only after its `Create` and the directory sync
//! completed, so recovery always finds the file a durable record lives in.
//!
//! # Correctness
//! - A record is reported durable only after the `Sync` that covers its `Write` completed;
//!   the `Sync` is submitted only after the `Write` completed (the disk contract).
//! - Any failed `Write`, `Sync`, `Create` or directory sync is fatal ([`WriterError`]): the
//!   records' durability is unknown and the process must stop (never retry an fsync).
//! - Staging is bounded by [`WriterOptions::staged_bytes_max`]; an append beyond it is refused
//!   with [`AppendError::Backpressure`] until the flush in flight completes.

use std::collections::VecDeque;

use super::disk::{Completion, DISK_SECTOR_SIZE_BYTES, DiskError, FileId, OpId, Request, Response};
use super::format::{RECORD_HEADER_SIZE_BYTES, RecordHeader, RecordKind, record_size_bytes};
use super::index::Position;
use crate::constants::{LOG_RECORD_PAYLOAD_BYTES_MAX, LOG_SEGMENT_SIZE_BYTES_MAX};
use crate::types::{Ballot, GroupId, Slot};

/// Sizes and bounds of a [`Writer`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WriterOptions {
    /// Size of every segment file, a multiple of [`DISK_SECTOR_SIZE_BYTES`].
    pub segment_size_bytes: u64,
    /// Most bytes staged (not yet handed to the disk) before appends are refused.
    pub staged_bytes_max: usize,
}

impl WriterOptions {
    /// Production sizes: 64 MiB segments, 8 MiB of staging.
    pub const DEFAULT: WriterOptions =
        WriterOptions { segment_size_bytes: 64 * 1024 * 1024, staged_bytes_max: 8 * 1024 * 1024 };

    fn check(&self) {
        let sector = DISK_SECTOR_SIZE_BYTES as u64;
        assert!(self.segment_size_bytes.is_multiple_of(sector));
        assert!(self.segment_size_bytes >= 2 * sector);
        assert!(self.segment_size_bytes <= LOG_SEGMENT_SIZE_BYTES_MAX);
        assert!(self.staged_bytes_max >= 2 * DISK_SECTOR_SIZE_BYTES);
    }
}

/// Bytes a batch of `records_bytes` occupies once sealed with its batch end: the next sector
/// boundary that leaves room for the batch end's header.
fn sealed_size(records_bytes: usize) -> usize {
    let mut end = records_bytes.next_multiple_of(DISK_SECTOR_SIZE_BYTES);
    if end - records_bytes < RECORD_HEADER_SIZE_BYTES {
        end += DISK_SECTOR_SIZE_BYTES;
    }
    end
}

/// A record to append.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry<'payload> {
    /// What the record says (never `Padding`: the writer adds those itself).
    pub kind: RecordKind,
    /// Its group.
    pub group: GroupId,
    /// Its slot.
    pub slot: Slot,
    /// The ballot it was written under.
    pub ballot: Ballot,
    /// Its payload (an rkyv archive, or empty).
    pub payload: &'payload [u8],
}

/// A record the writer accepted; reported again once durable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Appended {
    /// What the record says.
    pub kind: RecordKind,
    /// Its group.
    pub group: GroupId,
    /// Its slot.
    pub slot: Slot,
    /// The ballot it was written under.
    pub ballot: Ballot,
    /// Where it is written.
    pub position: Position,
    /// Its total size in bytes.
    pub size_bytes: u32,
}

/// Why an append was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AppendError {
    /// Staging is full: the disk is behind. Retry after the flush in flight completes.
    #[error("log staging is full ({staged_bytes} bytes staged); the disk is behind")]
    Backpressure {
        /// Bytes staged when the append was refused.
        staged_bytes: usize,
    },
}

/// A disk failure that makes the log's durability unknown: the process must stop.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("log {operation} of {file} failed: {error}")]
pub struct WriterError {
    /// What the writer was doing (`write`, `sync`, `create`, `directory sync`).
    pub operation: &'static str,
    /// The file.
    pub file: FileId,
    /// The disk's error.
    pub error: DiskError,
}

/// One batch: records encoded at their final offsets, starting at a sector boundary.
#[derive(Debug)]
struct Batch {
    segment: u64,
    start: u64,
    bytes: Vec<u8>,
    records: Vec<Appended>,
}

impl Batch {
    fn end(&self) -> u64 {
        self.start + self.bytes.len() as u64
    }
}

/// The flush in flight.
#[derive(Debug)]
enum Flush {
    Writing { op: OpId, batch: Batch },
    Syncing { op: OpId, batch: Batch },
}

/// Creation of the next segment: `Create`, then a directory sync.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum NextSegment {
    Creating { op: OpId, segment: u64 },
    SyncingDirectory { op: OpId, segment: u64 },
}

/// Counters of the writer's work, for the monitoring of group commit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WriterStats {
    /// Records appended (excluding batch ends).
    pub records_appended: u64,
    /// Records reported durable.
    pub records_durable: u64,
    /// Flushes completed (each one write and one sync).
    pub flushes: u64,
    /// Bytes written to segments, padding included.
    pub bytes_written: u64,
    /// Bytes of batch-end padding written.
    pub padding_bytes_written: u64,
    /// Segments created.
    pub segments_created: u64,
}

/// The append path of one core's log. See the module documentation.
#[derive(Debug)]
pub struct Writer {
    options: WriterOptions,
    /// Batches waiting for the disk, oldest first; only the last one takes new records.
    staged: VecDeque<Batch>,
    staged_bytes: usize,
    flush: Option<Flush>,
    /// Where the batch after the last sealed one starts: segment (0: none yet) and offset.
    sealed_segment: u64,
    sealed_offset: u64,
    next_segment: Option<NextSegment>,
    /// The highest segment known to exist durably (created and directory-synced).
    durable_segment: u64,
    next_op: u64,
    requests: Vec<(OpId, Request)>,
    /// Counters.
    pub stats: WriterStats,
}

impl Writer {
    /// A writer for an empty log: segment 1 is created before the first flush.
    #[must_use]
    pub fn new(options: WriterOptions) -> Writer {
        Writer::resume(options, 0, 0, 0)
    }

    /// A writer that continues a recovered log: `segment` exists durably and the next batch
    /// starts at `offset` in it (a sector boundary); segments up to `newest_segment` exist too
    /// (empty spares, zeroed). `segment` 0 means an empty log.
    ///
    /// # Panics
    /// If `offset` is not a sector boundary inside the segment, or `newest_segment` is older
    /// than `segment`.
    #[must_use]
    pub fn resume(
        options: WriterOptions,
        segment: u64,
        offset: u64,
        newest_segment: u64,
    ) -> Writer {
        options.check();
        assert!(offset.is_multiple_of(DISK_SECTOR_SIZE_BYTES as u64));
        assert!(offset <= options.segment_size_bytes);
        assert!(newest_segment >= segment);
        let mut writer = Writer {
            options,
            staged: VecDeque::new(),
            staged_bytes: 0,
            flush: None,
            sealed_segment: segment,
            sealed_offset: offset,
            next_segment: None,
            durable_segment: newest_segment,
            next_op: 1,
            requests: Vec::new(),
            stats: WriterStats::default(),
        };
        writer.ensure_segments();
        writer
    }

    /// Stages `entry`, returning where it will be written.
    ///
    /// # Errors
    /// [`AppendError::Backpressure`] when staging is full.
    ///
    /// # Panics
    /// If `entry` is a `Padding` record or its payload exceeds the record maximum.
    pub fn append(&mut self, entry: &Entry<'_>) -> Result<Appended, AppendError> {
        assert!(entry.kind != RecordKind::Padding, "the writer adds padding itself");
        assert!(entry.payload.len() <= LOG_RECORD_PAYLOAD_BYTES_MAX);
        let size = record_size_bytes(entry.payload.len());
        let alone = sealed_size(size);
        assert!(alone as u64 <= self.options.segment_size_bytes, "record larger than a segment");
        assert!(alone <= self.options.staged_bytes_max, "record larger than the staging bound");
        if self.staged_bytes + alone > self.options.staged_bytes_max {
            return Err(AppendError::Backpressure { staged_bytes: self.staged_bytes });
        }
        let batch = self.open_batch(size);
        let offset = batch.end();
        let mut header = RecordHeader::new(
            entry.kind,
            entry.group,
            entry.slot,
            entry.ballot,
            batch.segment,
            offset,
            entry.payload,
        );
        header.batch_offset = batch.start;
        let start = batch.bytes.len();
        batch.bytes.resize(start + size, 0);
        header.encode_into(entry.payload, &mut batch.bytes[start..]);
        let appended = Appended {
            kind: entry.kind,
            group: entry.group,
            slot: entry.slot,
            ballot: entry.ballot,
            position: Position { segment: batch.segment, offset },
            size_bytes: u32::try_from(size).expect("records are below 4 GiB"),
        };
        batch.records.push(appended);
        self.staged_bytes += size;
        self.stats.records_appended += 1;
        Ok(appended)
    }

    /// The batch that takes a record of `size` bytes: the last staged one if it still fits
    /// in its segment once sealed, else a new one after it (in the next segment if need be).
    fn open_batch(&mut self, size: usize) -> &mut Batch {
        let segment_size = self.options.segment_size_bytes;
        let fits =
            |start: u64, used: usize| start + sealed_size(used + size) as u64 <= segment_size;
        let reuse = self.staged.back().is_some_and(|batch| fits(batch.start, batch.bytes.len()));
        if !reuse {
            let (mut segment, mut start) = match self.staged.back() {
                Some(last) => (last.segment, last.start + sealed_size(last.bytes.len()) as u64),
                None => (self.sealed_segment, self.sealed_offset),
            };
            if segment == 0 || !fits(start, 0) {
                segment += 1;
                start = 0;
            }
            self.staged.push_back(Batch { segment, start, bytes: Vec::new(), records: Vec::new() });
            self.ensure_segments();
        }
        self.staged.back_mut().expect("a batch was just ensured")
    }

    /// Seals `batch` with a batch end that fills it to the next sector boundary, and moves the
    /// tail past it.
    fn seal(batch: &mut Batch) {
        let used = batch.bytes.len();
        let end = sealed_size(used);
        let payload = vec![0; end - used - RECORD_HEADER_SIZE_BYTES];
        let offset = batch.end();
        let mut header = RecordHeader::new(
            RecordKind::Padding,
            GroupId(0),
            Slot(batch.start),
            Ballot::ZERO,
            batch.segment,
            offset,
            &payload,
        );
        header.batch_offset = batch.start;
        assert_eq!(header.record_size_bytes(), end - used);
        batch.bytes.resize(end, 0);
        header.encode_into(&payload, &mut batch.bytes[used..]);
    }

    /// Starts the next disk operation if one can start, and returns every request to submit.
    pub fn pump(&mut self) -> Vec<(OpId, Request)> {
        self.start_flush();
        std::mem::take(&mut self.requests)
    }

    fn start_flush(&mut self) {
        if self.flush.is_some() {
            return;
        }
        let Some(front) = self.staged.front() else {
            return;
        };
        if front.segment > self.durable_segment {
            return; // Its segment file is still being created.
        }
        let mut batch = self.staged.pop_front().expect("front exists");
        let records_bytes = batch.bytes.len();
        Writer::seal(&mut batch);
        self.staged_bytes -= records_bytes;
        self.sealed_segment = batch.segment;
        self.sealed_offset = batch.end();
        self.stats.padding_bytes_written += (batch.bytes.len() - records_bytes) as u64;
        let op = self.next_op();
        self.requests.push((
            op,
            Request::Write {
                file: FileId::Segment(batch.segment),
                offset: batch.start,
                data: batch.bytes.clone(),
            },
        ));
        self.flush = Some(Flush::Writing { op, batch });
    }

    /// Keeps one segment beyond the newest one in use created ahead, so a roll-over does not
    /// wait for a file to be created.
    fn ensure_segments(&mut self) {
        let in_use = self.staged.back().map_or(self.sealed_segment, |batch| batch.segment);
        if self.next_segment.is_some() || self.durable_segment > in_use {
            return;
        }
        let segment = self.durable_segment + 1;
        let op = self.next_op();
        let size_bytes = self.options.segment_size_bytes;
        self.requests.push((op, Request::Create { file: FileId::Segment(segment), size_bytes }));
        self.next_segment = Some(NextSegment::Creating { op, segment });
        self.stats.segments_created += 1;
    }

    fn next_op(&mut self) -> OpId {
        let op = OpId(self.next_op);
        self.next_op += 1;
        op
    }

    /// Handles a completion of a request this writer submitted; returns the records that are
    /// now durable, in log order. Completions of other requests are ignored (`Ok(empty)`).
    ///
    /// # Errors
    /// A [`WriterError`] when a write, sync, create or directory sync failed: fatal.
    pub fn on_completion(&mut self, completion: &Completion) -> Result<Vec<Appended>, WriterError> {
        if let Some(next) = self.next_segment {
            self.on_segment_completion(next, completion)?;
        }
        let durable = match self.flush.take() {
            Some(Flush::Writing { op, batch }) if op == completion.op => {
                let file = FileId::Segment(batch.segment);
                match &completion.result {
                    Ok(Response::Written) => {}
                    other => return Err(failure("write", file, other)),
                }
                let sync = self.next_op();
                self.requests.push((sync, Request::Sync { file }));
                self.flush = Some(Flush::Syncing { op: sync, batch });
                Vec::new()
            }
            Some(Flush::Syncing { op, batch }) if op == completion.op => {
                let file = FileId::Segment(batch.segment);
                match &completion.result {
                    Ok(Response::Synced) => {}
                    other => return Err(failure("sync", file, other)),
                }
                self.stats.flushes += 1;
                self.stats.bytes_written += batch.bytes.len() as u64;
                self.stats.records_durable += batch.records.len() as u64;
                batch.records
            }
            other => {
                self.flush = other;
                Vec::new()
            }
        };
        self.start_flush();
        Ok(durable)
    }

    fn on_segment_completion(
        &mut self,
        next: NextSegment,
        completion: &Completion,
    ) -> Result<(), WriterError> {
        match next {
            NextSegment::Creating { op, segment } if op == completion.op => {
                let file = FileId::Segment(segment);
                match &completion.result {
                    Ok(Response::Created) => {}
                    other => return Err(failure("create", file, other)),
                }
                let sync = self.next_op();
                self.requests.push((sync, Request::SyncDirectory));
                self.next_segment = Some(NextSegment::SyncingDirectory { op: sync, segment });
            }
            NextSegment::SyncingDirectory { op, segment } if op == completion.op => {
                match &completion.result {
                    Ok(Response::DirectorySynced) => {}
                    other => {
                        return Err(failure("directory sync", FileId::Segment(segment), other));
                    }
                }
                self.durable_segment = segment;
                self.next_segment = None;
                self.ensure_segments();
            }
            _ => {}
        }
        Ok(())
    }

    /// Whether nothing is staged or in flight.
    #[must_use]
    pub fn is_idle(&self) -> bool {
        self.staged.is_empty() && self.flush.is_none()
    }

    /// The newest segment file known to exist durably (0: none).
    #[must_use]
    pub fn durable_segment(&self) -> u64 {
        self.durable_segment
    }

    /// The oldest segment the writer may still write to (0: none yet): every segment below it
    /// is complete, every one above it an empty spare or the next to fill.
    #[must_use]
    pub fn active_segment(&self) -> u64 {
        self.sealed_segment
    }

    /// Bytes staged and not yet handed to the disk.
    #[must_use]
    pub fn staged_bytes(&self) -> usize {
        self.staged_bytes
    }
}

fn failure(
    operation: &'static str,
    file: FileId,
    result: &Result<Response, DiskError>,
) -> WriterError {
    WriterError { operation, file, error: DiskError::of_unexpected(result) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::disk::Disk;
    use crate::log::format::decode_record;
    use crate::log::sim_disk::{SimDisk, SimDiskOptions};

    const SMALL: WriterOptions =
        WriterOptions { segment_size_bytes: 4 * 4096, staged_bytes_max: 8 * 4096 };

    /// Runs the writer against the disk until both are idle; returns the durable records.
    fn settle(writer: &mut Writer, disk: &mut SimDisk) -> Vec<Appended> {
        let mut durable = Vec::new();
        let mut completions = Vec::new();
        for _ in 0..10_000 {
            for (op, request) in writer.pump() {
                disk.submit(op, request);
            }
            disk.poll(&mut completions);
            if completions.is_empty() && disk.in_flight_count() == 0 {
                return durable;
            }
            for completion in completions.drain(..) {
                durable.extend(writer.on_completion(&completion).expect("no disk faults"));
            }
        }
        panic!("writer did not settle");
    }

    fn entry(group: u32, slot: u64, payload: &[u8]) -> Entry<'_> {
        Entry {
            kind: RecordKind::Accepted,
            group: GroupId(group),
            slot: Slot(slot),
            ballot: Ballot { round: 1, node: 1 },
            payload,
        }
    }

    fn read_back(disk: &SimDisk, record: &Appended) -> Vec<u8> {
        let bytes = disk.contents(FileId::Segment(record.position.segment)).expect("segment");
        let start = usize::try_from(record.position.offset).unwrap();
        let (header, payload) =
            decode_record(&bytes[start..], record.position.segment, record.position.offset)
                .expect("a durable record reads back valid");
        assert_eq!((header.group, header.slot), (record.group, record.slot));
        payload.to_vec()
    }

    #[test]
    fn records_are_durable_only_after_the_sync_and_read_back_valid() {
        let mut disk = SimDisk::new(1, SimDiskOptions::default());
        let mut writer = Writer::new(SMALL);
        let appended = writer.append(&entry(1, 0, b"hello")).unwrap();
        let durable = settle(&mut writer, &mut disk);
        assert_eq!(durable, vec![appended]);
        assert_eq!(read_back(&disk, &appended), b"hello");
        assert_eq!(writer.stats.flushes, 1);
        // Every crash after the sync keeps the record.
        for seed in 0..32 {
            let after = disk.crash(seed);
            let bytes = after.contents(FileId::Segment(1)).unwrap();
            assert!(decode_record(bytes, 1, 0).is_ok());
        }
    }

    #[test]
    fn appends_during_a_flush_form_the_next_batch() {
        let mut disk = SimDisk::new(1, SimDiskOptions::default());
        let mut writer = Writer::new(SMALL);
        settle(&mut writer, &mut disk); // Segment 1 and its spare exist.
        writer.append(&entry(1, 0, b"a")).unwrap();
        for (op, request) in writer.pump() {
            disk.submit(op, request);
        }
        // The first flush is in flight: these wait and then leave together.
        for slot in 1..=5 {
            writer.append(&entry(2, slot, b"b")).unwrap();
        }
        let durable = settle(&mut writer, &mut disk);
        assert_eq!(durable.len(), 6);
        assert_eq!(writer.stats.flushes, 2, "one flush for the first record, one for the rest");
        for record in &durable {
            read_back(&disk, record);
        }
    }

    #[test]
    fn batches_start_on_sector_boundaries_and_roll_over_segments() {
        let mut disk = SimDisk::new(3, SimDiskOptions::default());
        let mut writer = Writer::new(SMALL);
        let payload = vec![7_u8; 1000];
        let mut durable = Vec::new();
        for slot in 0..40 {
            writer.append(&entry(1, slot, &payload)).unwrap();
            if slot % 3 == 0 {
                durable.extend(settle(&mut writer, &mut disk));
            }
        }
        durable.extend(settle(&mut writer, &mut disk));
        assert_eq!(durable.len(), 40);
        let segments: std::collections::BTreeSet<u64> =
            durable.iter().map(|record| record.position.segment).collect();
        assert!(segments.len() >= 3, "rolled over: {segments:?}");
        for record in &durable {
            assert_eq!(read_back(&disk, record), payload);
            assert!(
                record.position.offset + u64::from(record.size_bytes) <= SMALL.segment_size_bytes
            );
        }
        let mut previous = Position { segment: 0, offset: 0 };
        for record in &durable {
            assert!(record.position > previous || previous.segment == 0, "log order");
            previous = record.position;
        }
    }

    #[test]
    fn staging_is_bounded_and_refuses_with_backpressure() {
        let mut writer = Writer::new(SMALL);
        let payload = vec![1_u8; 4000];
        let mut accepted = 0;
        let refused = loop {
            match writer.append(&entry(1, accepted, &payload)) {
                Ok(_) => accepted += 1,
                Err(error) => break error,
            }
        };
        assert!(matches!(refused, AppendError::Backpressure { .. }));
        assert!(writer.staged_bytes() <= SMALL.staged_bytes_max);
        assert!(accepted >= 2);
    }

    #[test]
    fn a_failed_sync_is_fatal_and_reports_nothing_durable() {
        let options = SimDiskOptions { sync_error_ppm: 1_000_000, ..SimDiskOptions::default() };
        let mut disk = SimDisk::new(1, options);
        let mut writer = Writer::new(SMALL);
        writer.append(&entry(1, 0, b"x")).unwrap();
        let mut completions = Vec::new();
        let mut failure = None;
        for _ in 0..100 {
            for (op, request) in writer.pump() {
                disk.submit(op, request);
            }
            disk.poll(&mut completions);
            for completion in completions.drain(..) {
                match writer.on_completion(&completion) {
                    Ok(durable) => assert!(durable.is_empty(), "nothing is durable"),
                    Err(error) => failure = failure.or(Some(error)),
                }
            }
        }
        let failure = failure.expect("the sync failure surfaces");
        assert_eq!(failure.operation, "sync");
    }

    #[test]
    fn reordered_completions_keep_the_contract() {
        let options = SimDiskOptions { completion_delay_polls_max: 4, ..SimDiskOptions::default() };
        let mut disk = SimDisk::new(9, options);
        let mut writer = Writer::new(SMALL);
        let mut durable = Vec::new();
        for slot in 0..60 {
            writer.append(&entry(u32::try_from(slot % 3).unwrap(), slot, b"payload")).unwrap();
            durable.extend(settle(&mut writer, &mut disk));
        }
        assert_eq!(durable.len(), 60);
        for record in &durable {
            assert_eq!(read_back(&disk, record), b"payload");
        }
    }
}
