//! Wire micro-benchmarks: encoding a frame of N accepts for N groups, checking it (CRC32C and
//! rkyv validation) and reading it in place, converting its messages for the core (the batch
//! copy into `Arc<[u8]>`), and cutting a byte stream into frames.
//!
//! What the numbers are for: a loopback `send` costs ~6.5 us of CPU on the target machine
//! (`../shared/PERFORMANCE.md`); the wire's share per message should stay far below that.

#![allow(missing_docs)] // criterion_group! generates an undocumented public function.

use std::hint::black_box;
use std::sync::Arc;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use klein::consensus::{Message, Value, ValueKind};
use klein::types::{Ballot, CoreIndex, GroupId, NodeId, Slot};
use klein::wire::{Encoder, Frame, FrameReader, Handshake};
use rkyv::util::AlignedVec;

const BALLOT: Ballot = Ballot { round: 3, node: 1 };

fn accept(slot: u64, batch: &Arc<[u8]>) -> Message {
    Message::Accept {
        ballot: BALLOT,
        slot: Slot(slot),
        value: Value { stamp_millis: 1_700_000_000_000, kind: ValueKind::Batch(Arc::clone(batch)) },
        frontier: Slot(slot.saturating_sub(1)),
    }
}

fn sender() -> NodeId {
    NodeId::new(1).expect("1 is a node id")
}

/// An encoder whose handshake went out.
fn encoder() -> Encoder {
    let mut encoder = Encoder::new(sender());
    encoder.handshake(&Handshake::ours(7, sender(), None, CoreIndex(0)));
    encoder.clear();
    encoder
}

/// One frame of `count` accepts of `batch_size` bytes, one group each, in an aligned buffer.
fn frame(count: u32, batch_size: usize) -> AlignedVec<16> {
    let batch: Arc<[u8]> = vec![0x5a; batch_size].into();
    let mut encoder = encoder();
    for group in 0..count {
        encoder.push(GroupId(group), &accept(u64::from(group), &batch)).expect("fits a frame");
    }
    let mut out = AlignedVec::new();
    out.extend_from_slice(encoder.finish());
    out
}

const SHAPES: [(u32, usize); 4] = [(1, 64), (16, 64), (256, 64), (16, 4096)];

fn encode(criterion: &mut Criterion) {
    let mut group = criterion.benchmark_group("wire_encode");
    for (count, batch_size) in SHAPES {
        let batch: Arc<[u8]> = vec![0x5a; batch_size].into();
        let messages: Vec<Message> = (0..count).map(|slot| accept(slot.into(), &batch)).collect();
        let mut encoder = encoder();
        group.throughput(Throughput::Elements(count.into()));
        let name = format!("{count}_accepts_of_{batch_size}B");
        group.bench_function(BenchmarkId::new("push_finish", name), |b| {
            b.iter(|| {
                for (index, message) in messages.iter().enumerate() {
                    let group = GroupId(u32::try_from(index).expect("few"));
                    encoder.push(group, black_box(message)).expect("fits a frame");
                }
                let size = encoder.finish().len();
                encoder.clear();
                size
            });
        });
    }
    group.finish();
}

fn check(criterion: &mut Criterion) {
    let mut group = criterion.benchmark_group("wire_check");
    for (count, batch_size) in SHAPES {
        let bytes = frame(count, batch_size);
        group.throughput(Throughput::Elements(count.into()));
        let name = format!("{count}_accepts_of_{batch_size}B");
        group.bench_function(BenchmarkId::new("check_iterate_in_place", &name), |b| {
            b.iter(|| {
                let frame = Frame::check(black_box(bytes.as_slice())).expect("valid");
                frame
                    .messages()
                    .map(|envelope| envelope.group().0 as usize + envelope.message_batch_len())
                    .sum::<usize>()
            });
        });
        group.bench_function(BenchmarkId::new("check_convert_to_message", &name), |b| {
            b.iter(|| {
                let frame = Frame::check(black_box(bytes.as_slice())).expect("valid");
                let mut converted = 0;
                for envelope in frame.messages() {
                    black_box(envelope.message().to_message().expect("valid"));
                    converted += 1;
                }
                converted
            });
        });
    }
    group.finish();
}

fn stream(criterion: &mut Criterion) {
    let mut group = criterion.benchmark_group("wire_reader");
    let batch: Arc<[u8]> = vec![0x5a; 64].into();
    let mut encoder = Encoder::new(sender());
    encoder.handshake(&Handshake::ours(7, sender(), None, CoreIndex(0)));
    let turns = 64_u32;
    for turn in 0..turns {
        for group in 0..16 {
            encoder.push(GroupId(group), &accept(turn.into(), &batch)).expect("fits a frame");
        }
        let _ = encoder.finish();
    }
    let bytes = encoder.finish().to_vec();
    group.throughput(Throughput::Bytes(bytes.len() as u64));
    group.bench_function("64_frames_of_16_accepts_in_reads_of_1500B", |b| {
        b.iter(|| {
            let mut reader = FrameReader::new();
            let mut messages = 0;
            for chunk in bytes.chunks(1500) {
                reader.push_bytes(chunk);
                while let Some(frame) = reader.next_frame().expect("valid") {
                    messages += frame.messages().len();
                }
            }
            messages
        });
    });
    group.finish();
}

/// Reads the batch length of an accept in place.
trait BatchLen {
    fn message_batch_len(&self) -> usize;
}

impl BatchLen for klein::wire::ArchivedWireEnvelope {
    fn message_batch_len(&self) -> usize {
        match self.message() {
            klein::wire::ArchivedWireMessage::Accept { value, .. } => {
                value.batch().map_or(0, <[u8]>::len)
            }
            _ => 0,
        }
    }
}

criterion_group!(benches, encode, check, stream);
criterion_main!(benches);
