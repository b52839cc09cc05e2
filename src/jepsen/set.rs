//! Set checker: what a linearizable grow-only set (`SADD` / `SMEMBERS`) may show, per key.
//!
//! After Jepsen's `set-full`, with real time: an element is *known* from the earliest of its
//! `:ok` add returning and an `:ok` read that contained it returning. Every `:ok` read called
//! strictly after that instant must contain it (the workload never removes). Reported:
//!
//! - **lost**: a read misses a known element and no later-called read shows it again;
//! - **stale**: a read misses a known element that a later-called read shows again (a
//!   flip-flop or a lagging replica answering);
//! - **unexpected**: a read shows an element nobody tried to add;
//! - **aborted-read**: a read shows an element whose every add `:fail`ed;
//! - **duplicate**: a read shows an element twice.
//!
//! Elements added with an unknown outcome may appear or not, until some read shows them.
//!
//! Cost: O(e * r) per key for `e` elements and `r` reads (each element against the reads
//! called after it became known), plus sorting.
//!
//! Must never: do I/O.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use super::history::{History, HistoryError, OpType, SetOp};
use crate::constants::JEPSEN_ANOMALIES_PER_KIND_COUNT_MAX;

/// Something a linearizable grow-only set cannot show.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SetAnomaly {
    /// A known element missing from a read and from every read called after it.
    Lost {
        /// The key.
        key: i64,
        /// The element.
        element: i64,
        /// History index of the read that missed it.
        reader: u64,
    },
    /// A known element missing from a read but shown by a later-called one.
    Stale {
        /// The key.
        key: i64,
        /// The element.
        element: i64,
        /// History index of the read that missed it.
        reader: u64,
    },
    /// An element nobody tried to add.
    Unexpected {
        /// The key.
        key: i64,
        /// The element.
        element: i64,
        /// History index of the read that showed it.
        reader: u64,
    },
    /// An element whose every add failed.
    AbortedRead {
        /// The key.
        key: i64,
        /// The element.
        element: i64,
        /// History index of the read that showed it.
        reader: u64,
    },
    /// An element twice in one read.
    Duplicate {
        /// The key.
        key: i64,
        /// The element.
        element: i64,
        /// History index of the read.
        reader: u64,
    },
}

impl SetAnomaly {
    /// The anomaly's name.
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self {
            SetAnomaly::Lost { .. } => "lost",
            SetAnomaly::Stale { .. } => "stale",
            SetAnomaly::Unexpected { .. } => "unexpected",
            SetAnomaly::AbortedRead { .. } => "aborted-read",
            SetAnomaly::Duplicate { .. } => "duplicate",
        }
    }
}

/// The set checker's findings.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SetReport {
    /// `:ok` reads checked.
    pub reads_checked: usize,
    /// Anomalies, at most [`JEPSEN_ANOMALIES_PER_KIND_COUNT_MAX`] of each name.
    pub anomalies: Vec<SetAnomaly>,
    /// How many of each name were found, kept or not.
    pub counts: BTreeMap<&'static str, usize>,
}

impl SetReport {
    /// No anomaly.
    #[must_use]
    pub fn is_valid(&self) -> bool {
        self.counts.is_empty()
    }

    fn push(&mut self, anomaly: SetAnomaly) {
        let count = self.counts.entry(anomaly.name()).or_default();
        *count += 1;
        if *count <= JEPSEN_ANOMALIES_PER_KIND_COUNT_MAX {
            self.anomalies.push(anomaly);
        }
    }
}

/// An `:ok` read: history index, call, return, elements.
struct Read {
    index: u64,
    call: u64,
    ret: u64,
    elements: Vec<i64>,
}

#[derive(Default)]
struct KeyOps {
    /// Element -> earliest `:ok` add return (`None`: attempted, never acknowledged).
    acknowledged: BTreeMap<i64, Option<u64>>,
    /// Elements with at least one add that did not `:fail`.
    attempted: HashSet<i64>,
    /// Elements with an add that `:fail`ed.
    failed: HashSet<i64>,
    reads: Vec<Read>,
}

/// Checks a set history.
///
/// # Errors
/// The history does not pair up, or a value lacks the set workload's shape.
pub fn check_set_history(history: &History) -> Result<SetReport, HistoryError> {
    let mut keys: BTreeMap<i64, KeyOps> = BTreeMap::new();
    for pair in history.pairs()? {
        let outcome = pair.outcome();
        let (key, op) = SetOp::decode(pair.invoke.f, pair.value(), pair.invoke.index)?;
        let ops = keys.entry(key).or_default();
        match op {
            SetOp::Add(element) if outcome == OpType::Fail => {
                ops.failed.insert(element);
            }
            SetOp::Add(element) => {
                ops.attempted.insert(element);
                let known = ops.acknowledged.entry(element).or_default();
                if let (OpType::Ok, Some(ret)) = (outcome, pair.return_time()) {
                    *known = Some(known.map_or(ret, |earlier| earlier.min(ret)));
                }
            }
            SetOp::Read(Some(elements)) if outcome == OpType::Ok => {
                let Some(ret) = pair.return_time() else { continue };
                ops.reads.push(Read {
                    index: pair.invoke.index,
                    call: pair.call_time(),
                    ret,
                    elements,
                });
            }
            SetOp::Read(_) => {}
        }
    }
    let mut report = SetReport::default();
    for (key, mut ops) in keys {
        ops.reads.sort_by_key(|read| (read.call, read.index));
        // Element -> when it became known (acknowledged add or a read showing it returned).
        let mut known: BTreeMap<i64, u64> = ops
            .acknowledged
            .iter()
            .filter_map(|(element, ret)| ret.map(|ret| (*element, ret)))
            .collect();
        for read in &ops.reads {
            report.reads_checked += 1;
            let mut seen = BTreeSet::new();
            for &element in &read.elements {
                if !seen.insert(element) {
                    report.push(SetAnomaly::Duplicate { key, element, reader: read.index });
                }
                if !ops.attempted.contains(&element) {
                    report.push(if ops.failed.contains(&element) {
                        SetAnomaly::AbortedRead { key, element, reader: read.index }
                    } else {
                        SetAnomaly::Unexpected { key, element, reader: read.index }
                    });
                }
                let at = known.entry(element).or_insert(read.ret);
                *at = (*at).min(read.ret);
            }
        }
        let contents: Vec<HashSet<i64>> =
            ops.reads.iter().map(|read| read.elements.iter().copied().collect()).collect();
        for (&element, &since) in &known {
            let first = ops.reads.partition_point(|read| read.call <= since);
            for at in first..ops.reads.len() {
                if contents[at].contains(&element) {
                    continue;
                }
                let reader = ops.reads[at].index;
                let again = contents[at + 1..].iter().any(|later| later.contains(&element));
                report.push(if again {
                    SetAnomaly::Stale { key, element, reader }
                } else {
                    SetAnomaly::Lost { key, element, reader }
                });
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
        r: &mut Recorder,
        process: u64,
        op: &SetOp,
        kind: OpType,
        seen: &SetOp,
        call: u64,
        ret: u64,
    ) {
        let (f, value) = op.encode(1);
        r.invoke(process, f, value, call);
        r.complete(process, kind, seen.encode(1).1, ret);
    }

    fn add(r: &mut Recorder, process: u64, element: i64, kind: OpType, call: u64, ret: u64) {
        run(r, process, &SetOp::Add(element), kind, &SetOp::Add(element), call, ret);
    }

    fn read(r: &mut Recorder, process: u64, elements: &[i64], call: u64, ret: u64) {
        let seen = SetOp::Read(Some(elements.to_vec()));
        run(r, process, &SetOp::Read(None), OpType::Ok, &seen, call, ret);
    }

    #[test]
    fn growing_reads_with_unknown_adds_are_valid() {
        let mut r = Recorder::new();
        add(&mut r, 0, 1, OpType::Ok, 0, 1);
        read(&mut r, 1, &[1], 2, 3);
        // An unknown add may show up late, or never.
        add(&mut r, 0, 2, OpType::Info, 4, 5);
        read(&mut r, 1, &[1], 6, 7);
        read(&mut r, 1, &[1, 2], 8, 9);
        add(&mut r, 2, 3, OpType::Info, 10, 11);
        read(&mut r, 1, &[2, 1], 12, 13);
        let report = check_set_history(&r.finish()).unwrap();
        assert_eq!(report.reads_checked, 4);
        assert!(report.is_valid(), "{report:?}");
    }

    #[test]
    fn missing_acknowledged_elements_are_lost_or_stale() {
        let mut r = Recorder::new();
        add(&mut r, 0, 1, OpType::Ok, 0, 1);
        add(&mut r, 0, 2, OpType::Ok, 2, 3);
        read(&mut r, 1, &[2], 4, 5);
        read(&mut r, 1, &[1, 2], 6, 7);
        read(&mut r, 1, &[1], 8, 9);
        let report = check_set_history(&r.finish()).unwrap();
        assert_eq!(
            report.anomalies,
            vec![
                SetAnomaly::Stale { key: 1, element: 1, reader: 4 },
                SetAnomaly::Lost { key: 1, element: 2, reader: 8 },
            ]
        );
    }

    #[test]
    fn an_unknown_add_once_seen_cannot_vanish() {
        let mut r = Recorder::new();
        add(&mut r, 0, 1, OpType::Info, 0, 1);
        read(&mut r, 1, &[1], 2, 3);
        read(&mut r, 1, &[], 4, 5);
        let report = check_set_history(&r.finish()).unwrap();
        assert_eq!(report.anomalies, vec![SetAnomaly::Lost { key: 1, element: 1, reader: 4 }]);
    }

    #[test]
    fn unexpected_aborted_and_duplicate_elements_are_reported() {
        let mut r = Recorder::new();
        add(&mut r, 0, 1, OpType::Fail, 0, 1);
        read(&mut r, 1, &[1, 7, 7], 2, 3);
        let report = check_set_history(&r.finish()).unwrap();
        let names: Vec<_> = report.counts.keys().copied().collect();
        assert_eq!(names, vec!["aborted-read", "duplicate", "unexpected"]);
        assert_eq!(report.counts["unexpected"], 2);
    }
}
