//! Target 2: the recovery scanner, over segments the real writer wrote to the simulated disk,
//! then a power loss and mutations. See `main.rs` for what it checks.

use arbitrary::Arbitrary;
use klein::log::disk::{DISK_SECTOR_SIZE_BYTES, DISK_TEAR_SIZE_BYTES, Disk, FileId, Request};
use klein::log::format::RecordKind;
use klein::log::index::{Index, Location, Position};
use klein::log::recovery::{Recovered, Truncation, recover};
use klein::log::sim_disk::{SimDisk, SimDiskOptions};
use klein::log::writer::{Appended, Entry, Writer, WriterOptions};
use klein::types::{Ballot, GroupId, Slot};

use super::*;

const GROUPS: u32 = 4;
const SLOTS: u64 = 16;
/// Segments are 2 to 6 sectors long, so a few batches roll over.
const SEGMENT_SECTORS_MIN: u64 = 2;
const SEGMENT_SECTORS_SPAN: u64 = 5;
const BATCHES_MAX: usize = 6;
const RECORDS_PER_BATCH_MAX: usize = 5;
/// Payloads are short unless the length's top bit asks for a long one (up to a record
/// that still fits two sectors once sealed, the smallest segment).
const PAYLOAD_SHORT_BYTES_MAX: usize = 256;
const PAYLOAD_LONG_BYTES_MAX: usize = 4000;
pub const PAYLOAD_LONG_FLAG: u16 = 0x8000;
const MUTATIONS_MAX: usize = 6;
const ZERO_BYTES_MAX: usize = 2 * DISK_SECTOR_SIZE_BYTES;
/// Writer and disk rounds after the last append before the power fails (modulo this).
const TAIL_STEPS_MAX: u8 = 4;
/// Bound on writer and disk rounds while waiting for anything.
const STEPS_MAX: usize = 10_000;
/// A forged record: where in the payload (16-byte units, modulo this), its payload size,
/// and a ballot no real record has.
const FORGE_UNITS_MAX: u8 = 8;
const FORGED_PAYLOAD_BYTES: usize = 16;
const FORGED_BALLOT: Ballot = Ballot { round: u64::MAX - 1, node: 9 };

/// One recovery case: what the writer writes, where the power fails, what rots after.
#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
pub struct Case {
    /// Segment size in sectors, from `SEGMENT_SECTORS_MIN` (modulo the span).
    pub segment_sectors: u8,
    /// Each appended, then made durable (acknowledged) before the next.
    pub batches: Vec<BatchSpec>,
    /// Appended last; the power fails `tail_steps` rounds later.
    pub tail: Option<BatchSpec>,
    pub tail_steps: u8,
    /// Picks what the power loss keeps of the unsynced writes.
    pub crash_seed: u64,
    /// Applied to the disk after the power loss.
    pub mutations: Vec<Mutation>,
}

#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
pub struct BatchSpec {
    pub records: Vec<RecordSpec>,
}

#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
pub struct RecordSpec {
    pub kind: EntryKind,
    pub group: u8,
    pub slot: u8,
    pub length: u16,
    pub fill: u8,
    /// A whole record forged into the payload by a client, for where it will sit.
    pub forge: Option<Forge>,
}

#[derive(Arbitrary, Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryKind {
    Accepted,
    Chosen,
    Truncated,
}

#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
pub struct Forge {
    pub at_units: u8,
    pub group: u8,
    pub slot: u8,
    /// Its batch offset says a later batch (else the enclosing record's batch).
    pub later_batch: bool,
}

/// A place on the disk after the power loss.
#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
pub enum Spot {
    /// Segment index (modulo the segment count), offset modulo its length.
    Absolute { segment: u8, offset: u32 },
    /// The `record`-th valid record found after the power loss (modulo their count),
    /// `delta` bytes in (modulo its size plus a header).
    Record { record: u16, delta: u16 },
}

#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
pub enum Mutation {
    FlipBit {
        spot: Spot,
        bit: u8,
    },
    Zero {
        spot: Spot,
        length: u16,
    },
    Garbage {
        spot: Spot,
        bytes: Bytes,
    },
    /// The 512-byte piece holding the spot is lost (zero) or comes back as garbage.
    TearPiece {
        spot: Spot,
        garbage: bool,
    },
    /// A misdirected write: the piece holding `from` also lands on the piece of `to`.
    CopyPiece {
        from: Spot,
        to: Spot,
    },
    /// The file ends at the spot.
    Truncate {
        spot: Spot,
    },
    /// A record's header gets a field no writer of this build produces, resealed: an
    /// authentic header of a newer format.
    Reseal {
        record: u16,
        field: Field,
        value: u8,
    },
}

#[derive(Arbitrary, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    Version,
    Kind,
    Flags,
    BatchOffset,
    PayloadLength,
}

encode_struct!(Case { segment_sectors, batches, tail, tail_steps, crash_seed, mutations });
encode_struct!(BatchSpec { records });
encode_struct!(RecordSpec { kind, group, slot, length, fill, forge });
encode_struct!(Forge { at_units, group, slot, later_batch });

impl Encode for EntryKind {
    fn encode(&self, out: &mut Vec<u8>) {
        let index = match self {
            EntryKind::Accepted => 0,
            EntryKind::Chosen => 1,
            EntryKind::Truncated => 2,
        };
        encode_variant(index, 3, out);
    }
}

impl Encode for Field {
    fn encode(&self, out: &mut Vec<u8>) {
        let index = match self {
            Field::Version => 0,
            Field::Kind => 1,
            Field::Flags => 2,
            Field::BatchOffset => 3,
            Field::PayloadLength => 4,
        };
        encode_variant(index, 5, out);
    }
}

impl Encode for Spot {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Spot::Absolute { segment, offset } => {
                encode_variant(0, 2, out);
                segment.encode(out);
                offset.encode(out);
            }
            Spot::Record { record, delta } => {
                encode_variant(1, 2, out);
                record.encode(out);
                delta.encode(out);
            }
        }
    }
}

impl Encode for Mutation {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Mutation::FlipBit { spot, bit } => {
                encode_variant(0, 7, out);
                spot.encode(out);
                bit.encode(out);
            }
            Mutation::Zero { spot, length } => {
                encode_variant(1, 7, out);
                spot.encode(out);
                length.encode(out);
            }
            Mutation::Garbage { spot, bytes } => {
                encode_variant(2, 7, out);
                spot.encode(out);
                bytes.encode(out);
            }
            Mutation::TearPiece { spot, garbage } => {
                encode_variant(3, 7, out);
                spot.encode(out);
                garbage.encode(out);
            }
            Mutation::CopyPiece { from, to } => {
                encode_variant(4, 7, out);
                from.encode(out);
                to.encode(out);
            }
            Mutation::Truncate { spot } => {
                encode_variant(5, 7, out);
                spot.encode(out);
            }
            Mutation::Reseal { record, field, value } => {
                encode_variant(6, 7, out);
                record.encode(out);
                field.encode(out);
                value.encode(out);
            }
        }
    }
}

impl Mutation {
    fn name(&self) -> &'static str {
        match self {
            Mutation::FlipBit { .. } => "flip",
            Mutation::Zero { .. } => "zero",
            Mutation::Garbage { .. } => "garbage",
            Mutation::TearPiece { .. } => "tear",
            Mutation::CopyPiece { .. } => "copy",
            Mutation::Truncate { .. } => "truncate",
            Mutation::Reseal { .. } => "reseal",
        }
    }
}

/// One record to append, as planned from the case.
struct Planned {
    kind: RecordKind,
    group: GroupId,
    slot: Slot,
    ballot: Ballot,
    length: usize,
    fill: u8,
    forge: Option<Forge>,
    /// Which batch of the case it belongs to.
    batch: usize,
    /// Part of the tail (appended last, not waited for).
    is_tail: bool,
}

fn plan(case: &Case) -> Vec<Planned> {
    let tail = case.tail.iter().map(|batch| (batch, true));
    let batches = case.batches.iter().take(BATCHES_MAX).map(|batch| (batch, false));
    let mut planned = Vec::new();
    for (batch_index, (batch, is_tail)) in batches.chain(tail).enumerate() {
        for spec in batch.records.iter().take(RECORDS_PER_BATCH_MAX) {
            let index = to_u64(planned.len());
            let kind = match spec.kind {
                EntryKind::Accepted => RecordKind::Accepted,
                EntryKind::Chosen => RecordKind::Chosen,
                EntryKind::Truncated => RecordKind::Truncated,
            };
            let ballot = match spec.kind {
                EntryKind::Truncated => Ballot::ZERO,
                _ => Ballot { round: index + 1, node: 1 },
            };
            let mut length = if spec.length & PAYLOAD_LONG_FLAG == 0 {
                usize::from(spec.length) % (PAYLOAD_SHORT_BYTES_MAX + 1)
            } else {
                usize::from(spec.length & !PAYLOAD_LONG_FLAG) % (PAYLOAD_LONG_BYTES_MAX + 1)
            };
            if let Some(forge) = &spec.forge {
                length = length.max(forge_start(forge) + forged_size());
            }
            planned.push(Planned {
                kind,
                group: GroupId(u32::from(spec.group) % GROUPS),
                slot: Slot(u64::from(spec.slot) % SLOTS),
                ballot,
                length,
                fill: spec.fill,
                forge: spec.forge.clone(),
                batch: batch_index,
                is_tail,
            });
        }
    }
    planned
}

fn forge_start(forge: &Forge) -> usize {
    usize::from(forge.at_units % FORGE_UNITS_MAX) * RECORD_ALIGNMENT_BYTES
}

fn forged_size() -> usize {
    RECORD_HEADER_SIZE_BYTES + FORGED_PAYLOAD_BYTES
}

/// The writer and the simulated disk, driven round by round, with what they reported.
struct Run {
    writer: Writer,
    disk: SimDisk,
    appended: Vec<Appended>,
    acknowledged: Vec<Appended>,
    /// Every segment write submitted: segment, offset, length.
    writes: Vec<(u64, u64, usize)>,
}

impl Run {
    /// One round: submit what the writer asks for, complete what the disk did. Returns
    /// whether anything was submitted.
    fn step(&mut self) -> bool {
        let requests = self.writer.pump();
        let submitted = !requests.is_empty();
        for (op, request) in requests {
            if let Request::Write { file: FileId::Segment(segment), offset, data } = &request {
                self.writes.push((*segment, *offset, data.len()));
            }
            self.disk.submit(op, request);
        }
        let mut completions = Vec::new();
        self.disk.poll(&mut completions);
        for completion in &completions {
            let durable = self.writer.on_completion(completion).expect("no faults injected");
            self.acknowledged.extend(durable);
        }
        submitted
    }

    fn append(&mut self, entry: &Entry<'_>) {
        for _ in 0..STEPS_MAX {
            if let Ok(appended) = self.writer.append(entry) {
                self.appended.push(appended);
                return;
            }
            let _ = self.step(); // Backpressure: let the flush in flight finish.
        }
        panic!("backpressure did not clear in {STEPS_MAX} rounds");
    }

    /// Runs rounds until everything staged is durable and the spare segment exists.
    fn settle(&mut self) {
        for _ in 0..STEPS_MAX {
            let submitted = self.step();
            if !submitted && self.writer.is_idle() && self.disk.in_flight_count() == 0 {
                return;
            }
        }
        panic!("the writer did not settle in {STEPS_MAX} rounds");
    }
}

/// Writes the plan with `payloads`: each batch appended and made durable, then the tail
/// appended and driven `tail_steps` rounds.
fn write(case: &Case, options: WriterOptions, planned: &[Planned], payloads: &[Vec<u8>]) -> Run {
    let disk = SimDisk::new(0, SimDiskOptions::default());
    let writer = Writer::new(options);
    let mut run =
        Run { writer, disk, appended: Vec::new(), acknowledged: Vec::new(), writes: Vec::new() };
    for (index, (record, payload)) in planned.iter().zip(payloads).enumerate() {
        let entry = Entry {
            kind: record.kind,
            group: record.group,
            slot: record.slot,
            ballot: record.ballot,
            payload,
        };
        run.append(&entry);
        let next_batch = planned.get(index + 1).map(|next| next.batch);
        if !record.is_tail && next_batch != Some(record.batch) {
            run.settle();
        }
    }
    if !planned.last().is_some_and(|record| record.is_tail) {
        run.settle(); // Creates the first segment even when nothing is appended.
    }
    for _ in 0..case.tail_steps % TAIL_STEPS_MAX {
        let _ = run.step();
    }
    run
}

/// The payload of a planned record; with `enclosing` (where it lands, and its batch
/// offset), the forged record it asks for is written into it.
fn payload_of(record: &Planned, enclosing: Option<(Position, u64)>) -> (Vec<u8>, Option<Position>) {
    let mut payload = vec![record.fill; record.length];
    let (Some(forge), Some((position, batch_offset))) = (&record.forge, enclosing) else {
        return (payload, None);
    };
    let at = forge_start(forge);
    let offset = position.offset + to_u64(RECORD_HEADER_SIZE_BYTES + at);
    let forged_payload = [0x5a; FORGED_PAYLOAD_BYTES];
    let mut header = RecordHeader::new(
        RecordKind::Accepted,
        GroupId(u32::from(forge.group) % GROUPS),
        Slot(u64::from(forge.slot) % SLOTS),
        FORGED_BALLOT,
        position.segment,
        offset,
        &forged_payload,
    );
    header.batch_offset = if forge.later_batch { offset } else { batch_offset };
    let mut forged = Vec::new();
    append_record(&header, &forged_payload, &mut forged);
    payload[at..at + forged.len()].copy_from_slice(&forged);
    (payload, Some(Position { segment: position.segment, offset }))
}

/// A valid record found on the disk.
#[derive(Clone, Copy, Debug)]
struct Found {
    segment: u64,
    offset: usize,
    size: usize,
    batch_offset: u64,
    is_batch_end: bool,
}

/// Every valid record of the images, in log order, read the way a scanner reads them
/// (record after record; past an invalid one, at the next valid header).
fn valid_records(images: &[(u64, Vec<u8>)]) -> Vec<Found> {
    let mut records = Vec::new();
    for (segment, bytes) in images {
        let mut position = 0;
        while position < bytes.len() {
            if let Ok((header, _)) = decode_record(&bytes[position..], *segment, to_u64(position)) {
                let size = header.record_size_bytes();
                records.push(Found {
                    segment: *segment,
                    offset: position,
                    size,
                    batch_offset: header.batch_offset,
                    is_batch_end: header.kind == RecordKind::Padding,
                });
                position += size;
            } else {
                let from = position + RECORD_ALIGNMENT_BYTES;
                match find_next_valid_record(bytes, from, *segment) {
                    Some(next) => position = next,
                    None => break,
                }
            }
        }
    }
    records
}

fn image(images: &[(u64, Vec<u8>)], segment: u64) -> Option<&[u8]> {
    images.iter().find(|(number, _)| *number == segment).map(|(_, bytes)| bytes.as_slice())
}

fn offset_of(position: Position) -> usize {
    usize::try_from(position.offset).expect("offsets fit usize")
}

/// An acknowledged record and the extent of its batch.
struct AcknowledgedBatch {
    record: Appended,
    segment: u64,
    start: u64,
    end: u64,
}

/// A case written, crashed and ready to be mutated.
struct World {
    /// Every record appended, in order.
    appended: Vec<Appended>,
    /// The records reported durable, with their batches.
    acknowledged: Vec<AcknowledgedBatch>,
    /// Forged records: where each sits -> the record whose payload holds it.
    forged: BTreeMap<Position, Position>,
    /// The write the power loss caught before its sync: segment, offset, length.
    pending_write: Option<(u64, u64, usize)>,
    /// Where the part of the log that was never synced begins: the pending write, else
    /// the end of the last durable batch.
    zone_start: Position,
    /// Segment images after the power loss, and their valid records.
    images: Vec<(u64, Vec<u8>)>,
    records: Vec<Found>,
}

fn build(case: &Case) -> World {
    let sectors = SEGMENT_SECTORS_MIN + u64::from(case.segment_sectors) % SEGMENT_SECTORS_SPAN;
    let segment_size_bytes = sectors * to_u64(DISK_SECTOR_SIZE_BYTES);
    let staged_bytes_max = usize::try_from(segment_size_bytes).expect("small segments");
    let options = WriterOptions { segment_size_bytes, staged_bytes_max };
    let planned = plan(case);
    let mut payloads: Vec<Vec<u8>> =
        planned.iter().map(|record| payload_of(record, None).0).collect();
    let mut forged = BTreeMap::new();
    if planned.iter().any(|record| record.forge.is_some()) {
        // A dry run with the same sizes says where each record lands and in which batch;
        // the real run then carries records forged for exactly those places.
        let mut dry = write(case, options, &planned, &payloads);
        dry.settle();
        let images = dry.disk.segment_images();
        for ((record, appended), payload) in planned.iter().zip(&dry.appended).zip(&mut payloads) {
            if record.forge.is_none() {
                continue;
            }
            let position = appended.position;
            let batch_offset = image(&images, position.segment)
                .and_then(|bytes| decode_header(&bytes[offset_of(position)..]).ok())
                .map_or(position.offset, |header| header.batch_offset);
            let (bytes, forged_at) = payload_of(record, Some((position, batch_offset)));
            *payload = bytes;
            forged.insert(forged_at.expect("a forge was asked for"), position);
        }
    }
    let run = write(case, options, &planned, &payloads);
    let pending_write =
        run.writes.last().copied().filter(|_| to_u64(run.writes.len()) > run.writer.stats.flushes);
    let zone_start = match (pending_write, run.writes.last()) {
        (Some((segment, offset, _)), _) => Position { segment, offset },
        (None, Some((segment, offset, length))) => {
            Position { segment: *segment, offset: offset + to_u64(*length) }
        }
        (None, None) => Position { segment: 0, offset: 0 },
    };
    let images = run.disk.crash(case.crash_seed).segment_images();
    let records = valid_records(&images);
    let acknowledged = run
        .acknowledged
        .iter()
        .map(|record| {
            let bytes = image(&images, record.position.segment).expect("durable segment");
            let header = decode_header(&bytes[offset_of(record.position)..])
                .expect("durable records survive a power loss");
            let end = records
                .iter()
                .find(|found| {
                    found.segment == record.position.segment
                        && found.is_batch_end
                        && found.batch_offset == header.batch_offset
                })
                .map(|found| to_u64(found.offset + found.size))
                .expect("a durable batch has its end");
            AcknowledgedBatch {
                record: *record,
                segment: record.position.segment,
                start: header.batch_offset,
                end,
            }
        })
        .collect();
    World {
        appended: run.appended,
        acknowledged,
        forged,
        pending_write,
        zone_start,
        images,
        records,
    }
}

/// What the mutations did: byte ranges touched (segment, start, end), mutation names.
#[derive(Default)]
struct Damage {
    touched: Vec<(u64, usize, usize)>,
    names: Vec<&'static str>,
    resealed: bool,
}

impl Damage {
    fn touch(
        &mut self,
        images: &[(u64, Vec<u8>)],
        index: usize,
        start: usize,
        end: usize,
        name: &'static str,
    ) {
        if start < end {
            self.touched.push((images[index].0, start, end));
            self.names.push(name);
        }
    }
}

/// The image index and offset a spot names, if it names a byte.
fn locate(spot: &Spot, images: &[(u64, Vec<u8>)], records: &[Found]) -> Option<(usize, usize)> {
    match spot {
        Spot::Absolute { segment, offset } => {
            let index = usize::from(*segment).checked_rem(images.len())?;
            let length = images[index].1.len();
            Some((index, widen(*offset).checked_rem(length)?))
        }
        Spot::Record { record, delta } => {
            let found = records.get(usize::from(*record).checked_rem(records.len())?)?;
            let index = images.iter().position(|(number, _)| *number == found.segment)?;
            let at = found.offset + usize::from(*delta) % (found.size + RECORD_HEADER_SIZE_BYTES);
            (at < images[index].1.len()).then_some((index, at))
        }
    }
}

/// The 512-byte piece holding `at`, cut to the image.
fn piece(bytes: &[u8], at: usize) -> (usize, usize) {
    let start = at / DISK_TEAR_SIZE_BYTES * DISK_TEAR_SIZE_BYTES;
    (start, (start + DISK_TEAR_SIZE_BYTES).min(bytes.len()))
}

fn apply(
    mutation: &Mutation,
    images: &mut [(u64, Vec<u8>)],
    records: &[Found],
    damage: &mut Damage,
) {
    let name = mutation.name();
    match mutation {
        Mutation::FlipBit { spot, bit } => {
            let Some((index, at)) = locate(spot, images, records) else { return };
            images[index].1[at] ^= 1 << (bit % 8);
            damage.touch(images, index, at, at + 1, name);
        }
        Mutation::Zero { spot, length } => {
            let Some((index, at)) = locate(spot, images, records) else { return };
            let bytes = &mut images[index].1;
            let end = (at + usize::from(*length) % (ZERO_BYTES_MAX + 1)).min(bytes.len());
            bytes[at..end].fill(0);
            damage.touch(images, index, at, end, name);
        }
        Mutation::Garbage { spot, bytes: garbage } => {
            let Some((index, at)) = locate(spot, images, records) else { return };
            let bytes = &mut images[index].1;
            let end = (at + garbage.0.len()).min(bytes.len());
            bytes[at..end].copy_from_slice(&garbage.0[..end - at]);
            damage.touch(images, index, at, end, name);
        }
        Mutation::TearPiece { spot, garbage } => {
            let Some((index, at)) = locate(spot, images, records) else { return };
            let bytes = &mut images[index].1;
            let (start, end) = piece(bytes, at);
            for byte in &mut bytes[start..end] {
                *byte = if *garbage { *byte ^ 0xa5 } else { 0 };
            }
            damage.touch(images, index, start, end, name);
        }
        Mutation::CopyPiece { from, to } => {
            let Some((source, source_at)) = locate(from, images, records) else { return };
            let Some((target, target_at)) = locate(to, images, records) else { return };
            let (source_start, source_end) = piece(&images[source].1, source_at);
            let (target_start, target_end) = piece(&images[target].1, target_at);
            let length = (source_end - source_start).min(target_end - target_start);
            let copy = images[source].1[source_start..source_start + length].to_vec();
            images[target].1[target_start..target_start + length].copy_from_slice(&copy);
            damage.touch(images, target, target_start, target_start + length, name);
        }
        Mutation::Truncate { spot } => {
            let Some((index, at)) = locate(spot, images, records) else { return };
            let length = images[index].1.len();
            images[index].1.truncate(at);
            damage.touch(images, index, at, length, name);
        }
        Mutation::Reseal { record, field, value } => {
            let Some(found) =
                usize::from(*record).checked_rem(records.len()).map(|index| records[index])
            else {
                return;
            };
            let Some(index) = images.iter().position(|(number, _)| *number == found.segment) else {
                return;
            };
            let Some(header) =
                images[index].1.get_mut(found.offset..found.offset + RECORD_HEADER_SIZE_BYTES)
            else {
                return;
            };
            reseal(header, *field, *value);
            damage.resealed = true;
            damage.touch(
                images,
                index,
                found.offset,
                found.offset + RECORD_HEADER_SIZE_BYTES,
                name,
            );
        }
    }
}

/// Gives `header` a field value no writer of this build produces, and a good checksum.
fn reseal(header: &mut [u8], field: Field, value: u8) {
    match field {
        Field::Version => header[4..6].copy_from_slice(&(2 + u16::from(value)).to_le_bytes()),
        Field::Kind => header[6] = if value <= 4 { 0 } else { value },
        Field::Flags => header[7] = value | 1,
        Field::BatchOffset => {
            let after = le_u32(header, 48).saturating_add(16);
            header[52..56].copy_from_slice(&after.to_le_bytes());
        }
        Field::PayloadLength => {
            let length = u32::try_from(LOG_RECORD_PAYLOAD_BYTES_MAX).expect("fits u32")
                + 1
                + u32::from(value);
            header[12..16].copy_from_slice(&length.to_le_bytes());
        }
    }
    let checksum = crc32c::crc32c(&header[..60]);
    header[60..64].copy_from_slice(&checksum.to_le_bytes());
}

/// Whether no segment holds a valid (or authentic unreadable) header.
fn is_without_data(images: &[(u64, Vec<u8>)]) -> bool {
    images.iter().all(|(number, bytes)| find_next_valid_record(bytes, 0, *number).is_none())
}

/// The index and truncation markers that applying `records` in order gives.
fn model<'a>(records: impl Iterator<Item = &'a Appended>) -> (Index, Vec<Truncation>) {
    let mut index = Index::new();
    let mut truncations = Vec::new();
    for record in records {
        let location = Location {
            position: record.position,
            size_bytes: record.size_bytes,
            ballot: record.ballot,
            is_chosen: record.kind == RecordKind::Chosen,
        };
        match record.kind {
            RecordKind::Accepted | RecordKind::Chosen => {
                index.insert(record.group, record.slot, location);
            }
            RecordKind::Truncated => {
                index.truncate_prefix(record.group, record.slot);
                truncations.push(Truncation { group: record.group, before: record.slot });
            }
            RecordKind::Padding => {}
        }
    }
    (index, truncations)
}

fn entries(index: &Index) -> Vec<(u32, Slot, Location)> {
    (0..GROUPS)
        .flat_map(|group| {
            index.range(GroupId(group), ..).map(move |(slot, location)| (group, slot, *location))
        })
        .collect()
}

fn check_fatal(
    images: &[(u64, Vec<u8>)],
    damage: &Damage,
    error: &klein::log::recovery::RecoveryError,
) -> Checked {
    ensure(damage.resealed, Property::FatalOnlyOnUnreadableHeaders, || {
        format!("recovery stopped, but no authentic unreadable header was written: {error}")
    })?;
    let bytes = image(images, error.segment).unwrap_or_default();
    let at = usize::try_from(error.offset).unwrap_or(usize::MAX);
    let found = bytes.get(at..).map(reference_header).map(Result::err);
    let named = match error.reason {
        RecordError::Header(header) if !header.is_truncatable_at_tail() => {
            Some(Class::of_header_error(header))
        }
        _ => None,
    };
    ensure(named.is_some() && found == Some(named), Property::FatalOnlyOnUnreadableHeaders, || {
        format!("{error}, but the rules find {found:?} there")
    })
}

/// Every indexed record is valid where the index says, says what the index says, and was
/// written there by the writer (or is a forgery the rules cannot tell apart).
fn check_index(world: &World, images: &[(u64, Vec<u8>)], recovered: &Recovered) -> Checked {
    recovered.index.check_invariants();
    for (group, slot, location) in entries(&recovered.index) {
        let position = location.position;
        let bytes = image(images, position.segment).unwrap_or_default();
        let decoded = bytes
            .get(offset_of(position)..)
            .map(|window| decode_record(window, position.segment, position.offset));
        let matches = decoded.is_some_and(|decoded| {
            decoded.is_ok_and(|(header, _)| {
                header.group == GroupId(group)
                    && header.slot == slot
                    && header.ballot == location.ballot
                    && (header.kind == RecordKind::Chosen) == location.is_chosen
                    && header.kind != RecordKind::Truncated
                    && header.kind != RecordKind::Padding
                    && to_u64(header.record_size_bytes()) == u64::from(location.size_bytes)
            })
        });
        ensure(matches, Property::IndexedRecordsAreValid, || {
            format!("group {group} {slot:?} -> {location:?}: {decoded:?}")
        })?;
        let written = world.appended.iter().any(|record| {
            record.position == position
                && record.group == GroupId(group)
                && record.slot == slot
                && record.ballot == location.ballot
        });
        if written {
            continue;
        }
        let Some(enclosing) = world.forged.get(&position) else {
            return ensure(false, Property::RecordsComeFromTheWriter, || {
                format!("group {group} {slot:?} -> {location:?} was never written")
            });
        };
        // The rules start the search for a following record past a damaged record whose
        // header decodes, so a forgery inside it is never read; with its header damaged
        // too, they cannot tell the forgery from a record.
        let enclosing_header = image(images, enclosing.segment)
            .and_then(|bytes| bytes.get(offset_of(*enclosing)..))
            .and_then(|window| decode_header(window).ok());
        let is_decodable = enclosing_header.is_some_and(|header| {
            header.segment == enclosing.segment && header.offset == enclosing.offset
        });
        ensure(!is_decodable, Property::ForgedRecordsAreNotRead, || {
            format!("forged {location:?} read from inside the record at {enclosing:?}")
        })?;
    }
    for truncation in &recovered.truncations {
        let written = world.appended.iter().any(|record| {
            record.kind == RecordKind::Truncated
                && record.group == truncation.group
                && record.slot == truncation.before
        });
        ensure(written, Property::RecordsComeFromTheWriter, || {
            format!("{truncation:?} was never written")
        })?;
    }
    Ok(())
}

/// No wipe covers an authentic header this build cannot read.
fn check_unreadable_kept(images: &[(u64, Vec<u8>)], recovered: &Recovered) -> Checked {
    for wipe in &recovered.wipes {
        let bytes = image(images, wipe.segment).unwrap_or_default();
        let start = usize::try_from(wipe.offset).expect("offsets fit usize");
        let end = (start + wipe.length).min(bytes.len());
        // Bytes inside the extent of a record whose header decodes and is placed are payload,
        // not headers (the framing contract: the search for a record resumes past it), so an
        // unreadable "header" there is a forgery and may be cut with the torn tail.
        let mut position = start;
        while position < end {
            ensure(
                !is_unreadable_header_at(bytes, position),
                Property::UnreadableHeadersAreNeverTruncated,
                || format!("{wipe:?} wipes the authentic header at {position}"),
            )?;
            let placed = bytes.get(position..).and_then(|window| decode_header(window).ok());
            let skip = placed
                .filter(|header| {
                    header.segment == wipe.segment && header.offset == to_u64(position)
                })
                .map_or(RECORD_ALIGNMENT_BYTES, |header| header.record_size_bytes());
            position += skip;
        }
    }
    Ok(())
}

/// Writing resumes on a sector past every recovered record; the torn tail and the wipes
/// lie past it; corruption names suspects.
fn check_resume(images: &[(u64, Vec<u8>)], recovered: &Recovered) -> Checked {
    let resume = Position { segment: recovered.resume_segment, offset: recovered.resume_offset };
    let sector = to_u64(DISK_SECTOR_SIZE_BYTES);
    let newest = images.iter().map(|(number, _)| *number).max().unwrap_or(0);
    let resume_exists = images.is_empty() || image(images, resume.segment).is_some();
    ensure(
        resume_exists && resume.offset.is_multiple_of(sector) && recovered.newest_segment == newest,
        Property::ResumeFollowsTheRules,
        || format!("resume at {resume:?}, newest {} of {newest}", recovered.newest_segment),
    )?;
    for (_, _, location) in entries(&recovered.index) {
        let end = location.position.offset + u64::from(location.size_bytes);
        let segment = location.position.segment;
        ensure(
            segment < resume.segment || (segment == resume.segment && end <= resume.offset),
            Property::RecoveredRecordsAreNotOverwritten,
            || format!("resume at {resume:?} overwrites {location:?}"),
        )?;
    }
    if let Some(torn) = &recovered.torn_tail {
        let at = Position { segment: torn.segment, offset: torn.offset };
        ensure(
            torn.segment == resume.segment && at >= resume,
            Property::ResumeFollowsTheRules,
            || format!("torn tail {torn:?} before the resume point {resume:?}"),
        )?;
    }
    for wipe in &recovered.wipes {
        let at = Position { segment: wipe.segment, offset: wipe.offset };
        ensure(
            at >= resume
                && wipe.offset.is_multiple_of(sector)
                && to_u64(wipe.length).is_multiple_of(sector),
            Property::ResumeFollowsTheRules,
            || format!("{wipe:?} with the resume point at {resume:?}"),
        )?;
    }
    let has_suspects = recovered.every_group_suspect || !recovered.suspect_groups.is_empty();
    ensure(recovered.corruption.is_empty() || has_suspects, Property::ResumeFollowsTheRules, || {
        format!("corruption {:?} without suspect groups", recovered.corruption)
    })
}

/// After the wipes, every byte past the resume point is zero.
fn check_leftovers(images: &[(u64, Vec<u8>)], recovered: &Recovered) -> Checked {
    let mut wiped = images.to_vec();
    for wipe in &recovered.wipes {
        let Some((_, bytes)) = wiped.iter_mut().find(|(number, _)| *number == wipe.segment) else {
            continue;
        };
        let start = usize::try_from(wipe.offset).expect("offsets fit usize").min(bytes.len());
        let end = (start + wipe.length).min(bytes.len());
        bytes[start..end].fill(0);
    }
    let property = if is_without_data(images) {
        Property::EmptyLogIsRecoveredAsEmpty
    } else {
        Property::LeftoversAreWiped
    };
    for (number, bytes) in &wiped {
        let start = match number.cmp(&recovered.resume_segment) {
            std::cmp::Ordering::Less => continue,
            std::cmp::Ordering::Equal => usize::try_from(recovered.resume_offset).expect("fits"),
            std::cmp::Ordering::Greater => 0,
        };
        let leftover = bytes.iter().skip(start).position(|byte| *byte != 0);
        ensure(leftover.is_none(), property, || {
            format!("segment {number}: a nonzero byte {leftover:?} bytes past {start} stays")
        })?;
    }
    Ok(())
}

/// Damage confined to the never-synced zone is a power loss: no corruption; and with no
/// damage at all, the index is exactly the acknowledged records, plus the unsynced batch
/// whole or not at all.
fn check_power_loss(
    world: &World,
    images: &[(u64, Vec<u8>)],
    damage: &Damage,
    recovered: &Recovered,
) -> Result<bool, Violation> {
    let forge_in_zone = world.forged.values().any(|enclosing| *enclosing >= world.zone_start);
    let in_zone = damage.touched.iter().all(|(segment, start, _)| {
        Position { segment: *segment, offset: to_u64(*start) } >= world.zone_start
    });
    let is_power_loss = in_zone && !damage.resealed && !forge_in_zone;
    if !is_power_loss {
        return Ok(false);
    }
    let property = if is_without_data(images) {
        Property::EmptyLogIsRecoveredAsEmpty
    } else {
        Property::PowerLossIsNotCorruption
    };
    ensure(recovered.corruption.is_empty(), property, || {
        format!("corruption after a power loss: {:?}", recovered.corruption)
    })?;
    if images != world.images {
        return Ok(true);
    }
    let durable = world.acknowledged.iter().map(|batch| &batch.record);
    let (index, truncations) = model(durable.clone());
    let got = (entries(&recovered.index), recovered.truncations.clone());
    if got == (entries(&index), truncations) {
        return Ok(true);
    }
    let unsynced = world.appended.iter().filter(|record| {
        world.pending_write.is_some_and(|(segment, offset, length)| {
            record.position.segment == segment
                && record.position.offset >= offset
                && record.position.offset < offset + to_u64(length)
        })
    });
    let (index, truncations) = model(durable.chain(unsynced));
    ensure(
        got == (entries(&index), truncations),
        Property::PowerLossRecoversExactlyTheDurableBatches,
        || format!("recovered {got:?}"),
    )?;
    Ok(true)
}

/// Every acknowledged batch that no mutation touched is recovered, and losing a record
/// that an intact later batch of its segment vouches for is reported as corruption.
fn check_acknowledged(world: &World, damage: &Damage, recovered: &Recovered) -> Checked {
    let is_untouched = |batch: &AcknowledgedBatch| {
        !damage.touched.iter().any(|(segment, start, end)| {
            *segment == batch.segment && to_u64(*start) < batch.end && batch.start < to_u64(*end)
        })
    };
    let is_recovered = |record: &Appended| {
        let marker = Truncation { group: record.group, before: record.slot };
        if record.kind == RecordKind::Truncated {
            return recovered.truncations.contains(&marker);
        }
        let kept = recovered
            .index
            .get(record.group, record.slot)
            .is_some_and(|location| location.position >= record.position);
        kept || recovered
            .truncations
            .iter()
            .any(|truncation| truncation.group == record.group && truncation.before > record.slot)
    };
    for batch in &world.acknowledged {
        if is_recovered(&batch.record) {
            continue;
        }
        ensure(!is_untouched(batch), Property::UntouchedBatchesAreRecovered, || {
            format!("lost {:?} of the untouched batch at {}", batch.record, batch.start)
        })?;
        let vouched = world.acknowledged.iter().any(|later| {
            later.segment == batch.segment && later.start >= batch.end && is_untouched(later)
        });
        ensure(
            !vouched || !recovered.corruption.is_empty(),
            Property::LostRecordsAreReported,
            || format!("lost {:?} before an intact batch, no corruption reported", batch.record),
        )?;
    }
    Ok(())
}

/// Target 2. See the file's documentation.
pub fn target(data: &[u8]) -> Outcome {
    let Ok(case) = Case::arbitrary(&mut Unstructured::new(data)) else {
        return Ok("unreadable input".to_string());
    };
    let world = build(&case);
    let mut images = world.images.clone();
    let mut damage = Damage::default();
    for mutation in case.mutations.iter().take(MUTATIONS_MAX) {
        apply(mutation, &mut images, &world.records, &mut damage);
    }
    let first = damage.names.first().copied().unwrap_or("none");
    let mut borrowed: Vec<(u64, &[u8])> =
        images.iter().map(|(number, bytes)| (*number, bytes.as_slice())).collect();
    let recovered = match recover(&mut borrowed) {
        Ok(recovered) => recovered,
        Err(error) => {
            check_fatal(&images, &damage, &error)?;
            let class = Class::of_record_error(error.reason);
            return Ok(format!("fatal {class:?}|first={first}"));
        }
    };
    // The first violation ends the checks, so their order matters: a known bug's check
    // comes before those its consequences would trip (a wiped unreadable header loses the
    // batches after it), and after those it cannot explain (a plain power loss has no
    // corruption, so the resume point of records applied at one is not its business).
    check_index(&world, &images, &recovered)?;
    check_unreadable_kept(&images, &recovered)?;
    let is_power_loss = check_power_loss(&world, &images, &damage, &recovered)?;
    check_acknowledged(&world, &damage, &recovered)?;
    check_resume(&images, &recovered)?;
    check_leftovers(&images, &recovered)?;
    let torn = recovered.torn_tail.as_ref().map(|torn| Class::of_record_error(torn.reason));
    let corrupt = !recovered.corruption.is_empty();
    Ok(format!("ok corrupt={corrupt} torn={torn:?} power-loss={is_power_loss}|first={first}"))
}
