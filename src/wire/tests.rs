//! Unit tests of the wire format: round trips of every message, each refusal, the encoder's
//! frame splitting and the stream reader under arbitrary chunkings.

use std::collections::BTreeSet;
use std::sync::Arc;

use rkyv::rancor;
use rkyv::util::AlignedVec;

use super::header::{check_header, seal};
use super::*;
use crate::consensus::{Accepted, Membership, Message, Promise, PromiseEntry, Value, ValueKind};
use crate::constants::{WIRE_FRAME_PAYLOAD_TARGET_BYTES, WIRE_FRAME_SIZE_BYTES_MAX};
use crate::types::{Ballot, CoreIndex, GroupId, NodeId, Slot};

const CLUSTER: u64 = 0x6b6c_6569_6e00_0001;

fn node(id: u64) -> NodeId {
    NodeId::new(id).unwrap()
}

fn ballot(round: u64, node: u64) -> Ballot {
    Ballot { round, node }
}

fn nodes(ids: &[u64]) -> BTreeSet<NodeId> {
    ids.iter().map(|id| node(*id)).collect()
}

fn batch(bytes: &[u8]) -> Value {
    Value { stamp_millis: 1_700_000_000_123, kind: ValueKind::Batch(Arc::from(bytes)) }
}

/// One value of every kind.
fn values() -> Vec<Value> {
    let membership = Membership::flexible(7, nodes(&[1, 2, 3, 5]), nodes(&[9]), 3, 2).unwrap();
    vec![
        Value { stamp_millis: 0, kind: ValueKind::Noop },
        batch(b"SET k v"),
        batch(b""),
        Value { stamp_millis: 5, kind: ValueKind::MembershipChange(membership) },
        Value {
            stamp_millis: u64::MAX,
            kind: ValueKind::MasterClaim { node: node(2), ballot: ballot(4, 2) },
        },
    ]
}

/// Every message variant, with every value kind wherever a value goes.
fn every_message() -> Vec<Message> {
    let b = ballot(3, 1);
    let entries: Vec<PromiseEntry> = values()
        .into_iter()
        .enumerate()
        .map(|(index, value)| PromiseEntry {
            slot: Slot(10 + index as u64),
            ballot: ballot(2, 3),
            value,
            chosen: index % 2 == 0,
        })
        .collect();
    let mut messages = vec![
        Message::Prepare { ballot: b, from: Slot(7), transfer: true },
        Message::Prepare { ballot: Ballot::ZERO, from: Slot(0), transfer: false },
        Message::Promise(Promise::received((b, Slot(10)), (entries, true), None)),
        Message::Promise(Promise::received((b, Slot(0)), (Vec::new(), false), Some(Slot(99)))),
        Message::Accepted(Accepted::received(b, Slot(u64::MAX))),
        Message::Reject { ballot: b, promised: ballot(9, 2) },
        Message::Heartbeat { ballot: b, frontier: Slot(40), truncation: Slot(8), round: 77 },
        Message::HeartbeatAck { ballot: b, round: 77, applied: Slot(39) },
        Message::CatchUpRequest { from: Slot(12) },
        Message::CatchUp {
            entries: values().into_iter().enumerate().map(|(i, v)| (Slot(i as u64), v)).collect(),
            frontier: Slot(5),
        },
        Message::CatchUp { entries: Vec::new(), frontier: Slot(0) },
        Message::SnapshotOffer { slot: Slot(4096) },
        Message::TimeoutNow { ballot: b },
    ];
    for value in values() {
        messages.push(Message::Accept { ballot: b, slot: Slot(41), value, frontier: Slot(40) });
    }
    messages
}

fn handshake(id: u64) -> Handshake {
    Handshake::ours(CLUSTER, node(id), None, CoreIndex(1))
}

/// An encoder of node 1 whose handshake is already out (and cleared).
fn encoder() -> Encoder {
    let mut encoder = Encoder::new(node(1));
    encoder.handshake(&handshake(1));
    encoder.clear();
    encoder
}

/// The bytes of frames `frames` in an aligned buffer.
fn aligned(bytes: &[u8]) -> AlignedVec<16> {
    let mut out = AlignedVec::new();
    out.extend_from_slice(bytes);
    out
}

/// Every (group, message) in the frames of `bytes`, converted.
fn decode_all(bytes: &[u8]) -> Vec<(GroupId, Message)> {
    let buffer = aligned(bytes);
    let mut rest = buffer.as_slice();
    let mut out = Vec::new();
    while !rest.is_empty() {
        let frame = Frame::check(rest).unwrap();
        for envelope in frame.messages() {
            out.push((envelope.group(), envelope.message().to_message().unwrap()));
        }
        rest = &rest[frame.size_bytes()..];
    }
    out
}

/// A sealed frame of `kind` around the archive of `body`, with header fields as given.
fn frame_of(body: &WireBody, version: u16, sequence: u64) -> AlignedVec<16> {
    let mut out = AlignedVec::<16>::new();
    out.resize(HEADER_SIZE_BYTES, 0);
    let mut out = rkyv::api::high::to_bytes_in::<_, rancor::Error>(body, out).unwrap();
    let payload_length = u32::try_from(out.len() - HEADER_SIZE_BYTES).unwrap();
    let header =
        FrameHeader { version, kind: FrameKind::Messages, payload_length, sender: 1, sequence };
    out.resize(header.frame_size_bytes(), 0);
    seal(out.as_mut_slice(), &header);
    out
}

/// Rewrites byte `at` of the frame in `bytes` and recomputes its checksum (authentic again).
fn reseal_with(bytes: &mut [u8], at: usize, value: u8) {
    bytes[at] = value;
    let checksum = crc32c::crc32c(&bytes[8..]);
    bytes[4..8].copy_from_slice(&checksum.to_le_bytes());
}

#[test]
fn every_message_variant_round_trips() {
    let mut encoder = encoder();
    let messages = every_message();
    for (index, message) in messages.iter().enumerate() {
        encoder.push(GroupId(u32::try_from(index).unwrap() * 1000), message).unwrap();
    }
    let bytes = encoder.finish().to_vec();
    let decoded = decode_all(&bytes);
    assert_eq!(decoded.len(), messages.len());
    for (index, ((group, got), sent)) in decoded.iter().zip(&messages).enumerate() {
        assert_eq!(group.0, u32::try_from(index).unwrap() * 1000);
        assert_eq!(got, sent);
    }
}

#[test]
fn a_frame_of_many_groups_is_one_frame_and_batches_are_read_in_place() {
    let mut encoder = encoder();
    for group in 0..100 {
        let message = Message::Accept {
            ballot: ballot(2, 1),
            slot: Slot(group.into()),
            value: batch(&[u8::try_from(group).unwrap(); 100]),
            frontier: Slot(0),
        };
        encoder.push(GroupId(group), &message).unwrap();
    }
    let bytes = aligned(encoder.finish());
    let frame = Frame::check(bytes.as_slice()).unwrap();
    assert_eq!(frame.size_bytes(), bytes.len(), "one frame");
    assert_eq!(frame.header().sequence, 1);
    assert_eq!(frame.messages().len(), 100);
    let base = bytes.as_ptr().addr()..bytes.as_ptr().addr() + bytes.len();
    for (group, envelope) in frame.messages().enumerate() {
        let ArchivedWireMessage::Accept { value, .. } = envelope.message() else { panic!() };
        let batch = value.batch().unwrap();
        assert_eq!(batch, &[u8::try_from(group).unwrap(); 100]);
        assert!(base.contains(&batch.as_ptr().addr()), "the batch is read in the frame buffer");
    }
}

#[test]
fn frames_are_16_aligned_and_payloads_too() {
    let mut encoder = encoder();
    for message in every_message() {
        encoder.push(GroupId(1), &message).unwrap();
        let _ = encoder.finish();
    }
    let bytes = aligned(encoder.finish());
    assert_eq!(bytes.len() % FRAME_ALIGNMENT_BYTES, 0);
    let mut rest = bytes.as_slice();
    while !rest.is_empty() {
        let frame = Frame::check(rest).unwrap();
        assert_eq!(frame.size_bytes() % FRAME_ALIGNMENT_BYTES, 0);
        rest = &rest[frame.size_bytes()..];
    }
}

#[test]
fn every_flipped_bit_is_refused() {
    let mut encoder = encoder();
    encoder.push(GroupId(3), &every_message()[2]).unwrap();
    let bytes = aligned(encoder.finish());
    for at in 0..bytes.len() {
        for bit in 0..8 {
            let mut corrupted = bytes.clone();
            corrupted.as_mut_slice()[at] ^= 1 << bit;
            let error = Frame::check(corrupted.as_slice()).unwrap_err();
            if at >= HEADER_SIZE_BYTES {
                assert!(matches!(error, WireError::Checksum { .. }), "byte {at}: {error}");
            }
        }
    }
}

#[test]
fn a_truncated_frame_is_truncated_at_every_length() {
    let mut encoder = encoder();
    encoder.push(GroupId(3), &every_message()[2]).unwrap();
    let bytes = aligned(encoder.finish());
    for length in 0..bytes.len() {
        let error = Frame::check(&bytes.as_slice()[..length]).unwrap_err();
        assert!(error.is_truncated(), "length {length}: {error}");
        let needed = if length < HEADER_SIZE_BYTES { HEADER_SIZE_BYTES } else { bytes.len() };
        assert_eq!(error, WireError::Truncated { needed, available: length });
    }
    assert!(Frame::check(bytes.as_slice()).is_ok());
}

#[test]
fn a_frame_of_another_version_is_refused_as_an_incompatible_peer() {
    let body = WireBody::default();
    assert!(Frame::check(frame_of(&body, WIRE_VERSION, 0).as_slice()).is_ok());
    for version in [0, WIRE_VERSION + 1, u16::MAX] {
        let frame = frame_of(&body, version, 0);
        let error = Frame::check(frame.as_slice()).unwrap_err();
        let expected =
            WireError::UnsupportedVersion { version, min: WIRE_VERSION_MIN, max: WIRE_VERSION };
        assert_eq!(error, expected);
        assert!(error.is_incompatible_peer());
    }
}

#[test]
fn another_protocol_is_refused_by_its_magic() {
    let mut bytes = aligned(b"*1\r\n$4\r\nPING\r\n__________________________________");
    let error = Frame::check(bytes.as_slice()).unwrap_err();
    assert!(matches!(error, WireError::BadMagic { .. }), "{error}");
    assert!(error.is_incompatible_peer());
    bytes.as_mut_slice()[..4].copy_from_slice(&WIRE_MAGIC);
    assert!(!Frame::check(bytes.as_slice()).unwrap_err().is_incompatible_peer());
}

#[test]
fn an_oversize_length_is_refused_from_the_header_alone() {
    let mut header = [0_u8; HEADER_SIZE_BYTES];
    header[..4].copy_from_slice(&WIRE_MAGIC);
    let over = u32::try_from(PAYLOAD_SIZE_BYTES_MAX + 1).unwrap();
    header[12..16].copy_from_slice(&over.to_le_bytes());
    let bytes = aligned(&header);
    let error = Frame::check(bytes.as_slice()).unwrap_err();
    let size_bytes = u64::try_from(WIRE_FRAME_SIZE_BYTES_MAX + 1).unwrap();
    assert_eq!(
        error,
        WireError::FrameTooLarge { size_bytes, limit_bytes: WIRE_FRAME_SIZE_BYTES_MAX }
    );
    header[12..16].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(matches!(peek_frame_size(&header), Err(WireError::FrameTooLarge { .. })));
    let fits = u32::try_from(PAYLOAD_SIZE_BYTES_MAX).unwrap();
    header[12..16].copy_from_slice(&fits.to_le_bytes());
    assert_eq!(peek_frame_size(&header), Ok(WIRE_FRAME_SIZE_BYTES_MAX));
}

#[test]
fn unknown_kinds_flags_and_padding_are_refused_after_the_checksum() {
    let mut encoder = encoder();
    encoder.push(GroupId(3), &every_message()[0]).unwrap();
    let bytes = aligned(encoder.finish());
    let (header, payload) = check_header(bytes.as_slice()).unwrap();
    assert_ne!(payload.len() % 16, 0, "the frame has padding to corrupt");
    let mut kind = bytes.clone();
    reseal_with(kind.as_mut_slice(), 10, 9);
    assert_eq!(Frame::check(kind.as_slice()).unwrap_err(), WireError::UnknownKind(9));
    let mut flags = bytes.clone();
    reseal_with(flags.as_mut_slice(), 11, 0x80);
    assert_eq!(Frame::check(flags.as_slice()).unwrap_err(), WireError::UnknownFlags(0x80));
    let mut padding = bytes.clone();
    let last = padding.len() - 1;
    padding.as_mut_slice()[last] = 1;
    seal(padding.as_mut_slice(), &header);
    assert_eq!(Frame::check(padding.as_slice()).unwrap_err(), WireError::BadPadding);
}

#[test]
fn a_misaligned_buffer_is_refused() {
    let mut encoder = encoder();
    encoder.push(GroupId(3), &every_message()[0]).unwrap();
    let frame = encoder.finish().to_vec();
    let mut shifted = AlignedVec::<16>::new();
    shifted.extend_from_slice(&[0; 8]);
    shifted.extend_from_slice(&frame);
    assert_eq!(Frame::check(&shifted.as_slice()[8..]).unwrap_err(), WireError::Misaligned);
}

#[test]
fn a_payload_that_is_no_archive_is_refused_by_validation() {
    // A valid checksum over garbage: only rkyv's validation stands between it and a reader.
    let mut bytes = AlignedVec::<16>::new();
    bytes.resize(HEADER_SIZE_BYTES + 64, 0xff);
    let header = FrameHeader {
        version: WIRE_VERSION,
        kind: FrameKind::Messages,
        payload_length: 64,
        sender: 1,
        sequence: 0,
    };
    seal(bytes.as_mut_slice(), &header);
    let error = Frame::check(bytes.as_slice()).unwrap_err();
    assert!(matches!(error, WireError::InvalidPayload(_)), "{error}");
}

#[test]
fn a_message_the_core_cannot_hold_is_refused_at_conversion() {
    let bad_membership =
        WireMembership { epoch: 1, phase1: 1, phase2: 1, voters: vec![1, 2, 3], learners: vec![] };
    let bad_values = [
        WireValueKind::MasterClaim { node: 0, ballot: WireBallot { round: 1, node: 1 } },
        WireValueKind::MembershipChange(bad_membership),
        WireValueKind::MembershipChange(WireMembership {
            epoch: 1,
            phase1: 2,
            phase2: 2,
            voters: vec![2, 1, 3],
            learners: vec![],
        }),
    ];
    for kind in bad_values {
        let value = WireValue { stamp_millis: 1, kind };
        let message = WireMessage::Accept {
            ballot: WireBallot { round: 1, node: 1 },
            slot: 1,
            value,
            frontier: 0,
        };
        let body = WireBody { messages: vec![WireEnvelope { group: 1, message }] };
        let frame = frame_of(&body, WIRE_VERSION, 0);
        let checked = Frame::check(frame.as_slice()).unwrap();
        let envelope = checked.messages().next().unwrap();
        let error = envelope.message().to_message().unwrap_err();
        assert!(matches!(error, WireError::InvalidMessage(_)), "{error}");
    }
    let too_many_voters = WireMembership {
        epoch: 1,
        phase1: 6,
        phase2: 6,
        voters: (1..=10).collect(),
        learners: vec![],
    };
    let too_large =
        WireValueKind::Batch(vec![0; crate::constants::WIRE_BATCH_SIZE_BYTES_MAX + 1].into());
    for kind in [WireValueKind::MembershipChange(too_many_voters), too_large] {
        let value = WireValue { stamp_millis: 1, kind };
        let message = WireMessage::Accept {
            ballot: WireBallot { round: 1, node: 1 },
            slot: 1,
            value,
            frontier: 0,
        };
        let body = WireBody { messages: vec![WireEnvelope { group: 1, message }] };
        let frame = frame_of(&body, WIRE_VERSION, 0);
        let checked = Frame::check(frame.as_slice()).unwrap();
        let error = checked.messages().next().unwrap().message().to_message().unwrap_err();
        assert!(matches!(error, WireError::InvalidMessage(_)), "{error}");
    }
    let entry = WireCatchUpEntry {
        slot: 0,
        value: WireValue { stamp_millis: 0, kind: WireValueKind::Noop },
    };
    let too_many = usize::try_from(crate::constants::CATCH_UP_ENTRIES_MAX).unwrap() + 1;
    let message = WireMessage::CatchUp { entries: vec![entry; too_many], frontier: 0 };
    let body = WireBody { messages: vec![WireEnvelope { group: 1, message }] };
    let frame = frame_of(&body, WIRE_VERSION, 0);
    let checked = Frame::check(frame.as_slice()).unwrap();
    let error = checked.messages().next().unwrap().message().to_message().unwrap_err();
    assert!(matches!(error, WireError::InvalidMessage(_)), "{error}");
}

#[test]
fn the_encoder_starts_a_new_frame_past_the_payload_target() {
    let mut encoder = encoder();
    let value = batch(&vec![7_u8; 100 * 1024]);
    let count = 3 * WIRE_FRAME_PAYLOAD_TARGET_BYTES / (100 * 1024);
    let mut sent = Vec::new();
    for slot in 0..count as u64 {
        let message = Message::Accept {
            ballot: ballot(2, 1),
            slot: Slot(slot),
            value: value.clone(),
            frontier: Slot(0),
        };
        encoder.push(GroupId(9), &message).unwrap();
        sent.push((GroupId(9), message));
    }
    let bytes = aligned(encoder.finish());
    let mut frames = 0;
    let mut rest = bytes.as_slice();
    while !rest.is_empty() {
        let frame = Frame::check(rest).unwrap();
        assert!(frame.size_bytes() <= WIRE_FRAME_PAYLOAD_TARGET_BYTES + HEADER_SIZE_BYTES + 16);
        assert_eq!(frame.header().sequence, 1 + frames);
        frames += 1;
        rest = &rest[frame.size_bytes()..];
    }
    assert!((3..=4).contains(&frames), "{frames} frames");
    assert_eq!(decode_all(bytes.as_slice()), sent);
    encoder.clear();
    assert!(encoder.finish().is_empty(), "nothing pending after a clear");
}

#[test]
fn a_message_larger_than_a_frame_is_refused_by_the_encoder() {
    let mut encoder = encoder();
    let value = batch(&vec![0_u8; PAYLOAD_SIZE_BYTES_MAX]);
    let message = Message::Accept { ballot: ballot(2, 1), slot: Slot(1), value, frontier: Slot(0) };
    let error = encoder.push(GroupId(1), &message).unwrap_err();
    assert!(matches!(error, WireError::MessageTooLarge { .. }), "{error}");
    assert_eq!(encoder.pending_count(), 0);
}

#[test]
fn handshakes_agree_on_the_newest_common_version_or_say_why_not() {
    let ours = Handshake::ours(CLUSTER, node(1), Some(node(2)), CoreIndex(0));
    let theirs = Handshake::ours(CLUSTER, node(2), Some(node(1)), CoreIndex(0));
    assert_eq!(ours.accept(&theirs), Ok(WIRE_VERSION));
    let newer = Handshake { versions: (WIRE_VERSION, WIRE_VERSION + 5), ..theirs };
    assert_eq!(ours.accept(&newer), Ok(WIRE_VERSION));
    let future = Handshake { versions: (WIRE_VERSION + 1, WIRE_VERSION + 5), ..theirs };
    let errors = [
        ours.accept(&future),
        ours.accept(&Handshake { cluster: CLUSTER + 1, ..theirs }),
        ours.accept(&Handshake { node: node(3), target: Some(node(1)), ..theirs }),
        ours.accept(&Handshake { target: Some(node(4)), ..theirs }),
        ours.accept(&Handshake { node: node(1), ..theirs }),
    ];
    for error in errors {
        let error = error.unwrap_err();
        assert!(error.is_incompatible_peer(), "{error}");
    }
    let anyone = Handshake::ours(CLUSTER, node(1), None, CoreIndex(0));
    assert_eq!(anyone.accept(&Handshake { target: None, ..theirs }), Ok(WIRE_VERSION));
}

#[test]
fn a_handshake_frame_round_trips() {
    let mut encoder = Encoder::new(node(5));
    let sent = Handshake::ours(CLUSTER, node(5), Some(node(2)), CoreIndex(3));
    encoder.handshake(&sent);
    let bytes = aligned(encoder.finish());
    let frame = Frame::check(bytes.as_slice()).unwrap();
    assert_eq!(frame.header().kind, FrameKind::Handshake);
    assert_eq!(frame.header().sequence, 0);
    assert_eq!(frame.header().sender, 5);
    assert_eq!(frame.handshake(), Ok(sent));
    assert_eq!(frame.messages().len(), 0);
}

/// `SplitMix64`, for chunkings.
struct Prng(u64);

impl Prng {
    fn below(&mut self, bound: usize) -> usize {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        usize::try_from((z ^ (z >> 31)) % bound as u64).unwrap()
    }
}

/// A connection's stream: handshake, then several turns of messages; and what it carries.
fn stream() -> (Vec<u8>, Vec<(GroupId, Message)>) {
    let mut encoder = Encoder::new(node(1));
    encoder.handshake(&handshake(1));
    let mut sent = Vec::new();
    for turn in 0..6_u32 {
        for (index, message) in every_message().into_iter().enumerate() {
            let group = GroupId(turn * 100 + u32::try_from(index).unwrap());
            encoder.push(group, &message).unwrap();
            sent.push((group, message));
        }
        let big = batch(&vec![u8::try_from(turn).unwrap(); 90_000]);
        let message =
            Message::Accept { ballot: ballot(1, 1), slot: Slot(1), value: big, frontier: Slot(0) };
        encoder.push(GroupId(7), &message).unwrap();
        sent.push((GroupId(7), message));
        let _ = encoder.finish();
    }
    (encoder.finish().to_vec(), sent)
}

/// Feeds `bytes` to a reader in chunks drawn by `prng`, through `spare`/`filled`.
fn read_in_chunks(bytes: &[u8], prng: &mut Prng) -> Result<Vec<(GroupId, Message)>, WireError> {
    let mut reader = FrameReader::new();
    let mut received = Vec::new();
    let mut handshakes = 0;
    let mut at = 0;
    while at < bytes.len() {
        let limit = [1, 7, 16, 100, 4096, 70_000][prng.below(6)];
        let spare = reader.spare();
        assert!(spare.len() >= crate::constants::WIRE_READ_SIZE_BYTES);
        let count = (1 + prng.below(limit)).min(bytes.len() - at).min(spare.len());
        spare[..count].copy_from_slice(&bytes[at..at + count]);
        reader.filled(count);
        at += count;
        while let Some(frame) = reader.next_frame()? {
            if frame.header().kind == FrameKind::Handshake {
                assert_eq!(frame.handshake(), Ok(handshake(1)));
                handshakes += 1;
            }
            for envelope in frame.messages() {
                received.push((envelope.group(), envelope.message().to_message()?));
            }
        }
        assert!(reader.capacity_bytes() <= READER_BUFFER_BYTES_MAX);
    }
    assert_eq!(reader.buffered_bytes(), 0);
    assert_eq!(handshakes, 1);
    Ok(received)
}

#[test]
fn the_reader_yields_the_same_frames_under_any_chunking() {
    let (bytes, sent) = stream();
    for seed in 0..40 {
        let received = read_in_chunks(&bytes, &mut Prng(seed)).unwrap();
        assert_eq!(received, sent, "seed {seed}");
    }
}

#[test]
fn the_reader_refuses_an_oversize_frame_before_buffering_it() {
    let mut reader = FrameReader::new();
    let mut header = [0_u8; HEADER_SIZE_BYTES];
    header[..4].copy_from_slice(&WIRE_MAGIC);
    header[12..16].copy_from_slice(&u32::MAX.to_le_bytes());
    reader.push_bytes(&header[..20]);
    assert!(reader.next_frame().unwrap().is_none(), "the header is not complete yet");
    reader.push_bytes(&header[20..]);
    assert!(matches!(reader.next_frame(), Err(WireError::FrameTooLarge { .. })));
    assert!(reader.capacity_bytes() < 1024 * 1024);
}

#[test]
fn the_reader_enforces_the_connection_rules() {
    let (bytes, _) = stream();
    let first = Frame::check(aligned(&bytes).as_slice()).unwrap().size_bytes();
    // Messages before the handshake (the handshake cut out, sequence 1 first).
    let mut reader = FrameReader::new();
    reader.push_bytes(&bytes[first..]);
    assert!(matches!(reader.next_frame(), Err(WireError::OutOfSequence { expected: 0, .. })));
    let mut reader = FrameReader::new();
    reader.push_bytes(&frame_of(&WireBody::default(), WIRE_VERSION, 0));
    assert!(matches!(reader.next_frame(), Err(WireError::HandshakeOutOfPlace(_))));
    // A second handshake.
    let mut reader = FrameReader::new();
    reader.push_bytes(&bytes[..first]);
    let mut again = Encoder::new(node(1));
    again.handshake(&handshake(1));
    let mut second = again.finish().to_vec();
    reseal_with(&mut second, 24, 1);
    reader.push_bytes(&second);
    assert!(reader.next_frame().unwrap().is_some());
    assert!(matches!(reader.next_frame(), Err(WireError::HandshakeOutOfPlace(_))));
    // Another sender after the handshake.
    let mut reader = FrameReader::new();
    reader.push_bytes(&bytes[..first]);
    let mut other = frame_of(&WireBody::default(), WIRE_VERSION, 1);
    reseal_with(other.as_mut_slice(), 16, 2);
    reader.push_bytes(&other);
    assert!(reader.next_frame().unwrap().is_some());
    assert_eq!(reader.next_frame().unwrap_err(), WireError::WrongNode { expected: 1, found: 2 });
}

/// Moves everything `from` has to send into `to`, in reads of at most `chunk` bytes, polling
/// after each; returns what `to` delivered, converted, or its error.
fn pump(
    from: &mut PeerCodec,
    to: &mut PeerCodec,
    chunk: usize,
) -> Result<Vec<(GroupId, Message)>, WireError> {
    let bytes = from.outgoing().to_vec();
    from.written();
    let mut delivered = Vec::new();
    for piece in bytes.chunks(chunk) {
        let spare = to.spare();
        spare[..piece.len()].copy_from_slice(piece);
        to.received(piece.len());
        to.poll(|group, message| delivered.push((group, message.to_message().unwrap())))?;
    }
    Ok(delivered)
}

fn codec(id: u64, target: Option<u64>) -> PeerCodec {
    PeerCodec::new(Handshake::ours(CLUSTER, node(id), target.map(node), CoreIndex(0)))
}

#[test]
fn two_codecs_shake_hands_then_exchange_every_message() {
    let mut dialer = codec(1, Some(2));
    let mut listener = codec(2, None);
    let early = dialer.send(GroupId(1), &every_message()[0]);
    assert_eq!(early, Err(WireError::NotEstablished), "nothing is sent before the handshake");
    assert_eq!(pump(&mut dialer, &mut listener, 5), Ok(Vec::new()));
    assert!(listener.is_established());
    assert_eq!(listener.peer().map(|peer| peer.node), Some(node(1)));
    assert_eq!(pump(&mut listener, &mut dialer, 4096), Ok(Vec::new()));
    assert_eq!(dialer.version(), Some(WIRE_VERSION));
    for turn in 0..3 {
        let mut sent = Vec::new();
        for (index, message) in every_message().into_iter().enumerate() {
            let group = GroupId(turn * 100 + u32::try_from(index).unwrap());
            dialer.send(group, &message).unwrap();
            sent.push((group, message));
        }
        assert_eq!(pump(&mut dialer, &mut listener, 1 + 333 * turn as usize), Ok(sent));
    }
    let reply = Message::Accepted(Accepted::received(ballot(3, 1), Slot(41)));
    listener.send(GroupId(7), &reply).unwrap();
    assert_eq!(pump(&mut listener, &mut dialer, 64), Ok(vec![(GroupId(7), reply)]));
    // Garbage after the handshake is a broken stream, not an incompatible peer.
    dialer.spare()[..32].copy_from_slice(&[b'x'; 32]);
    dialer.received(32);
    let error = dialer.poll(|_, _| {}).unwrap_err();
    assert!(matches!(error, WireError::LostFraming { .. }), "{error}");
    assert!(!error.is_incompatible_peer());
}

#[test]
fn a_codec_refuses_an_incompatible_peer_for_good() {
    let mut ours = codec(1, Some(2));
    let mut other_cluster =
        PeerCodec::new(Handshake::ours(CLUSTER + 1, node(2), None, CoreIndex(0)));
    let error = pump(&mut other_cluster, &mut ours, 4096).unwrap_err();
    assert_eq!(error, WireError::WrongCluster { expected: CLUSTER, found: CLUSTER + 1 });
    assert!(error.is_incompatible_peer());
    assert!(!ours.is_established());
    assert_eq!(ours.poll(|_, _| {}), Err(error.clone()), "errors are final");
    assert_eq!(ours.send(GroupId(1), &every_message()[0]), Err(error));
    // The wrong node answered the address we dialled.
    let mut ours = codec(1, Some(2));
    let error = pump(&mut codec(3, None), &mut ours, 4096).unwrap_err();
    assert_eq!(error, WireError::WrongNode { expected: 2, found: 3 });
    // Not a Klein peer at all.
    let mut ours = codec(1, Some(2));
    ours.spare()[..14].copy_from_slice(b"*1\r\n$4\r\nPING\r\n");
    ours.received(14);
    assert_eq!(ours.poll(|_, _| {}), Ok(0), "14 bytes are not a header yet");
    ours.spare()[..18].copy_from_slice(&[b'x'; 18]);
    ours.received(18);
    assert!(ours.poll(|_, _| {}).unwrap_err().is_incompatible_peer());
}

#[test]
fn a_codec_refuses_a_peer_without_a_common_version() {
    let mut ours = codec(1, None);
    let mut encoder = Encoder::new(node(2));
    let future = Handshake { versions: (WIRE_VERSION + 1, WIRE_VERSION + 2), ..handshake(2) };
    encoder.handshake(&future);
    let bytes = encoder.finish().to_vec();
    ours.spare()[..bytes.len()].copy_from_slice(&bytes);
    ours.received(bytes.len());
    let error = ours.poll(|_, _| {}).unwrap_err();
    assert!(matches!(error, WireError::NoCommonVersion { .. }), "{error}");
    assert!(error.is_incompatible_peer());
}

#[test]
fn buffers_grown_for_a_large_frame_are_given_back() {
    let mut encoder = encoder();
    let large = batch(&vec![1_u8; 2 * ENCODER_OUTPUT_BYTES_KEPT]);
    let message =
        Message::Accept { ballot: ballot(2, 1), slot: Slot(1), value: large, frontier: Slot(0) };
    encoder.push(GroupId(1), &message).unwrap();
    let bytes = encoder.finish().to_vec();
    assert!(encoder.capacity_bytes() > ENCODER_OUTPUT_BYTES_KEPT);
    encoder.clear();
    assert!(encoder.capacity_bytes() <= ENCODER_OUTPUT_BYTES_KEPT);
    let mut reader = FrameReader::new();
    let mut hello = Encoder::new(node(1));
    hello.handshake(&handshake(1));
    reader.push_bytes(hello.finish());
    assert!(reader.next_frame().unwrap().is_some());
    reader.push_bytes(&bytes);
    assert!(reader.capacity_bytes() > READER_BUFFER_BYTES_KEPT);
    assert_eq!(reader.next_frame().unwrap().map(|frame| frame.messages().len()), Some(1));
    let _ = reader.spare();
    assert!(reader.capacity_bytes() <= READER_BUFFER_BYTES_KEPT);
}

/// Every snapshot-transfer message, with a meta of two configurations.
fn every_snapshot_message() -> Vec<SnapshotMessage> {
    let membership = Membership::majority(1, nodes(&[1, 2, 3]), BTreeSet::new()).unwrap();
    let meta = crate::consensus::SnapshotMeta {
        slot: Slot(4097),
        configurations: vec![(Slot(0), membership.clone()), (Slot(9), membership)],
        stamp_millis: 12_345,
    };
    vec![
        SnapshotMessage::Request { group: GroupId(7), slot: Slot(4000), offset: 3 << 20 },
        SnapshotMessage::Chunk {
            group: GroupId(7),
            meta,
            total: 10,
            offset: 4,
            bytes: vec![1, 2, 3, 4, 5, 6],
        },
        SnapshotMessage::Refused { group: GroupId(7), slot: Slot(4000) },
    ]
}

/// The snapshot messages in the frames of `bytes`, converted; consensus messages skipped.
fn decode_snapshots(bytes: &[u8]) -> Vec<Result<SnapshotMessage, WireError>> {
    let buffer = aligned(bytes);
    let mut rest = buffer.as_slice();
    let mut out = Vec::new();
    while !rest.is_empty() {
        let frame = Frame::check(rest).unwrap();
        if let CheckedBody::Snapshot(snapshot) = frame.body() {
            out.push(snapshot.to_snapshot_message());
        }
        rest = &rest[frame.size_bytes()..];
    }
    out
}

#[test]
fn snapshot_frames_round_trip_between_consensus_messages_in_order() {
    let mut encoder = encoder();
    encoder.push(GroupId(3), &every_message()[0]).unwrap();
    for message in every_snapshot_message() {
        encoder.push_snapshot(&WireSnapshot::from(&message));
    }
    encoder.push(GroupId(3), &every_message()[1]).unwrap();
    let bytes = encoder.finish().to_vec();
    let decoded: Vec<SnapshotMessage> =
        decode_snapshots(&bytes).into_iter().map(Result::unwrap).collect();
    assert_eq!(decoded, every_snapshot_message());
    assert_eq!(decode_all(&bytes).len(), 2, "the consensus messages around them survive");
    // The stream reader takes them under the connection rules.
    let mut reader = FrameReader::new();
    let mut ours = Encoder::new(node(1));
    ours.handshake(&handshake(1));
    reader.push_bytes(ours.finish());
    reader.push_bytes(&bytes);
    let mut frames = 0;
    while reader.next_frame().unwrap().is_some() {
        frames += 1;
    }
    assert_eq!(frames, 1 + 2 + 3);
}

#[test]
fn a_snapshot_chunk_out_of_bounds_or_with_a_bad_meta_is_refused() {
    let SnapshotMessage::Chunk { meta, .. } = every_snapshot_message().swap_remove(1) else {
        unreachable!()
    };
    let chunk = |meta: &crate::consensus::SnapshotMeta, total: u64, offset: u64, len: usize| {
        let message = SnapshotMessage::Chunk {
            group: GroupId(1),
            meta: meta.clone(),
            total,
            offset,
            bytes: vec![0; len],
        };
        let mut encoder = encoder();
        encoder.push_snapshot(&WireSnapshot::from(&message));
        decode_snapshots(encoder.finish()).pop().unwrap()
    };
    assert!(chunk(&meta, 10, 4, 6).is_ok());
    assert!(matches!(chunk(&meta, 10, 5, 6), Err(WireError::InvalidMessage(_))));
    assert!(matches!(chunk(&meta, u64::MAX, u64::MAX, 1), Err(WireError::InvalidMessage(_))));
    let too_long = crate::constants::SNAPSHOT_CHUNK_BYTES + 1;
    assert!(matches!(chunk(&meta, u64::MAX, 0, too_long), Err(WireError::InvalidMessage(_))));
    let zero = crate::consensus::SnapshotMeta { slot: Slot(0), ..meta };
    assert!(matches!(chunk(&zero, 10, 0, 1), Err(WireError::InvalidMessage(_))));
}

/// Every forwarding message.
fn every_forward_message() -> Vec<ForwardMessage> {
    vec![
        ForwardMessage::Request {
            group: GroupId(5),
            id: 77,
            kind: WireForwardKind::Write,
            batch: vec![9, 8, 7],
        },
        ForwardMessage::Request {
            group: GroupId(5),
            id: 78,
            kind: WireForwardKind::Lease,
            batch: Vec::new(),
        },
        ForwardMessage::Replies { group: GroupId(5), id: 77, replies: vec![1; 100] },
        ForwardMessage::Refused {
            group: GroupId(5),
            id: 78,
            reason: ForwardRefusal::NotMaster,
            master: Some(node(2)),
        },
        ForwardMessage::Refused {
            group: GroupId(6),
            id: 79,
            reason: ForwardRefusal::Overloaded,
            master: None,
        },
    ]
}

#[test]
fn forward_frames_round_trip_between_consensus_messages_in_order() {
    let mut encoder = encoder();
    encoder.push(GroupId(3), &every_message()[0]).unwrap();
    for message in every_forward_message() {
        encoder.push_forward(&WireForward::from(&message));
    }
    encoder.push(GroupId(3), &every_message()[1]).unwrap();
    let bytes = encoder.finish().to_vec();
    let buffer = aligned(&bytes);
    let mut rest = buffer.as_slice();
    let mut decoded = Vec::new();
    while !rest.is_empty() {
        let frame = Frame::check(rest).unwrap();
        if let CheckedBody::Forward(forward) = frame.body() {
            decoded.push(forward.to_forward_message().unwrap());
        }
        rest = &rest[frame.size_bytes()..];
    }
    assert_eq!(decoded, every_forward_message());
    assert_eq!(decode_all(&bytes).len(), 2, "the consensus messages around them survive");
}

#[test]
fn forward_frames_with_a_bad_reason_or_master_are_refused() {
    for (reason, master) in [(0_u8, 0_u64), (9, 0)] {
        let wire = WireForward::Refused { group: 1, id: 2, reason, master };
        let mut encoder = encoder();
        encoder.push_forward(&wire);
        let buffer = aligned(encoder.finish());
        let frame = Frame::check(buffer.as_slice()).unwrap();
        let CheckedBody::Forward(forward) = frame.body() else { panic!("a forward frame") };
        assert!(
            matches!(forward.to_forward_message(), Err(WireError::InvalidMessage(_))),
            "reason {reason} master {master}"
        );
    }
}
