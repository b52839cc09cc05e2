//! Log micro-benchmarks: record encode and verify, append through group commit on the
//! simulated (in-memory) disk, and the recovery scan.
//!
//! The targets of the issue "Durable log engine": >= 200,000 records/s of 64 B with one log
//! (the disk-bound figure comes from the real-disk run; this is the CPU side), and recovery at
//! >= 500 MB/s.

#![allow(missing_docs)] // criterion_group! generates an undocumented public function.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use klein::log::disk::Disk;
use klein::log::format::{RecordHeader, RecordKind, decode_record, record_size_bytes};
use klein::log::recovery::recover;
use klein::log::sim_disk::{SimDisk, SimDiskOptions};
use klein::log::writer::{Entry, Writer, WriterOptions};
use klein::types::{Ballot, GroupId, Slot};

const BALLOT: Ballot = Ballot { round: 3, node: 1 };

fn records(criterion: &mut Criterion) {
    let mut group = criterion.benchmark_group("log_record");
    for payload_size in [64_usize, 1024] {
        let payload = vec![0x5a_u8; payload_size];
        let size = record_size_bytes(payload_size);
        let mut out = vec![0_u8; size];
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_with_input(BenchmarkId::new("encode", payload_size), &payload, |b, payload| {
            b.iter(|| {
                let header = RecordHeader::new(
                    RecordKind::Accepted,
                    GroupId(1),
                    Slot(42),
                    BALLOT,
                    7,
                    4096,
                    black_box(payload),
                );
                header.encode_into(payload, &mut out);
            });
        });
        let header = RecordHeader::new(
            RecordKind::Accepted,
            GroupId(1),
            Slot(42),
            BALLOT,
            7,
            4096,
            &payload,
        );
        header.encode_into(&payload, &mut out);
        group.bench_with_input(BenchmarkId::new("verify", payload_size), &out, |b, bytes| {
            b.iter(|| decode_record(black_box(bytes), 7, 4096).map(|(_, payload)| payload.len()));
        });
    }
    group.finish();
}

/// Appends `count` records of `payload_size` bytes, flushing whenever staging fills, through
/// the writer and the in-memory disk; returns the disk.
fn append_all(count: u64, payload_size: usize) -> SimDisk {
    let options = WriterOptions { segment_size_bytes: 64 * 1024 * 1024, staged_bytes_max: 1 << 20 };
    let mut disk = SimDisk::new(1, SimDiskOptions::default());
    let mut writer = Writer::new(options);
    let payload = vec![0x5a_u8; payload_size];
    let mut completions = Vec::new();
    let mut slot = 0;
    while slot < count || !writer.is_idle() {
        while slot < count {
            let entry = Entry {
                kind: RecordKind::Accepted,
                group: GroupId(u32::try_from(slot % 8).unwrap()),
                slot: Slot(slot),
                ballot: BALLOT,
                payload: &payload,
            };
            if writer.append(&entry).is_err() {
                break;
            }
            slot += 1;
        }
        for (op, request) in writer.pump() {
            disk.submit(op, request);
        }
        disk.poll(&mut completions);
        for completion in completions.drain(..) {
            black_box(writer.on_completion(&completion).unwrap());
        }
    }
    disk
}

fn group_commit(criterion: &mut Criterion) {
    let mut group = criterion.benchmark_group("log_group_commit");
    group.sample_size(20);
    for payload_size in [64_usize, 1024] {
        let count = 16_384;
        group.throughput(Throughput::Elements(count));
        group.bench_function(BenchmarkId::new("append_sim_disk", payload_size), |b| {
            b.iter(|| append_all(count, payload_size));
        });
    }
    group.finish();
}

fn recovery(criterion: &mut Criterion) {
    let mut group = criterion.benchmark_group("log_recovery");
    group.sample_size(20);
    let disk = append_all(100_000, 64);
    let segments = disk.segment_images();
    // Throughput counts every segment byte recovery reads and checks, including the zeroed
    // space after the last record (it must prove no valid record follows there).
    let bytes: usize = segments.iter().map(|(_, bytes)| bytes.len()).sum();
    let name = format!("scan_{}_segments_of_64MiB_holding_100k_records_of_64B", segments.len());
    group.throughput(Throughput::Bytes(bytes as u64));
    group.bench_function(name, |b| {
        b.iter(|| {
            let mut borrowed: Vec<(u64, &[u8])> =
                segments.iter().map(|(number, bytes)| (*number, bytes.as_slice())).collect();
            recover(black_box(&mut borrowed)).unwrap().records_read
        });
    });
    group.finish();
}

criterion_group!(benches, records, group_commit, recovery);
criterion_main!(benches);
