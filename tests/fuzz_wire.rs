//! Fuzz harness for the peer wire format (`src/wire/`), on stable Rust, after `fuzz_log`.
//!
//! Two targets, each checking what `docs/design/wire.md` promises, not only that nothing panics:
//!
//! - `frame`: arbitrary bytes at an arbitrary misalignment, optionally given an authentic
//!   header (magic, length, version, checksum fixed up) so that rkyv's validation and the
//!   conversions see arbitrary archives. `Frame::check` never panics; it refuses a misaligned
//!   buffer; a frame it accepts has the documented layout (magic, length, a CRC32C recomputed
//!   here over bytes 8 .. end, zero padding) and lies within the input; every message of an
//!   accepted frame converts or is refused without a panic, and one that converts re-encodes
//!   and decodes to itself. The same bytes fed to a `FrameReader` never panic it either.
//! - `stream`: arbitrary `(group, message)` lists in several loop turns, encoded by `Encoder`
//!   after a handshake, cut into arbitrary chunks and fed to a `PeerCodec` (the transport's
//!   codec: handshake acceptance, then frames from its `FrameReader`), optionally with
//!   one byte of the stream corrupted. Untouched, every message comes back in order, equal;
//!   corrupted, what comes back is a prefix of what was sent, frame by frame (a damaged frame
//!   is never delivered), and the reader stops with an error or waits for bytes.
//!
//! Corpus: `tests/fuzz-corpus/wire-<target>/`, one file per input named by a hash of its
//! content. `corpus_replays` runs every file, `explores` mutates corpus entries for a bounded
//! number of iterations with a seeded generator in every test run. Long campaigns
//! (`perf/fuzz_wire.sh`):
//!
//! ```text
//! KLEIN_FUZZ_SECONDS=300 KLEIN_FUZZ_SEED=42 KLEIN_FUZZ_SAVE=1 \
//!     cargo test --release --test fuzz_wire explores -- --nocapture --test-threads=1
//! ```
//!
//! `KLEIN_FUZZ_ITERATIONS`, `KLEIN_FUZZ_SECONDS` and `KLEIN_FUZZ_SEED` bound and seed the
//! exploration; `KLEIN_FUZZ_SAVE=1` writes the built-in seeds and inputs with a new outcome
//! signature into the corpus. A failing input is written to `target/fuzz-crashes/` with the
//! command that replays it.

use std::collections::{BTreeSet, HashSet};
use std::env;
use std::fs;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use arbitrary::{Arbitrary, Unstructured};
use klein::consensus::{Accepted, Membership, Message, Promise, PromiseEntry, Value, ValueKind};
use klein::constants::{SUPERBLOCK_GROUP_LEARNERS_COUNT_MAX, SUPERBLOCK_GROUP_MEMBERS_COUNT_MAX};
use klein::types::{Ballot, CoreIndex, GroupId, NodeId, Slot};
use klein::wire::{
    CheckedBody, CheckedFrame, Encoder, FRAME_ALIGNMENT_BYTES, ForwardMessage, ForwardRefusal,
    Frame, FrameReader, HEADER_SIZE_BYTES, Handshake, PeerCodec, WIRE_MAGIC, WIRE_VERSION,
    WireError, WireForward, WireForwardKind,
};
use rkyv::util::AlignedVec;

/// Longest input the exploration builds; longer mutants are cut.
const INPUT_BYTES_MAX: usize = 8 * 1024;
/// Most byte-level mutations applied to one corpus entry to make a new input.
const MUTATIONS_PER_INPUT_MAX: usize = 4;
/// Failures after which an exploration stops early.
const FAILURES_MAX: usize = 5;
/// The generator's seed when `KLEIN_FUZZ_SEED` is not set.
const SEED_DEFAULT: u64 = 0x7769_7265_2d66_757a;
/// Longest batch a generated value carries.
const BATCH_BYTES_MAX: usize = 300;
/// Most messages, promise entries and catch-up entries a generated case holds.
const MESSAGES_MAX: usize = 40;
const ENTRIES_MAX: usize = 6;

/// The node every stream comes from.
fn sender() -> NodeId {
    NodeId::new(3).expect("3 is a node id")
}

fn handshake() -> Handshake {
    Handshake::ours(0x6b6c, sender(), None, CoreIndex(0))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Target {
    Frame,
    Stream,
}

impl Target {
    fn name(self) -> &'static str {
        match self {
            Target::Frame => "frame",
            Target::Stream => "stream",
        }
    }

    fn run(self, data: &[u8]) -> Result<String, String> {
        match self {
            Target::Frame => frame_target(data),
            Target::Stream => stream_target(data),
        }
    }

    /// Iterations of a normal test run: a second or two in release mode on this machine.
    fn iterations_default(self) -> u64 {
        match self {
            Target::Frame => 300_000,
            Target::Stream => 50_000,
        }
    }

    fn corpus_dir(self) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fuzz-corpus")
            .join(format!("wire-{}", self.name()))
    }

    fn of_path(path: &str) -> Target {
        if path.contains("stream") { Target::Stream } else { Target::Frame }
    }
}

// ---------------------------------------------------------------------------------------------
// Target `frame`.

/// Control byte of a frame input: bits 0-3 misalign the buffer by that many bytes, bit 4
/// fixes up an authentic header around the rest, bit 5 keeps the input's version byte (else
/// the fix-up writes `WIRE_VERSION`), bit 6 makes the fixed-up frame a handshake.
const MISALIGN_MASK: u8 = 0x0f;
const AUTHENTIC: u8 = 0x10;
const KEEP_VERSION: u8 = 0x20;
const HANDSHAKE: u8 = 0x40;

/// Gives `frame` an authentic header: magic, the payload length of the bytes after the header
/// (cut to a multiple of 16 with zero padding), version and kind, then the CRC32C of bytes 8 ..
/// end, all as documented (an independent writer of the layout).
fn fix_up(frame: &mut Vec<u8>, control: u8) {
    if frame.len() < HEADER_SIZE_BYTES {
        frame.resize(HEADER_SIZE_BYTES, 0);
    }
    let payload_length = frame.len() - HEADER_SIZE_BYTES;
    frame.resize(HEADER_SIZE_BYTES + payload_length.next_multiple_of(16), 0);
    frame[0..4].copy_from_slice(&WIRE_MAGIC);
    if control & KEEP_VERSION == 0 {
        frame[8..10].copy_from_slice(&WIRE_VERSION.to_le_bytes());
    }
    frame[10] = if control & HANDSHAKE == 0 { 2 } else { 1 };
    frame[11] = 0;
    let length = u32::try_from(payload_length).expect("inputs are small");
    frame[12..16].copy_from_slice(&length.to_le_bytes());
    let checksum = crc32c::crc32c(&frame[8..]);
    frame[4..8].copy_from_slice(&checksum.to_le_bytes());
}

/// What the documented layout says of an accepted frame.
fn check_layout(frame: &CheckedFrame<'_>, bytes: &[u8]) -> Result<(), String> {
    let size = frame.size_bytes();
    let header = frame.header();
    let whole = bytes.get(..size).ok_or("an accepted frame reaches past the input")?;
    let ok = size.is_multiple_of(FRAME_ALIGNMENT_BYTES)
        && whole[0..4] == WIRE_MAGIC
        && u32::from_le_bytes(whole[4..8].try_into().expect("4 bytes"))
            == crc32c::crc32c(&whole[8..])
        && whole[11] == 0
        && HEADER_SIZE_BYTES + header.payload_length as usize <= size
        && size - HEADER_SIZE_BYTES - (header.payload_length as usize) < 16
        && whole[HEADER_SIZE_BYTES + header.payload_length as usize..].iter().all(|b| *b == 0);
    if ok { Ok(()) } else { Err(format!("an accepted frame breaks the layout: {header:?}")) }
}

/// Converts every message of `frame`; those that convert must re-encode and decode equal.
fn check_messages(frame: &CheckedFrame<'_>) -> Result<String, String> {
    match frame.body() {
        CheckedBody::Forward(forward) => return check_forward(forward.to_forward_message()),
        CheckedBody::Snapshot(snapshot) => {
            return Ok(match snapshot.to_snapshot_message() {
                Ok(_) => "ok 1/0".to_string(),
                Err(WireError::InvalidMessage(_)) => "ok 0/1".to_string(),
                Err(other) => return Err(format!("snapshot conversion gave {other:?}")),
            });
        }
        CheckedBody::Handshake(_) | CheckedBody::Messages(_) => {}
    }
    let mut converted = Vec::new();
    let mut refused = 0;
    for envelope in frame.messages() {
        match envelope.message().to_message() {
            Ok(message) => converted.push((envelope.group(), message)),
            Err(WireError::InvalidMessage(_)) => refused += 1,
            Err(other) => return Err(format!("conversion gave {other:?}")),
        }
    }
    let mut encoder = Encoder::new(sender());
    encoder.handshake(&handshake());
    encoder.clear();
    for (group, message) in &converted {
        encoder.push(*group, message).map_err(|error| format!("re-encoding: {error}"))?;
    }
    let again = decode_stream_frames(encoder.finish())?;
    if again != converted {
        return Err("a converted message does not re-encode to itself".to_string());
    }
    let _ = frame.handshake();
    Ok(format!("ok {}/{}", converted.len(), refused))
}

/// A forwarding message that converts must re-encode and decode equal.
fn check_forward(converted: Result<ForwardMessage, WireError>) -> Result<String, String> {
    let message = match converted {
        Ok(message) => message,
        Err(WireError::InvalidMessage(_)) => return Ok("ok 0/1".to_string()),
        Err(other) => return Err(format!("forward conversion gave {other:?}")),
    };
    let mut encoder = Encoder::new(sender());
    encoder.push_forward(&WireForward::from(&message));
    let mut buffer = AlignedVec::<16>::new();
    buffer.extend_from_slice(encoder.finish());
    let frame = Frame::check(buffer.as_slice()).map_err(|error| format!("own frame: {error}"))?;
    let CheckedBody::Forward(again) = frame.body() else { return Err("not a forward".into()) };
    if again.to_forward_message().as_ref() != Ok(&message) {
        return Err("a converted forward does not re-encode to itself".to_string());
    }
    Ok("ok 1/0".to_string())
}

fn frame_target(data: &[u8]) -> Result<String, String> {
    let Some((&control, rest)) = data.split_first() else { return Ok("empty".to_string()) };
    let mut frame = rest.to_vec();
    if control & AUTHENTIC != 0 {
        fix_up(&mut frame, control);
    }
    let misalign = usize::from(control & MISALIGN_MASK);
    let mut buffer = AlignedVec::<16>::new();
    buffer.resize(misalign, 0);
    buffer.extend_from_slice(&frame);
    let bytes = &buffer.as_slice()[misalign..];
    let verdict = Frame::check(bytes);
    if misalign != 0 && !matches!(verdict, Err(WireError::Misaligned)) {
        return Err(format!("a misaligned buffer gave {verdict:?}"));
    }
    let signature = match &verdict {
        Ok(frame) => {
            check_layout(frame, bytes)?;
            format!("{:?}|{}", frame.header().kind, check_messages(frame)?)
        }
        Err(error) => format!("{}|", error_name(error)),
    };
    // The stream reader on the same bytes: no panic, and the same first verdict.
    let mut reader = FrameReader::new();
    reader.push_bytes(&frame);
    let _ = reader.next_frame().map(|frame| frame.map(|frame| frame.size_bytes()));
    Ok(signature)
}

fn error_name(error: &WireError) -> String {
    format!("{error:?}").split([' ', '(', '{']).next().unwrap_or_default().to_string()
}

/// Every (group, message) of the frames in `bytes` (a handshake-less run of messages frames).
fn decode_stream_frames(bytes: &[u8]) -> Result<Vec<(GroupId, Message)>, String> {
    let mut buffer = AlignedVec::<16>::new();
    buffer.extend_from_slice(bytes);
    let mut rest = buffer.as_slice();
    let mut out = Vec::new();
    while !rest.is_empty() {
        let frame = Frame::check(rest).map_err(|error| format!("own frame refused: {error}"))?;
        for envelope in frame.messages() {
            let message = envelope.message().to_message().map_err(|error| error.to_string())?;
            out.push((envelope.group(), message));
        }
        rest = &rest[frame.size_bytes()..];
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Target `stream`.

#[derive(Arbitrary, Clone, Debug)]
struct StreamCase {
    /// Messages with the turn they are sent in (turns end at each `true`).
    messages: Vec<(u32, ArbitraryMessage, bool)>,
    /// Chunk sizes the stream is cut into (cycled; 0 reads as 1).
    chunks: Vec<u16>,
    /// `(position modulo the stream's length, xor)`: one corrupted byte.
    corruption: Option<(u32, u8)>,
}

#[derive(Arbitrary, Clone, Debug)]
enum ArbitraryMessage {
    Prepare(u64, u64, u64, bool),
    Promise(u64, u64, u64, Vec<(u64, u64, u64, ArbitraryValue, bool)>, bool, Option<u64>),
    Accept(u64, u64, u64, ArbitraryValue, u64),
    Accepted(u64, u64, u64),
    Reject(u64, u64, u64, u64),
    Heartbeat(u64, u64, u64, u64, u64),
    HeartbeatAck(u64, u64, u64, u64),
    CatchUpRequest(u64),
    CatchUp(Vec<(u64, ArbitraryValue)>, u64),
    SnapshotOffer(u64),
    TimeoutNow(u64, u64),
}

#[derive(Arbitrary, Clone, Debug)]
enum ArbitraryValue {
    Noop(u64),
    Batch(u64, Vec<u8>),
    Membership(u64, u64, u16, u16, u8, u8),
    Claim(u64, u64, u64, u64),
}

fn node(id: u64) -> NodeId {
    NodeId::new(id.max(1)).expect("nonzero")
}

/// The low `bits` bits.
fn mask(bits: usize) -> u16 {
    u16::try_from((1_u32 << bits) - 1).expect("at most 16 bits")
}

fn nodes(mask: u16, base: u64) -> BTreeSet<NodeId> {
    (0..16).filter(|bit| mask & (1 << bit) != 0).map(|bit| node(base + bit)).collect()
}

impl ArbitraryValue {
    fn value(&self) -> Value {
        let (stamp_millis, kind) = match self {
            ArbitraryValue::Noop(stamp) => (*stamp, ValueKind::Noop),
            ArbitraryValue::Batch(stamp, bytes) => {
                let bytes = &bytes[..bytes.len().min(BATCH_BYTES_MAX)];
                (*stamp, ValueKind::Batch(Arc::from(bytes)))
            }
            ArbitraryValue::Membership(stamp, epoch, voters, learners, phase1, phase2) => {
                // At most the voters and learners a node stores: the wire refuses more.
                let voters = nodes((voters & mask(SUPERBLOCK_GROUP_MEMBERS_COUNT_MAX)) | 1, 1);
                let learners = nodes(learners & mask(SUPERBLOCK_GROUP_LEARNERS_COUNT_MAX), 100);
                let flexible = Membership::flexible(
                    *epoch,
                    voters.clone(),
                    learners.clone(),
                    usize::from(*phase1),
                    usize::from(*phase2),
                );
                let membership = flexible.unwrap_or_else(|_| {
                    Membership::majority(*epoch, voters, learners).expect("has a voter")
                });
                (*stamp, ValueKind::MembershipChange(membership))
            }
            ArbitraryValue::Claim(stamp, id, round, ballot_node) => {
                let ballot = Ballot { round: *round, node: *ballot_node };
                (*stamp, ValueKind::MasterClaim { node: node(*id), ballot })
            }
        };
        Value { stamp_millis, kind }
    }
}

fn ballot(round: u64, node: u64) -> Ballot {
    Ballot { round, node }
}

impl ArbitraryMessage {
    fn message(&self) -> Message {
        match self {
            ArbitraryMessage::Prepare(round, id, from, transfer) => Message::Prepare {
                ballot: ballot(*round, *id),
                from: Slot(*from),
                transfer: *transfer,
            },
            ArbitraryMessage::Promise(round, id, from, entries, more, behind) => {
                let entries = entries
                    .iter()
                    .take(ENTRIES_MAX)
                    .map(|(slot, round, id, value, chosen)| PromiseEntry {
                        slot: Slot(*slot),
                        ballot: ballot(*round, *id),
                        value: value.value(),
                        chosen: *chosen,
                    })
                    .collect();
                let promise = Promise::received(
                    (ballot(*round, *id), Slot(*from)),
                    (entries, *more),
                    behind.map(Slot),
                );
                Message::Promise(promise)
            }
            ArbitraryMessage::Accept(round, id, slot, value, frontier) => Message::Accept {
                ballot: ballot(*round, *id),
                slot: Slot(*slot),
                value: value.value(),
                frontier: Slot(*frontier),
            },
            ArbitraryMessage::Accepted(round, id, slot) => {
                Message::Accepted(Accepted::received(ballot(*round, *id), Slot(*slot)))
            }
            ArbitraryMessage::Reject(a, b, c, d) => {
                Message::Reject { ballot: ballot(*a, *b), promised: ballot(*c, *d) }
            }
            ArbitraryMessage::Heartbeat(round, id, frontier, truncation, lease) => {
                Message::Heartbeat {
                    ballot: ballot(*round, *id),
                    frontier: Slot(*frontier),
                    truncation: Slot(*truncation),
                    round: *lease,
                }
            }
            ArbitraryMessage::HeartbeatAck(round, id, lease, applied) => Message::HeartbeatAck {
                ballot: ballot(*round, *id),
                round: *lease,
                applied: Slot(*applied),
            },
            ArbitraryMessage::CatchUpRequest(from) => Message::CatchUpRequest { from: Slot(*from) },
            ArbitraryMessage::CatchUp(entries, frontier) => Message::CatchUp {
                entries: entries
                    .iter()
                    .take(ENTRIES_MAX)
                    .map(|(slot, value)| (Slot(*slot), value.value()))
                    .collect(),
                frontier: Slot(*frontier),
            },
            ArbitraryMessage::SnapshotOffer(slot) => Message::SnapshotOffer { slot: Slot(*slot) },
            ArbitraryMessage::TimeoutNow(round, id) => {
                Message::TimeoutNow { ballot: ballot(*round, *id) }
            }
        }
    }
}

/// Messages in the order they were sent, with their groups.
type Sent = Vec<(GroupId, Message)>;

/// Encodes the case's stream: the handshake, then one `finish` per turn. Returns the bytes,
/// what was sent, and where each frame ends with the count of messages sent up to it.
fn encode_stream(case: &StreamCase) -> (Vec<u8>, Sent, Vec<(usize, usize)>) {
    let mut encoder = Encoder::new(sender());
    encoder.handshake(&handshake());
    let mut bytes = encoder.finish().to_vec();
    encoder.clear();
    let mut sent = Vec::new();
    let mut frame_ends = vec![(bytes.len(), 0)];
    for (group, message, ends_turn) in case.messages.iter().take(MESSAGES_MAX) {
        let message = message.message();
        encoder.push(GroupId(*group), &message).expect("small messages fit a frame");
        sent.push((GroupId(*group), message));
        if *ends_turn {
            bytes.extend_from_slice(encoder.finish());
            encoder.clear();
            frame_ends.push((bytes.len(), sent.len()));
        }
    }
    bytes.extend_from_slice(encoder.finish());
    frame_ends.push((bytes.len(), sent.len()));
    (bytes, sent, frame_ends)
}

fn stream_target(data: &[u8]) -> Result<String, String> {
    let Ok(case) = StreamCase::arbitrary(&mut Unstructured::new(data)) else {
        return Ok("unreadable".to_string());
    };
    let (mut bytes, sent, frame_ends) = encode_stream(&case);
    let corrupted = case.corruption.filter(|(_, xor)| *xor != 0).map(|(position, xor)| {
        let at = position as usize % bytes.len();
        bytes[at] ^= xor;
        at
    });
    // The receiving side is the codec the transport drives: handshake, then messages.
    let mut codec = PeerCodec::new(Handshake::ours(0x6b6c, node(4), None, CoreIndex(1)));
    let mut received = Vec::new();
    let mut at = 0;
    let mut chunks = case.chunks.iter().cycle();
    let mut error = None;
    while at < bytes.len() {
        let chunk = chunks.next().map_or(bytes.len(), |size| usize::from(*size).max(1));
        let spare = codec.spare();
        let count = chunk.min(spare.len()).min(bytes.len() - at);
        spare[..count].copy_from_slice(&bytes[at..at + count]);
        codec.received(count);
        at += count;
        let polled = codec.poll(|group, message| received.push((group, message.to_message())));
        if let Err(refused) = polled {
            error = Some(refused);
            break;
        }
    }
    let received: Vec<(GroupId, Message)> = received
        .into_iter()
        .map(|(group, message)| message.map(|message| (group, message)))
        .collect::<Result<_, _>>()
        .map_err(|error| format!("a delivered message does not convert: {error}"))?;
    if corrupted.is_none() && codec.peer() != Some(&handshake()) {
        return Err("the codec did not establish with the sender".to_string());
    }
    match corrupted {
        None => {
            if let Some(error) = error {
                return Err(format!("an untouched stream was refused: {error}"));
            }
            if received != sent {
                return Err("an untouched stream came back different".to_string());
            }
            Ok(format!("clean|{}", frame_ends.len()))
        }
        Some(at) => {
            // Frames wholly before the corrupted byte are delivered; nothing of its frame is.
            let intact = frame_ends.iter().filter(|(end, _)| *end <= at).map(|(_, n)| *n).max();
            let intact = intact.unwrap_or(0);
            if received.len() > intact || received[..] != sent[..received.len()] {
                return Err(format!(
                    "a corrupted stream (byte {at}) delivered {} messages, {intact} intact",
                    received.len()
                ));
            }
            let how = error.as_ref().map_or("waiting".to_string(), error_name);
            Ok(format!("corrupt {how}|{}", frame_ends.len()))
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Harness: corpus, seeds, exploration.

/// Valid frames of every message (with control bytes 0 and `AUTHENTIC`), garbage under an
/// authentic header, and a few raw headers.
fn frame_seeds() -> Vec<Vec<u8>> {
    let mut seeds = Vec::new();
    let case = stream_seed_case(0);
    let (bytes, _, frame_ends) = encode_stream(&case);
    let mut start = 0;
    for (end, _) in frame_ends {
        if end > start {
            for control in [0, AUTHENTIC, 8] {
                let mut seed = vec![control];
                seed.extend_from_slice(&bytes[start..end]);
                seeds.push(seed);
            }
        }
        start = end;
    }
    for control in [AUTHENTIC, AUTHENTIC | HANDSHAKE, AUTHENTIC | KEEP_VERSION] {
        let mut seed = vec![control];
        seed.extend((0..96_u8).map(|byte| byte.wrapping_mul(37)));
        seeds.push(seed);
    }
    // Forwarding frames: a request, replies, a refusal.
    let forwards = [
        ForwardMessage::Request {
            group: GroupId(3),
            id: 9,
            kind: WireForwardKind::Write,
            batch: b"SET key value".to_vec(),
        },
        ForwardMessage::Replies { group: GroupId(3), id: 9, replies: vec![0, 1, 2] },
        ForwardMessage::Refused {
            group: GroupId(3),
            id: 9,
            reason: ForwardRefusal::NotMaster,
            master: NodeId::new(2),
        },
    ];
    for message in &forwards {
        let mut encoder = Encoder::new(sender());
        encoder.push_forward(&WireForward::from(message));
        let mut seed = vec![0];
        seed.extend_from_slice(encoder.finish());
        seeds.push(seed);
    }
    seeds
}

/// A structured stream case with every message kind.
fn stream_seed_case(turns: u32) -> StreamCase {
    let values = [
        ArbitraryValue::Noop(1),
        ArbitraryValue::Batch(2, b"SET key value".to_vec()),
        ArbitraryValue::Membership(3, 2, 0b111, 0b1000, 2, 2),
        ArbitraryValue::Claim(4, 2, 5, 2),
    ];
    let mut messages = vec![
        ArbitraryMessage::Prepare(2, 1, 5, false),
        ArbitraryMessage::Promise(2, 1, 5, vec![(5, 1, 1, values[1].clone(), true)], false, None),
        ArbitraryMessage::Accepted(2, 1, 5),
        ArbitraryMessage::Reject(2, 1, 3, 2),
        ArbitraryMessage::Heartbeat(2, 1, 6, 0, 9),
        ArbitraryMessage::HeartbeatAck(2, 1, 9, 6),
        ArbitraryMessage::CatchUpRequest(3),
        ArbitraryMessage::CatchUp(vec![(3, values[0].clone()), (4, values[2].clone())], 5),
        ArbitraryMessage::SnapshotOffer(4096),
        ArbitraryMessage::TimeoutNow(2, 1),
    ];
    for value in values {
        messages.push(ArbitraryMessage::Accept(2, 1, 7, value, 6));
    }
    let count = u32::try_from(messages.len()).expect("few");
    let messages = messages
        .into_iter()
        .enumerate()
        .map(|(index, message)| {
            let index = u32::try_from(index).expect("few");
            (index, message, turns > 0 && index % (count / turns.max(1)).max(1) == 0)
        })
        .collect();
    StreamCase { messages, chunks: vec![1, 7, 100, 4096], corruption: None }
}

/// Stream seeds: bytes from a fixed generator (any bytes are a case), of a few lengths.
fn stream_seeds() -> Vec<Vec<u8>> {
    let mut prng = Prng(SEED_DEFAULT);
    [64, 256, 1024, 4096].iter().map(|length| (0..*length).map(|_| prng.byte()).collect()).collect()
}

fn seeds(target: Target) -> Vec<Vec<u8>> {
    match target {
        Target::Frame => frame_seeds(),
        Target::Stream => stream_seeds(),
    }
}

fn run_guarded(target: Target, data: &[u8]) -> Result<String, String> {
    match panic::catch_unwind(AssertUnwindSafe(|| target.run(data))) {
        Ok(outcome) => outcome,
        Err(payload) => {
            let message = payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(ToString::to_string))
                .unwrap_or_default();
            Err(format!("panic: {message}"))
        }
    }
}

fn load_corpus(target: Target) -> Vec<(String, Vec<u8>)> {
    let Ok(entries) = fs::read_dir(target.corpus_dir()) else { return Vec::new() };
    let mut corpus: Vec<(String, Vec<u8>)> = entries
        .flatten()
        .filter(|entry| entry.file_type().is_ok_and(|kind| kind.is_file()))
        .map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            (name, fs::read(entry.path()).expect("corpus files are readable"))
        })
        .collect();
    corpus.sort();
    corpus
}

/// FNV-1a, 64 bits: corpus files are named by it.
fn content_hash(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn input_name(data: &[u8]) -> String {
    format!("{:016x}", content_hash(data))
}

fn save(dir: &Path, name: &str, data: &[u8]) -> PathBuf {
    fs::create_dir_all(dir).expect("the directory can be created");
    let path = dir.join(name);
    if !path.exists() {
        fs::write(&path, data).expect("the input can be written");
    }
    path
}

fn crash_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("target/ holds tmp/")
        .join("fuzz-crashes")
}

fn save_crash(target: Target, data: &[u8], message: &str) {
    let path = save(&crash_dir(), &format!("wire-{}-{}", target.name(), input_name(data)), data);
    eprintln!(
        "fuzz-wire {}: FAILED: {message}\n  input: {}\n  replay: KLEIN_FUZZ_REPLAY={} cargo test \
         --release --test fuzz_wire replay -- --ignored --nocapture",
        target.name(),
        path.display(),
        path.display(),
    );
}

fn env_number(name: &str) -> Option<u64> {
    let value = env::var(name).ok()?;
    Some(value.parse().unwrap_or_else(|_| panic!("{name} must be a number, not {value:?}")))
}

fn is_saving() -> bool {
    env::var("KLEIN_FUZZ_SAVE").is_ok_and(|value| value == "1")
}

/// `SplitMix64`: the exploration's deterministic generator.
struct Prng(u64);

impl Prng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, bound: usize) -> usize {
        usize::try_from(self.next() % u64::try_from(bound).expect("fits")).expect("below bound")
    }

    fn byte(&mut self) -> u8 {
        self.next().to_le_bytes()[0]
    }
}

/// One libFuzzer-style byte mutation of `data`, with `other` for splicing.
fn mutate_once(data: &mut Vec<u8>, other: &[u8], prng: &mut Prng) {
    const INTERESTING: [u32; 8] = [0, 1, 15, 16, 32, 4096, 0x7fff_ffff, u32::MAX];
    let length = data.len();
    match prng.below(8) {
        0 if length > 0 => {
            let at = prng.below(length);
            data[at] ^= 1 << prng.below(8);
        }
        1 if length > 0 => {
            let at = prng.below(length);
            data[at] = [0, 1, 0x7f, 0x80, 0xff, prng.byte()][prng.below(6)];
        }
        2 => {
            let at = prng.below(length + 1);
            let inserted: Vec<u8> = (0..=prng.below(8)).map(|_| prng.byte()).collect();
            data.splice(at..at, inserted);
        }
        3 if length > 0 => {
            let at = prng.below(length);
            let end = (at + 1 + prng.below(16)).min(length);
            data.drain(at..end);
        }
        4 if !other.is_empty() => {
            let at = prng.below(other.len());
            let end = (at + 1 + prng.below(64)).min(other.len());
            let to = prng.below(length + 1);
            let replaced = (to + end - at).min(length);
            data.splice(to..replaced, other[at..end].iter().copied());
        }
        5 if length >= 4 => {
            let at = prng.below(length - 3);
            let value = INTERESTING[prng.below(INTERESTING.len())];
            data[at..at + 4].copy_from_slice(&value.to_le_bytes());
        }
        6 if length > 0 => data[0] = prng.byte(),
        _ => {
            if prng.below(2) == 0 {
                data.truncate(prng.below(length + 1));
            } else {
                data.extend((0..=prng.below(32)).map(|_| prng.byte()));
            }
        }
    }
}

fn replay_corpus(target: Target) {
    let corpus = load_corpus(target);
    assert!(!corpus.is_empty(), "{} holds no input", target.corpus_dir().display());
    let failures: Vec<String> = corpus
        .iter()
        .filter_map(|(name, data)| run_guarded(target, data).err().map(|e| format!("{name}: {e}")))
        .collect();
    println!("fuzz-wire {}: {} corpus inputs replayed", target.name(), corpus.len());
    assert!(failures.is_empty(), "{} corpus inputs fail:\n{}", failures.len(), failures.join("\n"));
}

fn explore(target: Target) {
    let seconds = env_number("KLEIN_FUZZ_SECONDS");
    let iterations = match (env_number("KLEIN_FUZZ_ITERATIONS"), seconds) {
        (Some(iterations), _) => iterations,
        (None, Some(_)) => u64::MAX,
        (None, None) => target.iterations_default(),
    };
    let seed = env_number("KLEIN_FUZZ_SEED").unwrap_or(SEED_DEFAULT);
    let saving = is_saving();
    let mut corpus: Vec<Vec<u8>> = load_corpus(target).into_iter().map(|(_, data)| data).collect();
    assert!(!corpus.is_empty(), "{} holds no input", target.corpus_dir().display());
    let initial = corpus.len();
    let mut seen: HashSet<String> =
        corpus.iter().filter_map(|d| run_guarded(target, d).ok()).collect();
    let mut seen_coarse: HashSet<String> =
        seen.iter().map(|s| s.split('|').next().unwrap_or_default().to_string()).collect();
    let mut prng = Prng(seed ^ content_hash(target.name().as_bytes()));
    let (mut failures, mut done) = (0, 0);
    let started = Instant::now();
    while done < iterations && seconds.is_none_or(|limit| started.elapsed().as_secs() < limit) {
        let mut data = corpus[prng.below(corpus.len())].clone();
        let other = corpus[prng.below(corpus.len())].clone();
        for _ in 0..=prng.below(MUTATIONS_PER_INPUT_MAX) {
            mutate_once(&mut data, &other, &mut prng);
        }
        data.truncate(INPUT_BYTES_MAX);
        done += 1;
        match run_guarded(target, &data) {
            Ok(signature) => {
                let coarse = signature.split('|').next().unwrap_or_default().to_string();
                if saving && seen_coarse.insert(coarse) {
                    save(&target.corpus_dir(), &input_name(&data), &data);
                }
                if seen.insert(signature) {
                    corpus.push(data);
                }
            }
            Err(message) => {
                save_crash(target, &data, &message);
                failures += 1;
                if failures >= FAILURES_MAX {
                    break;
                }
            }
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    #[allow(clippy::cast_precision_loss)] // A rate for people to read.
    let rate = done as f64 / elapsed.max(f64::EPSILON);
    println!(
        "fuzz-wire {}: iterations={done} seconds={elapsed:.1} iterations/s={rate:.0} seed={seed} \
         corpus={initial}+{} signatures={} failures={failures}",
        target.name(),
        corpus.len() - initial,
        seen.len(),
    );
    assert_eq!(failures, 0, "see the inputs saved under {}", crash_dir().display());
}

/// Every built-in seed is in the committed corpus (`KLEIN_FUZZ_SAVE=1` writes them).
#[test]
fn seeds_are_in_the_corpus() {
    for target in [Target::Frame, Target::Stream] {
        for data in seeds(target) {
            let name = input_name(&data);
            if is_saving() {
                save(&target.corpus_dir(), &name, &data);
            }
            let path = target.corpus_dir().join(&name);
            assert!(path.exists(), "seed {} missing; run with KLEIN_FUZZ_SAVE=1", path.display());
        }
    }
}

/// The built-in seeds pass, and a valid frame seed is accepted with all its messages (so the
/// exploration starts from inputs that reach the conversions).
#[test]
fn seeds_reach_the_conversions() {
    for data in seeds(Target::Frame) {
        run_guarded(Target::Frame, &data).expect("a seed passes");
    }
    let signatures: Vec<String> = frame_seeds()
        .iter()
        .map(|data| run_guarded(Target::Frame, data).expect("passes"))
        .collect();
    assert!(signatures.iter().any(|s| s.starts_with("Messages|ok ") && !s.ends_with("ok 0/0")));
    assert!(signatures.iter().any(|s| s.starts_with("Handshake|")));
    assert!(signatures.iter().any(|s| s.starts_with("Misaligned|")));
    assert!(signatures.iter().any(|s| s.starts_with("InvalidPayload|")));
    for turns in [0, 1, 3] {
        let case = stream_seed_case(turns);
        let (bytes, sent, _) = encode_stream(&case);
        assert!(!sent.is_empty());
        assert!(bytes.len() > HEADER_SIZE_BYTES);
    }
}

/// Replays the input file named by `KLEIN_FUZZ_REPLAY`.
#[test]
#[ignore = "run by hand: KLEIN_FUZZ_REPLAY=path cargo test --release --test fuzz_wire replay"]
fn replay() {
    let path = env::var("KLEIN_FUZZ_REPLAY").expect("KLEIN_FUZZ_REPLAY names an input file");
    let data = fs::read(&path).expect("the input file is readable");
    let target = Target::of_path(&path);
    if target == Target::Stream {
        println!("{:#?}", StreamCase::arbitrary(&mut Unstructured::new(&data)));
    }
    match run_guarded(target, &data) {
        Ok(signature) => println!("{} input {path}: passes ({signature})", target.name()),
        Err(message) => panic!("{} input {path}: {message}", target.name()),
    }
}

mod frame_tests {
    use super::*;

    #[test]
    fn corpus_replays() {
        replay_corpus(Target::Frame);
    }

    #[test]
    fn explores() {
        explore(Target::Frame);
    }
}

mod stream_tests {
    use super::*;

    #[test]
    fn corpus_replays() {
        replay_corpus(Target::Stream);
    }

    #[test]
    fn explores() {
        explore(Target::Stream);
    }
}
