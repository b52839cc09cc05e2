//! Catch-up reads: a group's durable records, read back through the disk seam and verified.
//!
//! A lagging replica asks the master for a range of slots; the master looks the range up in
//! the [`Index`] and the reader turns the locations into as few sector-aligned `Read` requests
//! as it can (records next to each other in a segment share one read, up to
//! [`READ_SIZE_BYTES_MAX`]). When a read completes, every record in it is decoded with its
//! checksums and placement checked, and must be the (group, slot) the index promised; anything
//! else is reported as corruption, never passed on.
//!
//! Only durable records are in the index, and durable bytes of a segment are never rewritten,
//! so a read needs no lock against the writer.

use std::collections::BTreeMap;
use std::ops::RangeBounds;

use super::disk::{Completion, DISK_SECTOR_SIZE_BYTES, DiskError, FileId, OpId, Request, Response};
use super::format::{RecordError, RecordKind, decode_record};
use super::index::{Index, Location};
use crate::types::{Ballot, GroupId, Slot};

/// The largest single read the reader submits, in bytes.
pub const READ_SIZE_BYTES_MAX: usize = 1024 * 1024;

/// The first operation id the reader uses; its ids never meet the writer's or the
/// superblock store's.
pub const READER_OP_BASE: u64 = 2 << 48;

const _: () = assert!(READ_SIZE_BYTES_MAX.is_multiple_of(DISK_SECTOR_SIZE_BYTES));

/// A record read back for catch-up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadRecord {
    /// Its group.
    pub group: GroupId,
    /// Its slot.
    pub slot: Slot,
    /// The ballot it was written under.
    pub ballot: Ballot,
    /// `Accepted` or `Chosen`.
    pub kind: RecordKind,
    /// The payload, verified.
    pub payload: Vec<u8>,
}

/// Why a record could not be read back.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    /// The disk failed the read (a latent sector error, say). The slot must be fetched from a
    /// peer; the local copy is suspect.
    #[error("reading {group}/{slot} failed: {error}")]
    Disk {
        /// The group.
        group: GroupId,
        /// The slot.
        slot: Slot,
        /// The disk's error.
        error: DiskError,
    },
    /// The bytes read back are not the record the index promised.
    #[error("{group}/{slot} is corrupt on disk: {reason}")]
    Corrupt {
        /// The group.
        group: GroupId,
        /// The slot.
        slot: Slot,
        /// What is wrong.
        reason: String,
    },
}

/// One submitted read and the records it covers.
#[derive(Debug)]
struct PendingRead {
    segment: u64,
    start: u64,
    wanted: Vec<(GroupId, Slot, Location)>,
}

/// Turns index ranges into disk reads and reads into verified records.
#[derive(Debug)]
pub struct Reader {
    next_op: u64,
    pending: BTreeMap<OpId, PendingRead>,
    requests: Vec<(OpId, Request)>,
}

impl Default for Reader {
    fn default() -> Reader {
        Reader::new()
    }
}

impl Reader {
    /// A reader with nothing in flight.
    #[must_use]
    pub fn new() -> Reader {
        Reader { next_op: READER_OP_BASE, pending: BTreeMap::new(), requests: Vec::new() }
    }

    /// Whether `op` is one of the reader's requests.
    #[must_use]
    pub fn owns(op: OpId) -> bool {
        (READER_OP_BASE..READER_OP_BASE + (1 << 48)).contains(&op.0)
    }

    /// Plans the reads for `group`'s durable records in `slots`; [`Reader::pump`] hands out
    /// the requests. The records come back from [`Reader::on_completion`].
    pub fn read_range(&mut self, index: &Index, group: GroupId, slots: impl RangeBounds<Slot>) {
        let mut locations: Vec<(GroupId, Slot, Location)> =
            index.range(group, slots).map(|(slot, location)| (group, slot, *location)).collect();
        locations.sort_by_key(|(_, _, location)| location.position);
        let mut current: Option<PendingRead> = None;
        for wanted in locations {
            let location = wanted.2;
            let (start, end) = sector_extent(&location);
            if let Some(read) = current.as_mut() {
                let read_end = read_end(read);
                let same_segment = read.segment == location.position.segment;
                let fits = end.saturating_sub(read.start) <= READ_SIZE_BYTES_MAX as u64;
                if same_segment && start <= read_end && fits {
                    read.wanted.push(wanted);
                    continue;
                }
            }
            if let Some(read) = current.take() {
                self.submit(read);
            }
            current = Some(PendingRead {
                segment: location.position.segment,
                start,
                wanted: vec![wanted],
            });
        }
        if let Some(read) = current {
            self.submit(read);
        }
    }

    /// The requests to submit: planned reads and retries.
    pub fn pump(&mut self) -> Vec<(OpId, Request)> {
        std::mem::take(&mut self.requests)
    }

    fn submit(&mut self, read: PendingRead) {
        let op = OpId(self.next_op);
        self.next_op += 1;
        let length = usize::try_from(read_end(&read) - read.start).expect("reads are bounded");
        let request =
            Request::Read { file: FileId::Segment(read.segment), offset: read.start, length };
        self.pending.insert(op, read);
        self.requests.push((op, request));
    }

    /// Handles the completion of one of the reader's requests: the records it covered, each
    /// verified or an error. Completions of other requests give an empty list.
    ///
    /// A failed read of several records is retried record by record (see [`Reader::pump`]),
    /// so one bad sector costs only the records that live in it.
    pub fn on_completion(&mut self, completion: &Completion) -> Vec<Result<ReadRecord, ReadError>> {
        let Some(read) = self.pending.remove(&completion.op) else { return Vec::new() };
        if completion.result.is_err() && read.wanted.len() > 1 {
            for wanted in read.wanted {
                let start = sector_extent(&wanted.2).0;
                self.submit(PendingRead { segment: read.segment, start, wanted: vec![wanted] });
            }
            return Vec::new();
        }
        let Ok(Response::Read(bytes)) = &completion.result else {
            let error = DiskError::of_unexpected(&completion.result);
            return read.wanted.iter().map(|w| Err(disk_error(w, &error))).collect();
        };
        read.wanted.iter().map(|wanted| verify(&read, bytes, wanted)).collect()
    }

    /// Reads submitted and not completed.
    #[must_use]
    pub fn pending_count(&self) -> usize {
        self.pending.len()
    }
}

fn disk_error(wanted: &(GroupId, Slot, Location), error: &DiskError) -> ReadError {
    ReadError::Disk { group: wanted.0, slot: wanted.1, error: error.clone() }
}

fn verify(
    read: &PendingRead,
    bytes: &[u8],
    (group, slot, location): &(GroupId, Slot, Location),
) -> Result<ReadRecord, ReadError> {
    let corrupt = |reason: String| ReadError::Corrupt { group: *group, slot: *slot, reason };
    let within = usize::try_from(location.position.offset - read.start).expect("bounded read");
    let record = bytes.get(within..).ok_or_else(|| corrupt("short read".into()))?;
    let (header, payload) =
        decode_record(record, location.position.segment, location.position.offset)
            .map_err(|error: RecordError| corrupt(error.to_string()))?;
    if header.group != *group || header.slot != *slot || header.ballot != location.ballot {
        return Err(corrupt(format!(
            "found {}/{} at {}, expected {group}/{slot} at {}",
            header.group, header.slot, header.ballot, location.ballot
        )));
    }
    Ok(ReadRecord {
        group: *group,
        slot: *slot,
        ballot: header.ballot,
        kind: header.kind,
        payload: payload.to_vec(),
    })
}

/// The sector-aligned byte range holding a record.
fn sector_extent(location: &Location) -> (u64, u64) {
    let sector = DISK_SECTOR_SIZE_BYTES as u64;
    let start = location.position.offset / sector * sector;
    let end = (location.position.offset + u64::from(location.size_bytes)).next_multiple_of(sector);
    (start, end)
}

fn read_end(read: &PendingRead) -> u64 {
    read.wanted.iter().map(|(_, _, location)| sector_extent(location).1).max().unwrap_or(read.start)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::disk::Disk;
    use crate::log::sim_disk::{SimDisk, SimDiskOptions};
    use crate::log::writer::{Entry, Writer, WriterOptions};

    const OPTIONS: WriterOptions =
        WriterOptions { segment_size_bytes: 8 * 4096, staged_bytes_max: 6 * 4096 };

    /// Writes `count` records of group 1 (and a few of group 2), indexes the durable ones.
    fn written(count: u64) -> (SimDisk, Index) {
        let mut disk = SimDisk::new(4, SimDiskOptions::default());
        let mut writer = Writer::new(OPTIONS);
        let mut index = Index::new();
        let mut completions = Vec::new();
        for slot in 0..count {
            let payload = format!("value-{slot}").repeat(usize::try_from(slot % 30).unwrap() + 1);
            for group in [1, 2] {
                if group == 2 && slot % 5 != 0 {
                    continue;
                }
                let entry = Entry {
                    kind: if slot % 4 == 0 { RecordKind::Chosen } else { RecordKind::Accepted },
                    group: GroupId(group),
                    slot: Slot(slot),
                    ballot: Ballot { round: 1 + slot % 3, node: 2 },
                    payload: payload.as_bytes(),
                };
                while writer.append(&entry).is_err() {
                    drive(&mut writer, &mut disk, &mut index, &mut completions);
                }
            }
            drive(&mut writer, &mut disk, &mut index, &mut completions);
        }
        for _ in 0..50 {
            drive(&mut writer, &mut disk, &mut index, &mut completions);
        }
        (disk, index)
    }

    fn drive(
        writer: &mut Writer,
        disk: &mut SimDisk,
        index: &mut Index,
        completions: &mut Vec<Completion>,
    ) {
        for (op, request) in writer.pump() {
            disk.submit(op, request);
        }
        disk.poll(completions);
        for completion in completions.drain(..) {
            for record in writer.on_completion(&completion).unwrap() {
                let location = Location {
                    position: record.position,
                    size_bytes: record.size_bytes,
                    ballot: record.ballot,
                    is_chosen: record.kind == RecordKind::Chosen,
                };
                index.insert(record.group, record.slot, location);
            }
        }
    }

    fn read_all(reader: &mut Reader, disk: &mut SimDisk) -> Vec<Result<ReadRecord, ReadError>> {
        let mut results = Vec::new();
        let mut completions = Vec::new();
        loop {
            for (op, request) in reader.pump() {
                disk.submit(op, request);
            }
            if disk.in_flight_count() == 0 {
                return results;
            }
            disk.poll(&mut completions);
            for completion in completions.drain(..) {
                results.extend(reader.on_completion(&completion));
            }
        }
    }

    #[test]
    fn a_range_reads_back_every_durable_record_verified() {
        let (mut disk, index) = written(120);
        let mut reader = Reader::new();
        reader.read_range(&index, GroupId(1), Slot(10)..Slot(90));
        let read_count = reader.pending_count();
        let mut records: Vec<ReadRecord> =
            read_all(&mut reader, &mut disk).into_iter().map(Result::unwrap).collect();
        records.sort_by_key(|record| record.slot);
        let slots: Vec<u64> = records.iter().map(|record| record.slot.0).collect();
        assert_eq!(slots, (10..90).collect::<Vec<_>>());
        for record in &records {
            let expected = format!("value-{}", record.slot.0)
                .repeat(usize::try_from(record.slot.0 % 30).unwrap() + 1);
            assert_eq!(record.payload, expected.as_bytes());
            assert_eq!(record.kind == RecordKind::Chosen, record.slot.0 % 4 == 0);
        }
        assert!(read_count < 80, "neighbouring records share reads: {read_count} reads");
        assert_eq!(reader.pending_count(), 0);
    }

    #[test]
    fn reads_are_sector_aligned_and_bounded() {
        let (_, index) = written(200);
        let mut reader = Reader::new();
        reader.read_range(&index, GroupId(1), ..);
        for (_, request) in reader.pump() {
            let Request::Read { offset, length, .. } = request else { panic!("not a read") };
            assert!(offset.is_multiple_of(DISK_SECTOR_SIZE_BYTES as u64));
            assert!(length.is_multiple_of(DISK_SECTOR_SIZE_BYTES));
            assert!(length <= READ_SIZE_BYTES_MAX);
        }
    }

    #[test]
    fn rot_and_read_errors_are_reported_per_record_never_passed_on() {
        let (mut disk, index) = written(40);
        let victim = *index.get(GroupId(1), Slot(7)).unwrap();
        let offset = usize::try_from(victim.position.offset).unwrap() + 70;
        disk.flip_bit(FileId::Segment(victim.position.segment), offset, 0);
        let other = *index.get(GroupId(1), Slot(30)).unwrap();
        let bad_sector = usize::try_from(other.position.offset).unwrap();
        disk.add_latent_sector_error(FileId::Segment(other.position.segment), bad_sector);
        let mut reader = Reader::new();
        reader.read_range(&index, GroupId(1), ..);
        let results = read_all(&mut reader, &mut disk);
        let corrupt: Vec<u64> = results
            .iter()
            .filter_map(|result| match result {
                Err(ReadError::Corrupt { slot, .. }) => Some(slot.0),
                _ => None,
            })
            .collect();
        assert_eq!(corrupt, vec![7]);
        assert!(
            results
                .iter()
                .any(|result| matches!(result, Err(ReadError::Disk { slot: Slot(30), .. })))
        );
        let fine = results.iter().filter(|result| result.is_ok()).count();
        assert_eq!(results.len(), 40);
        assert!(fine >= 36, "only the records in the bad sector fail: {fine} of 40 read");
    }

    #[test]
    fn a_record_where_the_index_expects_another_is_corrupt() {
        let (mut disk, index) = written(10);
        // An index that points slot 3 at slot 4's record: valid bytes, but not what was asked.
        let four = *index.get(GroupId(1), Slot(4)).unwrap();
        let mut fresh = Index::new();
        fresh.insert(GroupId(1), Slot(3), four);
        let mut reader = Reader::new();
        reader.read_range(&fresh, GroupId(1), ..);
        let results = read_all(&mut reader, &mut disk);
        assert!(matches!(results.as_slice(), [Err(ReadError::Corrupt { slot: Slot(3), .. })]));
    }
}
