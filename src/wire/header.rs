//! The fixed 32-byte frame header: layout, encoding, and the checks that need no payload.
//!
//! ```text
//!   offset size field           why it exists
//!        0    4 magic           "KLWF": refuses another protocol before trusting any length
//!        4    4 checksum        CRC32C of bytes 8 .. frame end (header rest, payload, padding)
//!        8    2 version         wire version of this frame's layout (handshake: sender's max)
//!       10    1 kind            1 handshake, 2 messages, 3 snapshot, 4 forward
//!       11    1 flags           none defined; must be 0 (a new meaning needs a new version)
//!       12    4 payload_length  bytes of the rkyv archive after the header (padding excluded)
//!       16    8 sender          the sending node's id, checked against the handshake
//!       24    8 sequence        0 for the handshake, +1 per frame on one connection
//!       32      payload         16-aligned; then zero padding to a multiple of 16
//! ```
//!
//! All integers are little-endian. The first 16 bytes (magic to payload length) and the
//! checksum's scope are frozen for every version, so any build can frame, check and refuse a
//! frame of any other version (`docs/design/wire.md`, "Versioning").

use crate::constants::WIRE_FRAME_SIZE_BYTES_MAX;

use super::error::WireError;

/// The four bytes every frame starts with.
pub const WIRE_MAGIC: [u8; 4] = *b"KLWF";

/// The wire version this build writes, and the newest it reads.
pub const WIRE_VERSION: u16 = 3;

/// The oldest wire version this build reads.
pub const WIRE_VERSION_MIN: u16 = 3;

/// Size of the frame header, in bytes: a multiple of 16, so a payload that follows a frame
/// start at a 16-aligned address is 16-aligned too (rkyv reads it in place).
pub const HEADER_SIZE_BYTES: usize = 32;

/// Alignment of every frame start and of every frame size, in bytes.
pub const FRAME_ALIGNMENT_BYTES: usize = 16;

/// Largest payload one frame carries, in bytes.
pub const PAYLOAD_SIZE_BYTES_MAX: usize = WIRE_FRAME_SIZE_BYTES_MAX - HEADER_SIZE_BYTES;

/// Where the checksum's scope starts: everything after magic and checksum.
const CHECKSUM_SCOPE_START: usize = 8;

const _: () = assert!(HEADER_SIZE_BYTES.is_multiple_of(FRAME_ALIGNMENT_BYTES));
const _: () = assert!(WIRE_FRAME_SIZE_BYTES_MAX.is_multiple_of(FRAME_ALIGNMENT_BYTES));
const _: () = assert!(WIRE_VERSION_MIN <= WIRE_VERSION);
// rkyv archives need at most 16-byte alignment (no 128-bit fields are archived).
const _: () = assert!(FRAME_ALIGNMENT_BYTES >= 16);

/// What a frame carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum FrameKind {
    /// The first frame of every connection: who is speaking, in which cluster, which versions
    /// (`handshake.rs`). Its layout is frozen across versions.
    Handshake = 1,
    /// Consensus messages for any number of groups (`message.rs`).
    Messages = 2,
    /// One snapshot-transfer message (`snapshot.rs`); since version 2.
    Snapshot = 3,
    /// One forwarded request or its answer (`forward.rs`); since version 3.
    Forward = 4,
}

impl FrameKind {
    /// The kind of a byte, if this version defines it.
    #[must_use]
    pub fn from_byte(byte: u8) -> Option<FrameKind> {
        match byte {
            1 => Some(FrameKind::Handshake),
            2 => Some(FrameKind::Messages),
            3 => Some(FrameKind::Snapshot),
            4 => Some(FrameKind::Forward),
            _ => None,
        }
    }
}

/// A decoded frame header (the checksum is checked, not kept).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameHeader {
    /// The frame's wire version.
    pub version: u16,
    /// What the payload holds.
    pub kind: FrameKind,
    /// Bytes of the payload's archive.
    pub payload_length: u32,
    /// The sending node's id (as sent; the handshake checks it is a real id).
    pub sender: u64,
    /// The frame's position on its connection (handshake 0).
    pub sequence: u64,
}

impl FrameHeader {
    /// Bytes of the whole frame: header, payload, zero padding to 16.
    #[must_use]
    pub fn frame_size_bytes(&self) -> usize {
        frame_size_bytes(self.payload_length as usize)
    }
}

/// Bytes of a frame with `payload_length` bytes of payload.
#[must_use]
pub fn frame_size_bytes(payload_length: usize) -> usize {
    HEADER_SIZE_BYTES + payload_length.next_multiple_of(FRAME_ALIGNMENT_BYTES)
}

fn u16_at(bytes: &[u8; HEADER_SIZE_BYTES], at: usize) -> u16 {
    let mut field = [0; 2];
    field.copy_from_slice(bytes.get(at..at + 2).unwrap_or(&[0; 2]));
    u16::from_le_bytes(field)
}

fn u32_at(bytes: &[u8; HEADER_SIZE_BYTES], at: usize) -> u32 {
    let mut field = [0; 4];
    field.copy_from_slice(bytes.get(at..at + 4).unwrap_or(&[0; 4]));
    u32::from_le_bytes(field)
}

fn u64_at(bytes: &[u8; HEADER_SIZE_BYTES], at: usize) -> u64 {
    let mut field = [0; 8];
    field.copy_from_slice(bytes.get(at..at + 8).unwrap_or(&[0; 8]));
    u64::from_le_bytes(field)
}

/// The header bytes at the start of `bytes`, or how many bytes are missing.
fn header_bytes(bytes: &[u8]) -> Result<&[u8; HEADER_SIZE_BYTES], WireError> {
    bytes
        .first_chunk::<HEADER_SIZE_BYTES>()
        .ok_or(WireError::Truncated { needed: HEADER_SIZE_BYTES, available: bytes.len() })
}

/// The size of the frame that starts `bytes`, from the frozen prefix alone (magic and payload
/// length): what a stream reader needs to know before the frame is complete.
///
/// # Errors
/// [`WireError::Truncated`] before 32 bytes, [`WireError::BadMagic`],
/// [`WireError::FrameTooLarge`].
pub fn peek_frame_size(bytes: &[u8]) -> Result<usize, WireError> {
    let header = header_bytes(bytes)?;
    let magic = u32_at(header, 0);
    if magic != u32::from_le_bytes(WIRE_MAGIC) {
        return Err(WireError::BadMagic { found: magic });
    }
    let payload_length = u32_at(header, 12) as usize;
    if payload_length > PAYLOAD_SIZE_BYTES_MAX {
        let size_bytes = (HEADER_SIZE_BYTES + payload_length) as u64;
        return Err(WireError::FrameTooLarge {
            size_bytes,
            limit_bytes: WIRE_FRAME_SIZE_BYTES_MAX,
        });
    }
    Ok(frame_size_bytes(payload_length))
}

/// Checks the frame at the start of `bytes` up to its payload: magic, length, completeness,
/// checksum, version, kind, flags, padding (that order; `docs/design/wire.md`). Returns the
/// header and the payload's archive bytes.
///
/// # Errors
/// The first check that fails.
pub fn check_header(bytes: &[u8]) -> Result<(FrameHeader, &[u8]), WireError> {
    let size = peek_frame_size(bytes)?;
    let frame =
        bytes.get(..size).ok_or(WireError::Truncated { needed: size, available: bytes.len() })?;
    let header = header_bytes(frame)?;
    let expected = u32_at(header, 4);
    let computed = crc32c::crc32c(frame.get(CHECKSUM_SCOPE_START..).unwrap_or_default());
    if expected != computed {
        return Err(WireError::Checksum { expected, computed });
    }
    let version = u16_at(header, 8);
    let kind_byte = header.get(10).copied().unwrap_or_default();
    let flags = header.get(11).copied().unwrap_or_default();
    let kind = FrameKind::from_byte(kind_byte);
    // A handshake's layout is frozen: its version field announces, it does not constrain.
    if kind != Some(FrameKind::Handshake) && !(WIRE_VERSION_MIN..=WIRE_VERSION).contains(&version) {
        return Err(WireError::UnsupportedVersion {
            version,
            min: WIRE_VERSION_MIN,
            max: WIRE_VERSION,
        });
    }
    let kind = kind.ok_or(WireError::UnknownKind(kind_byte))?;
    if flags != 0 {
        return Err(WireError::UnknownFlags(flags));
    }
    let payload_length = u32_at(header, 12);
    let payload_end = HEADER_SIZE_BYTES + payload_length as usize;
    let payload = frame.get(HEADER_SIZE_BYTES..payload_end).unwrap_or_default();
    if frame.get(payload_end..).unwrap_or_default().iter().any(|byte| *byte != 0) {
        return Err(WireError::BadPadding);
    }
    let sender = u64_at(header, 16);
    let sequence = u64_at(header, 24);
    Ok((FrameHeader { version, kind, payload_length, sender, sequence }, payload))
}

/// Completes the frame `frame` (header bytes reserved, payload written, zero padding to 16
/// in place): writes the header, then the checksum over the rest of the header, the payload
/// and the padding.
///
/// # Panics
/// If `frame` is not the size `header` states or is over the limit: encoder bugs.
pub fn seal(frame: &mut [u8], header: &FrameHeader) {
    assert_eq!(frame.len(), header.frame_size_bytes(), "the header states the frame's size");
    assert!(frame.len() <= WIRE_FRAME_SIZE_BYTES_MAX, "the encoder keeps frames in bounds");
    let mut bytes = [0_u8; HEADER_SIZE_BYTES];
    bytes[0..4].copy_from_slice(&WIRE_MAGIC);
    bytes[8..10].copy_from_slice(&header.version.to_le_bytes());
    bytes[10] = header.kind as u8;
    bytes[11] = 0;
    bytes[12..16].copy_from_slice(&header.payload_length.to_le_bytes());
    bytes[16..24].copy_from_slice(&header.sender.to_le_bytes());
    bytes[24..32].copy_from_slice(&header.sequence.to_le_bytes());
    let (head, rest) = frame.split_at_mut(HEADER_SIZE_BYTES);
    let checksum = crc32c::crc32c_append(crc32c::crc32c(&bytes[CHECKSUM_SCOPE_START..]), rest);
    bytes[4..8].copy_from_slice(&checksum.to_le_bytes());
    head.copy_from_slice(&bytes);
}
