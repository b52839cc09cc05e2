//! `klein-bench`: a load generator for Redis-protocol servers (Klein, Redis).
//!
//! A thin front end to `klein::loadgen`: parses flags, shows a progress line on stderr, prints
//! the summary on stdout and optionally writes the JSON document. Exit code 0 when every
//! measured request succeeded, 1 when any failed, 2 for bad flags or a failed start.
//!
//! ```text
//! klein-bench --port 6379 --clients 50 --pipeline 16 --duration 10 --mix get:80,set:20
//! klein-bench --port 6379 --open-loop-rate 20000 --duration 30 --warmup 5 --json run.json
//! ```

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use klein::loadgen::{self, Config, KeyDist, Mix, Progress, Stop};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Printed after the flags in `--help`.
const AFTER_HELP: &str = "\
Output: a summary on stdout (throughput of successful requests; latency p50 p90 p99 p99.9
p99.99 max in microseconds, per command for mixes; GET hits and misses; open loop: late and
dropped sends and the send lag; errors by kind with an example; the generator's own CPU per
request), a progress line on stderr, and optionally --json / --hgrm files.

Exit codes: 0 every measured request succeeded; 1 some failed (error replies, wrong replies,
timeouts, lost connections); 2 bad flags, no server, or a result file that already exists.

Examples:
  klein-bench -p 6379 -c 50 -d 10 --mix set
  klein-bench -p 6379 -c 50 -P 16 -d 10 --prefill --mix get:80,set:20 --key-dist zipf:0.99
  klein-bench -p 6379 --open-loop-rate 20000 -d 30 --warmup 5 --json run.json --cpus 0";

/// Drives a Redis-protocol server (Klein or Redis) over TCP and measures throughput and
/// latency (`HdrHistogram`: p50 to p99.99 and max), closed loop like redis-benchmark or open
/// loop on a fixed schedule. Every reply is parsed; errors are counted by kind, never as
/// successes.
#[derive(Parser, Debug)]
#[command(name = "klein-bench", version, max_term_width = 100, after_help = AFTER_HELP)]
struct Cli {
    /// Server host name or address.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Server port.
    #[arg(long, short = 'p', default_value_t = 6379)]
    port: u16,
    /// Connections.
    #[arg(long, short = 'c', default_value_t = 50)]
    clients: usize,
    /// Generator threads; connections are dealt round-robin, each thread runs one epoll loop.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Requests in flight per connection. Closed loop: kept full (refilled as replies arrive,
    /// like redis-benchmark -P). Open loop: the most allowed; a send due while the connection
    /// is full waits, and its latency still counts from its scheduled time.
    #[arg(long, short = 'P', default_value_t = 1)]
    pipeline: usize,
    /// Measured requests in total, split evenly over the connections (instead of --duration).
    #[arg(long, short = 'n', conflicts_with = "duration")]
    requests: Option<u64>,
    /// Seconds to measure [default: 10 unless --requests is given].
    #[arg(long, short = 'd', value_name = "SECONDS")]
    duration: Option<f64>,
    /// Seconds of load before measuring starts (not counted).
    #[arg(long, value_name = "SECONDS", default_value_t = 0.0)]
    warmup: f64,
    /// Keys are `key:000000000000` up to the key space minus one (`counter:...` for INCR).
    #[arg(long, short = 'r', default_value_t = 100_000)]
    keyspace: u64,
    /// Key distribution: `uniform`, `zipf:<s>` (e.g. zipf:0.99; key 0 is the hottest), or
    /// `sequential` (connection i of n takes keys i, i+n, i+2n, ...).
    #[arg(long, default_value = "uniform", value_parser = parse_key_dist)]
    key_dist: KeyDist,
    /// Bytes per SET value.
    #[arg(long, default_value_t = 64)]
    value_size: usize,
    /// Command mix, `cmd[:weight],...` over set, get, incr, del, ping (e.g. `get:80,set:20`).
    /// A GET must return --value-size bytes or nil (counted as a miss).
    #[arg(long, default_value = "set", value_parser = parse_mix)]
    mix: Mix,
    /// Open loop: requests per second in total, spread evenly over the connections. Latency is
    /// measured from each request's scheduled send time; late (> 1 ms) and dropped (never
    /// sent by the end) sends are reported.
    #[arg(long, value_name = "OPS_PER_S")]
    open_loop_rate: Option<f64>,
    /// First SET every key of the key space once (--value-size bytes, closed loop, sequential
    /// keys, at least 16 in flight per connection; not measured), so that GETs hit.
    #[arg(long)]
    prefill: bool,
    /// Write the results as JSON to this file (an existing file is not overwritten).
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Write the latency of every successful request as an HDR histogram percentile
    /// distribution (`.hgrm`, microseconds) to this file (never overwritten).
    #[arg(long, value_name = "FILE")]
    hgrm: Option<PathBuf>,
    /// Send HELLO 3 on every connection first (RESP3 replies).
    #[arg(long)]
    resp3: bool,
    /// Seed of the key and command choice.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Seconds without a reply after which a request fails (and with it its connection).
    #[arg(long, value_name = "SECONDS", default_value_t = 10.0)]
    timeout: f64,
    /// Pin generator thread i to CPU cpus[i % len], e.g. `--cpus 0` or `--cpus 0,1`.
    #[arg(long, value_delimiter = ',')]
    cpus: Vec<usize>,
    /// No progress line.
    #[arg(long, short = 'q')]
    quiet: bool,
}

fn parse_key_dist(text: &str) -> Result<KeyDist, String> {
    text.parse()
}

fn parse_mix(text: &str) -> Result<Mix, String> {
    text.parse()
}

fn seconds(name: &str, value: f64) -> Result<Duration, String> {
    Duration::try_from_secs_f64(value).map_err(|_| format!("--{name} {value}: not a duration"))
}

impl Cli {
    fn config(&self) -> Result<Config, String> {
        let stop = match (self.requests, self.duration) {
            (Some(requests), _) => Stop::Requests(requests),
            (None, Some(duration)) => Stop::Duration(seconds("duration", duration)?),
            (None, None) => Stop::Duration(Duration::from_secs(10)),
        };
        Ok(Config {
            host: self.host.clone(),
            port: self.port,
            clients: self.clients,
            threads: self.threads,
            pipeline: self.pipeline,
            stop,
            warmup: seconds("warmup", self.warmup)?,
            keyspace: self.keyspace,
            key_dist: self.key_dist,
            value_size: self.value_size,
            mix: self.mix.clone(),
            open_loop_rate: self.open_loop_rate,
            resp3: self.resp3,
            seed: self.seed,
            timeout: seconds("timeout", self.timeout)?,
            cpus: self.cpus.clone(),
        })
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match cli.config() {
        Ok(config) => config,
        Err(message) => {
            eprintln!("klein-bench: {message}");
            return ExitCode::from(2);
        }
    };
    for path in cli.json.iter().chain(&cli.hgrm) {
        if path.exists() {
            eprintln!("klein-bench: {} exists; results are never overwritten", path.display());
            return ExitCode::from(2);
        }
    }
    let bar = if cli.quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr_with_hz(4))
    };
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {wide_bar} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut last = (Duration::ZERO, 0u64);
    let mut on_progress = |progress: &Progress| {
        let (done, target) = if progress.target_is_requests {
            (progress.completed, progress.target)
        } else {
            (progress.elapsed.saturating_sub(config.warmup).as_secs(), progress.target)
        };
        bar.set_length(target.max(1));
        bar.set_position(if progress.warming_up { 0 } else { done });
        let span = progress.elapsed.saturating_sub(last.0).as_secs_f64();
        if span >= 0.5 {
            let replies = u32::try_from(progress.completed - last.1).unwrap_or(u32::MAX);
            let rate = f64::from(replies) / span;
            let phase = if progress.warming_up { "warm-up" } else { "measuring" };
            bar.set_message(format!("{phase}: {} replies, {rate:.0}/s", progress.completed));
            last = (progress.elapsed, progress.completed);
        }
    };
    if cli.prefill {
        match loadgen::run(&loadgen::prefill_config(&config), &mut |_| {}) {
            Ok(prefill) if prefill.failures() == 0 => eprintln!(
                "klein-bench: prefilled {} keys in {:.2} s",
                prefill.successes(),
                prefill.elapsed.as_secs_f64()
            ),
            Ok(prefill) => {
                eprintln!("klein-bench: prefill failed:\n{}", prefill.summary());
                return ExitCode::from(1);
            }
            Err(error) => {
                eprintln!("klein-bench: prefill: {error}");
                return ExitCode::from(2);
            }
        }
    }
    let report = match loadgen::run(&config, &mut on_progress) {
        Ok(report) => report,
        Err(error) => {
            bar.finish_and_clear();
            eprintln!("klein-bench: {error}");
            return ExitCode::from(2);
        }
    };
    bar.finish_and_clear();
    println!("{}", report.summary());
    if let Some(path) = &cli.json {
        let text = serde_json::to_string_pretty(&report.to_json()).unwrap_or_default();
        if let Err(error) = std::fs::write(path, text + "\n") {
            eprintln!("klein-bench: cannot write {}: {error}", path.display());
            return ExitCode::from(2);
        }
    }
    if let Some(path) = &cli.hgrm
        && let Err(error) = std::fs::write(path, loadgen::report::hgrm(&report.latency()))
    {
        eprintln!("klein-bench: cannot write {}: {error}", path.display());
        return ExitCode::from(2);
    }
    if report.failures() > 0 { ExitCode::from(1) } else { ExitCode::SUCCESS }
}
