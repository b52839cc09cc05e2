//! The list-append checker on hand-built histories: one valid history per shape, and one
//! history per anomaly that must be reported by name.

use super::*;
use crate::jepsen::history::{Function, Recorder, encode_txn};

fn append(key: i64, element: i64) -> Mop {
    Mop::Append { key, element }
}

fn read(key: i64, list: &[i64]) -> Mop {
    Mop::Read { key, list: Some(list.to_vec()) }
}

/// Builds a history from (process, micro-ops as completed, outcome, call, return) in
/// completion order; invocations carry the same micro-ops with reads blanked.
struct Builder {
    txns: Vec<(u64, Vec<Mop>, OpType, u64, u64)>,
}

impl Builder {
    fn new() -> Builder {
        Builder { txns: Vec::new() }
    }

    fn txn(mut self, process: u64, mops: &[Mop], outcome: OpType, call: u64, ret: u64) -> Builder {
        self.txns.push((process, mops.to_vec(), outcome, call, ret));
        self
    }

    fn ok(self, process: u64, mops: &[Mop], call: u64, ret: u64) -> Builder {
        self.txn(process, mops, OpType::Ok, call, ret)
    }

    fn history(&self) -> History {
        let mut events: Vec<(u64, bool, usize)> = Vec::new();
        for (at, (_, _, _, call, ret)) in self.txns.iter().enumerate() {
            events.push((*call, false, at));
            events.push((*ret, true, at));
        }
        events.sort_unstable();
        let mut recorder = Recorder::new();
        for (time, is_return, at) in events {
            let (process, mops, outcome, _, _) = &self.txns[at];
            if is_return {
                let seen = if *outcome == OpType::Ok { mops.clone() } else { blank(mops) };
                recorder.complete(*process, *outcome, encode_txn(&seen), time);
            } else {
                recorder.invoke(*process, Function::Txn, encode_txn(&blank(mops)), time);
            }
        }
        recorder.finish()
    }

    fn check(&self) -> ListAppendReport {
        let history = self.history();
        // Every check also goes through the EDN form, as a recorded history would.
        let parsed = History::from_edn(&history.to_edn()).unwrap();
        assert_eq!(parsed, history);
        check_list_append_history(&parsed).unwrap()
    }
}

fn blank(mops: &[Mop]) -> Vec<Mop> {
    mops.iter()
        .map(|mop| match mop {
            Mop::Read { key, .. } => Mop::Read { key: *key, list: None },
            Mop::Append { .. } => mop.clone(),
        })
        .collect()
}

fn names(report: &ListAppendReport) -> Vec<&'static str> {
    report.counts.keys().copied().collect()
}

#[test]
fn serial_history_is_valid() {
    let report = Builder::new()
        .ok(0, &[append(1, 1), read(1, &[1])], 0, 1)
        .ok(1, &[read(1, &[1]), append(1, 2), append(2, 1)], 2, 3)
        .ok(0, &[read(1, &[1, 2]), read(2, &[1])], 4, 5)
        .check();
    assert!(report.is_valid(), "{}", report.describe());
    assert_eq!((report.txns, report.keys), (3, 2));
}

#[test]
fn concurrent_and_unknown_transactions_are_valid_when_some_order_fits() {
    let report = Builder::new()
        .ok(0, &[append(1, 1)], 0, 10)
        .ok(1, &[append(1, 2)], 1, 9)
        // Sees 2 before 1: fine, the appends were concurrent.
        .ok(2, &[read(1, &[2])], 3, 4)
        .txn(3, &[append(1, 3)], OpType::Info, 5, 6)
        .ok(2, &[read(1, &[2, 1])], 11, 12)
        // The unknown append may land after every read, or never.
        .txn(4, &[append(1, 4)], OpType::Fail, 13, 14)
        .ok(2, &[read(1, &[2, 1, 3])], 15, 16)
        .check();
    assert!(report.is_valid(), "{}", report.describe());
}

#[test]
fn write_cycle_is_g0() {
    let report = Builder::new()
        .ok(0, &[append(1, 1), append(2, 1)], 0, 10)
        .ok(1, &[append(1, 2), append(2, 2)], 0, 10)
        .ok(2, &[read(1, &[1, 2]), read(2, &[2, 1])], 20, 21)
        .check();
    assert_eq!(names(&report), vec!["G0"], "{}", report.describe());
    let Some(Anomaly::Cycle { steps, .. }) = report.anomalies.first() else { panic!() };
    assert_eq!(steps.len(), 2);
    assert!(steps.iter().all(|step| step.kind == EdgeKind::Ww));
    assert_eq!(steps[0].to, steps[1].from);
    assert_eq!(steps[1].to, steps[0].from);
}

#[test]
fn circular_information_flow_is_g1c() {
    let report = Builder::new()
        .ok(0, &[append(1, 1), read(2, &[1])], 0, 10)
        .ok(1, &[append(2, 1), read(1, &[1])], 0, 10)
        .check();
    assert_eq!(names(&report), vec!["G1c"], "{}", report.describe());
}

#[test]
fn read_skew_is_g_single() {
    let report = Builder::new()
        .ok(0, &[append(1, 1), append(2, 1)], 0, 10)
        .ok(1, &[read(1, &[]), read(2, &[1])], 0, 10)
        // A later read reveals where key 1's element sits in its order.
        .ok(2, &[read(1, &[1]), read(2, &[1])], 20, 21)
        .check();
    assert_eq!(names(&report), vec!["G-single"], "{}", report.describe());
}

#[test]
fn write_skew_is_g2() {
    let report = Builder::new()
        .ok(0, &[read(1, &[]), append(2, 1)], 0, 10)
        .ok(1, &[read(2, &[]), append(1, 1)], 0, 10)
        .ok(2, &[read(1, &[1]), read(2, &[1])], 20, 21)
        .check();
    assert_eq!(names(&report), vec!["G2"], "{}", report.describe());
    let Some(Anomaly::Cycle { steps, kind, realtime }) = report.anomalies.first() else { panic!() };
    assert_eq!((*kind, *realtime), (CycleKind::G2, false));
    assert_eq!(steps.iter().filter(|step| step.kind == EdgeKind::Rw).count(), 2);
}

#[test]
fn stale_read_after_an_acknowledged_append_is_lost_and_a_realtime_cycle() {
    let report = Builder::new()
        .ok(0, &[append(1, 1)], 0, 1)
        .ok(1, &[read(1, &[1])], 2, 3)
        .ok(0, &[append(1, 2)], 4, 5)
        .ok(1, &[read(1, &[1])], 6, 7)
        .ok(1, &[read(1, &[1, 2])], 8, 9)
        .check();
    assert_eq!(names(&report), vec!["G-single-realtime", "lost-append"], "{}", report.describe());
    assert!(report.anomalies.contains(&Anomaly::LostAppend {
        key: 1,
        element: 2,
        appender: 4,
        reader: 6,
        list: vec![1]
    }));
}

#[test]
fn acknowledged_append_never_read_again_is_lost() {
    let report = Builder::new()
        .ok(0, &[append(1, 1)], 0, 1)
        .ok(0, &[append(1, 2)], 2, 3)
        .ok(1, &[read(1, &[2])], 4, 5)
        .check();
    assert!(report.counts.contains_key("lost-append"), "{}", report.describe());
    let lost: Vec<_> =
        report.anomalies.iter().filter(|anomaly| anomaly.name() == "lost-append").collect();
    assert_eq!(lost.len(), 1);
    assert!(matches!(lost[0], Anomaly::LostAppend { element: 1, .. }));
}

#[test]
fn duplicate_garbage_and_aborted_elements_are_reported() {
    let report = Builder::new()
        .ok(0, &[append(1, 1)], 0, 1)
        .txn(0, &[append(1, 2)], OpType::Fail, 2, 3)
        .ok(1, &[read(1, &[1, 1])], 4, 5)
        .ok(1, &[read(2, &[7])], 6, 7)
        .ok(1, &[read(3, &[]), read(1, &[1, 2])], 8, 9)
        .check();
    assert_eq!(
        names(&report),
        vec!["G1a", "duplicate-elements", "garbage-elements", "incompatible-order"],
        "{}",
        report.describe()
    );
}

#[test]
fn intermediate_and_internal_reads_are_reported() {
    let intermediate = Builder::new()
        .ok(0, &[append(1, 1), append(1, 2)], 0, 10)
        .ok(1, &[read(1, &[1])], 0, 10)
        .check();
    assert_eq!(names(&intermediate), vec!["G1b"], "{}", intermediate.describe());
    let internal = Builder::new().ok(0, &[append(1, 1), read(1, &[])], 0, 10).check();
    assert!(internal.counts.contains_key("internal"), "{}", internal.describe());
}

#[test]
fn reads_that_disagree_on_the_order_are_incompatible() {
    let report = Builder::new()
        .ok(0, &[append(1, 1)], 0, 10)
        .ok(1, &[append(1, 2)], 0, 10)
        .ok(2, &[read(1, &[1, 2])], 20, 21)
        .ok(3, &[read(1, &[2])], 20, 21)
        .check();
    assert_eq!(names(&report), vec!["incompatible-order"], "{}", report.describe());
}

#[test]
fn the_same_element_appended_twice_breaks_the_workload_contract() {
    let report = Builder::new().ok(0, &[append(1, 1)], 0, 1).ok(1, &[append(1, 1)], 2, 3).check();
    assert_eq!(names(&report), vec!["non-unique-append"]);
}

#[test]
fn realtime_edges_are_transitively_reduced() {
    let mut builder = Builder::new();
    for step in 0..50_u64 {
        builder = builder.ok(0, &[append(1, i64::try_from(step).unwrap())], step * 2, step * 2 + 1);
    }
    let history = builder.history();
    let pairs = history.pairs().unwrap();
    assert_eq!(pairs.len(), 50);
    let txns: Vec<Txn> = pairs
        .iter()
        .map(|pair| Txn {
            id: pair.invoke.index,
            outcome: pair.outcome(),
            call: pair.call_time(),
            ret: pair.return_time(),
            mops: Vec::new(),
        })
        .collect();
    let mut graph = Graph::new(txns.len());
    realtime_edges(&txns, &mut graph);
    let edges: usize = graph.edges.iter().map(Vec::len).sum();
    assert_eq!(edges, 49, "a chain, not all 1225 pairs");
}
