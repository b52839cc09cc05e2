//! `klein-sim`: the deterministic cluster simulator's front end.
//!
//! Runs seeds `S..S+N-1` of `klein::sim::cluster` (each seed swarm-selects its faults), prints
//! progress, and ends with `sim: seeds=N faults=K violations=0 ops=M`. A failing seed prints
//! its violations and the one-line replay command, and the process exits non-zero. The start
//! seed comes from the OS when absent: the only non-deterministic input, printed first.
//! `--list-plants` prints the bugs `--plant NAME` can plant (in the consensus core or the
//! simulated disk), one a line, name first; a planted run must fail.
//!
//! ```text
//! cargo run --release --features sim --bin klein-sim -- --seeds 100
//! klein-sim --seeds 1 --seed 42 --trace
//! klein-sim --plant apply-out-of-order --seeds 200
//! ```

use std::collections::BTreeSet;
use std::hash::{BuildHasher, RandomState};
use std::process::ExitCode;

use clap::Parser;
use klein::sim::cluster::{Planted, run_seed};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Seeds between two progress lines.
const PROGRESS_SEEDS: u64 = 10;

/// Runs the deterministic cluster simulator over a range of seeds.
#[derive(Parser, Debug)]
#[command(name = "klein-sim", version)]
struct Cli {
    /// How many seeds to run.
    #[arg(long, default_value_t = 1)]
    seeds: u64,
    /// The first seed [default: drawn from the OS].
    #[arg(long)]
    seed: Option<u64>,
    /// Print a readable event trace of every seed.
    #[arg(long)]
    trace: bool,
    /// List the bugs `--plant` can plant, then exit.
    #[arg(long)]
    list_plants: bool,
    /// Plant a bug in the consensus core or the simulated disk (see `--list-plants`); a run
    /// should fail.
    #[arg(long, value_name = "NAME")]
    plant: Option<String>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if cli.list_plants {
        for plant in Planted::all() {
            println!("{:<32} {}", plant.name(), plant.description());
        }
        return ExitCode::SUCCESS;
    }
    let plant = match cli.plant.as_deref().map(|name| (name, Planted::from_name(name))) {
        None => None,
        Some((_, Some(plant))) => Some(plant),
        Some((name, None)) => {
            eprintln!("klein-sim: no plant named {name} (see --list-plants)");
            return ExitCode::FAILURE;
        }
    };
    let start = cli.seed.unwrap_or_else(|| RandomState::new().hash_one(0_u64));
    println!("sim: start seed {start}");
    let mut kinds: BTreeSet<&'static str> = BTreeSet::new();
    let mut ops = 0;
    for offset in 0..cli.seeds {
        let seed = start.wrapping_add(offset);
        let (report, trace) = run_seed(seed, cli.trace, plant);
        for line in &trace {
            println!("{line}");
        }
        kinds.extend(report.fault_kinds.iter().copied());
        ops += report.ops;
        if !report.violations.is_empty() {
            println!(
                "sim: seed {seed} FAILED (faults: {}; ops={} returned={} crashes={})",
                report.fault_kinds.join(","),
                report.ops,
                report.returned,
                report.crashes,
            );
            for violation in &report.violations {
                println!("  violation: {violation}");
            }
            let planted =
                plant.map(|plant| format!(" --plant {}", plant.name())).unwrap_or_default();
            println!("replay: klein-sim --seeds 1 --seed {seed} --trace{planted}");
            return ExitCode::FAILURE;
        }
        if cli.trace || (offset + 1) % PROGRESS_SEEDS == 0 {
            println!(
                "sim: seed {seed} ok (nodes={}; faults: {}; ops={} returned={} crashes={} \
                 lin-unknown={})",
                report.nodes,
                report.fault_kinds.join(","),
                report.ops,
                report.returned,
                report.crashes,
                report.linearizability_unknown,
            );
        }
    }
    println!("sim: seeds={} faults={} violations=0 ops={ops}", cli.seeds, kinds.len());
    ExitCode::SUCCESS
}
