//! `klein-log-bench`: the durable log on a real disk under saturation (see
//! `klein::runtime::log_bench`). Prints one table row per (payload size, logs) configuration.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use klein::log::writer::WriterOptions;
use klein::runtime::log_bench::{LogReport, Options, run};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Measure the durable log on a real disk: records/s, fsyncs/s, batch sizes, bytes per record,
/// commit latency and recovery speed.
#[derive(Parser, Debug)]
#[command(name = "klein-log-bench", version)]
struct Cli {
    /// Directory on the file system under test (a fresh subdirectory is made and removed).
    #[arg(long, default_value = ".")]
    dir: PathBuf,
    /// Payload sizes in bytes, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "64,1024")]
    payload_bytes: Vec<usize>,
    /// Numbers of concurrent logs, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,3")]
    logs: Vec<usize>,
    /// Warm-up seconds per configuration.
    #[arg(long, default_value_t = 1)]
    warmup_seconds: u64,
    /// Measured seconds per configuration.
    #[arg(long, default_value_t = 5)]
    duration_seconds: u64,
    /// Segment size in MiB.
    #[arg(long, default_value_t = 64)]
    segment_mib: u64,
    /// Staging bound in MiB.
    #[arg(long, default_value_t = 8)]
    staged_mib: usize,
    /// One record in flight at a time per log: the commit latency of a lone write, instead of
    /// throughput at saturation.
    #[arg(long)]
    one_at_a_time: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let scratch = match tempfile_dir(&cli.dir) {
        Ok(scratch) => scratch,
        Err(error) => {
            eprintln!(
                "klein-log-bench: cannot make a scratch directory in {}: {error}",
                cli.dir.display()
            );
            return ExitCode::from(1);
        }
    };
    println!(
        "| payload B | logs | records/s (sum) | fsyncs/s (sum) | records/fsync p50 / p90 / max | \
         bytes written/record | commit latency us p50 / p90 / p99 / p99.9 / max | recovery MB/s |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- |");
    let mut failed = false;
    for &payload_bytes in &cli.payload_bytes {
        for &logs in &cli.logs {
            let options = Options {
                dir: scratch.join(format!("p{payload_bytes}-l{logs}")),
                payload_bytes,
                logs,
                warmup: Duration::from_secs(cli.warmup_seconds),
                duration: Duration::from_secs(cli.duration_seconds),
                writer: WriterOptions {
                    segment_size_bytes: cli.segment_mib * 1024 * 1024,
                    staged_bytes_max: cli.staged_mib * 1024 * 1024,
                },
                one_at_a_time: cli.one_at_a_time,
            };
            match run(&options) {
                Ok(reports) => print_row(payload_bytes, logs, &reports, cli.duration_seconds),
                Err(error) => {
                    eprintln!("klein-log-bench: payload {payload_bytes} B, {logs} logs: {error}");
                    failed = true;
                }
            }
            let _ = std::fs::remove_dir_all(&options.dir);
        }
    }
    let _ = std::fs::remove_dir_all(&scratch);
    if failed { ExitCode::from(1) } else { ExitCode::SUCCESS }
}

fn tempfile_dir(parent: &std::path::Path) -> std::io::Result<PathBuf> {
    let dir = parent.join(format!("klein-log-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

#[expect(clippy::cast_precision_loss, reason = "counts and byte totals far below 2^52")]
fn print_row(payload_bytes: usize, logs: usize, reports: &[LogReport], seconds: u64) {
    let seconds = seconds as f64;
    let records: u64 = reports.iter().map(|report| report.records).sum();
    let flushes: u64 = reports.iter().map(|report| report.flushes).sum();
    let bytes: u64 = reports.iter().map(|report| report.bytes_written).sum();
    // Latency and batch size of the worst log (the one with the highest p99).
    let worst = reports.iter().max_by_key(|report| report.latency_us[2]).expect("one log at least");
    let recovery_bytes: u64 = reports.iter().map(|report| report.recovery_bytes).sum();
    let recovery_seconds: f64 = reports.iter().map(|report| report.recovery_seconds).sum();
    let [p50, p90, p99, p999, max] = worst.latency_us;
    let [b50, b90, _, bmax] = worst.batch_records;
    println!(
        "| {payload_bytes} | {logs} | {:.0} | {:.0} | {b50} / {b90} / {bmax} | {:.0} | \
         {p50} / {p90} / {p99} / {p999} / {max} | {:.0} |",
        records as f64 / seconds,
        flushes as f64 / seconds,
        bytes as f64 / records.max(1) as f64,
        recovery_bytes as f64 / recovery_seconds.max(1e-9) / 1e6,
    );
}
