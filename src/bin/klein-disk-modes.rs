//! `klein-disk-modes`: measures how a log append is best made durable on this machine's disk.
//!
//! A thin front end to `klein::runtime::disk_modes`: parses flags, runs the rounds, prints one
//! table per append size (median over the rounds, [min..max]) and optionally writes every run
//! as JSON. Scratch files are removed after each run; a directory this tool created is removed
//! at exit.
//!
//! ```text
//! cargo run --release --bin klein-disk-modes -- --dir /path/on/the/disk --json runs.json
//! ```

use std::fs;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use klein::runtime::disk_modes::{self, Options, Variant};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Measures write + sync modes for the durable log (io_uring, glommio, blocking) at queue depth
/// 1 on preallocated, overwritten-in-place O_DIRECT files.
#[derive(Parser, Debug)]
#[command(name = "klein-disk-modes", version)]
struct Cli {
    /// Directory for the scratch files, on the disk under test (not tmpfs) [default: a fresh
    /// directory under the current one].
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// Appends per run.
    #[arg(long, default_value_t = 2000)]
    count: usize,
    /// Append sizes in bytes, multiples of 4096.
    #[arg(long, value_delimiter = ',', default_value = "4096,65536")]
    sizes: Vec<usize>,
    /// Modes, each optionally with group commit (`uring-linked+group16`) [default: every mode,
    /// alone and +group16].
    #[arg(long, value_delimiter = ',', value_name = "MODE[+groupN]")]
    modes: Vec<Variant>,
    /// Rounds; each runs every size and mode once, interleaved.
    #[arg(long, default_value_t = 3)]
    repeats: usize,
    /// Writes every run (unaggregated) to this file as JSON.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let (dir, created) = match prepare_dir(cli.dir.as_ref()) {
        Ok(dir) => dir,
        Err(error) => {
            eprintln!("klein-disk-modes: {error}");
            return ExitCode::FAILURE;
        }
    };
    let variants = if cli.modes.is_empty() { Variant::defaults() } else { cli.modes.clone() };
    let options = Options {
        dir: dir.clone(),
        count: cli.count,
        sizes: cli.sizes,
        variants,
        repeats: cli.repeats,
    };
    let result = disk_modes::run_with(&options, |run| {
        eprintln!(
            "round {} {:>6} B {:<34} {:>9} appends/s  p50 {:>7} us  p99 {:>7} us",
            run.repeat + 1,
            run.size_bytes,
            run.variant.to_string(),
            disk_modes::format_number(run.appends_per_second()),
            disk_modes::format_number(run.latency.p50_us),
            disk_modes::format_number(run.latency.p99_us),
        );
    });
    if created && let Err(error) = fs::remove_dir_all(&dir) {
        eprintln!("klein-disk-modes: cannot remove {}: {error}", dir.display());
    }
    let report = match result {
        Ok(report) => report,
        Err(error) => {
            eprintln!("klein-disk-modes: {error}");
            return ExitCode::FAILURE;
        }
    };
    println!("{}", report.tables());
    if let Some(io_memory) = &report.glommio_io_memory {
        println!("glommio io_memory per executor: {io_memory}");
    }
    if let Some(path) = &cli.json
        && let Err(error) = fs::write(path, report.to_json())
    {
        eprintln!("klein-disk-modes: cannot write {}: {error}", path.display());
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

/// The scratch directory, and whether this run created it (and so removes it at exit).
fn prepare_dir(dir: Option<&PathBuf>) -> Result<(PathBuf, bool), String> {
    let dir = match dir {
        Some(dir) if dir.exists() => return Ok((dir.clone(), false)),
        Some(dir) => dir.clone(),
        None => {
            let cwd = std::env::current_dir().map_err(|error| format!("current dir: {error}"))?;
            cwd.join(format!(".klein-disk-modes-{}", std::process::id()))
        }
    };
    fs::create_dir_all(&dir).map_err(|error| format!("create {}: {error}", dir.display()))?;
    Ok((dir, true))
}
