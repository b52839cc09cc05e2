//! Cross-check of the linearizability checker on Jepsen's etcd register histories.
//!
//! The `todc-utils` crate (a dev-dependency, pinned) ships in its source the logs of 102
//! Jepsen runs against etcd 0.4 (`tests/linearizability/etcd/etcd_NNN.log`: one register,
//! read / write / compare-and-set, partitions) and, in `tests/linearizability/etcd.rs`, the
//! verdict of each (taken from Horn & Kroening's linearizability-checker, `lt.cc`). This test
//! finds those files in cargo's registry, reads the expected verdicts from the crate's own
//! test file (so they cannot drift from what it ships), parses every log as Porcupine does,
//! and asserts that `klein::jepsen::linearizability` gives each history its expected verdict.
//!
//! Log reading (Porcupine's `parseJepsenLog`): `:invoke` starts an op; `:ok` completes it;
//! `:fail :cas` is a completed compare-and-set whose compare did not match; `:fail :read
//! :timed-out` never happened (the read is dropped); `:info` (timed out) is an unknown outcome
//! that may take effect at any time after its call. Time is the line number.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use klein::jepsen::history::RegisterOp;
use klein::jepsen::linearizability::{
    Budget, KeyVerdict, Operation, RegisterModel, RegisterOutput, check_operations,
};

/// The crate directory's name in cargo's registry (the version is pinned in Cargo.toml).
const TODC_CRATE_DIR: &str = "todc-utils-0.1.1";

/// How many histories the crate ships with a verdict (103 logs, run 095 has none).
const ETCD_HISTORIES_COUNT: usize = 102;

/// Steps allowed per history: 25 times what the hardest of them needs (about 660,000; all
/// 102 together take about 1.2 million), so an "unknown" here is a checker regression.
const ETCD_STEPS_MAX: u64 = 1 << 24;

fn todc_dir() -> PathBuf {
    let cargo_home = std::env::var_os("CARGO_HOME").map_or_else(
        || PathBuf::from(std::env::var_os("HOME").expect("HOME or CARGO_HOME")).join(".cargo"),
        PathBuf::from,
    );
    let sources = cargo_home.join("registry").join("src");
    let entries = std::fs::read_dir(&sources)
        .unwrap_or_else(|error| panic!("cannot list {}: {error}", sources.display()));
    for entry in entries.flatten() {
        let candidate = entry.path().join(TODC_CRATE_DIR);
        if candidate.is_dir() {
            return candidate;
        }
    }
    panic!("{TODC_CRATE_DIR} not found under {}; run `cargo fetch`", sources.display());
}

/// `("NNN", true|false)` pairs of the crate's `etcd_tests!` table; commented rows are skipped.
fn expected_verdicts(dir: &Path) -> BTreeMap<String, bool> {
    let path = dir.join("tests/linearizability/etcd.rs");
    let text = std::fs::read_to_string(&path).expect("todc's etcd test table");
    let mut verdicts = BTreeMap::new();
    for line in text.lines() {
        let line = line.trim();
        if !line.starts_with("test_") {
            continue;
        }
        let Some((_, row)) = line.split_once(": (\"") else { continue };
        let Some((number, rest)) = row.split_once('"') else { continue };
        let verdict = if rest.contains("true") {
            true
        } else {
            assert!(rest.contains("false"), "unreadable row {line}");
            false
        };
        verdicts.insert(number.to_string(), verdict);
    }
    verdicts
}

type RegisterOperation = Operation<RegisterOp, RegisterOutput>;

fn parse_log(text: &str) -> Vec<RegisterOperation> {
    let mut operations: Vec<RegisterOperation> = Vec::new();
    let mut pending: BTreeMap<u64, usize> = BTreeMap::new();
    let mut dropped: Vec<usize> = Vec::new();
    for (line_number, line) in text.lines().enumerate() {
        let words: Vec<&str> = line.split_whitespace().collect();
        if words.len() < 7 || words[1] != "jepsen.util" || words[3] == ":nemesis" {
            continue;
        }
        let time = line_number as u64;
        let process: u64 = words[3].parse().expect("process number");
        let (kind, f, args) = (words[4], words[5], &words[6..]);
        let int = |word: &str| -> i64 {
            word.trim_matches(|c| c == '[' || c == ']').parse().expect("integer")
        };
        if kind == ":invoke" {
            let input = match f {
                ":read" => RegisterOp::Read(None),
                ":write" => RegisterOp::Write(int(args[0])),
                ":cas" => RegisterOp::Cas(int(args[0]), int(args[1])),
                other => panic!("unknown function {other}"),
            };
            let id = operations.len() as u64;
            pending.insert(process, operations.len());
            operations.push(Operation { id, process, input, output: None, call: time, ret: None });
            continue;
        }
        let at = pending.remove(&process).expect("completion of a pending op");
        let output = match (kind, f) {
            (":ok", ":read") => {
                RegisterOutput::Read(if args[0] == "nil" { None } else { Some(int(args[0])) })
            }
            (":ok", ":write") => RegisterOutput::Written,
            (":ok", ":cas") => RegisterOutput::Cas(true),
            (":fail", ":cas") => RegisterOutput::Cas(false),
            (":fail", ":read") => {
                dropped.push(at);
                continue;
            }
            (":info", _) => continue,
            other => panic!("unexpected completion {other:?}"),
        };
        operations[at].output = Some(output);
        operations[at].ret = Some(time);
    }
    let mut kept = Vec::with_capacity(operations.len());
    for (at, op) in operations.into_iter().enumerate() {
        if !dropped.contains(&at) {
            kept.push(op);
        }
    }
    kept
}

#[test]
fn etcd_histories_get_their_published_verdicts() {
    let dir = todc_dir();
    let expected = expected_verdicts(&dir);
    assert_eq!(expected.len(), ETCD_HISTORIES_COUNT, "rows of todc's table");
    let budget = Budget { steps_max: ETCD_STEPS_MAX, time_max: None };
    let mut matched = 0;
    let mut linearizable = 0;
    let mut mismatches = Vec::new();
    let mut steps_total = 0;
    let mut steps_most = 0;
    for (number, &should_be_linearizable) in &expected {
        let path = dir.join(format!("tests/linearizability/etcd/etcd_{number}.log"));
        let text = std::fs::read_to_string(&path).expect("etcd log");
        let operations = parse_log(&text);
        assert!(operations.len() > 10, "etcd_{number}: only {} ops", operations.len());
        let (verdict, steps) = check_operations(&RegisterModel, &operations, budget);
        steps_total += steps;
        steps_most = steps_most.max(steps);
        let got = match verdict {
            KeyVerdict::Linearizable => true,
            KeyVerdict::NotLinearizable(_) => false,
            KeyVerdict::Unknown(why) => panic!("etcd_{number}: unknown ({why:?})"),
        };
        if got == should_be_linearizable {
            matched += 1;
            linearizable += usize::from(got);
        } else {
            mismatches.push(format!("etcd_{number}: expected {should_be_linearizable}, got {got}"));
        }
    }
    println!(
        "etcd cross-check: {} histories, {matched} verdicts matched ({linearizable} \
         linearizable, {} not), {steps_total} steps, at most {steps_most} for one history",
        expected.len(),
        matched - linearizable,
    );
    assert!(mismatches.is_empty(), "{mismatches:#?}");
    assert_eq!(matched, ETCD_HISTORIES_COUNT);
}

#[test]
fn an_etcd_counterexample_names_its_failing_window() {
    let dir = todc_dir();
    // etcd_000 is not linearizable (see the table).
    let text = std::fs::read_to_string(dir.join("tests/linearizability/etcd/etcd_000.log"))
        .expect("etcd log");
    let operations = parse_log(&text);
    let budget = Budget { steps_max: ETCD_STEPS_MAX, time_max: None };
    let (verdict, _) = check_operations(&RegisterModel, &operations, budget);
    let KeyVerdict::NotLinearizable(counterexample) = verdict else {
        panic!("etcd_000 must not be linearizable")
    };
    let blocked = &counterexample.blocked;
    assert!(counterexample.window.contains(blocked));
    assert!(counterexample.window.len() < operations.len() / 2, "{counterexample}");
    for op in &counterexample.window {
        assert!(op.call <= blocked.ret.expect("the blocked op returned"), "{counterexample}");
    }
    println!("{counterexample}");
}

/// The etcd histories as Jepsen EDN files: written with `History::write_file`, read back, and
/// checked through `check_register_history`, the path the harness will take. Jepsen's reading
/// drops `:fail` ops, so a failed compare-and-set no longer says "did not match": that only
/// removes constraints, so every history linearizable above must stay linearizable here; the
/// others happen to stay invalid too (their violations are reads, not failed compares), which
/// this test pins as well.
#[test]
fn etcd_histories_survive_edn_files_and_stay_linearizable() {
    use klein::jepsen::history::{History, OpType, Recorder};
    use klein::jepsen::linearizability::{Verdict, check_register_history};

    let dir = todc_dir();
    let expected = expected_verdicts(&dir);
    let scratch = tempfile::tempdir().expect("a temporary directory");
    let mut checked = 0;
    for (number, &linearizable) in &expected {
        let path = dir.join(format!("tests/linearizability/etcd/etcd_{number}.log"));
        let operations = parse_log(&std::fs::read_to_string(&path).expect("etcd log"));
        // Events in time order: (time, is completion, op).
        let mut events: Vec<(u64, bool, usize)> = Vec::new();
        for (at, op) in operations.iter().enumerate() {
            events.push((op.call, false, at));
            if let Some(ret) = op.ret {
                events.push((ret, true, at));
            }
        }
        events.sort_unstable();
        let mut recorder = Recorder::new();
        for (time, is_completion, at) in events {
            let op = &operations[at];
            if !is_completion {
                let (f, value) = op.input.encode(0);
                recorder.invoke(op.process, f, value, time);
                continue;
            }
            let (kind, seen) = match op.output {
                Some(RegisterOutput::Cas(false)) => (OpType::Fail, op.input),
                Some(RegisterOutput::Read(value)) => (OpType::Ok, RegisterOp::Read(value)),
                _ => (OpType::Ok, op.input),
            };
            recorder.complete(op.process, kind, seen.encode(0).1, time);
        }
        let history = recorder.finish();
        let file = scratch.path().join(format!("etcd_{number}.edn"));
        history.write_file(&file).expect("write history");
        let read_back = History::read_file(&file).expect("read history");
        assert_eq!(read_back, history, "etcd_{number}: EDN round trip");
        let budget = Budget { steps_max: ETCD_STEPS_MAX, time_max: None };
        let report = check_register_history(&read_back, budget).expect("a register history");
        assert_eq!(report.keys.len(), 1);
        let want = if linearizable { Verdict::Valid } else { Verdict::Invalid };
        assert_eq!(report.verdict(), want, "etcd_{number}\n{}", report.describe());
        checked += 1;
    }
    println!("etcd as EDN files, Jepsen's reading: {checked} histories, verdicts matched");
    assert_eq!(checked, ETCD_HISTORIES_COUNT);
}
