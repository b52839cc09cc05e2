//! Recovery: scan every segment, verify every record, rebuild the index, find where to write.
//!
//! Pure: it is given the bytes of each segment (read through the disk seam by the caller) and
//! decides, following the framing contract in [`crate::log::format`]:
//! - a valid record goes into the index (latest position wins);
//! - an invalid record at the end of the **last** segment that holds data, followed by no
//!   valid record of a later batch, is the torn tail of an unsynced batch: the log is truncated
//!   there and writing resumes at the next sector boundary;
//! - any other invalid record is **corruption**: it is reported with the groups that may have
//!   lost records, never dropped silently. Those groups must not vote or promise until they
//!   are repaired from a quorum. The scan continues after it to keep every record that is
//!   still valid;
//! - an authentic header this build cannot read is **fatal**: recovery stops.
//!
//! Earlier segments get no torn-tail allowance: the writer moves to a segment only after
//! every batch of the previous one is durable, so damage there is always corruption.

use std::collections::BTreeSet;

use super::disk::DISK_SECTOR_SIZE_BYTES;
use super::format::{
    HeaderError, RECORD_ALIGNMENT_BYTES, RecordError, RecordHeader, RecordKind, check_placement,
    decode_header, decode_record, find_misplaced_batch_at, find_next_valid_record,
};
use super::index::{Index, Location, Position};
use crate::types::{GroupId, Slot};

/// What recovery found wrong at one place.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Damage {
    /// The segment.
    pub segment: u64,
    /// Offset of the first invalid byte range.
    pub offset: u64,
    /// Why the record there is invalid.
    pub reason: RecordError,
}

/// A truncation marker found in the log: the group's slots below `before` live in a snapshot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Truncation {
    /// The group.
    pub group: GroupId,
    /// The first slot still in the log.
    pub before: Slot,
}

/// Bytes past the recovered end of the log that hold leftovers of a torn batch. They must be
/// overwritten with zeros and synced before the writer resumes: a later, shorter batch at the
/// same offset would otherwise leave them behind, and a second crash could bring them back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Wipe {
    /// The segment.
    pub segment: u64,
    /// Where the leftovers start (the resume offset, a sector boundary).
    pub offset: u64,
    /// How many bytes to zero (a multiple of the sector size).
    pub length: usize,
}

/// The result of recovering a core's log.
#[derive(Debug, Default)]
pub struct Recovered {
    /// Every valid record of a slot, latest position first (`Accepted` and `Chosen`).
    pub index: Index,
    /// Truncation markers, in log order.
    pub truncations: Vec<Truncation>,
    /// The segment to continue writing in (0: the log is empty).
    pub resume_segment: u64,
    /// Where the next batch starts in it (a sector boundary).
    pub resume_offset: u64,
    /// The torn tail that was cut off, if any.
    pub torn_tail: Option<Damage>,
    /// Leftovers to zero (and sync) before writing resumes: past the end of the last batch,
    /// and anywhere in the empty segments after it.
    pub wipes: Vec<Wipe>,
    /// The newest segment file that exists (0: none); segments after `resume_segment` are
    /// empty spares the writer created ahead.
    pub newest_segment: u64,
    /// Corruption found: each place, never silently dropped.
    pub corruption: Vec<Damage>,
    /// Groups seen near corruption; they may have lost durable records and must not vote
    /// until repaired.
    pub suspect_groups: BTreeSet<GroupId>,
    /// Whether some damage could not be attributed to particular groups (every group of the
    /// core is then suspect).
    pub every_group_suspect: bool,
    /// Valid records read (including batch ends).
    pub records_read: u64,
    /// Bytes of segment scanned.
    pub bytes_scanned: u64,
}

/// Recovery cannot continue: the log holds something this build must not interpret.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("segment {segment} offset {offset}: {reason}; refusing to start")]
pub struct RecoveryError {
    /// The segment.
    pub segment: u64,
    /// The offset.
    pub offset: u64,
    /// What was found.
    pub reason: RecordError,
}

/// Recovers a log from its segments, given as (segment number, bytes) in any order. A
/// convenience over [`Recovery`] for logs already in memory (tests, tools).
///
/// # Errors
/// [`RecoveryError`] for an authentic record this build cannot read (a newer format, or a
/// writer bug); the node must not start on such a log.
///
/// # Panics
/// If the last batch does not end on a sector boundary, which the writer guarantees.
pub fn recover(segments: &mut [(u64, &[u8])]) -> Result<Recovered, RecoveryError> {
    segments.sort_by_key(|(number, _)| *number);
    let mut recovery = Recovery::new();
    for (number, bytes) in segments.iter() {
        recovery.push_segment(*number, *bytes)?;
    }
    recovery.finish()
}

/// An empty segment seen after the last one with data so far: what it means if a later
/// segment turns out to hold data (`as_middle`), and what must be zeroed if none does.
#[derive(Debug)]
struct EmptySegment {
    number: u64,
    /// Damage found when read as a segment before the last (nonzero bytes in it).
    as_middle: Option<Damage>,
    /// Leftovers to zero if it is a spare after the last batch.
    as_spare: Option<Wipe>,
}

/// Recovery fed one segment at a time, in ascending order, so a log of any size is recovered
/// in bounded memory: it holds the newest segment that has data (it may be the last, whose
/// damage is judged differently) and a summary of the empty ones after it. `B` holds a
/// segment's bytes: owned buffers when reading from disk, borrowed slices for a log in memory.
#[derive(Debug)]
pub struct Recovery<B> {
    recovered: Recovered,
    /// The newest segment with a valid record so far, not scanned yet.
    held: Option<(u64, B)>,
    /// Segments without a valid record after `held` (or from the start, when none is held).
    empty: Vec<EmptySegment>,
    /// The last segment number pushed.
    last_pushed: u64,
}

impl<B> Default for Recovery<B> {
    fn default() -> Recovery<B> {
        Recovery { recovered: Recovered::default(), held: None, empty: Vec::new(), last_pushed: 0 }
    }
}

impl<B: AsRef<[u8]>> Recovery<B> {
    /// Recovery of a log whose segments are about to be pushed.
    #[must_use]
    pub fn new() -> Recovery<B> {
        Recovery::default()
    }

    /// Adds the next segment, numbered above every segment pushed before.
    ///
    /// # Errors
    /// [`RecoveryError`] as [`recover`].
    ///
    /// # Panics
    /// If segments are pushed out of order.
    /// Returns a buffer recovery no longer needs (the previously held segment's, or this one's
    /// if it holds no data), for the caller to read the next segment into: reusing buffers
    /// keeps opening from faulting in fresh pages for every segment.
    pub fn push_segment(&mut self, number: u64, bytes: B) -> Result<Option<B>, RecoveryError> {
        let data = bytes.as_ref();
        assert!(number > self.last_pushed, "segments are pushed in ascending order");
        self.last_pushed = number;
        self.recovered.bytes_scanned += data.len() as u64;
        if find_next_valid_record(data, 0, number).is_some() {
            // The held segment is not the last one with data: judge it as an earlier one.
            let mut freed = None;
            if let Some((held, held_bytes)) = self.held.take() {
                scan_segment(held, held_bytes.as_ref(), false, &mut self.recovered)?;
                freed = Some(held_bytes);
            }
            for empty in self.empty.drain(..) {
                if let Some(damage) = empty.as_middle {
                    report_corruption(damage, &BTreeSet::new(), &mut self.recovered);
                }
            }
            self.held = Some((number, bytes));
            Ok(freed)
        } else {
            let mut scratch = Recovered::default();
            scan_segment(number, data, false, &mut scratch)?;
            let mut spare = Recovered::default();
            wipe_dirty(number, data, 0, &mut spare);
            self.empty.push(EmptySegment {
                number,
                as_middle: scratch.corruption.pop(),
                as_spare: spare.wipes.pop(),
            });
            Ok(Some(bytes))
        }
    }

    /// Ends recovery: the held segment is the last with data.
    ///
    /// # Errors
    /// [`RecoveryError`] as [`recover`].
    ///
    /// # Panics
    /// If the last batch does not end on a sector boundary, which the writer guarantees.
    pub fn finish(mut self) -> Result<Recovered, RecoveryError> {
        let recovered = &mut self.recovered;
        recovered.newest_segment = self.last_pushed;
        if let Some((number, bytes)) = self.held.take() {
            let bytes = bytes.as_ref();
            let end = scan_segment(number, bytes, true, recovered)?;
            assert!(end.is_multiple_of(DISK_SECTOR_SIZE_BYTES as u64), "batches end on sectors");
            recovered.resume_segment = number;
            recovered.resume_offset = end;
            wipe_dirty(number, bytes, end, recovered);
        } else if let Some(first) = self.empty.first() {
            // Segments exist but hold no record: continue in the first one from its start.
            recovered.resume_segment = first.number;
            recovered.resume_offset = 0;
        }
        for empty in &self.empty {
            recovered.wipes.extend(empty.as_spare);
        }
        Ok(self.recovered)
    }
}

/// Scans one segment; returns the offset just past its last complete batch.
///
/// Records count only as part of a whole batch: they are applied when the batch's end (its
/// `Padding` record) is read. A batch cut short by a torn write contributes nothing.
fn scan_segment(
    segment: u64,
    bytes: &[u8],
    is_last: bool,
    recovered: &mut Recovered,
) -> Result<u64, RecoveryError> {
    let mut position = 0_usize;
    let mut end_of_batches = 0_usize;
    // The end of the last record applied outside a whole batch (at a corruption).
    let mut applied_end = 0_usize;
    let mut batch: Vec<(u64, RecordHeader, usize)> = Vec::new();
    let mut groups_seen = BTreeSet::new();
    while position < bytes.len() {
        let offset = position as u64;
        match decode_record(&bytes[position..], segment, offset) {
            Ok((header, _payload)) => {
                let size = header.record_size_bytes();
                recovered.records_read += 1;
                position += size;
                if header.kind == RecordKind::Padding {
                    for (offset, header, size) in batch.drain(..) {
                        apply(segment, offset, &header, size, recovered);
                    }
                    end_of_batches = position;
                } else {
                    groups_seen.insert(header.group);
                    batch.push((offset, header, size));
                }
            }
            Err(reason) => {
                if !reason.is_truncatable_at_tail() {
                    return Err(RecoveryError { segment, offset, reason });
                }
                // Where the search for what follows starts: past the damaged record when its
                // header still checks and is placed here (only its payload is bad), so bytes a
                // client put in that payload are never read as records; else the next
                // alignment unit (the framing contract, docs/design/log-format.md).
                let search_from = match decode_header(&bytes[position..]) {
                    Ok(header) if check_placement(&header, segment, offset).is_ok() => {
                        position + header.record_size_bytes()
                    }
                    _ => position + RECORD_ALIGNMENT_BYTES,
                };
                // In the last segment with data only a later batch proves the damaged bytes
                // were durable; in an earlier one, the writer's move to the next segment does.
                let was_durable = !is_last
                    || next_record_of_a_later_batch(bytes, position, search_from, segment)
                        .is_some();
                let next_valid = find_next_valid_record(bytes, search_from, segment);
                if was_durable && let Some(next) = next_valid {
                    // Corruption. Every record that is still valid is kept: the scan resumes at
                    // the next one, which may be a later record of this same batch. Writing
                    // must never resume before a record the index holds.
                    applied_end = applied_end.max(apply_all(segment, &mut batch, recovered));
                    report_corruption(Damage { segment, offset, reason }, &groups_seen, recovered);
                    position = next;
                    continue;
                }
                // What follows is cut as a torn tail and wiped: never an authentic header this
                // build cannot read (newer software wrote it), which stops recovery instead.
                if let Some((at, error)) = first_unreadable_header(bytes, search_from, segment) {
                    let reason = RecordError::Header(error);
                    return Err(RecoveryError { segment, offset: at as u64, reason });
                }
                // A misdirected copy of a record that belongs here or later: the device took
                // writes past this point, so the tail was durable and is lost, not torn.
                if let Some((_, lost)) =
                    find_misplaced_batch_at(bytes, search_from, segment, offset)
                {
                    applied_end = applied_end.max(apply_all(segment, &mut batch, recovered));
                    groups_seen.insert(lost.group);
                    report_corruption(Damage { segment, offset, reason }, &groups_seen, recovered);
                    break;
                }
                let is_clean_end = batch.is_empty()
                    && matches!(reason, RecordError::Header(HeaderError::Zeroed))
                    && !has_valid_record_after(bytes, position, segment);
                if !is_clean_end {
                    let damage = Damage { segment, offset, reason };
                    if is_last {
                        recovered.torn_tail = Some(damage);
                    } else {
                        report_corruption(damage, &groups_seen, recovered);
                    }
                }
                batch.clear();
                break;
            }
        }
    }
    if !batch.is_empty() {
        // The segment ends inside a batch that has no end record.
        let damage = Damage {
            segment,
            offset: end_of_batches as u64,
            reason: RecordError::Incomplete { available_bytes: 0, needed_bytes: 1 },
        };
        if is_last {
            recovered.torn_tail = Some(damage);
        } else {
            report_corruption(damage, &groups_seen, recovered);
        }
    }
    let resume = end_of_batches.max(applied_end.next_multiple_of(DISK_SECTOR_SIZE_BYTES));
    if is_last
        && recovered
            .torn_tail
            .as_ref()
            .is_some_and(|torn| torn.segment == segment && torn.offset < resume as u64)
        && let Some(torn) = recovered.torn_tail.take()
    {
        // Damage inside the sector of records kept at a corruption: batches never share a
        // sector, so no torn write explains it. It is corruption too.
        report_corruption(torn, &groups_seen, recovered);
    }
    Ok(resume as u64)
}

/// Applies (indexes) every record of `batch`, emptying it; the end of the last one.
fn apply_all(
    segment: u64,
    batch: &mut Vec<(u64, RecordHeader, usize)>,
    recovered: &mut Recovered,
) -> usize {
    let mut end = 0;
    for (offset, header, size) in batch.drain(..) {
        apply(segment, offset, &header, size, recovered);
        end = end.max(usize::try_from(offset).expect("offsets fit usize") + size);
    }
    end
}

/// Asks for the nonzero bytes of `segment` from `from` on to be zeroed.
fn wipe_dirty(segment: u64, bytes: &[u8], from: u64, recovered: &mut Recovered) {
    let from = usize::try_from(from).expect("offsets within a segment fit usize");
    let dirty_end = bytes.iter().rposition(|byte| *byte != 0).map_or(0, |last| last + 1);
    let dirty_end = dirty_end.next_multiple_of(DISK_SECTOR_SIZE_BYTES);
    if dirty_end > from {
        recovered.wipes.push(Wipe { segment, offset: from as u64, length: dirty_end - from });
    }
}

fn apply(segment: u64, offset: u64, header: &RecordHeader, size: usize, recovered: &mut Recovered) {
    let location = Location {
        position: Position { segment, offset },
        size_bytes: u32::try_from(size).expect("records are below 4 GiB"),
        ballot: header.ballot,
        is_chosen: header.kind == RecordKind::Chosen,
    };
    match header.kind {
        RecordKind::Accepted | RecordKind::Chosen => {
            recovered.index.insert(header.group, header.slot, location);
        }
        RecordKind::Truncated => {
            recovered.index.truncate_prefix(header.group, header.slot);
            recovered.truncations.push(Truncation { group: header.group, before: header.slot });
        }
        RecordKind::Padding => {}
    }
}

fn report_corruption(damage: Damage, groups_seen: &BTreeSet<GroupId>, recovered: &mut Recovered) {
    // A damaged header hides which group the record belonged to, so beyond the groups seen in
    // the segment, every group the core hosts is suspect.
    recovered.suspect_groups.extend(groups_seen.iter().copied());
    recovered.every_group_suspect = true;
    recovered.corruption.push(damage);
}

/// The position of the next valid record after `position` that belongs to a batch started
/// after `position` (proof that the bytes at `position` were durable), skipping valid
/// records of the damaged batch itself.
fn next_record_of_a_later_batch(
    bytes: &[u8],
    position: usize,
    search_from: usize,
    segment: u64,
) -> Option<usize> {
    let mut search = search_from;
    while let Some(next) = find_next_valid_record(bytes, search, segment) {
        let Ok(header) = decode_header(&bytes[next..]) else {
            // An authentic header this build cannot read: writing went on past the damage, and
            // the scan will stop at it with a fatal error rather than wipe it.
            return Some(next);
        };
        if header.batch_offset > position as u64 {
            return Some(next);
        }
        search = next + RECORD_ALIGNMENT_BYTES;
    }
    None
}

/// The first authentic header at or after `start` that this build cannot read, if any.
fn first_unreadable_header(
    bytes: &[u8],
    start: usize,
    segment: u64,
) -> Option<(usize, HeaderError)> {
    let mut search = start;
    while let Some(next) = find_next_valid_record(bytes, search, segment) {
        if let Err(error) = decode_header(&bytes[next..]) {
            return Some((next, error));
        }
        search = next + RECORD_ALIGNMENT_BYTES;
    }
    None
}

/// Whether any record header with a matching placement follows `position`.
fn has_valid_record_after(bytes: &[u8], position: usize, segment: u64) -> bool {
    find_next_valid_record(bytes, position + RECORD_ALIGNMENT_BYTES, segment).is_some()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::log::disk::{Disk, FileId, OpId, Request};
    use crate::log::sim_disk::{SimDisk, SimDiskOptions};
    use crate::log::writer::{Appended, Entry, Writer, WriterOptions};
    use crate::types::Ballot;

    const SMALL: WriterOptions =
        WriterOptions { segment_size_bytes: 8 * 4096, staged_bytes_max: 6 * 4096 };

    /// A tiny deterministic generator for the workload.
    struct Prng(u64);

    impl Prng {
        fn below(&mut self, bound: u64) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0 % bound
        }
    }

    /// Drives writer and disk for `steps` rounds; returns what became durable.
    fn drive(writer: &mut Writer, disk: &mut SimDisk, steps: usize) -> Vec<Appended> {
        let mut durable = Vec::new();
        let mut completions = Vec::new();
        for _ in 0..steps {
            for (op, request) in writer.pump() {
                disk.submit(op, request);
            }
            disk.poll(&mut completions);
            for completion in completions.drain(..) {
                durable.extend(writer.on_completion(&completion).expect("no faults injected"));
            }
        }
        durable
    }

    fn recover_disk(disk: &SimDisk) -> Recovered {
        let owned = disk.segment_images();
        let mut borrowed: Vec<(u64, &[u8])> =
            owned.iter().map(|(number, bytes)| (*number, bytes.as_slice())).collect();
        recover(&mut borrowed).expect("recoverable")
    }

    /// Zeroes the leftovers recovery asked for, synchronously, as the log does at start-up.
    fn apply_wipe(disk: &mut SimDisk, recovered: &Recovered) {
        for wipe in &recovered.wipes {
            zero(disk, wipe);
        }
    }

    fn zero(disk: &mut SimDisk, wipe: &Wipe) {
        let file = FileId::Segment(wipe.segment);
        disk.submit(
            OpId(u64::MAX - 1),
            Request::Write { file, offset: wipe.offset, data: vec![0; wipe.length] },
        );
        let mut completions = Vec::new();
        while disk.in_flight_count() > 0 {
            disk.poll(&mut completions);
        }
        disk.submit(OpId(u64::MAX), Request::Sync { file });
        while disk.in_flight_count() > 0 {
            disk.poll(&mut completions);
        }
        assert!(completions.iter().all(|completion| completion.result.is_ok()));
    }

    fn payload(group: u32, slot: u64, version: u64) -> Vec<u8> {
        let length = usize::try_from((slot * 37 + version * 11) % 700).unwrap();
        let mut bytes = format!("{group}/{slot}/{version}:").into_bytes();
        bytes.resize(bytes.len() + length, b'x');
        bytes
    }

    /// Recovery reads whatever the disk holds: random bytes, mutated real segments, stale
    /// records from other segments. It must never panic, and whatever it indexes must be a
    /// record that decodes valid where the index says it is.
    #[test]
    fn recovery_of_random_and_mutated_segments_never_panics() {
        let mut disk = SimDisk::new(3, SimDiskOptions::default());
        let mut writer = Writer::new(SMALL);
        for slot in 0..60 {
            let bytes = payload(u32::try_from(slot % 3).unwrap(), slot, 1);
            let entry = Entry {
                kind: RecordKind::Accepted,
                group: GroupId(u32::try_from(slot % 3).unwrap()),
                slot: Slot(slot),
                ballot: Ballot { round: 1, node: 1 },
                payload: &bytes,
            };
            writer.append(&entry).unwrap();
            drive(&mut writer, &mut disk, 3);
        }
        drive(&mut writer, &mut disk, 50);
        let real = disk.segment_images();
        let mut prng = Prng(0xDEAD_BEEF);
        for case in 0..2_000 {
            let mut segments = real.clone();
            match case % 4 {
                0 => {
                    for (_, bytes) in &mut segments {
                        for byte in bytes.iter_mut() {
                            *byte = u8::try_from(prng.below(256)).unwrap();
                        }
                    }
                }
                1 => {
                    for _ in 0..=prng.below(20) {
                        let which = usize::try_from(prng.below(segments.len() as u64)).unwrap();
                        let bytes = &mut segments[which].1;
                        let at = usize::try_from(prng.below(bytes.len() as u64)).unwrap();
                        bytes[at] ^= 1 << prng.below(8);
                    }
                }
                2 => {
                    // A segment's contents under another segment's number (stale or
                    // misdirected data).
                    let count = segments.len();
                    if count > 1 {
                        let from = segments[0].1.clone();
                        segments[count - 1].1 = from;
                    }
                }
                _ => {
                    let which = usize::try_from(prng.below(segments.len() as u64)).unwrap();
                    let bytes = &mut segments[which].1;
                    let at = usize::try_from(prng.below(bytes.len() as u64)).unwrap();
                    let length = usize::try_from(prng.below(600)).unwrap().min(bytes.len() - at);
                    bytes[at..at + length].fill(0);
                }
            }
            let mut borrowed: Vec<(u64, &[u8])> =
                segments.iter().map(|(number, bytes)| (*number, bytes.as_slice())).collect();
            let Ok(recovered) = recover(&mut borrowed) else { continue };
            recovered.index.check_invariants();
            for group in (0..3).map(GroupId) {
                for (_, location) in recovered.index.range(group, ..) {
                    let (_, bytes) = segments
                        .iter()
                        .find(|(number, _)| *number == location.position.segment)
                        .expect("indexed segment exists");
                    let start = usize::try_from(location.position.offset).unwrap();
                    let decoded = crate::log::format::decode_record(
                        &bytes[start..],
                        location.position.segment,
                        location.position.offset,
                    );
                    assert!(decoded.is_ok(), "case {case}: indexed an invalid record");
                }
            }
        }
    }

    /// A full disk stops the writer with a clear `NoSpace` error when it cannot create the
    /// next segment, and leaves nothing corrupted: every acknowledged record recovers.
    #[test]
    fn a_full_disk_is_a_clear_error_and_corrupts_nothing() {
        let capacity = 3 * SMALL.segment_size_bytes;
        let options = SimDiskOptions { capacity_bytes: capacity, ..SimDiskOptions::default() };
        let mut disk = SimDisk::new(6, options);
        let mut writer = Writer::new(SMALL);
        let mut acknowledged = Vec::new();
        let mut completions = Vec::new();
        let mut failure = None;
        'writing: for slot in 0..10_000 {
            let bytes = payload(1, slot, 1);
            let entry = Entry {
                kind: RecordKind::Accepted,
                group: GroupId(1),
                slot: Slot(slot),
                ballot: Ballot { round: 1, node: 1 },
                payload: &bytes,
            };
            let _ = writer.append(&entry);
            for (op, request) in writer.pump() {
                disk.submit(op, request);
            }
            disk.poll(&mut completions);
            for completion in completions.drain(..) {
                match writer.on_completion(&completion) {
                    Ok(durable) => acknowledged.extend(durable),
                    Err(error) => {
                        failure = Some(error);
                        break 'writing;
                    }
                }
            }
        }
        let failure = failure.expect("the disk fills up");
        assert_eq!(failure.operation, "create");
        assert_eq!(failure.error, crate::log::disk::DiskError::NoSpace);
        assert!(failure.to_string().contains("no space left on device"), "{failure}");
        assert!(acknowledged.len() > 10);
        let recovered = recover_disk(&disk.crash(1));
        assert!(recovered.corruption.is_empty());
        for record in &acknowledged {
            assert!(recovered.index.get(record.group, record.slot).is_some(), "lost {record:?}");
        }
    }

    #[test]
    fn an_empty_log_recovers_empty() {
        let recovered = recover(&mut []).unwrap();
        assert!(recovered.index.is_empty());
        assert_eq!((recovered.resume_segment, recovered.resume_offset), (0, 0));
    }

    /// The heart of the log's promise, under random crashes: every record reported durable
    /// survives, recovery never reports corruption for a plain power loss, and writing can
    /// resume after recovery and survive the next crash too.
    #[test]
    fn durable_records_survive_random_crashes_and_restarts() {
        let (mut torn_tails, mut wipes, mut checked) = (0, 0, 0);
        for seed in 1..=40_u64 {
            let mut prng = Prng(seed * 0x9E37_79B9);
            let options = SimDiskOptions {
                completion_delay_polls_max: u32::try_from(seed % 3).unwrap(),
                ..SimDiskOptions::default()
            };
            let mut disk = SimDisk::new(seed, options);
            let mut writer = Writer::new(SMALL);
            // (group, slot) -> the latest version reported durable, and its position.
            let mut acknowledged: BTreeMap<(u32, u64), (u64, Appended)> = BTreeMap::new();
            let mut version = 0;
            for restart in 0..4 {
                for _ in 0..prng.below(120) {
                    let group = u32::try_from(prng.below(3)).unwrap();
                    let slot = prng.below(40);
                    version += 1;
                    let bytes = payload(group, slot, version);
                    let entry = Entry {
                        kind: RecordKind::Accepted,
                        group: GroupId(group),
                        slot: Slot(slot),
                        ballot: Ballot { round: version, node: 1 },
                        payload: &bytes,
                    };
                    if writer.append(&entry).is_err() {
                        continue; // Backpressure: the disk is behind.
                    }
                    for record in
                        drive(&mut writer, &mut disk, usize::try_from(prng.below(4)).unwrap())
                    {
                        acknowledged
                            .insert((record.group.0, record.slot.0), (record.ballot.round, record));
                    }
                }
                disk = disk.crash(seed * 100 + restart);
                let recovered = recover_disk(&disk);
                assert!(recovered.corruption.is_empty(), "seed {seed}: {:?}", recovered.corruption);
                recovered.index.check_invariants();
                for ((group, slot), (round, record)) in &acknowledged {
                    let location = recovered
                        .index
                        .get(GroupId(*group), Slot(*slot))
                        .unwrap_or_else(|| panic!("seed {seed}: lost {group}/{slot}"));
                    assert!(location.position >= record.position, "seed {seed}: went back");
                    assert!(location.ballot.round >= *round, "seed {seed}: older version");
                }
                torn_tails += usize::from(recovered.torn_tail.is_some());
                wipes += recovered.wipes.len();
                checked += acknowledged.len();
                apply_wipe(&mut disk, &recovered);
                writer = Writer::resume(
                    SMALL,
                    recovered.resume_segment,
                    recovered.resume_offset,
                    recovered.newest_segment,
                );
            }
        }
        // The crashes must have hit unsynced batches, or the test proves nothing.
        assert!(torn_tails > 10, "torn tails exercised: {torn_tails}");
        assert!(wipes > 10, "leftovers wiped: {wipes}");
        assert!(checked > 1000, "acknowledged records checked: {checked}");
    }

    #[test]
    fn damage_followed_by_a_later_batch_is_corruption_not_a_torn_tail() {
        let mut disk = SimDisk::new(5, SimDiskOptions::default());
        let mut writer = Writer::new(SMALL);
        let mut durable = Vec::new();
        for slot in 0..6 {
            let bytes = payload(1, slot, 1);
            let entry = Entry {
                kind: RecordKind::Accepted,
                group: GroupId(1),
                slot: Slot(slot),
                ballot: Ballot { round: 1, node: 1 },
                payload: &bytes,
            };
            writer.append(&entry).unwrap();
            durable.extend(drive(&mut writer, &mut disk, 20));
        }
        assert_eq!(durable.len(), 6);
        // Rot a byte inside the second record's payload: later batches vouch for it.
        let victim = durable[1];
        let offset = usize::try_from(victim.position.offset).unwrap() + 70;
        disk.flip_bit(FileId::Segment(victim.position.segment), offset, 3);
        let recovered = recover_disk(&disk);
        assert_eq!(recovered.corruption.len(), 1, "{:?}", recovered.corruption);
        assert_eq!(recovered.corruption[0].offset, victim.position.offset);
        assert!(recovered.every_group_suspect);
        assert!(recovered.suspect_groups.contains(&GroupId(1)));
        assert!(recovered.torn_tail.is_none());
        // Every other record is still there.
        for record in durable.iter().filter(|record| record.slot != victim.slot) {
            assert!(recovered.index.get(record.group, record.slot).is_some());
        }
    }

    #[test]
    fn a_misdirected_last_batch_is_corruption_not_a_torn_tail() {
        let mut disk = SimDisk::new(6, SimDiskOptions::default());
        let mut writer = Writer::new(SMALL);
        let mut durable = Vec::new();
        for slot in 0..4 {
            let bytes = payload(2, slot, 1);
            let entry = Entry {
                kind: RecordKind::Accepted,
                group: GroupId(2),
                slot: Slot(slot),
                ballot: Ballot { round: 1, node: 1 },
                payload: &bytes,
            };
            writer.append(&entry).unwrap();
            durable.extend(drive(&mut writer, &mut disk, 20));
        }
        let last = durable[3];
        // The device put the last batch (durable, acknowledged) further on in the file and
        // left its place zeroed: nothing after it vouches for it, only its misplaced copy.
        let mut images = disk.segment_images();
        let image = &mut images.iter_mut().find(|(n, _)| *n == last.position.segment).unwrap().1;
        let start = usize::try_from(last.position.offset).unwrap();
        let end = image.iter().rposition(|byte| *byte != 0).unwrap() + 1;
        let end = end.next_multiple_of(DISK_SECTOR_SIZE_BYTES);
        let elsewhere = end;
        assert!(elsewhere + (end - start) <= image.len(), "room for the copy");
        let batch = image[start..end].to_vec();
        image[elsewhere..elsewhere + batch.len()].copy_from_slice(&batch);
        image[start..end].fill(0);
        let mut borrowed: Vec<(u64, &[u8])> =
            images.iter().map(|(number, bytes)| (*number, bytes.as_slice())).collect();
        let recovered = recover(&mut borrowed).expect("recoverable");
        assert_eq!(recovered.corruption.len(), 1, "{:?}", recovered.corruption);
        assert_eq!(recovered.corruption[0].offset, last.position.offset);
        assert!(recovered.suspect_groups.contains(&GroupId(2)));
        assert!(recovered.torn_tail.is_none(), "not cut as a torn tail");
        for record in &durable[..3] {
            assert!(recovered.index.get(record.group, record.slot).is_some());
        }

        // Without the copy it is an ordinary end of the log (the documented limit).
        let mut images = disk.segment_images();
        let image = &mut images.iter_mut().find(|(n, _)| *n == last.position.segment).unwrap().1;
        image[start..end].fill(0);
        let mut borrowed: Vec<(u64, &[u8])> =
            images.iter().map(|(number, bytes)| (*number, bytes.as_slice())).collect();
        let recovered = recover(&mut borrowed).expect("recoverable");
        assert!(recovered.corruption.is_empty());
    }

    #[test]
    fn a_record_from_a_newer_format_stops_recovery() {
        let mut disk = SimDisk::new(5, SimDiskOptions::default());
        let mut writer = Writer::new(SMALL);
        let entry = Entry {
            kind: RecordKind::Chosen,
            group: GroupId(2),
            slot: Slot(1),
            ballot: Ballot { round: 1, node: 1 },
            payload: b"v",
        };
        writer.append(&entry).unwrap();
        drive(&mut writer, &mut disk, 20);
        let mut segments = disk.segment_images();
        let (_, bytes) = segments.iter_mut().find(|(number, _)| *number == 1).unwrap();
        bytes[4] = 2; // version 2
        let checksum = crc32c::crc32c(&bytes[..60]);
        bytes[60..64].copy_from_slice(&checksum.to_le_bytes());
        let mut borrowed: Vec<(u64, &[u8])> =
            segments.iter().map(|(number, bytes)| (*number, bytes.as_slice())).collect();
        let error = recover(&mut borrowed).unwrap_err();
        assert_eq!((error.segment, error.offset), (1, 0));
    }

    #[test]
    fn truncation_markers_drop_older_slots_from_the_index() {
        let mut disk = SimDisk::new(5, SimDiskOptions::default());
        let mut writer = Writer::new(SMALL);
        for (kind, slot) in
            [(RecordKind::Chosen, 1), (RecordKind::Chosen, 2), (RecordKind::Truncated, 2)]
        {
            let entry = Entry {
                kind,
                group: GroupId(4),
                slot: Slot(slot),
                ballot: Ballot { round: 1, node: 1 },
                payload: b"",
            };
            writer.append(&entry).unwrap();
        }
        drive(&mut writer, &mut disk, 20);
        let recovered = recover_disk(&disk);
        assert!(recovered.index.get(GroupId(4), Slot(1)).is_none());
        assert!(recovered.index.get(GroupId(4), Slot(2)).unwrap().is_chosen);
        assert_eq!(recovered.truncations, vec![Truncation { group: GroupId(4), before: Slot(2) }]);
    }
}
