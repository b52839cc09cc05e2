//! Counter bounds: every read of a counter lies between what must and what may have been added.
//!
//! For a read `r` of key `k` (an `:ok` `:read`, `nil` meaning 0), with increments of any sign:
//!
//! - an add *definitely* precedes `r` when it is `:ok` and returned strictly before `r` was
//!   called (real-time order);
//! - an add *possibly* precedes `r` when it was not `:fail` and was called no later than `r`
//!   returned (an `:info` or never-completed add may take effect at any time after its call).
//!
//! Then `lower = sum(definite positive adds) + sum(possible negative adds)` and
//! `upper = sum(possible positive adds) + sum(definite negative adds)`, and a linearizable
//! counter always reads a value in `[lower, upper]`. This is Jepsen's counter checker with
//! real-time bounds; it is necessary, not sufficient (two reads can each be in bounds and
//! still disagree with each other); the linearizability checker covers that on small keys.
//!
//! Cost: O(n log n) per key (sorted prefix sums and binary search).
//!
//! Must never: do I/O.

use std::collections::BTreeMap;

use super::history::{CounterOp, History, HistoryError, OpType};
use crate::constants::JEPSEN_ANOMALIES_PER_KIND_COUNT_MAX;

/// A read outside its bounds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutOfBounds {
    /// The key.
    pub key: i64,
    /// History index of the read's invocation.
    pub read: u64,
    /// What it saw.
    pub value: i64,
    /// The least it could have seen.
    pub lower: i128,
    /// The most it could have seen.
    pub upper: i128,
}

/// The counter checker's findings.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CounterReport {
    /// `:ok` reads checked.
    pub reads_checked: usize,
    /// Reads out of bounds (at most [`JEPSEN_ANOMALIES_PER_KIND_COUNT_MAX`] kept).
    pub out_of_bounds: Vec<OutOfBounds>,
    /// All reads out of bounds, kept or not.
    pub out_of_bounds_count: usize,
}

impl CounterReport {
    /// No read out of bounds.
    #[must_use]
    pub fn is_valid(&self) -> bool {
        self.out_of_bounds_count == 0
    }
}

/// Sums of a sorted list of (time, amount), queried by time.
struct PrefixSums {
    times: Vec<u64>,
    sums: Vec<i128>,
}

impl PrefixSums {
    fn new(mut points: Vec<(u64, i64)>) -> PrefixSums {
        points.sort_unstable();
        let mut sums = Vec::with_capacity(points.len() + 1);
        sums.push(0_i128);
        for (_, amount) in &points {
            let last = *sums.last().expect("starts with 0");
            sums.push(last + i128::from(*amount));
        }
        PrefixSums { times: points.into_iter().map(|(time, _)| time).collect(), sums }
    }

    /// The sum of the amounts at times `< bound` (`inclusive`: `<= bound`).
    fn before(&self, bound: u64, inclusive: bool) -> i128 {
        let count =
            self.times.partition_point(|&time| time < bound || (inclusive && time == bound));
        self.sums[count]
    }
}

#[derive(Default)]
struct KeyOps {
    /// `:ok` adds by return time, split by sign.
    definite_positive: Vec<(u64, i64)>,
    definite_negative: Vec<(u64, i64)>,
    /// Adds that are not `:fail`, by call time, split by sign.
    possible_positive: Vec<(u64, i64)>,
    possible_negative: Vec<(u64, i64)>,
    /// `:ok` reads: (history index, call, return, value).
    reads: Vec<(u64, u64, u64, i64)>,
}

/// Checks every read of a counter history against its bounds.
///
/// # Errors
/// The history does not pair up, or a value lacks the counter workload's shape.
pub fn check_counter_history(history: &History) -> Result<CounterReport, HistoryError> {
    let mut keys: BTreeMap<i64, KeyOps> = BTreeMap::new();
    for pair in history.pairs()? {
        let outcome = pair.outcome();
        let (key, op) = CounterOp::decode(pair.invoke.f, pair.value(), pair.invoke.index)?;
        let ops = keys.entry(key).or_default();
        match op {
            CounterOp::Add(amount) if outcome != OpType::Fail => {
                let possible = (pair.call_time(), amount);
                if amount >= 0 {
                    ops.possible_positive.push(possible);
                } else {
                    ops.possible_negative.push(possible);
                }
                if let (OpType::Ok, Some(ret)) = (outcome, pair.return_time()) {
                    if amount >= 0 {
                        ops.definite_positive.push((ret, amount));
                    } else {
                        ops.definite_negative.push((ret, amount));
                    }
                }
            }
            CounterOp::Read(value) if outcome == OpType::Ok => {
                let Some(ret) = pair.return_time() else { continue };
                ops.reads.push((pair.invoke.index, pair.call_time(), ret, value.unwrap_or(0)));
            }
            CounterOp::Add(_) | CounterOp::Read(_) => {}
        }
    }
    let mut report = CounterReport::default();
    for (key, ops) in keys {
        let definite_positive = PrefixSums::new(ops.definite_positive);
        let definite_negative = PrefixSums::new(ops.definite_negative);
        let possible_positive = PrefixSums::new(ops.possible_positive);
        let possible_negative = PrefixSums::new(ops.possible_negative);
        for (read, call, ret, value) in ops.reads {
            report.reads_checked += 1;
            let lower = definite_positive.before(call, false) + possible_negative.before(ret, true);
            let upper = possible_positive.before(ret, true) + definite_negative.before(call, false);
            if !(lower..=upper).contains(&i128::from(value)) {
                report.out_of_bounds_count += 1;
                if report.out_of_bounds.len() < JEPSEN_ANOMALIES_PER_KIND_COUNT_MAX {
                    report.out_of_bounds.push(OutOfBounds { key, read, value, lower, upper });
                }
            }
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jepsen::history::Recorder;

    fn run(
        recorder: &mut Recorder,
        process: u64,
        op: CounterOp,
        kind: OpType,
        seen: CounterOp,
        call: u64,
        ret: u64,
    ) {
        let (f, value) = op.encode(1);
        recorder.invoke(process, f, value, call);
        recorder.complete(process, kind, seen.encode(1).1, ret);
    }

    #[test]
    fn reads_within_bounds_pass() {
        let mut r = Recorder::new();
        run(&mut r, 0, CounterOp::Add(5), OpType::Ok, CounterOp::Add(5), 0, 1);
        // Concurrent with an add of 3 that ends unknown: 5 or 8 are both fine.
        let (f, value) = CounterOp::Add(3).encode(1);
        r.invoke(1, f, value.clone(), 2);
        run(&mut r, 2, CounterOp::Read(None), OpType::Ok, CounterOp::Read(Some(8)), 3, 4);
        r.complete(1, OpType::Info, value, 5);
        run(&mut r, 2, CounterOp::Read(None), OpType::Ok, CounterOp::Read(Some(5)), 6, 7);
        run(&mut r, 0, CounterOp::Add(-2), OpType::Ok, CounterOp::Add(-2), 8, 9);
        run(&mut r, 2, CounterOp::Read(None), OpType::Ok, CounterOp::Read(Some(6)), 10, 11);
        let report = check_counter_history(&r.finish()).unwrap();
        assert_eq!(report.reads_checked, 3);
        assert!(report.is_valid(), "{report:?}");
    }

    #[test]
    fn lost_increment_and_phantom_increment_are_out_of_bounds() {
        let mut r = Recorder::new();
        run(&mut r, 0, CounterOp::Add(5), OpType::Ok, CounterOp::Add(5), 0, 1);
        run(&mut r, 0, CounterOp::Add(7), OpType::Fail, CounterOp::Add(7), 2, 3);
        // Misses the acknowledged 5.
        run(&mut r, 1, CounterOp::Read(None), OpType::Ok, CounterOp::Read(Some(0)), 4, 5);
        // Sees the failed 7.
        run(&mut r, 1, CounterOp::Read(None), OpType::Ok, CounterOp::Read(Some(12)), 6, 7);
        let report = check_counter_history(&r.finish()).unwrap();
        assert_eq!(report.out_of_bounds_count, 2);
        assert_eq!(
            report.out_of_bounds[0],
            OutOfBounds { key: 1, read: 4, value: 0, lower: 5, upper: 5 }
        );
        assert_eq!(report.out_of_bounds[1].value, 12);
    }

    #[test]
    fn negative_unknown_increment_lowers_the_lower_bound() {
        let mut r = Recorder::new();
        run(&mut r, 0, CounterOp::Add(5), OpType::Ok, CounterOp::Add(5), 0, 1);
        let (f, value) = CounterOp::Add(-4).encode(1);
        r.invoke(1, f, value, 2);
        run(&mut r, 2, CounterOp::Read(None), OpType::Ok, CounterOp::Read(Some(1)), 3, 4);
        run(&mut r, 2, CounterOp::Read(None), OpType::Ok, CounterOp::Read(Some(0)), 5, 6);
        let report = check_counter_history(&r.finish()).unwrap();
        assert_eq!(report.reads_checked, 2);
        assert_eq!(report.out_of_bounds_count, 1);
        assert_eq!((report.out_of_bounds[0].lower, report.out_of_bounds[0].upper), (1, 5));
    }
}
