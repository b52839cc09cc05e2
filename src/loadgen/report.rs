//! The result of a run: sampling while it runs (progress, per-second throughput, the
//! generator's own CPU time), then the human summary and the JSON document.

use std::fmt::Write as _;
use std::io;
use std::sync::atomic::AtomicU64;
use std::thread;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde_json::{Value, json};

use super::stats::Stats;
use super::workload::Op;
use super::{Config, LATE_AFTER, Plan, Progress, Stop, completed};

/// How often the sampling thread wakes (progress updates).
const SAMPLE_EVERY: Duration = Duration::from_millis(100);
/// The percentiles every summary names.
const PERCENTILES: [(&str, f64); 6] = [
    ("p50", 50.0),
    ("p90", 90.0),
    ("p99", 99.0),
    ("p99.9", 99.9),
    ("p99.99", 99.99),
    ("p100", 100.0),
];

/// CPU time the generator process used while measuring.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CpuUsage {
    /// User plus system time (`CLOCK_PROCESS_CPUTIME_ID`, nanosecond resolution).
    pub total: Duration,
    /// User time (`/proc/self/stat`, 10 ms resolution).
    pub user: Duration,
    /// System time (`/proc/self/stat`, 10 ms resolution).
    pub system: Duration,
}

/// What the sampling thread gathered.
#[derive(Debug, Clone, Default)]
pub(super) struct Sampled {
    timeline: Vec<u64>,
    cpu: CpuUsage,
}

/// One point of the process's CPU clocks.
#[derive(Debug, Clone, Copy)]
struct CpuSample {
    total: Duration,
    user: Duration,
    system: Duration,
}

impl CpuSample {
    fn now() -> CpuSample {
        let clock = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
        let total = Duration::new(
            u64::try_from(clock.tv_sec).unwrap_or(0),
            u32::try_from(clock.tv_nsec).unwrap_or(0),
        );
        let (user, system) = proc_self_times().unwrap_or_default();
        CpuSample { total, user, system }
    }
}

/// User and system time from `/proc/self/stat` (fields 14 and 15, in 1/100 s: `USER_HZ`).
fn proc_self_times() -> Option<(Duration, Duration)> {
    let text = std::fs::read_to_string("/proc/self/stat").ok()?;
    let rest = &text[text.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11);
    let user: u64 = fields.next()?.parse().ok()?;
    let system: u64 = fields.next()?.parse().ok()?;
    Some((Duration::from_millis(user * 10), Duration::from_millis(system * 10)))
}

/// Samples while the workers run: the progress callback, completions per second of the
/// measured phase, and the process's CPU time from the start of measuring to the end.
pub(super) fn sample(
    config: &Config,
    plan: &Plan,
    counter: &AtomicU64,
    handles: &[thread::ScopedJoinHandle<'_, io::Result<Stats>>],
    progress: &mut dyn FnMut(&Progress),
) -> Sampled {
    let (target, target_is_requests) = match config.stop {
        Stop::Requests(total) => (total, true),
        Stop::Duration(duration) => (duration.as_secs(), false),
    };
    let mut cpu_start: Option<CpuSample> = None;
    let mut timeline = Vec::new();
    let mut counted = 0;
    let mut next_second = plan.measure_start + Duration::from_secs(1);
    loop {
        let now = Instant::now();
        if cpu_start.is_none() && now >= plan.measure_start {
            cpu_start = Some(CpuSample::now());
        }
        while now >= next_second {
            let total = completed(counter);
            timeline.push(total - counted);
            counted = total;
            next_second += Duration::from_secs(1);
        }
        progress(&Progress {
            elapsed: now.duration_since(plan.start),
            warming_up: now < plan.measure_start,
            completed: completed(counter),
            target,
            target_is_requests,
        });
        if handles.iter().all(thread::ScopedJoinHandle::is_finished) {
            break;
        }
        let mut wake = (now + SAMPLE_EVERY).min(next_second);
        if cpu_start.is_none() {
            wake = wake.min(plan.measure_start);
        }
        thread::sleep(wake.saturating_duration_since(now));
    }
    let end = CpuSample::now();
    let start = cpu_start.unwrap_or(end);
    let total = completed(counter);
    if total > counted {
        timeline.push(total - counted);
    }
    let cpu = CpuUsage {
        total: end.total.saturating_sub(start.total),
        user: end.user.saturating_sub(start.user),
        system: end.system.saturating_sub(start.system),
    };
    Sampled { timeline, cpu }
}

/// The result of one run.
#[derive(Debug, Clone)]
pub struct Report {
    /// The settings it ran with.
    pub config: Config,
    /// Every worker's figures, merged.
    pub stats: Stats,
    /// From the start of measuring to the last measured reply (or the end of the run).
    pub elapsed: Duration,
    /// Measured replies per second of the run (the last entry may cover part of a second).
    pub timeline: Vec<u64>,
    /// The generator's CPU time while measuring.
    pub cpu: CpuUsage,
}

impl Report {
    pub(super) fn new(
        config: Config,
        stats: Stats,
        measure_start: Instant,
        end: Option<Instant>,
        sampled: Sampled,
    ) -> Report {
        let last = match (stats.last_reply, end) {
            (Some(reply), Some(end)) => reply.max(end),
            (Some(reply), None) => reply,
            (None, Some(end)) => end,
            (None, None) => measure_start,
        };
        let elapsed = last.saturating_duration_since(measure_start);
        Report { config, stats, elapsed, timeline: sampled.timeline, cpu: sampled.cpu }
    }

    /// Measured requests answered with the expected reply.
    #[must_use]
    pub fn successes(&self) -> u64 {
        self.stats.ok.iter().sum()
    }

    /// Measured requests that failed (error replies, wrong replies, timeouts, lost
    /// connections).
    #[must_use]
    pub fn failures(&self) -> u64 {
        self.stats.failed.iter().sum()
    }

    /// Successful requests per second.
    #[must_use]
    pub fn throughput(&self) -> f64 {
        let seconds = self.elapsed.as_secs_f64();
        if seconds > 0.0 { as_f64(self.successes()) / seconds } else { 0.0 }
    }

    /// The generator's CPU time per measured request, in microseconds.
    #[must_use]
    pub fn cpu_us_per_request(&self) -> f64 {
        let requests = self.successes() + self.failures();
        if requests == 0 { 0.0 } else { self.cpu.total.as_secs_f64() * 1e6 / as_f64(requests) }
    }

    /// The latency of every successful request, all commands together (nanoseconds).
    ///
    /// # Panics
    /// Never: every histogram of a report has the same bounds.
    #[must_use]
    pub fn latency(&self) -> Histogram<u64> {
        let mut all = self.stats.latency[0].clone();
        all.reset();
        for histogram in &self.stats.latency {
            all.add(histogram).expect("histograms of one shape");
        }
        all
    }

    /// The human summary, several lines.
    #[must_use]
    pub fn summary(&self) -> String {
        let config = &self.config;
        let mut text = String::new();
        let mode = match config.open_loop_rate {
            Some(rate) => format!("open loop at {rate:.0} req/s"),
            None => "closed loop".to_string(),
        };
        let _ = writeln!(
            text,
            "klein-bench {}:{}: {} clients x pipeline {}, {} thread(s), {mode}, mix {}, \
             {} B values, {} keys {}",
            config.host,
            config.port,
            config.clients,
            config.pipeline,
            config.threads,
            config.mix,
            config.value_size,
            config.keyspace,
            config.key_dist,
        );
        let _ = writeln!(
            text,
            "measured {:.2} s: {} ok, {} failed -> {:.0} ops/s",
            self.elapsed.as_secs_f64(),
            self.successes(),
            self.failures(),
            self.throughput(),
        );
        let from = if config.open_loop_rate.is_some() { "intended send" } else { "send" };
        let _ = writeln!(text, "latency us (from {from}): {}", line(&self.latency()));
        for op in Op::ALL {
            let index = op.index();
            if self.stats.ok[index] + self.stats.failed[index] > 0 && config.mix.weights().len() > 1
            {
                let histogram = &self.stats.latency[index];
                let _ = writeln!(text, "  {:<4}: {}", op.name(), line(histogram));
            }
        }
        if self.stats.get_hits + self.stats.get_misses > 0 {
            let (hits, misses) = (self.stats.get_hits, self.stats.get_misses);
            let _ =
                writeln!(text, "GET: {hits} hits ({} B), {misses} misses (nil)", config.value_size);
        }
        if config.open_loop_rate.is_some() {
            let _ = writeln!(
                text,
                "open loop: {} sends late by > {} us, {} dropped (never sent); send lag us: {}",
                self.stats.late_sends,
                LATE_AFTER.as_micros(),
                self.stats.dropped_sends,
                line(&self.stats.send_lag),
            );
        }
        for error in &self.stats.errors {
            let _ =
                writeln!(text, "errors {}: {} (e.g. {})", error.kind, error.count, error.example);
        }
        let _ = write!(
            text,
            "generator CPU: {:.2} s (user {:.2}, sys {:.2}) = {:.2} us per request",
            self.cpu.total.as_secs_f64(),
            self.cpu.user.as_secs_f64(),
            self.cpu.system.as_secs_f64(),
            self.cpu_us_per_request(),
        );
        text
    }
}

impl Report {
    /// The JSON document: settings, results, per-command figures, errors, the percentile
    /// distribution and the per-second timeline. Latencies are in microseconds.
    #[must_use]
    pub fn to_json(&self) -> Value {
        let config = &self.config;
        let stats = &self.stats;
        let per_command: serde_json::Map<String, Value> = Op::ALL
            .iter()
            .filter(|op| stats.ok[op.index()] + stats.failed[op.index()] > 0)
            .map(|op| {
                let index = op.index();
                let figures = json!({
                    "ok": stats.ok[index],
                    "failed": stats.failed[index],
                    "latency_us": percentiles(&stats.latency[index]),
                });
                (op.name().to_string(), figures)
            })
            .collect();
        let latency = self.latency();
        json!({
            "tool": "klein-bench",
            "version": env!("CARGO_PKG_VERSION"),
            "config": config_json(config),
            "results": {
                "elapsed_s": self.elapsed.as_secs_f64(),
                "requests": self.successes() + self.failures(),
                "ok": self.successes(),
                "failed": self.failures(),
                "throughput_ops_s": self.throughput(),
                "latency_from": if config.open_loop_rate.is_some() { "intended send time" }
                    else { "send time" },
                "latency_us": percentiles(&latency),
                "per_command": per_command,
                "errors": stats.errors,
                "get": { "hits": stats.get_hits, "misses": stats.get_misses },
                "open_loop": config.open_loop_rate.map(|_| json!({
                    "late_sends": stats.late_sends,
                    "late_after_us": u64::try_from(LATE_AFTER.as_micros()).unwrap_or(u64::MAX),
                    "dropped_sends": stats.dropped_sends,
                    "send_lag_us": percentiles(&stats.send_lag),
                })),
                "closed_connections": stats.closed_connections,
                "protocol_errors": stats.protocol_notes,
                "cpu": {
                    "total_s": self.cpu.total.as_secs_f64(),
                    "user_s": self.cpu.user.as_secs_f64(),
                    "system_s": self.cpu.system.as_secs_f64(),
                    "us_per_request": self.cpu_us_per_request(),
                },
                "timeline_ops_per_s": self.timeline,
                "histogram_percentiles_us": distribution(&latency),
            },
        })
    }
}

fn config_json(config: &Config) -> Value {
    let (requests, duration) = match config.stop {
        Stop::Requests(requests) => (Some(requests), None),
        Stop::Duration(duration) => (None, Some(duration.as_secs_f64())),
    };
    json!({
        "host": config.host,
        "port": config.port,
        "clients": config.clients,
        "threads": config.threads,
        "pipeline": config.pipeline,
        "requests": requests,
        "duration_s": duration,
        "warmup_s": config.warmup.as_secs_f64(),
        "keyspace": config.keyspace,
        "key_dist": config.key_dist.to_string(),
        "value_size": config.value_size,
        "mix": config.mix.to_string(),
        "open_loop_rate": config.open_loop_rate,
        "resp3": config.resp3,
        "seed": config.seed,
        "timeout_s": config.timeout.as_secs_f64(),
        "cpus": config.cpus,
    })
}

/// `histogram` (nanoseconds) as an `HdrHistogram` percentile distribution (`.hgrm`, the text of
/// `outputPercentileDistribution`, 5 steps per halving) in microseconds, which the usual
/// plotting tools read.
#[must_use]
pub fn hgrm(histogram: &Histogram<u64>) -> String {
    let mut text = format!(
        "{:>12} {:>14} {:>10} {:>14}\n\n",
        "Value", "Percentile", "TotalCount", "1/(1-Percentile)"
    );
    let mut total = 0;
    for step in histogram.iter_quantiles(5) {
        total += step.count_since_last_iteration();
        let quantile = step.quantile_iterated_to();
        let value = micros(step.value_iterated_to());
        if quantile < 1.0 {
            let inverse = 1.0 / (1.0 - quantile);
            let _ = writeln!(text, "{value:12.3} {quantile:2.12} {total:10} {inverse:14.2}");
        } else {
            let _ = writeln!(text, "{value:12.3} {quantile:2.12} {total:10}");
        }
    }
    let mean = histogram.mean() / 1000.0;
    let deviation = histogram.stdev() / 1000.0;
    let max = micros(histogram.max());
    let count = histogram.len();
    let _ = writeln!(text, "#[Mean    = {mean:12.3}, StdDeviation   = {deviation:12.3}]");
    let _ = writeln!(text, "#[Max     = {max:12.3}, Total count    = {count:12}]");
    text
}

/// `{"p50": .., ..., "max": .., "mean": .., "min": .., "count": ..}` in microseconds.
fn percentiles(histogram: &Histogram<u64>) -> Value {
    let mut map = serde_json::Map::new();
    if !histogram.is_empty() {
        for (name, percentile) in PERCENTILES {
            let name = if name == "p100" { "max" } else { name };
            map.insert(name.to_string(), json!(micros(histogram.value_at_percentile(percentile))));
        }
        map.insert("mean".to_string(), json!(histogram.mean() / 1000.0));
        map.insert("min".to_string(), json!(micros(histogram.min())));
    }
    map.insert("count".to_string(), json!(histogram.len()));
    Value::Object(map)
}

/// The percentile distribution (as an `.hgrm` lists it, 2 steps per halving).
fn distribution(histogram: &Histogram<u64>) -> Vec<Value> {
    if histogram.is_empty() {
        return Vec::new();
    }
    histogram
        .iter_quantiles(2)
        .map(|step| {
            json!({
                "percentile": step.quantile_iterated_to() * 100.0,
                "value_us": micros(step.value_iterated_to()),
                "count": step.count_since_last_iteration(),
            })
        })
        .collect()
}

/// `p50 12.3 p90 ... max ...` in microseconds.
fn line(histogram: &Histogram<u64>) -> String {
    if histogram.is_empty() {
        return "(none)".to_string();
    }
    PERCENTILES
        .iter()
        .map(|(name, percentile)| {
            let name = if *name == "p100" { "max" } else { name };
            format!("{name} {:.1}", micros(histogram.value_at_percentile(*percentile)))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn micros(nanos: u64) -> f64 {
    as_f64(nanos) / 1000.0
}

#[expect(clippy::cast_precision_loss, reason = "exact below 2^53: counts and nanoseconds")]
fn as_f64(value: u64) -> f64 {
    value as f64
}
