//! RESP codec micro-benchmarks: parsing pipelined requests and encoding replies.
//!
//! The whole RESP-parse + apply + reply path must stay far below the ~10 us a loopback message
//! costs on the target machine (`../shared/PERFORMANCE.md`, 1.3), so the parser's share is
//! tracked here per request.

#![allow(missing_docs)] // criterion_group! generates an undocumented public function.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use klein::server::resp::{Parsed, Protocol, ReplyWriter, parse_request};

/// A pipelined buffer of `count` `SET key:<n> <64-byte value>` requests in RESP framing, the
/// shape redis-benchmark sends.
fn pipelined_sets(count: usize) -> Vec<u8> {
    let value = "v".repeat(64);
    let mut buffer = Vec::new();
    for index in 0..count {
        let key = format!("key:{index:012}");
        buffer.extend_from_slice(
            format!(
                "*3\r\n$3\r\nSET\r\n${}\r\n{key}\r\n${}\r\n{value}\r\n",
                key.len(),
                value.len()
            )
            .as_bytes(),
        );
    }
    buffer
}

fn parse_all(buffer: &[u8]) -> usize {
    let mut arguments = Vec::new();
    let mut position = 0;
    let mut requests = 0;
    while let Ok(Parsed::Request { consumed }) = parse_request(&buffer[position..], &mut arguments)
    {
        position += consumed;
        requests += arguments.len();
    }
    requests
}

fn parse(criterion: &mut Criterion) {
    let mut group = criterion.benchmark_group("resp_parse");
    for count in [1, 16, 1024] {
        let buffer = pipelined_sets(count);
        group.throughput(Throughput::Elements(count as u64));
        group.bench_with_input(
            BenchmarkId::new("set_pipeline", count),
            &buffer,
            |bench, buffer| {
                bench.iter(|| parse_all(black_box(buffer)));
            },
        );
    }
    let inline =
        b"SET key:000000000001 vvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvv\r\n";
    group.throughput(Throughput::Elements(1));
    group.bench_function("set_inline", |bench| bench.iter(|| parse_all(black_box(inline))));
    group.finish();
}

fn write(criterion: &mut Criterion) {
    let mut group = criterion.benchmark_group("resp_write");
    let value = vec![b'v'; 64];
    for protocol in [Protocol::Resp2, Protocol::Resp3] {
        let name = format!("{protocol:?}").to_lowercase();
        group.throughput(Throughput::Elements(1024));
        group.bench_function(BenchmarkId::new("ok_and_bulk_x1024", name), |bench| {
            let mut out = Vec::with_capacity(128 * 1024);
            bench.iter(|| {
                out.clear();
                let mut writer = ReplyWriter::new(protocol, &mut out);
                for _ in 0..512 {
                    writer.simple("OK");
                    writer.bulk(black_box(&value));
                }
                out.len()
            });
        });
    }
    group.finish();
}

criterion_group!(benches, parse, write);
criterion_main!(benches);
