//! The on-disk record format of the log, and the framing contract every reader and writer of a
//! segment follows. Pure: no I/O, no clock, no Paxos rules; `docs/design/log-format.md` mirrors
//! this contract with byte diagrams.
//!
//! # What a record is
//!
//! One segmented log per core holds the records of every Paxos group of that core. A segment
//! is a sequence of records laid end to end; each record starts at an offset within its
//! segment that is a multiple of [`RECORD_ALIGNMENT_BYTES`]:
//!
//! ```text
//!   offset                offset + 64                       offset + record_size_bytes
//!   |  header (64 bytes)  |  payload (payload_length bytes)  |  zero padding (0..=15)  |
//!   16-aligned            16-aligned (rkyv reads it in place)  total is a multiple of 16
//! ```
//!
//! The header is fixed-width little-endian (offsets in bytes):
//!
//! ```text
//!   0  magic             u32   "KLRC" (RECORD_MAGIC)
//!   4  version           u16   RECORD_FORMAT_VERSION
//!   6  kind              u8    RecordKind; any other value is corruption
//!   7  flags             u8    0 (no flags are defined yet)
//!   8  group             u32   GroupId
//!  12  payload_length    u32   bytes of payload, at most LOG_RECORD_PAYLOAD_BYTES_MAX
//!  16  slot              u64   Slot
//!  24  ballot_round      u64   Ballot::round
//!  32  ballot_node       u64   Ballot::node
//!  40  segment           u64   id of the segment the record was written to
//!  48  offset            u32   byte offset of the record within that segment
//!  52  batch_offset      u32   offset of the first record of this record's write batch
//!  56  payload_checksum  u32   CRC32C of the payload bytes
//!  60  header_checksum   u32   CRC32C of header bytes 0..60
//! ```
//!
//! The offset field is 32 bits wide, so a segment holds at most
//! [`LOG_SEGMENT_SIZE_BYTES_MAX`] bytes. The magic, the version's position and the header
//! checksum (CRC32C of bytes 0..60, stored at 60..64) are the same in every format version,
//! which is why the checksum is verified before the version is looked at.
//!
//! # What the checksums cover
//!
//! - `header_checksum` covers every other header byte, including `payload_length` and
//!   `payload_checksum`. A reader therefore trusts the length before it reads or allocates
//!   anything by it, and a header can be judged without its payload.
//! - `payload_checksum` covers exactly `payload_length` bytes after the header, not the
//!   padding. The padding must be zero and is compared byte by byte.
//!
//! The payload is bound to its header because its checksum sits inside the checksummed header.
//! The writer computes both checksums before the bytes leave ([`RecordHeader::new`]) and
//! verifies its own encoding before returning ([`RecordHeader::encode_into`]); the reader
//! verifies both after every read ([`decode_record`]) and uses no byte before that.
//!
//! # Placement
//!
//! The `segment` and `offset` fields say where the writer put the record. A record that reads
//! back anywhere else is a misdirected write (the device wrote it to the wrong place) or stale
//! (an earlier use of recycled space), and is treated like any other invalid record. This only
//! works if segment ids are never reused: a recycled file gets a new id.
//!
//! # Valid, torn, corrupt
//!
//! The record at (`segment`, `offset`) is **valid** when its header decodes, its placement
//! matches, all its bytes are present, its payload checksum matches and its padding is zero.
//! Anything else is **invalid**, and an invalid record is one of two things:
//!
//! - a **torn tail**: the end of what was being written when the process or machine stopped
//!   (zeroed space, a short file, a torn header or payload, stale bytes past the end). These
//!   were never acknowledged, because acknowledgement waits for the fsync that makes them
//!   durable;
//! - **corruption**: a record that was durable once and is not any more (bit rot, a lost or
//!   misdirected write).
//!
//! # What recovery does (THE rule)
//!
//! Recovery reads a segment from offset 0, record by record, with [`decode_record`]. At the
//! first invalid record, at `position`:
//!
//! 1. If the error is not [`RecordError::is_truncatable_at_tail`] (an authentic header that
//!    this build cannot read: unsupported version, unknown kind, nonzero flags, a batch offset
//!    after the record, a length over the maximum), no crash produces it: it was written by
//!    newer software or by a bug. Recovery stops with a fatal error and never truncates.
//! 2. Otherwise it searches for a valid record after it with [`find_next_valid_record`],
//!    starting past the invalid record's extent when its header decoded (so a header forged
//!    inside its payload is not found), else at `position + RECORD_ALIGNMENT_BYTES`.
//!    - **None follows**: the invalid record is the torn tail; recovery truncates the segment
//!      at `position` (zeroed space there is simply the normal end of the log).
//!    - **One follows whose `batch_offset` is at or before `position`**: it was written in the
//!      same batch as the damaged bytes, and sectors of one unsynced batch may persist in any
//!      order, so this is still the torn tail of that batch; the search goes on after it.
//!    - **One follows whose `batch_offset` is after `position`**: it belongs to a later batch,
//!      and the writer starts a batch only once the previous one is durable. So the damaged
//!      record was durable: this is corruption. It is reported and never silently dropped:
//!      every group that may have records in the damaged range goes to the non-voting
//!      `recovering` state (no votes, no promises for the affected slots) and repairs from a
//!      quorum.
//!
//! Known limit: damage inside the *last* durable batch, with no later batch to vouch for it,
//! cannot be told from a torn write and is truncated. Replication covers it (a quorum holds
//! every acknowledged record); `docs/design/log-format.md` discusses it. Except for one
//! kind: before cutting, recovery looks for a misdirected copy of a record placed at or past
//! the tail ([`find_misplaced_batch_at`]); finding one makes the tail corruption.
//!
//! # Obligations on the writer
//!
//! - Leave no gap between records: zeros followed by a valid record read as a lost write. Space
//!   skipped at the end of a block or segment is covered by a [`RecordKind::Padding`] record,
//!   which is at least [`RECORD_HEADER_SIZE_BYTES`] long, so a gap of 16, 32 or 48 bytes must
//!   be avoided by padding further.
//! - Never reuse a segment id; write each record at the offset its header names.
//! - Start a batch (a group-commit write) only after the previous batch of the segment is
//!   durable, and name the batch's first offset in every record of it (`batch_offset`).
//! - Acknowledge nothing before the fsync that covers it (see `log/mod.rs`).

#![deny(clippy::unwrap_used)]
#![deny(clippy::indexing_slicing)]

use super::disk::DISK_SECTOR_SIZE_BYTES;
use crate::constants::{LOG_RECORD_PAYLOAD_BYTES_MAX, LOG_SEGMENT_SIZE_BYTES_MAX};
use crate::types::{Ballot, GroupId, Slot};

/// Size of a record header, in bytes. A multiple of [`RECORD_ALIGNMENT_BYTES`], so a record
/// that starts aligned has an aligned payload.
pub const RECORD_HEADER_SIZE_BYTES: usize = 64;

/// Alignment of every record's start and of every record's size, in bytes: rkyv archives in
/// the payload are read in place and need 16-byte alignment.
pub const RECORD_ALIGNMENT_BYTES: usize = 16;

/// The first four header bytes of every record: `KLRC` ("Klein record") in a hex dump.
pub const RECORD_MAGIC: u32 = u32::from_le_bytes(*b"KLRC");

/// The record format version this build writes and the only one it reads.
pub const RECORD_FORMAT_VERSION: u16 = 1;

/// Size of the largest record (header, largest payload, no padding needed), in bytes.
pub const RECORD_SIZE_BYTES_MAX: usize = record_size_bytes(LOG_RECORD_PAYLOAD_BYTES_MAX);

/// Where each header field starts, in bytes from the start of the header. The layout is
/// pinned by the compile-time asserts below and by a golden test.
mod field_offset {
    pub const MAGIC: usize = 0;
    pub const VERSION: usize = 4;
    pub const KIND: usize = 6;
    pub const FLAGS: usize = 7;
    pub const GROUP: usize = 8;
    pub const PAYLOAD_LENGTH: usize = 12;
    pub const SLOT: usize = 16;
    pub const BALLOT_ROUND: usize = 24;
    pub const BALLOT_NODE: usize = 32;
    pub const SEGMENT: usize = 40;
    pub const OFFSET: usize = 48;
    pub const BATCH_OFFSET: usize = 52;
    pub const PAYLOAD_CHECKSUM: usize = 56;
    pub const HEADER_CHECKSUM: usize = 60;
}

// The fields are contiguous, naturally aligned, in the documented order, and fill the header.
const _: () = assert!(field_offset::MAGIC == 0);
const _: () = assert!(field_offset::VERSION == field_offset::MAGIC + size_of::<u32>());
const _: () = assert!(field_offset::KIND == field_offset::VERSION + size_of::<u16>());
const _: () = assert!(field_offset::FLAGS == field_offset::KIND + size_of::<u8>());
const _: () = assert!(field_offset::GROUP == field_offset::FLAGS + size_of::<u8>());
const _: () = assert!(field_offset::PAYLOAD_LENGTH == field_offset::GROUP + size_of::<u32>());
const _: () = assert!(field_offset::SLOT == field_offset::PAYLOAD_LENGTH + size_of::<u32>());
const _: () = assert!(field_offset::BALLOT_ROUND == field_offset::SLOT + size_of::<u64>());
const _: () = assert!(field_offset::BALLOT_NODE == field_offset::BALLOT_ROUND + size_of::<u64>());
const _: () = assert!(field_offset::SEGMENT == field_offset::BALLOT_NODE + size_of::<u64>());
const _: () = assert!(field_offset::OFFSET == field_offset::SEGMENT + size_of::<u64>());
const _: () = assert!(field_offset::BATCH_OFFSET == field_offset::OFFSET + size_of::<u32>());
const _: () =
    assert!(field_offset::PAYLOAD_CHECKSUM == field_offset::BATCH_OFFSET + size_of::<u32>());
const _: () =
    assert!(field_offset::HEADER_CHECKSUM == field_offset::PAYLOAD_CHECKSUM + size_of::<u32>());
const _: () = assert!(RECORD_HEADER_SIZE_BYTES == field_offset::HEADER_CHECKSUM + size_of::<u32>());
// The header fields hold the types they carry without loss.
const _: () = assert!(size_of::<GroupId>() == size_of::<u32>());
const _: () = assert!(size_of::<Slot>() == size_of::<u64>());
const _: () = assert!(size_of::<Ballot>() == 2 * size_of::<u64>());
// Alignment: a power of two; the header keeps the payload aligned.
const _: () = assert!(RECORD_ALIGNMENT_BYTES.is_power_of_two());
const _: () = assert!(RECORD_HEADER_SIZE_BYTES.is_multiple_of(RECORD_ALIGNMENT_BYTES));
// The largest payload fits the u32 length field and needs no padding.
const _: () = assert!(LOG_RECORD_PAYLOAD_BYTES_MAX <= u32::MAX as usize);
const _: () = assert!(LOG_RECORD_PAYLOAD_BYTES_MAX.is_multiple_of(RECORD_ALIGNMENT_BYTES));
// Every offset within a segment fits the u32 offset field, and the largest record fits.
const _: () = assert!(LOG_SEGMENT_SIZE_BYTES_MAX <= u32::MAX as u64 + 1);
const _: () = assert!(RECORD_SIZE_BYTES_MAX as u64 <= LOG_SEGMENT_SIZE_BYTES_MAX);

/// What a record says. Every value is the on-disk `kind` byte; any other byte is corruption.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum RecordKind {
    /// The acceptor accepted `payload` (the proposed value, an rkyv archive) for (`group`,
    /// `slot`) under `ballot`. Durable before the acceptor answers Accepted.
    Accepted = 1,
    /// The value of (`group`, `slot`) is chosen; `ballot` is the ballot it was accepted under.
    /// The payload is empty when an `Accepted` record of that ballot already holds the value,
    /// or carries the value (for example when it was learned through catch-up).
    Chosen = 2,
    /// Prefix truncation marker for `group`: every slot below `slot` is covered by a snapshot,
    /// and records of `group` for those slots are no longer needed. `ballot` is
    /// [`Ballot::ZERO`]; the payload may describe the snapshot.
    Truncated = 3,
    /// Filler: covers space the writer skips (the rest of a block or segment), so no gap is
    /// left between records. `group`, `slot` and `ballot` are zero and the payload is ignored,
    /// but it is still checksummed like any other.
    Padding = 4,
}

impl RecordKind {
    /// Every kind, in byte order.
    pub const ALL: [RecordKind; 4] =
        [RecordKind::Accepted, RecordKind::Chosen, RecordKind::Truncated, RecordKind::Padding];

    /// The kind a header byte names, or `None` for a byte that names no kind.
    #[must_use]
    pub fn from_byte(byte: u8) -> Option<RecordKind> {
        match byte {
            1 => Some(RecordKind::Accepted),
            2 => Some(RecordKind::Chosen),
            3 => Some(RecordKind::Truncated),
            4 => Some(RecordKind::Padding),
            _ => None,
        }
    }

    /// The header byte of this kind.
    #[must_use]
    pub fn to_byte(self) -> u8 {
        self as u8
    }
}

/// A decoded (or about to be encoded) record header: plain data, one field per header field
/// except the constants (magic, version, flags, reserved) and the header checksum.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RecordHeader {
    /// What the record says.
    pub kind: RecordKind,
    /// The Paxos group the record belongs to.
    pub group: GroupId,
    /// The slot (instance index) within `group`.
    pub slot: Slot,
    /// The ballot the record was written under.
    pub ballot: Ballot,
    /// Id of the segment the record was written to.
    pub segment: u64,
    /// Byte offset of the record's first header byte within `segment`; a multiple of
    /// [`RECORD_ALIGNMENT_BYTES`] below [`LOG_SEGMENT_SIZE_BYTES_MAX`].
    pub offset: u64,
    /// Offset within `segment` of the first record of the write batch (group commit) this
    /// record was written in; at most `offset`. Everything below it in the segment was durable
    /// before this record was written, which is how recovery tells a torn batch from
    /// corruption. [`RecordHeader::new`] sets it to `offset` (a batch of one); the writer sets
    /// it to its batch's start.
    pub batch_offset: u64,
    /// Bytes of payload, at most [`LOG_RECORD_PAYLOAD_BYTES_MAX`].
    pub payload_length: u32,
    /// CRC32C of the payload bytes.
    pub payload_checksum: u32,
}

impl RecordHeader {
    /// The header of a record carrying `payload`, to be written at `offset` in `segment`: sets
    /// the payload length and computes the payload checksum (the write half of the pair; the
    /// other half is [`RecordHeader::encode_into`]'s read-back).
    ///
    /// # Panics
    /// If `payload` is longer than [`LOG_RECORD_PAYLOAD_BYTES_MAX`], if `offset` is not a
    /// multiple of [`RECORD_ALIGNMENT_BYTES`], or if the record would not end within
    /// [`LOG_SEGMENT_SIZE_BYTES_MAX`]: all bugs in the writer.
    #[must_use]
    pub fn new(
        kind: RecordKind,
        group: GroupId,
        slot: Slot,
        ballot: Ballot,
        segment: u64,
        offset: u64,
        payload: &[u8],
    ) -> RecordHeader {
        assert!(payload.len() <= LOG_RECORD_PAYLOAD_BYTES_MAX);
        let payload_length =
            u32::try_from(payload.len()).expect("the payload maximum fits in u32 (const assert)");
        let header = RecordHeader {
            kind,
            group,
            slot,
            ballot,
            segment,
            offset,
            payload_length,
            payload_checksum: crc32c::crc32c(payload),
            batch_offset: offset,
        };
        header.assert_placeable();
        header
    }

    /// Bytes of payload, as a length.
    #[must_use]
    pub fn payload_length_bytes(&self) -> usize {
        // Lossless: usize is at least 32 bits on every target Klein builds for.
        self.payload_length as usize
    }

    /// Size of the whole record this header starts (header, payload and padding), in bytes.
    ///
    /// # Panics
    /// If `payload_length` exceeds [`LOG_RECORD_PAYLOAD_BYTES_MAX`] (never true of a decoded
    /// header).
    #[must_use]
    pub fn record_size_bytes(&self) -> usize {
        record_size_bytes(self.payload_length_bytes())
    }

    /// Writes the record (this header, `payload`, zero padding) into `out`, then decodes what
    /// it wrote and asserts that both checksums verify and every field reads back (the verify
    /// half of the pair checksums: a buffer or copy bug crashes here, not in recovery).
    ///
    /// # Panics
    /// If `out` is not exactly [`RecordHeader::record_size_bytes`] long, if `payload` does not
    /// match the length and checksum this header was made with, or if the header could not be
    /// placed ([`RecordHeader::new`]): all bugs in the writer.
    pub fn encode_into(&self, payload: &[u8], out: &mut [u8]) {
        self.assert_placeable();
        assert_eq!(payload.len(), self.payload_length_bytes());
        assert_eq!(out.len(), self.record_size_bytes());

        let (header_out, body_out) = out.split_at_mut(RECORD_HEADER_SIZE_BYTES);
        header_out.copy_from_slice(&self.header_bytes());
        let (payload_out, padding_out) = body_out.split_at_mut(payload.len());
        payload_out.copy_from_slice(payload);
        padding_out.fill(0);

        let read_back = decode_record(out, self.segment, self.offset);
        assert_eq!(read_back.map(|(header, _)| header), Ok(*self), "record read-back failed");
    }

    /// The header bytes, with the header checksum computed last.
    fn header_bytes(self) -> [u8; RECORD_HEADER_SIZE_BYTES] {
        let offset = u32::try_from(self.offset).expect("offset checked by assert_placeable");
        let mut header = [0; RECORD_HEADER_SIZE_BYTES];
        put(&mut header, field_offset::MAGIC, &RECORD_MAGIC.to_le_bytes());
        put(&mut header, field_offset::VERSION, &RECORD_FORMAT_VERSION.to_le_bytes());
        put(&mut header, field_offset::KIND, &[self.kind.to_byte()]);
        put(&mut header, field_offset::FLAGS, &[0]);
        put(&mut header, field_offset::GROUP, &self.group.0.to_le_bytes());
        put(&mut header, field_offset::PAYLOAD_LENGTH, &self.payload_length.to_le_bytes());
        put(&mut header, field_offset::SLOT, &self.slot.0.to_le_bytes());
        put(&mut header, field_offset::BALLOT_ROUND, &self.ballot.round.to_le_bytes());
        put(&mut header, field_offset::BALLOT_NODE, &self.ballot.node.to_le_bytes());
        put(&mut header, field_offset::SEGMENT, &self.segment.to_le_bytes());
        put(&mut header, field_offset::OFFSET, &offset.to_le_bytes());
        let batch_offset =
            u32::try_from(self.batch_offset).expect("batch offset checked by assert_placeable");
        put(&mut header, field_offset::BATCH_OFFSET, &batch_offset.to_le_bytes());
        put(&mut header, field_offset::PAYLOAD_CHECKSUM, &self.payload_checksum.to_le_bytes());
        let checksum = header_checksum(&header);
        put(&mut header, field_offset::HEADER_CHECKSUM, &checksum.to_le_bytes());
        header
    }

    /// Asserts what the writer guarantees about a header it writes.
    fn assert_placeable(&self) {
        assert!(self.payload_length_bytes() <= LOG_RECORD_PAYLOAD_BYTES_MAX);
        assert!(self.offset.is_multiple_of(RECORD_ALIGNMENT_BYTES as u64));
        assert!(self.batch_offset.is_multiple_of(RECORD_ALIGNMENT_BYTES as u64));
        assert!(self.batch_offset <= self.offset, "a batch starts at or before its records");
        let end = self.offset.checked_add(self.record_size_bytes() as u64);
        assert!(end.is_some_and(|end| end <= LOG_SEGMENT_SIZE_BYTES_MAX));
    }
}

/// Size of a record with `payload_length` bytes of payload: the header plus the payload
/// rounded up to a multiple of [`RECORD_ALIGNMENT_BYTES`], in bytes.
///
/// # Panics
/// If `payload_length` exceeds [`LOG_RECORD_PAYLOAD_BYTES_MAX`].
#[must_use]
pub const fn record_size_bytes(payload_length: usize) -> usize {
    assert!(payload_length <= LOG_RECORD_PAYLOAD_BYTES_MAX);
    RECORD_HEADER_SIZE_BYTES + payload_length.next_multiple_of(RECORD_ALIGNMENT_BYTES)
}

/// Appends the record (`header`, `payload`, zero padding) to `out` and returns its size in
/// bytes. See [`RecordHeader::encode_into`]; `header.offset` is where the record goes in its
/// segment, which need not be `out.len()`.
///
/// # Panics
/// As [`RecordHeader::encode_into`].
pub fn append_record(header: &RecordHeader, payload: &[u8], out: &mut Vec<u8>) -> usize {
    let start = out.len();
    let size = header.record_size_bytes();
    out.resize(start + size, 0);
    header.encode_into(payload, out.split_at_mut(start).1);
    size
}

/// Why 64 bytes are not a header this build can use. Variants are in the order
/// [`decode_header`] checks them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    /// Fewer than [`RECORD_HEADER_SIZE_BYTES`] bytes: a short file or a torn tail.
    #[error("record header needs {} bytes, {available_bytes} present", RECORD_HEADER_SIZE_BYTES)]
    TooShort {
        /// Bytes present.
        available_bytes: usize,
    },
    /// All 64 bytes are zero: unwritten space, the normal end of a log (unless a valid record
    /// follows, which makes it a lost write).
    #[error("record header is all zeros (unwritten space)")]
    Zeroed,
    /// The first four bytes are not [`RECORD_MAGIC`]: not a record start.
    #[error("record magic is {found:#010x}, expected {:#010x}", RECORD_MAGIC)]
    BadMagic {
        /// The four bytes found, as a little-endian integer.
        found: u32,
    },
    /// The header checksum does not match: a torn or damaged header. Nothing in it, the length
    /// least of all, may be used.
    #[error("record header checksum is {stored:#010x}, computed {computed:#010x}")]
    BadChecksum {
        /// The checksum stored in the header.
        stored: u32,
        /// The checksum of the header bytes as read.
        computed: u32,
    },
    /// An authentic header of a format version this build does not read.
    #[error(
        "record format version {version} is not supported (this build reads {})",
        RECORD_FORMAT_VERSION
    )]
    UnsupportedVersion {
        /// The version found.
        version: u16,
    },
    /// An authentic header with a kind byte that names no [`RecordKind`].
    #[error("unknown record kind {kind}")]
    UnknownKind {
        /// The kind byte found.
        kind: u8,
    },
    /// An authentic header with flags set; no flag is defined yet.
    #[error("record flags are {flags:#04x}, expected 0")]
    NonzeroFlags {
        /// The flags byte found.
        flags: u8,
    },
    /// An authentic header whose batch offset lies after the record itself, or is unaligned:
    /// no writer produces that.
    #[error("record at offset {offset} names its batch at {batch_offset}")]
    BadBatchOffset {
        /// The record's offset.
        offset: u64,
        /// The batch offset it names.
        batch_offset: u64,
    },
    /// An authentic header claiming more payload than [`LOG_RECORD_PAYLOAD_BYTES_MAX`].
    #[error(
        "record payload length {payload_length} exceeds the maximum {}",
        LOG_RECORD_PAYLOAD_BYTES_MAX
    )]
    PayloadTooLong {
        /// The length claimed.
        payload_length: u32,
    },
    /// An authentic header placing its record where no writer puts one: an offset off the
    /// 16-byte grid, or an end past [`LOG_SEGMENT_SIZE_BYTES_MAX`].
    #[error("record offset {offset} is unaligned or its record ends past the largest segment")]
    BadOffset {
        /// The offset the header names.
        offset: u64,
    },
}

impl HeaderError {
    /// Whether a crash while writing can produce this error, so that an invalid record
    /// failing this way may be truncated as the torn tail when no valid record follows it.
    ///
    /// False for an authentic header this build cannot read (unsupported version, unknown kind,
    /// nonzero flags, a batch offset after the record, a length over the maximum): a torn write
    /// does not pass the checksum, so such a header was written deliberately, by newer software
    /// or a bug, and truncating it could drop acknowledged records. Recovery stops with a fatal
    /// error instead.
    #[must_use]
    pub fn is_truncatable_at_tail(self) -> bool {
        match self {
            HeaderError::TooShort { .. }
            | HeaderError::Zeroed
            | HeaderError::BadMagic { .. }
            | HeaderError::BadChecksum { .. } => true,
            HeaderError::UnsupportedVersion { .. }
            | HeaderError::UnknownKind { .. }
            | HeaderError::NonzeroFlags { .. }
            | HeaderError::BadBatchOffset { .. }
            | HeaderError::PayloadTooLong { .. }
            | HeaderError::BadOffset { .. } => false,
        }
    }
}

/// A payload that does not match its (authentic) header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    /// The payload given is not as long as the header says.
    #[error("record payload is {actual_bytes} bytes, header says {header_bytes}")]
    LengthMismatch {
        /// The length in the header.
        header_bytes: usize,
        /// The length of the payload given.
        actual_bytes: usize,
    },
    /// The payload checksum does not match: a torn or damaged payload.
    #[error("record payload checksum is {computed:#010x}, header says {stored:#010x}")]
    ChecksumMismatch {
        /// The checksum in the header.
        stored: u32,
        /// The checksum of the payload as read.
        computed: u32,
    },
}

/// An authentic record read somewhere other than where it was written: a misdirected write, or
/// a stale record from an earlier use of the space.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "record written at segment {found_segment} offset {found_offset} read at segment \
     {expected_segment} offset {expected_offset}"
)]
pub struct Misplaced {
    /// The segment the record was read from.
    pub expected_segment: u64,
    /// The offset the record was read from.
    pub expected_offset: u64,
    /// The segment its header names.
    pub found_segment: u64,
    /// The offset its header names.
    pub found_offset: u64,
}

/// Why the bytes at a position are not a valid record. [`RecordError::Incomplete`] (the bytes
/// end inside the record) is kept apart from damage so a scanner can tell short from corrupt.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// The bytes end before the record does: a short file or a torn tail.
    #[error("record needs {needed_bytes} bytes, {available_bytes} present")]
    Incomplete {
        /// Bytes present from the record's start.
        available_bytes: usize,
        /// Bytes the record needs: [`RECORD_HEADER_SIZE_BYTES`] while the header is incomplete
        /// (more may be needed once it is read), else the whole record size.
        needed_bytes: usize,
    },
    /// The header is unusable (never [`HeaderError::TooShort`], which is `Incomplete`).
    #[error(transparent)]
    Header(HeaderError),
    /// The header is authentic but names another position.
    #[error(transparent)]
    Misplaced(Misplaced),
    /// The header is authentic but the payload does not match it.
    #[error(transparent)]
    Payload(PayloadError),
    /// A padding byte after the payload is not zero.
    #[error("record padding is not zero")]
    NonzeroPadding,
}

impl RecordError {
    /// Whether a crash while writing can produce this error: see
    /// [`HeaderError::is_truncatable_at_tail`]. Only an authentic header this build cannot read
    /// is not truncatable; every other invalid record may be the torn tail if no valid record
    /// follows it.
    #[must_use]
    pub fn is_truncatable_at_tail(self) -> bool {
        match self {
            RecordError::Header(error) => error.is_truncatable_at_tail(),
            RecordError::Incomplete { .. }
            | RecordError::Misplaced(_)
            | RecordError::Payload(_)
            | RecordError::NonzeroPadding => true,
        }
    }
}

/// Decodes and checks the header at the start of `bytes` (bytes past the header are ignored).
/// Never panics.
///
/// # Errors
/// In the order checked: [`HeaderError::TooShort`], [`HeaderError::Zeroed`],
/// [`HeaderError::BadMagic`], [`HeaderError::BadChecksum`], [`HeaderError::UnsupportedVersion`],
/// [`HeaderError::UnknownKind`], [`HeaderError::NonzeroFlags`], [`HeaderError::BadBatchOffset`],
/// [`HeaderError::PayloadTooLong`].
pub fn decode_header(bytes: &[u8]) -> Result<RecordHeader, HeaderError> {
    let Some(header) = bytes.first_chunk::<RECORD_HEADER_SIZE_BYTES>() else {
        return Err(HeaderError::TooShort { available_bytes: bytes.len() });
    };
    if header.iter().all(|&byte| byte == 0) {
        return Err(HeaderError::Zeroed);
    }
    let magic = u32::from_le_bytes(take(header, field_offset::MAGIC));
    if magic != RECORD_MAGIC {
        return Err(HeaderError::BadMagic { found: magic });
    }
    // Nothing below the checksum is looked at before it passes: a flipped bit in the length
    // must not decide how much is read.
    let stored = u32::from_le_bytes(take(header, field_offset::HEADER_CHECKSUM));
    let computed = header_checksum(header);
    if stored != computed {
        return Err(HeaderError::BadChecksum { stored, computed });
    }
    let version = u16::from_le_bytes(take(header, field_offset::VERSION));
    if version != RECORD_FORMAT_VERSION {
        return Err(HeaderError::UnsupportedVersion { version });
    }
    let [kind_byte] = take(header, field_offset::KIND);
    let Some(kind) = RecordKind::from_byte(kind_byte) else {
        return Err(HeaderError::UnknownKind { kind: kind_byte });
    };
    let [flags] = take(header, field_offset::FLAGS);
    if flags != 0 {
        return Err(HeaderError::NonzeroFlags { flags });
    }
    let offset = u64::from(u32::from_le_bytes(take(header, field_offset::OFFSET)));
    let batch_offset = u64::from(u32::from_le_bytes(take(header, field_offset::BATCH_OFFSET)));
    if batch_offset > offset || !batch_offset.is_multiple_of(RECORD_ALIGNMENT_BYTES as u64) {
        return Err(HeaderError::BadBatchOffset { offset, batch_offset });
    }
    let payload_length = u32::from_le_bytes(take(header, field_offset::PAYLOAD_LENGTH));
    if payload_length as usize > LOG_RECORD_PAYLOAD_BYTES_MAX {
        return Err(HeaderError::PayloadTooLong { payload_length });
    }
    let end = offset + record_size_bytes(payload_length as usize) as u64;
    if !offset.is_multiple_of(RECORD_ALIGNMENT_BYTES as u64) || end > LOG_SEGMENT_SIZE_BYTES_MAX {
        return Err(HeaderError::BadOffset { offset });
    }
    Ok(RecordHeader {
        kind,
        group: GroupId(u32::from_le_bytes(take(header, field_offset::GROUP))),
        slot: Slot(u64::from_le_bytes(take(header, field_offset::SLOT))),
        ballot: Ballot {
            round: u64::from_le_bytes(take(header, field_offset::BALLOT_ROUND)),
            node: u64::from_le_bytes(take(header, field_offset::BALLOT_NODE)),
        },
        segment: u64::from_le_bytes(take(header, field_offset::SEGMENT)),
        offset,
        batch_offset,
        payload_length,
        payload_checksum: u32::from_le_bytes(take(header, field_offset::PAYLOAD_CHECKSUM)),
    })
}

/// Checks that an authentic header was written where it was read: at `offset` in `segment`.
///
/// # Errors
/// [`Misplaced`] when either differs: a misdirected write or a stale record.
pub fn check_placement(header: &RecordHeader, segment: u64, offset: u64) -> Result<(), Misplaced> {
    if header.segment == segment && header.offset == offset {
        Ok(())
    } else {
        Err(Misplaced {
            expected_segment: segment,
            expected_offset: offset,
            found_segment: header.segment,
            found_offset: header.offset,
        })
    }
}

/// Checks `payload` against the length and checksum in its authentic `header`.
///
/// # Errors
/// [`PayloadError::LengthMismatch`] if the lengths differ (the checksum is then not computed),
/// else [`PayloadError::ChecksumMismatch`] if the checksums differ.
pub fn verify_payload(header: &RecordHeader, payload: &[u8]) -> Result<(), PayloadError> {
    if payload.len() != header.payload_length_bytes() {
        return Err(PayloadError::LengthMismatch {
            header_bytes: header.payload_length_bytes(),
            actual_bytes: payload.len(),
        });
    }
    let computed = crc32c::crc32c(payload);
    if computed != header.payload_checksum {
        return Err(PayloadError::ChecksumMismatch { stored: header.payload_checksum, computed });
    }
    Ok(())
}

/// Decodes the record at the start of `bytes`, which were read from `offset` in `segment`, and
/// returns its header and payload only if the record is valid: header authentic and readable,
/// placement matching, every byte present, payload checksum matching, padding zero. Bytes past
/// the record are ignored. Never panics.
///
/// # Errors
/// [`RecordError::Incomplete`] if `bytes` end inside the record; otherwise the first problem
/// found, in the order header, placement, payload, padding.
pub fn decode_record(
    bytes: &[u8],
    segment: u64,
    offset: u64,
) -> Result<(RecordHeader, &[u8]), RecordError> {
    let header = match decode_header(bytes) {
        Ok(header) => header,
        Err(HeaderError::TooShort { available_bytes }) => {
            return Err(RecordError::Incomplete {
                available_bytes,
                needed_bytes: RECORD_HEADER_SIZE_BYTES,
            });
        }
        Err(error) => return Err(RecordError::Header(error)),
    };
    check_placement(&header, segment, offset).map_err(RecordError::Misplaced)?;
    // The length is trusted now (the header checksum passed and it is within the maximum), so
    // it may decide what is read.
    let record_size = header.record_size_bytes();
    let Some(record) = bytes.get(..record_size) else {
        return Err(RecordError::Incomplete {
            available_bytes: bytes.len(),
            needed_bytes: record_size,
        });
    };
    let (_, body) = record.split_at(RECORD_HEADER_SIZE_BYTES);
    let (payload, padding) = body.split_at(header.payload_length_bytes());
    verify_payload(&header, payload).map_err(RecordError::Payload)?;
    if padding.iter().any(|&byte| byte != 0) {
        return Err(RecordError::NonzeroPadding);
    }
    Ok((header, payload))
}

/// The first position at or after `start` (rounded up to [`RECORD_ALIGNMENT_BYTES`]) where a
/// record of `segment` was written, or `None`. `bytes` is the segment from its first byte, so a
/// position in `bytes` is an offset in the segment. Never panics.
///
/// A position counts when its header decodes and names this segment and this offset: only the
/// header is checked, not the payload, because an authentic, correctly placed header is proof
/// enough that writing went on past an earlier invalid record. A position also counts when it
/// holds an authentic header this build cannot read ([`HeaderError::is_truncatable_at_tail`]
/// is false), because truncating it could drop records of newer software. Recovery uses this
/// to decide whether an invalid record is a torn tail (nothing follows) or corruption.
#[must_use]
pub fn find_next_valid_record(bytes: &[u8], start: usize, segment: u64) -> Option<usize> {
    let mut position = start.checked_next_multiple_of(RECORD_ALIGNMENT_BYTES)?;
    let magic = RECORD_MAGIC.to_le_bytes();
    while let Some(window) = bytes.get(position..) {
        // The magic test first keeps the scan over unwritten space cheap: no checksum is
        // computed unless the first four bytes could start a record.
        if window.starts_with(&magic) {
            let offset = u64::try_from(position).ok()?;
            match decode_header(window) {
                Ok(header) if check_placement(&header, segment, offset).is_ok() => {
                    return Some(position);
                }
                Err(error) if !error.is_truncatable_at_tail() => return Some(position),
                Ok(_) | Err(_) => {}
            }
        }
        position = position.checked_add(RECORD_ALIGNMENT_BYTES)?;
    }
    None
}

/// An authentic header of `segment` found at or after `from` in `bytes` that opens a batch
/// at exactly `tail` (its offset and batch offset are both `tail`) but sits somewhere else: the
/// misdirected copy of the batch that should start where the log seems to end. Its position
/// and header, or `None`. Never panics.
///
/// Recovery asks this before it cuts a torn tail: the writer starts a batch only after the
/// previous one is durable and writes every record where its header says, so such a copy
/// proves the device took the batch at `tail` and put it elsewhere (a misdirected write of the
/// last batch, which nothing after it could vouch for). The copy must be a whole valid record
/// (header and payload checksums) starting a sector, as a misdirected batch write is; the
/// search starts past the valid records (headers inside their payloads are client bytes,
/// never read as records) and asks for the exact tail offset, so client bytes of the torn
/// batch that merely contain a header do not count (the power-loss fuzz target checks it). A
/// copy
/// that landed in another segment's file, or before the tail, is not seen here (before the
/// tail it damaged a valid record, which the scan reports on its own).
#[must_use]
pub fn find_misplaced_batch_at(
    bytes: &[u8],
    from: usize,
    segment: u64,
    tail: u64,
) -> Option<(usize, RecordHeader)> {
    let magic = RECORD_MAGIC.to_le_bytes();
    // A batch starts a sector, and a misdirected write moves whole sectors.
    let mut position = from.checked_next_multiple_of(DISK_SECTOR_SIZE_BYTES)?;
    while let Some(window) = bytes.get(position..) {
        if window.starts_with(&magic)
            && let Ok(header) = decode_header(window)
            && header.segment == segment
            && header.offset == tail
            && header.batch_offset == tail
            && u64::try_from(position).ok() != Some(tail)
            && let Some(record) = window.get(..header.record_size_bytes())
            && let Some(payload) = record.get(
                RECORD_HEADER_SIZE_BYTES..RECORD_HEADER_SIZE_BYTES + header.payload_length_bytes(),
            )
            && verify_payload(&header, payload).is_ok()
        {
            return Some((position, header));
        }
        position = position.checked_add(DISK_SECTOR_SIZE_BYTES)?;
    }
    None
}

/// CRC32C of every header byte before the header checksum field.
fn header_checksum(header: &[u8; RECORD_HEADER_SIZE_BYTES]) -> u32 {
    let (covered, _) = header.split_at(field_offset::HEADER_CHECKSUM);
    crc32c::crc32c(covered)
}

/// The `SIZE` header bytes starting at `offset`.
fn take<const SIZE: usize>(header: &[u8; RECORD_HEADER_SIZE_BYTES], offset: usize) -> [u8; SIZE] {
    // Offsets are the constants of `field_offset`, checked at compile time to lie within the
    // header, so this never fails.
    *header
        .get(offset..)
        .and_then(<[u8]>::first_chunk::<SIZE>)
        .expect("header fields lie within the header")
}

/// Writes `field` into the header at `offset`.
fn put(header: &mut [u8; RECORD_HEADER_SIZE_BYTES], offset: usize, field: &[u8]) {
    header
        .get_mut(offset..offset + field.len())
        .expect("header fields lie within the header")
        .copy_from_slice(field);
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::cast_possible_truncation)]
mod tests {
    use super::*;

    const SEGMENT: u64 = 7;
    const PAYLOAD_SIZES_BYTES: [usize; 6] = [0, 1, 15, 16, 17, 1000];

    fn payload_of(length: usize) -> Vec<u8> {
        (0..length).map(|index| (index * 31 + 7) as u8).collect()
    }

    fn header_for(kind: RecordKind, offset: u64, payload: &[u8]) -> RecordHeader {
        RecordHeader::new(
            kind,
            GroupId(3),
            Slot(42),
            Ballot { round: 5, node: 2 },
            SEGMENT,
            offset,
            payload,
        )
    }

    /// One record of `kind` at offset 0 of `SEGMENT`.
    fn encoded(kind: RecordKind, payload: &[u8]) -> Vec<u8> {
        let mut bytes = Vec::new();
        append_record(&header_for(kind, 0, payload), payload, &mut bytes);
        bytes
    }

    /// Recomputes the header checksum, making edited header bytes authentic again.
    fn reseal(bytes: &mut [u8]) {
        let header: &mut [u8; RECORD_HEADER_SIZE_BYTES] = bytes.first_chunk_mut().unwrap();
        let checksum = header_checksum(header);
        header[60..64].copy_from_slice(&checksum.to_le_bytes());
    }

    #[test]
    fn record_round_trips_for_every_kind_and_payload_size() {
        for kind in RecordKind::ALL {
            for length in PAYLOAD_SIZES_BYTES {
                let payload = payload_of(length);
                let header = header_for(kind, 0, &payload);
                let bytes = encoded(kind, &payload);
                assert_eq!(bytes.len(), record_size_bytes(length));
                assert_eq!(bytes.len() % RECORD_ALIGNMENT_BYTES, 0);
                let (decoded, decoded_payload) = decode_record(&bytes, SEGMENT, 0).unwrap();
                assert_eq!(decoded, header);
                assert_eq!(decoded_payload, payload.as_slice());
                let payload_start = decoded_payload.as_ptr() as usize - bytes.as_ptr() as usize;
                assert_eq!(payload_start, RECORD_HEADER_SIZE_BYTES);
                assert_eq!(payload_start % RECORD_ALIGNMENT_BYTES, 0);
                assert!(bytes[RECORD_HEADER_SIZE_BYTES + length..].iter().all(|&byte| byte == 0));
            }
        }
    }

    #[test]
    fn record_sizes_round_up_to_the_alignment() {
        assert_eq!(record_size_bytes(0), 64);
        assert_eq!(record_size_bytes(1), 80);
        assert_eq!(record_size_bytes(15), 80);
        assert_eq!(record_size_bytes(16), 80);
        assert_eq!(record_size_bytes(17), 96);
        assert_eq!(RECORD_SIZE_BYTES_MAX, 64 + LOG_RECORD_PAYLOAD_BYTES_MAX);
    }

    #[test]
    fn kind_bytes_round_trip_and_zero_is_no_kind() {
        for kind in RecordKind::ALL {
            assert_eq!(RecordKind::from_byte(kind.to_byte()), Some(kind));
        }
        assert_eq!(RecordKind::from_byte(0), None);
        assert_eq!(RecordKind::from_byte(5), None);
        assert_eq!(RecordKind::from_byte(u8::MAX), None);
    }

    #[test]
    fn header_layout_matches_the_documented_byte_offsets() {
        let header = RecordHeader {
            kind: RecordKind::Chosen,
            group: GroupId(0x0403_0201),
            slot: Slot(0x1817_1615_1413_1211),
            ballot: Ballot { round: 0x2827_2625_2423_2221, node: 0x3837_3635_3433_3231 },
            segment: 0x4847_4645_4443_4241,
            offset: 0x5150_4f40,
            batch_offset: 0x5150_4e00,
            payload_length: 3,
            payload_checksum: crc32c::crc32c(b"abc"),
        };
        let mut bytes = Vec::new();
        append_record(&header, b"abc", &mut bytes);
        assert_eq!(&bytes[0..4], b"KLRC");
        assert_eq!(&bytes[4..6], &[1, 0]);
        assert_eq!(bytes[6], 2);
        assert_eq!(bytes[7], 0);
        assert_eq!(&bytes[8..12], &[0x01, 0x02, 0x03, 0x04]);
        assert_eq!(&bytes[12..16], &[3, 0, 0, 0]);
        assert_eq!(&bytes[16..24], &[0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18]);
        assert_eq!(&bytes[24..32], &[0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27, 0x28]);
        assert_eq!(&bytes[32..40], &[0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0x37, 0x38]);
        assert_eq!(&bytes[40..48], &[0x41, 0x42, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48]);
        assert_eq!(&bytes[48..52], &[0x40, 0x4f, 0x50, 0x51]);
        assert_eq!(&bytes[52..56], &[0x00, 0x4e, 0x50, 0x51]);
        assert_eq!(&bytes[56..60], &crc32c::crc32c(b"abc").to_le_bytes());
        assert_eq!(&bytes[60..64], &crc32c::crc32c(&bytes[0..60]).to_le_bytes());
        assert_eq!(&bytes[64..67], b"abc");
        assert_eq!(&bytes[67..], &[0; 13]);
    }

    #[test]
    fn every_single_bit_flip_in_the_header_is_detected() {
        let payload = payload_of(17);
        let bytes = encoded(RecordKind::Accepted, &payload);
        for bit in 0..RECORD_HEADER_SIZE_BYTES * 8 {
            let mut flipped = bytes.clone();
            flipped[bit / 8] ^= 1 << (bit % 8);
            let error = decode_record(&flipped, SEGMENT, 0).unwrap_err();
            if bit < 32 {
                assert!(matches!(error, RecordError::Header(HeaderError::BadMagic { .. })));
            } else {
                assert!(
                    matches!(error, RecordError::Header(HeaderError::BadChecksum { .. })),
                    "bit {bit}: {error:?}"
                );
            }
        }
    }

    #[test]
    fn every_single_bit_flip_in_the_payload_is_detected() {
        let payload = payload_of(1000);
        let bytes = encoded(RecordKind::Accepted, &payload);
        for bit in 0..payload.len() * 8 {
            let mut flipped = bytes.clone();
            flipped[RECORD_HEADER_SIZE_BYTES + bit / 8] ^= 1 << (bit % 8);
            let error = decode_record(&flipped, SEGMENT, 0).unwrap_err();
            assert!(matches!(error, RecordError::Payload(PayloadError::ChecksumMismatch { .. })));
        }
    }

    #[test]
    fn nonzero_padding_is_detected() {
        let payload = payload_of(1);
        let bytes = encoded(RecordKind::Accepted, &payload);
        for index in RECORD_HEADER_SIZE_BYTES + 1..bytes.len() {
            let mut damaged = bytes.clone();
            damaged[index] = 0x80;
            assert_eq!(decode_record(&damaged, SEGMENT, 0), Err(RecordError::NonzeroPadding));
        }
    }

    #[test]
    fn truncated_input_at_every_length_is_incomplete() {
        let payload = payload_of(1000);
        let bytes = encoded(RecordKind::Accepted, &payload);
        for length in 0..bytes.len() {
            let error = decode_record(&bytes[..length], SEGMENT, 0).unwrap_err();
            assert!(matches!(error, RecordError::Incomplete { available_bytes, .. }
                if available_bytes == length));
            assert!(error.is_truncatable_at_tail());
            if length < RECORD_HEADER_SIZE_BYTES {
                assert_eq!(
                    decode_header(&bytes[..length]),
                    Err(HeaderError::TooShort { available_bytes: length })
                );
            }
        }
        assert!(decode_record(&bytes, SEGMENT, 0).is_ok());
    }

    #[test]
    fn all_zero_header_is_zeroed() {
        let zeros = [0; 4096];
        assert_eq!(decode_header(&zeros), Err(HeaderError::Zeroed));
        assert_eq!(
            decode_record(&zeros, SEGMENT, 0),
            Err(RecordError::Header(HeaderError::Zeroed))
        );
        // Zeroed is not implied by a shorter run of zeros: the header must be all there.
        assert_eq!(decode_header(&zeros[..63]), Err(HeaderError::TooShort { available_bytes: 63 }));
    }

    #[test]
    fn corrupt_length_field_is_rejected_by_the_header_checksum_before_the_payload_is_read() {
        let payload = payload_of(16);
        let mut bytes = encoded(RecordKind::Accepted, &payload);
        bytes[12..16].copy_from_slice(&u32::MAX.to_le_bytes());
        // Only the header is passed: had the length been used, this would be Incomplete.
        let error = decode_record(&bytes[..RECORD_HEADER_SIZE_BYTES], SEGMENT, 0).unwrap_err();
        assert!(matches!(error, RecordError::Header(HeaderError::BadChecksum { .. })));
        bytes[12..16].copy_from_slice(&15_u32.to_le_bytes());
        let error = decode_record(&bytes, SEGMENT, 0).unwrap_err();
        assert!(matches!(error, RecordError::Header(HeaderError::BadChecksum { .. })));
    }

    #[test]
    fn authentic_headers_this_build_cannot_read_are_rejected_and_not_truncatable() {
        let bytes = encoded(RecordKind::Chosen, &[]);
        let edits: [(usize, &[u8], HeaderError); 5] = [
            (4, &[2, 0], HeaderError::UnsupportedVersion { version: 2 }),
            (6, &[9], HeaderError::UnknownKind { kind: 9 }),
            (7, &[1], HeaderError::NonzeroFlags { flags: 1 }),
            (54, &[1], HeaderError::BadBatchOffset { offset: 0, batch_offset: 65536 }),
            (
                12,
                &(LOG_RECORD_PAYLOAD_BYTES_MAX as u32 + 1).to_le_bytes(),
                HeaderError::PayloadTooLong {
                    payload_length: LOG_RECORD_PAYLOAD_BYTES_MAX as u32 + 1,
                },
            ),
        ];
        for (at, value, expected) in edits {
            let mut edited = bytes.clone();
            edited[at..at + value.len()].copy_from_slice(value);
            reseal(&mut edited);
            assert_eq!(decode_header(&edited), Err(expected));
            let error = decode_record(&edited, SEGMENT, 0).unwrap_err();
            assert_eq!(error, RecordError::Header(expected));
            assert!(!error.is_truncatable_at_tail());
            // Recovery must not treat what precedes it as a torn tail.
            assert_eq!(find_next_valid_record(&edited, 0, SEGMENT), Some(0));
        }
    }

    #[test]
    fn header_checks_run_in_the_documented_order() {
        // A header with several problems reports the first one checked.
        let mut bytes = encoded(RecordKind::Chosen, &[]);
        bytes[6] = 9;
        bytes[7] = 1;
        reseal(&mut bytes);
        assert_eq!(decode_header(&bytes), Err(HeaderError::UnknownKind { kind: 9 }));
        bytes[4] = 2;
        reseal(&mut bytes);
        assert_eq!(decode_header(&bytes), Err(HeaderError::UnsupportedVersion { version: 2 }));
        bytes[4] = 1;
        let error = decode_header(&bytes).unwrap_err();
        assert!(matches!(error, HeaderError::BadChecksum { .. }));
        bytes[0] = b'X';
        assert!(matches!(decode_header(&bytes), Err(HeaderError::BadMagic { .. })));
    }

    #[test]
    fn record_read_from_the_wrong_segment_or_offset_is_misplaced() {
        let payload = payload_of(15);
        let mut bytes = Vec::new();
        append_record(&header_for(RecordKind::Accepted, 4096, &payload), &payload, &mut bytes);
        assert!(decode_record(&bytes, SEGMENT, 4096).is_ok());
        let wrong_segment = decode_record(&bytes, SEGMENT + 1, 4096).unwrap_err();
        assert_eq!(
            wrong_segment,
            RecordError::Misplaced(Misplaced {
                expected_segment: SEGMENT + 1,
                expected_offset: 4096,
                found_segment: SEGMENT,
                found_offset: 4096,
            })
        );
        assert!(wrong_segment.is_truncatable_at_tail());
        let wrong_offset = decode_record(&bytes, SEGMENT, 0).unwrap_err();
        assert!(matches!(
            wrong_offset,
            RecordError::Misplaced(Misplaced { found_offset: 4096, .. })
        ));
        let header = decode_header(&bytes).unwrap();
        assert!(check_placement(&header, SEGMENT, 4096).is_ok());
        assert!(check_placement(&header, SEGMENT, 4112).is_err());
    }

    #[test]
    fn verify_payload_reports_length_then_checksum_mismatch() {
        let payload = payload_of(16);
        let header = header_for(RecordKind::Accepted, 0, &payload);
        assert_eq!(verify_payload(&header, &payload), Ok(()));
        assert_eq!(
            verify_payload(&header, &payload[..15]),
            Err(PayloadError::LengthMismatch { header_bytes: 16, actual_bytes: 15 })
        );
        let mut damaged = payload.clone();
        damaged[0] ^= 1;
        assert!(matches!(
            verify_payload(&header, &damaged),
            Err(PayloadError::ChecksumMismatch { .. })
        ));
    }

    #[test]
    #[should_panic(expected = "record read-back failed")]
    fn encoding_a_payload_other_than_the_headers_panics() {
        let header = header_for(RecordKind::Accepted, 0, b"right");
        let mut bytes = Vec::new();
        append_record(&header, b"wrong", &mut bytes);
    }

    #[test]
    #[should_panic(expected = "RECORD_ALIGNMENT_BYTES")]
    fn encoding_at_an_unaligned_offset_panics() {
        let _ = header_for(RecordKind::Accepted, 8, b"");
    }

    /// A segment image: garbage, then a record at `record_offset`, then zeros.
    fn segment_with_garbage_before(record_offset: usize) -> Vec<u8> {
        let payload = payload_of(40);
        let mut bytes: Vec<u8> = (0..record_offset).map(|index| (index * 13 + 1) as u8).collect();
        let header = header_for(RecordKind::Accepted, record_offset as u64, &payload);
        append_record(&header, &payload, &mut bytes);
        bytes.resize(bytes.len() + 512, 0);
        bytes
    }

    #[test]
    fn find_next_valid_record_finds_a_record_after_garbage() {
        let bytes = segment_with_garbage_before(256);
        assert_eq!(find_next_valid_record(&bytes, 0, SEGMENT), Some(256));
        assert_eq!(find_next_valid_record(&bytes, 1, SEGMENT), Some(256));
        assert_eq!(find_next_valid_record(&bytes, 256, SEGMENT), Some(256));
        assert_eq!(find_next_valid_record(&bytes, 257, SEGMENT), None);
    }

    #[test]
    fn find_next_valid_record_returns_none_when_none_follows() {
        let bytes = segment_with_garbage_before(256);
        assert_eq!(find_next_valid_record(&bytes[..256], 0, SEGMENT), None);
        assert_eq!(find_next_valid_record(&[0; 4096], 0, SEGMENT), None);
        assert_eq!(find_next_valid_record(&[], 0, SEGMENT), None);
        assert_eq!(find_next_valid_record(&bytes, bytes.len() + 1, SEGMENT), None);
        assert_eq!(find_next_valid_record(&bytes, usize::MAX, SEGMENT), None);
    }

    #[test]
    fn find_next_valid_record_ignores_stale_and_misdirected_records() {
        let bytes = segment_with_garbage_before(256);
        // Another segment's record (stale, from an earlier use of the file) does not count.
        assert_eq!(find_next_valid_record(&bytes, 0, SEGMENT + 1), None);
        // Nor does a record copied to another offset (a misdirected write).
        let mut moved = vec![0; 512];
        moved.extend_from_slice(&bytes[256..]);
        assert_eq!(find_next_valid_record(&moved, 0, SEGMENT), None);
    }

    #[test]
    fn find_next_valid_record_counts_a_header_whose_payload_is_torn() {
        let mut bytes = segment_with_garbage_before(256);
        bytes[256 + RECORD_HEADER_SIZE_BYTES] ^= 0xff;
        assert!(decode_record(&bytes[256..], SEGMENT, 256).is_err());
        assert_eq!(find_next_valid_record(&bytes, 0, SEGMENT), Some(256));
    }

    /// xorshift64: a deterministic generator, enough to spread fuzz inputs.
    struct Xorshift(u64);

    impl Xorshift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn below(&mut self, bound: usize) -> usize {
            (self.next() % bound as u64) as usize
        }
    }

    /// A segment image of several records of every kind, back to back from offset 0, followed
    /// by unwritten space, and the offsets of its records.
    fn segment_image() -> (Vec<u8>, Vec<usize>) {
        let mut bytes = Vec::new();
        let mut offsets = Vec::new();
        for (index, length) in PAYLOAD_SIZES_BYTES.into_iter().enumerate() {
            let payload = payload_of(length);
            let kind = RecordKind::ALL[index % RecordKind::ALL.len()];
            offsets.push(bytes.len());
            append_record(&header_for(kind, bytes.len() as u64, &payload), &payload, &mut bytes);
        }
        bytes.resize(bytes.len() + 256, 0);
        (bytes, offsets)
    }

    #[test]
    fn decoding_random_and_mutated_buffers_never_panics() {
        let (image, offsets) = segment_image();
        let mut random = Xorshift(0x9e37_79b9_7f4a_7c15);
        let mut valid_records = 0;
        for _ in 0..10_000 {
            let mut bytes = match random.below(4) {
                // Random bytes of random length.
                0 => (0..random.below(600)).map(|_| random.next() as u8).collect(),
                // A few flipped bits.
                1 => {
                    let mut bytes = image.clone();
                    for _ in 0..=random.below(4) {
                        let bit = random.below(bytes.len() * 8);
                        bytes[bit / 8] ^= 1 << (bit % 8);
                    }
                    bytes
                }
                // Truncated anywhere.
                2 => image[..random.below(image.len() + 1)].to_vec(),
                // A byte of some record's header rewritten, then resealed so the checks past
                // the header checksum are exercised too.
                _ => {
                    let mut bytes = image.clone();
                    let start = offsets[random.below(offsets.len())];
                    bytes[start + random.below(60)] = random.next() as u8;
                    if random.below(2) == 0 {
                        let length = random.below(2 * 1024) as u32;
                        bytes[start + 12..start + 16].copy_from_slice(&length.to_le_bytes());
                    }
                    reseal(&mut bytes[start..]);
                    bytes
                }
            };
            if random.below(8) == 0 {
                bytes.truncate(random.below(bytes.len() + 1));
            }
            let _ = decode_header(&bytes);
            let start = random.below(bytes.len() + 32);
            if let Some(position) = find_next_valid_record(&bytes, start, SEGMENT) {
                assert!(position >= start);
                assert_eq!(position % RECORD_ALIGNMENT_BYTES, 0);
            }
            for position in (0..bytes.len()).step_by(RECORD_ALIGNMENT_BYTES) {
                let window = &bytes[position..];
                let _ = decode_header(window);
                // Whatever decodes as valid re-encodes to exactly the bytes read.
                if let Ok((header, payload)) = decode_record(window, SEGMENT, position as u64) {
                    valid_records += 1;
                    let mut again = Vec::new();
                    append_record(&header, payload, &mut again);
                    assert_eq!(again.as_slice(), &window[..again.len()]);
                }
            }
        }
        // The mutations left most records intact, so the oracle above ran.
        assert!(valid_records > 10_000);
    }
}
