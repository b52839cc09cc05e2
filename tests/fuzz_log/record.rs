//! Target 1: the record decoder (`decode_record`, `decode_header`, `find_next_valid_record`)
//! on arbitrary bytes at arbitrary placements. See `main.rs` for what it checks.

use arbitrary::Arbitrary;
use klein::log::format::RecordKind;
use klein::types::{Ballot, GroupId, Slot};

use super::*;

/// The segment the harness's image belongs to.
pub const SEGMENT: u64 = 7;
/// Most 16-byte units of filler before the body, so the body's offset varies.
const PREFIX_UNITS_MAX: usize = 64;
/// Most header edits, bit flips applied to one case.
const EDITS_MAX: usize = 8;
const FLIPS_MAX: usize = 8;
/// Longest burst error CRC32C always detects, in bits.
const BURST_BITS_MAX: usize = 32;

/// One decoder case: bytes placed in a segment image, decoded at arbitrary places.
#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
pub struct Case {
    /// 16-byte units of `filler` before the body (modulo `PREFIX_UNITS_MAX` + 1).
    pub prefix_units: u8,
    pub filler: u8,
    pub body: Body,
    /// Bytes after the body.
    pub trailer: Bytes,
    /// Where the body alone is also decoded.
    pub placement: Placement,
    /// Where `find_next_valid_record` starts (modulo the image length + 17).
    pub search_start: u16,
    /// Bits of the body's record flipped one at a time, if it is valid.
    pub flips: Vec<u32>,
    /// A burst error applied to the body's record, if it is valid.
    pub burst: Option<Burst>,
}

#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
pub enum Body {
    Raw(Bytes),
    Built(Built),
}

/// A record made by the encoder, then edited.
#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
pub struct Built {
    /// Modulo the number of kinds.
    pub kind: u8,
    pub group: u32,
    pub slot: u64,
    pub round: u64,
    pub node: u64,
    pub misplace: Misplace,
    /// How many 16-byte units before the record its batch starts (capped at the offset).
    pub batch_back_units: u8,
    pub payload: Bytes,
    /// Bytes overwritten after encoding, anywhere in the record.
    pub edits: Vec<Edit>,
    /// Recompute the payload checksum after the edits.
    pub reseal_payload: bool,
    /// Recompute the header checksum after the edits (an authentic header).
    pub reseal_header: bool,
    /// Bytes cut off the end (a torn record), modulo the record length + 1.
    pub cut: Option<u16>,
}

/// Where the header says the record was written, relative to where it is.
#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
pub enum Misplace {
    None,
    Segment(u64),
    /// This many 16-byte units (plus one) further on.
    LaterUnits(u8),
}

#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
pub struct Edit {
    pub at: u16,
    pub value: u8,
}

#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
pub enum Placement {
    /// Where the body sits in the image.
    Scanned,
    /// The segment and offset the body's header claims (bytes 40..48 and 48..52).
    Claimed,
    Arbitrary {
        segment: u64,
        offset: u64,
    },
}

/// A burst error: the set bits of `pattern` flipped in the record, from bit `at` on.
#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
pub struct Burst {
    pub at: u32,
    pub pattern: u32,
}

encode_struct!(Case { prefix_units, filler, body, trailer, placement, search_start, flips, burst });
encode_struct!(Built {
    kind,
    group,
    slot,
    round,
    node,
    misplace,
    batch_back_units,
    payload,
    edits,
    reseal_payload,
    reseal_header,
    cut
});
encode_struct!(Edit { at, value });
encode_struct!(Burst { at, pattern });

impl Encode for Body {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Body::Raw(bytes) => {
                encode_variant(0, 2, out);
                bytes.encode(out);
            }
            Body::Built(built) => {
                encode_variant(1, 2, out);
                built.encode(out);
            }
        }
    }
}

impl Encode for Misplace {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Misplace::None => encode_variant(0, 3, out),
            Misplace::Segment(segment) => {
                encode_variant(1, 3, out);
                segment.encode(out);
            }
            Misplace::LaterUnits(units) => {
                encode_variant(2, 3, out);
                units.encode(out);
            }
        }
    }
}

impl Encode for Placement {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Placement::Scanned => encode_variant(0, 3, out),
            Placement::Claimed => encode_variant(1, 3, out),
            Placement::Arbitrary { segment, offset } => {
                encode_variant(2, 3, out);
                segment.encode(out);
                offset.encode(out);
            }
        }
    }
}

/// The encoder's bytes for `built` at `offset` of [`SEGMENT`], then its edits.
fn build_record(built: &Built, offset: u64) -> Vec<u8> {
    let kind = RecordKind::ALL[usize::from(built.kind) % RecordKind::ALL.len()];
    let (segment, header_offset) = match built.misplace {
        Misplace::None => (SEGMENT, offset),
        Misplace::Segment(segment) => (segment, offset),
        Misplace::LaterUnits(units) => (SEGMENT, offset + 16 * (u64::from(units) + 1)),
    };
    let payload = &built.payload.0;
    let mut header = RecordHeader::new(
        kind,
        GroupId(built.group),
        Slot(built.slot),
        Ballot { round: built.round, node: built.node },
        segment,
        header_offset,
        payload,
    );
    let back = (16 * u64::from(built.batch_back_units)).min(header_offset);
    header.batch_offset = header_offset - back;
    let mut bytes = Vec::new();
    append_record(&header, payload, &mut bytes);
    for edit in built.edits.iter().take(EDITS_MAX) {
        let at = usize::from(edit.at) % bytes.len();
        bytes[at] = edit.value;
    }
    let payload_end = RECORD_HEADER_SIZE_BYTES + payload.len();
    if built.reseal_payload {
        let checksum = crc32c::crc32c(&bytes[RECORD_HEADER_SIZE_BYTES..payload_end]);
        bytes[56..60].copy_from_slice(&checksum.to_le_bytes());
    }
    if built.reseal_header {
        let checksum = crc32c::crc32c(&bytes[..60]);
        bytes[60..64].copy_from_slice(&checksum.to_le_bytes());
    }
    if let Some(cut) = built.cut {
        let cut = usize::from(cut) % (bytes.len() + 1);
        bytes.truncate(bytes.len() - cut);
    }
    bytes
}

/// The segment image of a case and where its body starts.
pub fn image_of(case: &Case) -> (Vec<u8>, usize) {
    let start = usize::from(case.prefix_units) % (PREFIX_UNITS_MAX + 1) * 16;
    let mut image = vec![case.filler; start];
    match &case.body {
        Body::Raw(bytes) => image.extend_from_slice(&bytes.0),
        Body::Built(built) => image.extend(build_record(built, to_u64(start))),
    }
    image.extend_from_slice(&case.trailer.0);
    (image, start)
}

/// Decodes `bytes` read at (`segment`, `offset`) and checks the verdict against the rules,
/// the lengths against the input, and a valid record against its re-encoding.
pub fn check_place(bytes: &[u8], segment: u64, offset: u64) -> Result<Class, Violation> {
    let decoded = decode_record(bytes, segment, offset);
    let class = decoded.map_or_else(Class::of_record_error, |_| Class::Valid);
    let expected = reference_record(bytes, segment, offset);
    ensure(class == expected, Property::DecoderFollowsTheRules, || {
        format!("at ({segment}, {offset}): decoded {decoded:?}, the rules say {expected:?}")
    })?;
    check_header(bytes)?;
    match decoded {
        Err(RecordError::Incomplete { available_bytes, needed_bytes }) => {
            ensure(
                available_bytes == bytes.len() && needed_bytes > available_bytes,
                Property::LengthsStayWithinInput,
                || format!("Incomplete {available_bytes}/{needed_bytes} of {}", bytes.len()),
            )?;
        }
        Ok((header, payload)) => {
            check_valid(bytes, segment, offset, &header, payload)?;
        }
        Err(_) => {}
    }
    Ok(class)
}

/// `decode_header` agrees with the reference on the verdict and the fields.
fn check_header(bytes: &[u8]) -> Checked {
    let decoded = decode_header(bytes);
    let expected = reference_header(bytes);
    let agree = match (&decoded, &expected) {
        (Ok(header), Ok(raw)) => {
            header.segment == raw.segment
                && header.offset == raw.offset
                && header.payload_length_bytes() == raw.payload_length
                && header.payload_checksum == raw.payload_checksum
        }
        (Err(HeaderError::TooShort { available_bytes }), Err(Class::Incomplete)) => {
            *available_bytes == bytes.len()
        }
        (Err(error), Err(class)) => Class::of_header_error(*error) == *class,
        _ => false,
    };
    ensure(agree, Property::DecoderFollowsTheRules, || {
        format!("decode_header {decoded:?}, the rules say {:?}", expected.err())
    })
}

fn check_valid(
    bytes: &[u8],
    segment: u64,
    offset: u64,
    header: &RecordHeader,
    payload: &[u8],
) -> Checked {
    let size = header.record_size_bytes();
    let payload_start = payload.as_ptr() as usize - bytes.as_ptr() as usize;
    ensure(
        size <= bytes.len()
            && payload.len() == header.payload_length_bytes()
            && payload_start == RECORD_HEADER_SIZE_BYTES,
        Property::LengthsStayWithinInput,
        || format!("record of {size} bytes, payload at {payload_start}, in {}", bytes.len()),
    )?;
    ensure(
        header.segment == segment && header.offset == offset,
        Property::DecoderFollowsTheRules,
        || {
            format!(
                "valid at ({segment}, {offset}) but names ({}, {})",
                header.segment, header.offset
            )
        },
    )?;
    let end = offset.checked_add(to_u64(size));
    ensure(
        offset.is_multiple_of(to_u64(RECORD_ALIGNMENT_BYTES))
            && end.is_some_and(|end| end <= LOG_SEGMENT_SIZE_BYTES_MAX),
        Property::DecoderAcceptsOnlyPlaceableHeaders,
        || format!("decoded a {size}-byte record at offset {offset}: {header:?}"),
    )?;
    let mut again = Vec::new();
    append_record(header, payload, &mut again);
    ensure(again == bytes[..size], Property::DecodedRecordReencodes, || {
        format!("{header:?} re-encodes differently")
    })
}

/// Every single-bit flip and the burst in a valid record are rejected by the check that
/// covers the flipped byte.
fn check_flips(case: &Case, record: &[u8], offset: u64, payload_length: usize) -> Checked {
    let bits = record.len() * 8;
    for flip in case.flips.iter().take(FLIPS_MAX) {
        let bit = widen(*flip) % bits;
        let mut flipped = record.to_vec();
        flipped[bit / 8] ^= 1 << (bit % 8);
        let decoded = decode_record(&flipped, SEGMENT, offset);
        let class = decoded.map_or_else(Class::of_record_error, |_| Class::Valid);
        let expected = match bit / 8 {
            0..4 => Class::BadMagic,
            4..RECORD_HEADER_SIZE_BYTES => Class::BadChecksum,
            byte if byte < RECORD_HEADER_SIZE_BYTES + payload_length => Class::PayloadChecksum,
            _ => Class::NonzeroPadding,
        };
        ensure(class == expected, Property::CorruptionIsDetected, || {
            format!("bit {bit} flipped: {class:?}, expected {expected:?}")
        })?;
    }
    if let Some(burst) = &case.burst
        && burst.pattern != 0
    {
        let first = widen(burst.at) % (bits - BURST_BITS_MAX + 1);
        let mut flipped = record.to_vec();
        for index in (0..BURST_BITS_MAX).filter(|index| burst.pattern >> index & 1 == 1) {
            let bit = first + index;
            flipped[bit / 8] ^= 1 << (bit % 8);
        }
        ensure(
            decode_record(&flipped, SEGMENT, offset).is_err(),
            Property::CorruptionIsDetected,
            || format!("burst {:#010x} at bit {first} accepted", burst.pattern),
        )?;
    }
    Ok(())
}

/// Target 1. See the file's documentation.
pub fn target(data: &[u8]) -> Outcome {
    let Ok(case) = Case::arbitrary(&mut Unstructured::new(data)) else {
        return Ok("unreadable input".to_string());
    };
    let (image, start) = image_of(&case);
    // A known bug is reported after every other check ran, so it cannot hide a new one.
    let mut known = None;
    let mut place =
        |bytes: &[u8], segment: u64, offset: u64| match check_place(bytes, segment, offset) {
            Err(violation) if violation.property.is_known_bug() => {
                known.get_or_insert(violation);
                Ok(Class::Valid)
            }
            other => other,
        };
    let mut own = Class::Incomplete;
    for position in (0..=image.len()).step_by(RECORD_ALIGNMENT_BYTES) {
        let class = place(&image[position..], SEGMENT, to_u64(position))?;
        if position == start {
            own = class;
        }
    }
    let body = &image[start..];
    let (segment, offset) = match &case.placement {
        Placement::Claimed if body.len() >= RECORD_HEADER_SIZE_BYTES => {
            (le_u64(body, 40), u64::from(le_u32(body, 48)))
        }
        Placement::Scanned | Placement::Claimed => (SEGMENT, to_u64(start)),
        Placement::Arbitrary { segment, offset } => (*segment, *offset),
    };
    let placed = place(body, segment, offset)?;
    let search = usize::from(case.search_start) % (image.len() + 17);
    let mut found = false;
    for searched in [SEGMENT, segment] {
        for from in [search, 0, start, image.len() + 1, usize::MAX] {
            let got = find_next_valid_record(&image, from, searched);
            let expected = reference_find(&image, from, searched);
            ensure(got == expected, Property::FindFollowsTheRules, || {
                format!("from {from} in segment {searched}: {got:?}, expected {expected:?}")
            })?;
            found |= got.is_some();
        }
    }
    if let Ok((header, _)) = decode_record(body, SEGMENT, to_u64(start)) {
        let record = &body[..header.record_size_bytes()];
        check_flips(&case, record, to_u64(start), header.payload_length_bytes())?;
    }
    if let Some(violation) = known {
        return Err(violation);
    }
    let kind = if matches!(case.body, Body::Raw(_)) { "raw" } else { "built" };
    Ok(format!("{kind} own={own:?} placed={placed:?}|found={found}"))
}
