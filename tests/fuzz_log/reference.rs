//! The reference decoder: the validity rules of `docs/design/log-format.md` written from its
//! table of header fields, independently of `src/log/format.rs`, for the targets to compare
//! against.

use super::*;

/// The verdict on the bytes at a place: valid, or the first documented check that failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Class {
    Valid,
    Incomplete,
    Zeroed,
    BadMagic,
    BadChecksum,
    UnsupportedVersion,
    UnknownKind,
    NonzeroFlags,
    BadBatchOffset,
    PayloadTooLong,
    BadOffset,
    Misplaced,
    PayloadChecksum,
    /// Never produced by the rules for a whole record: a decoder returning it is wrong.
    PayloadLength,
    NonzeroPadding,
}

impl Class {
    /// An authentic header this build cannot read (validity step 5).
    pub fn is_unreadable(self) -> bool {
        matches!(
            self,
            Class::UnsupportedVersion
                | Class::UnknownKind
                | Class::NonzeroFlags
                | Class::BadBatchOffset
                | Class::PayloadTooLong
                | Class::BadOffset
        )
    }

    pub fn of_header_error(error: HeaderError) -> Class {
        match error {
            HeaderError::TooShort { .. } => Class::Incomplete,
            HeaderError::Zeroed => Class::Zeroed,
            HeaderError::BadMagic { .. } => Class::BadMagic,
            HeaderError::BadChecksum { .. } => Class::BadChecksum,
            HeaderError::UnsupportedVersion { .. } => Class::UnsupportedVersion,
            HeaderError::UnknownKind { .. } => Class::UnknownKind,
            HeaderError::NonzeroFlags { .. } => Class::NonzeroFlags,
            HeaderError::BadBatchOffset { .. } => Class::BadBatchOffset,
            HeaderError::PayloadTooLong { .. } => Class::PayloadTooLong,
            HeaderError::BadOffset { .. } => Class::BadOffset,
        }
    }

    pub fn of_record_error(error: RecordError) -> Class {
        match error {
            RecordError::Incomplete { .. } => Class::Incomplete,
            RecordError::Header(error) => Class::of_header_error(error),
            RecordError::Misplaced(_) => Class::Misplaced,
            RecordError::Payload(PayloadError::ChecksumMismatch { .. }) => Class::PayloadChecksum,
            RecordError::Payload(PayloadError::LengthMismatch { .. }) => Class::PayloadLength,
            RecordError::NonzeroPadding => Class::NonzeroPadding,
        }
    }
}

/// The header fields the reference needs, read straight from the documented byte offsets.
pub struct RawHeader {
    pub segment: u64,
    pub offset: u64,
    pub payload_length: usize,
    pub payload_checksum: u32,
}

pub fn le_u16(bytes: &[u8], at: usize) -> u16 {
    u16::from_le_bytes(bytes[at..at + 2].try_into().expect("two bytes"))
}

pub fn le_u32(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(bytes[at..at + 4].try_into().expect("four bytes"))
}

pub fn le_u64(bytes: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(bytes[at..at + 8].try_into().expect("eight bytes"))
}

pub fn widen(value: u32) -> usize {
    usize::try_from(value).expect("u32 fits usize")
}

pub fn to_u64(value: usize) -> u64 {
    u64::try_from(value).expect("usize fits u64")
}

/// Validity steps 1-5 of `docs/design/log-format.md` ("Validity"), written from the table of
/// header fields, independently of `format.rs`.
pub fn reference_header(bytes: &[u8]) -> Result<RawHeader, Class> {
    let Some(header) = bytes.get(..RECORD_HEADER_SIZE_BYTES) else {
        return Err(Class::Incomplete);
    };
    if header.iter().all(|byte| *byte == 0) {
        return Err(Class::Zeroed);
    }
    if header[..4] != *b"KLRC" {
        return Err(Class::BadMagic);
    }
    if crc32c::crc32c(&header[..60]) != le_u32(header, 60) {
        return Err(Class::BadChecksum);
    }
    if le_u16(header, 4) != 1 {
        return Err(Class::UnsupportedVersion);
    }
    if !(1..=4).contains(&header[6]) {
        return Err(Class::UnknownKind);
    }
    if header[7] != 0 {
        return Err(Class::NonzeroFlags);
    }
    let offset = le_u32(header, 48);
    let batch_offset = le_u32(header, 52);
    if !widen(batch_offset).is_multiple_of(RECORD_ALIGNMENT_BYTES) || batch_offset > offset {
        return Err(Class::BadBatchOffset);
    }
    let payload_length = widen(le_u32(header, 12));
    if payload_length > LOG_RECORD_PAYLOAD_BYTES_MAX {
        return Err(Class::PayloadTooLong);
    }
    // The writer places records on 16-byte boundaries of segments of at most 4 GiB.
    let end = u64::from(offset) + to_u64(64 + payload_length.next_multiple_of(16));
    if !widen(offset).is_multiple_of(RECORD_ALIGNMENT_BYTES) || end > LOG_SEGMENT_SIZE_BYTES_MAX {
        return Err(Class::BadOffset);
    }
    Ok(RawHeader {
        segment: le_u64(header, 40),
        offset: u64::from(offset),
        payload_length,
        payload_checksum: le_u32(header, 56),
    })
}

/// Validity steps 1-9 for the bytes read at `offset` in `segment`.
pub fn reference_record(bytes: &[u8], segment: u64, offset: u64) -> Class {
    let header = match reference_header(bytes) {
        Ok(header) => header,
        Err(class) => return class,
    };
    if header.segment != segment || header.offset != offset {
        return Class::Misplaced;
    }
    let payload_end = RECORD_HEADER_SIZE_BYTES + header.payload_length;
    let size = RECORD_HEADER_SIZE_BYTES + header.payload_length.next_multiple_of(16);
    let Some(record) = bytes.get(..size) else {
        return Class::Incomplete;
    };
    if crc32c::crc32c(&record[RECORD_HEADER_SIZE_BYTES..payload_end]) != header.payload_checksum {
        return Class::PayloadChecksum;
    }
    if record[payload_end..].iter().any(|byte| *byte != 0) {
        return Class::NonzeroPadding;
    }
    Class::Valid
}

/// `find_next_valid_record` as documented: the first 16-aligned position at or after `start`
/// whose header decodes and names this segment and position, or is authentic but unreadable.
pub fn reference_find(bytes: &[u8], start: usize, segment: u64) -> Option<usize> {
    let first = start.checked_next_multiple_of(RECORD_ALIGNMENT_BYTES)?;
    (first..bytes.len()).step_by(RECORD_ALIGNMENT_BYTES).find(|position| {
        match reference_header(&bytes[*position..]) {
            Ok(header) => header.segment == segment && header.offset == to_u64(*position),
            Err(class) => class.is_unreadable(),
        }
    })
}

/// Whether an authentic header this build cannot read starts at `position`.
pub fn is_unreadable_header_at(bytes: &[u8], position: usize) -> bool {
    bytes.get(position..).is_some_and(|window| {
        window.starts_with(&RECORD_MAGIC.to_le_bytes())
            && reference_header(window).is_err_and(Class::is_unreadable)
    })
}
