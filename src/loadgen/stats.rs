//! What a worker counts: a latency histogram per command, successes, errors by kind, GET hits
//! and misses, late and dropped sends. Judging a reply never counts an error as a success.

use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use super::reply::Reply;
use super::workload::Op;

/// The largest latency a histogram holds, in nanoseconds (longer ones are clamped to it).
pub const LATENCY_MAX_NS: u64 = 3_600_000_000_000;
/// The longest error kind kept (the first word of an error reply).
const ERROR_KIND_MAX: usize = 32;
/// The longest example message kept per error kind.
const ERROR_EXAMPLE_MAX: usize = 120;

/// How one reply answered its request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict<'a> {
    /// The reply the command promises.
    Ok,
    /// `GET` found the key with a value of the expected size.
    GetHit,
    /// `GET` found no key (nil): a success, counted apart.
    GetMiss,
    /// An error reply: its first word and its whole first line.
    Error {
        /// `ERR`, `BUSY`, `OOM`, ...
        kind: &'a [u8],
        /// The error's text.
        line: &'a [u8],
    },
    /// A reply of the wrong shape (the kind names how).
    Wrong(&'static str),
}

impl<'a> Verdict<'a> {
    /// Judges `reply` (the whole reply is `text`) as the answer to `op`, whose `SET`s write
    /// `value_len` bytes.
    #[must_use]
    pub fn judge(op: Op, reply: Reply, text: &'a [u8], value_len: usize) -> Verdict<'a> {
        match (op, reply) {
            (_, Reply::Error { start, end }) => {
                let line_end = text[start..]
                    .windows(2)
                    .position(|pair| pair == b"\r\n")
                    .map_or(text.len(), |at| start + at);
                Verdict::Error { kind: &text[start..end], line: &text[start..line_end] }
            }
            (Op::Set, Reply::Simple { start, end }) if &text[start..end] == b"OK" => Verdict::Ok,
            (Op::Ping, Reply::Simple { start, end }) if &text[start..end] == b"PONG" => Verdict::Ok,
            (Op::Get, Reply::Bulk(length)) if length == value_len => Verdict::GetHit,
            (Op::Get, Reply::Bulk(_)) => Verdict::Wrong("wrong-length"),
            (Op::Get, Reply::Null) => Verdict::GetMiss,
            (Op::Incr | Op::Del, Reply::Integer(_)) => Verdict::Ok,
            _ => Verdict::Wrong("unexpected-reply"),
        }
    }
}

/// Errors of one kind.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ErrorCount {
    /// The error reply's first word (`ERR`, `OOM`, ...) or the generator's own kind
    /// (`timeout`, `connection-closed`, `protocol-error`, `wrong-length`, `unexpected-reply`).
    pub kind: String,
    /// How many requests failed so.
    pub count: u64,
    /// The first message seen of this kind.
    pub example: String,
}

/// A worker's measurements (every figure counts measured requests only).
#[derive(Debug, Clone)]
pub struct Stats {
    /// Latency of successful requests per op (index [`Op::index`]), nanoseconds.
    pub latency: Vec<Histogram<u64>>,
    /// Successful requests per op.
    pub ok: [u64; Op::ALL.len()],
    /// Failed requests per op.
    pub failed: [u64; Op::ALL.len()],
    /// Failures by kind.
    pub errors: Vec<ErrorCount>,
    /// `GET`s answered with a value of the expected size.
    pub get_hits: u64,
    /// `GET`s answered nil.
    pub get_misses: u64,
    /// Open loop: sends made more than `late_after` after their scheduled time.
    pub late_sends: u64,
    /// Open loop: how long after its scheduled time each measured send was made (nanoseconds;
    /// the generator's own lateness, part of every latency).
    pub send_lag: Histogram<u64>,
    /// Open loop: scheduled sends never made before the run ended.
    pub dropped_sends: u64,
    /// Connections that closed, broke or timed out during the run.
    pub closed_connections: u64,
    /// When the last measured reply arrived.
    pub last_reply: Option<Instant>,
    /// Protocol problems seen (the first few).
    pub protocol_notes: Vec<String>,
}

impl Stats {
    /// Empty statistics.
    ///
    /// # Panics
    /// Never: the histogram bounds are constants hdrhistogram accepts.
    #[must_use]
    pub fn new() -> Stats {
        let histogram = Histogram::new_with_bounds(1, LATENCY_MAX_NS, 3).expect("valid bounds");
        Stats {
            latency: vec![histogram.clone(); Op::ALL.len()],
            send_lag: histogram,
            ok: [0; Op::ALL.len()],
            failed: [0; Op::ALL.len()],
            errors: Vec::new(),
            get_hits: 0,
            get_misses: 0,
            late_sends: 0,
            dropped_sends: 0,
            closed_connections: 0,
            last_reply: None,
            protocol_notes: Vec::new(),
        }
    }

    /// Records one measured reply.
    pub fn record(&mut self, op: Op, verdict: Verdict<'_>, latency: Duration, now: Instant) {
        self.last_reply = Some(now);
        match verdict {
            Verdict::Ok | Verdict::GetHit | Verdict::GetMiss => {
                let nanos = u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX);
                self.latency[op.index()].saturating_record(nanos.clamp(1, LATENCY_MAX_NS));
                self.ok[op.index()] += 1;
                match verdict {
                    Verdict::GetHit => self.get_hits += 1,
                    Verdict::GetMiss => self.get_misses += 1,
                    _ => {}
                }
            }
            Verdict::Error { kind, line } => {
                self.failed[op.index()] += 1;
                self.count_error(kind, line);
            }
            Verdict::Wrong(kind) => self.record_failure(op, kind),
        }
    }

    /// Open loop: records that a measured send went out `lag` after its scheduled time.
    pub fn record_send_lag(&mut self, lag: Duration, late_after: Duration) {
        let nanos = u64::try_from(lag.as_nanos()).unwrap_or(u64::MAX);
        self.send_lag.saturating_record(nanos.clamp(1, LATENCY_MAX_NS));
        if lag > late_after {
            self.late_sends += 1;
        }
    }

    /// Records a measured request that got no proper reply (`timeout`, `connection-closed`)
    /// or a reply of the wrong shape.
    pub fn record_failure(&mut self, op: Op, kind: &str) {
        self.failed[op.index()] += 1;
        self.count_error(kind.as_bytes(), kind.as_bytes());
    }

    /// Keeps a protocol problem's description (the first few).
    pub fn note_protocol_error(&mut self, message: &str) {
        if self.protocol_notes.len() < 8 {
            self.protocol_notes.push(message.to_string());
        }
    }

    fn count_error(&mut self, kind: &[u8], line: &[u8]) {
        let kind = &kind[..kind.len().min(ERROR_KIND_MAX)];
        if let Some(entry) = self.errors.iter_mut().find(|entry| entry.kind.as_bytes() == kind) {
            entry.count += 1;
            return;
        }
        let example = &line[..line.len().min(ERROR_EXAMPLE_MAX)];
        self.errors.push(ErrorCount {
            kind: String::from_utf8_lossy(kind).into_owned(),
            count: 1,
            example: String::from_utf8_lossy(example).into_owned(),
        });
    }

    /// Adds another worker's figures to these.
    ///
    /// # Panics
    /// Never: every `Stats` histogram has the same bounds.
    pub fn merge(&mut self, other: &Stats) {
        for (mine, theirs) in self.latency.iter_mut().zip(&other.latency) {
            mine.add(theirs).expect("histograms of one shape");
        }
        for index in 0..Op::ALL.len() {
            self.ok[index] += other.ok[index];
            self.failed[index] += other.failed[index];
        }
        for error in &other.errors {
            match self.errors.iter_mut().find(|entry| entry.kind == error.kind) {
                Some(entry) => entry.count += error.count,
                None => self.errors.push(error.clone()),
            }
        }
        self.get_hits += other.get_hits;
        self.get_misses += other.get_misses;
        self.late_sends += other.late_sends;
        self.send_lag.add(&other.send_lag).expect("histograms of one shape");
        self.dropped_sends += other.dropped_sends;
        self.closed_connections += other.closed_connections;
        self.last_reply = self.last_reply.max(other.last_reply);
        self.protocol_notes.extend(other.protocol_notes.iter().cloned());
    }
}

impl Default for Stats {
    fn default() -> Self {
        Stats::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loadgen::reply::parse;

    fn judge(op: Op, text: &[u8]) -> Verdict<'_> {
        let (reply, length) = parse(text).unwrap().unwrap();
        Verdict::judge(op, reply, &text[..length], 3)
    }

    #[test]
    fn errors_are_never_successes() {
        assert_eq!(judge(Op::Set, b"+OK\r\n"), Verdict::Ok);
        let oom = b"-OOM command not allowed\r\n";
        let verdict = judge(Op::Set, oom);
        assert_eq!(verdict, Verdict::Error { kind: b"OOM", line: b"OOM command not allowed" });
        assert_eq!(
            judge(Op::Get, b"-BUSY x\r\n"),
            Verdict::Error { kind: b"BUSY", line: b"BUSY x" }
        );
        assert_eq!(judge(Op::Set, b"+QUEUED\r\n"), Verdict::Wrong("unexpected-reply"));
        assert_eq!(judge(Op::Get, b"$3\r\nxxx\r\n"), Verdict::GetHit);
        assert_eq!(judge(Op::Get, b"$2\r\nxx\r\n"), Verdict::Wrong("wrong-length"));
        assert_eq!(judge(Op::Get, b"_\r\n"), Verdict::GetMiss);
        assert_eq!(judge(Op::Incr, b":5\r\n"), Verdict::Ok);
        assert_eq!(judge(Op::Incr, b"$1\r\n5\r\n"), Verdict::Wrong("unexpected-reply"));
        assert_eq!(judge(Op::Ping, b"+PONG\r\n"), Verdict::Ok);
    }

    #[test]
    fn stats_count_and_merge() {
        let now = Instant::now();
        let mut a = Stats::new();
        a.record(Op::Set, Verdict::Ok, Duration::from_micros(100), now);
        a.record(Op::Set, Verdict::Error { kind: b"OOM", line: b"OOM full" }, Duration::ZERO, now);
        let mut b = Stats::new();
        b.record(Op::Get, Verdict::GetMiss, Duration::from_micros(50), now);
        b.record(Op::Set, Verdict::Error { kind: b"OOM", line: b"OOM x" }, Duration::ZERO, now);
        b.record_failure(Op::Get, "timeout");
        a.merge(&b);
        assert_eq!(a.ok[Op::Set.index()], 1);
        assert_eq!(a.failed[Op::Set.index()], 2);
        assert_eq!(a.failed[Op::Get.index()], 1);
        assert_eq!(a.get_misses, 1);
        assert_eq!(a.latency[Op::Set.index()].len(), 1);
        let kinds: Vec<(&str, u64)> = a.errors.iter().map(|e| (e.kind.as_str(), e.count)).collect();
        assert_eq!(kinds, [("OOM", 2), ("timeout", 1)]);
        assert_eq!(a.errors[0].example, "OOM full");
    }
}
