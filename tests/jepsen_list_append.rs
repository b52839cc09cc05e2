//! The list-append checker against brute force: every anomaly it reports must be real.
//!
//! Random small histories of list-append transactions (at most [`TXNS_COUNT_MAX`] transactions
//! of one or two micro-ops over two keys, overlapping in time, some `:fail` and `:info`) are
//! built by running the transactions serially in a random order and sometimes corrupting a
//! read. The oracle decides strict serializability exhaustively: some order of the `:ok`
//! transactions plus any subset of the `:info` ones, respecting real time, in which every
//! read sees exactly the list built so far. Whenever the checker reports an anomaly the
//! oracle must say the history is not strictly serializable (soundness), and the checker must
//! report most of the histories the oracle refutes (it is incomplete by design: an element
//! no read ever shows has no known position).

use klein::jepsen::history::{Function, History, Mop, OpType, Recorder, encode_txn};
use klein::jepsen::list_append::check_list_append_history;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;

/// Most transactions in one case: 6! orders times 2^6 subsets is instant to enumerate.
const TXNS_COUNT_MAX: usize = 6;

/// Cases per run.
const CASES_COUNT: u32 = 1024;

/// One generated transaction: micro-op kinds, timing, outcome and corruption choices.
#[derive(Clone, Debug)]
struct Plan {
    /// (is append, key) per micro-op.
    mops: Vec<(bool, i64)>,
    call: u64,
    duration: u64,
    /// 0..8 ok, 8 fail, 9 info.
    outcome: u8,
    /// Where the serial run places it.
    rank: u8,
    /// 0 none, 1 drop the first element of a read, 2 reverse a read, 3 add garbage.
    corrupt: u8,
}

struct Txn {
    mops: Vec<Mop>,
    call: u64,
    ret: u64,
    outcome: OpType,
}

fn plan() -> impl Strategy<Value = Plan> {
    (
        proptest::collection::vec((any::<bool>(), 0..2_i64), 1..=2),
        0..12_u64,
        0..6_u64,
        0..10_u8,
        any::<u8>(),
        prop_oneof![8 => Just(0_u8), 1 => Just(1_u8), 1 => Just(2_u8), 1 => Just(3_u8)],
    )
        .prop_map(|(mops, call, duration, outcome, rank, corrupt)| Plan {
            mops,
            call,
            duration,
            outcome,
            rank,
            corrupt,
        })
}

/// Runs the plans serially in rank order to fill in reads, then corrupts some reads.
fn build(plans: &[Plan]) -> Vec<Txn> {
    let mut order: Vec<usize> = (0..plans.len()).collect();
    order.sort_by_key(|&at| (plans[at].rank, at));
    let mut lists: [Vec<i64>; 2] = [Vec::new(), Vec::new()];
    let mut txns: Vec<Option<Txn>> = (0..plans.len()).map(|_| None).collect();
    let mut next_element = 1;
    for at in order {
        let plan = &plans[at];
        let outcome = match plan.outcome {
            8 => OpType::Fail,
            9 => OpType::Info,
            _ => OpType::Ok,
        };
        // A failed transaction has no effect; an unknown one takes effect half of the time.
        let applies =
            outcome == OpType::Ok || (outcome == OpType::Info && plan.rank.is_multiple_of(2));
        let mut scratch = lists.clone();
        let mut mops = Vec::new();
        for &(is_append, key) in &plan.mops {
            let list = &mut scratch[usize::from(key == 1)];
            if is_append {
                mops.push(Mop::Append { key, element: next_element });
                list.push(next_element);
                next_element += 1;
            } else {
                let mut seen = list.clone();
                match plan.corrupt {
                    1 if !seen.is_empty() => {
                        seen.remove(0);
                    }
                    2 => seen.reverse(),
                    3 => seen.push(1000),
                    _ => {}
                }
                mops.push(Mop::Read { key, list: Some(seen) });
            }
        }
        if applies {
            lists = scratch;
        }
        let ret = plan.call + plan.duration;
        txns[at] = Some(Txn { mops, call: plan.call, ret, outcome });
    }
    txns.into_iter().map(|txn| txn.expect("every plan ran")).collect()
}

fn history(txns: &[Txn]) -> History {
    let mut events: Vec<(u64, bool, usize)> = Vec::new();
    for (at, txn) in txns.iter().enumerate() {
        events.push((txn.call, false, at));
        events.push((txn.ret, true, at));
    }
    events.sort_unstable();
    let mut recorder = Recorder::new();
    for (time, is_return, at) in events {
        let txn = &txns[at];
        let process = at as u64;
        let blank: Vec<Mop> = txn
            .mops
            .iter()
            .map(|mop| match mop {
                Mop::Read { key, .. } => Mop::Read { key: *key, list: None },
                Mop::Append { .. } => mop.clone(),
            })
            .collect();
        if !is_return {
            recorder.invoke(process, Function::Txn, encode_txn(&blank), time);
        } else if txn.outcome == OpType::Ok {
            recorder.complete(process, OpType::Ok, encode_txn(&txn.mops), time);
        } else if txn.outcome == OpType::Fail {
            recorder.complete(process, OpType::Fail, encode_txn(&blank), time);
        }
        // An :info transaction never completes: its outcome stays unknown.
    }
    recorder.finish()
}

/// Strict serializability by exhaustive search.
fn serializable(txns: &[Txn]) -> bool {
    fn search(txns: &[Txn], placed: &mut Vec<bool>, lists: &[Vec<i64>; 2]) -> bool {
        let pending = |at: usize| !placed[at] && txns[at].outcome == OpType::Ok;
        if !(0..txns.len()).any(pending) {
            return true;
        }
        for at in 0..txns.len() {
            if placed[at] || txns[at].outcome == OpType::Fail {
                continue;
            }
            // Every ok transaction that returned before this one was called goes first.
            let ready = (0..txns.len()).all(|other| {
                placed[other]
                    || txns[other].outcome != OpType::Ok
                    || txns[other].ret >= txns[at].call
            });
            if !ready {
                continue;
            }
            let mut next = lists.clone();
            let mut fits = true;
            for mop in &txns[at].mops {
                match mop {
                    Mop::Append { key, element } => next[usize::from(*key == 1)].push(*element),
                    Mop::Read { key, list } => {
                        let read_ok = txns[at].outcome != OpType::Ok
                            || list.as_ref() == Some(&next[usize::from(*key == 1)]);
                        fits &= read_ok;
                    }
                }
            }
            if !fits {
                continue;
            }
            placed[at] = true;
            let found = search(txns, placed, &next);
            placed[at] = false;
            if found {
                return true;
            }
        }
        false
    }
    search(txns, &mut vec![false; txns.len()], &[Vec::new(), Vec::new()])
}

fn plans() -> impl Strategy<Value = Vec<Plan>> {
    proptest::collection::vec(plan(), 1..=TXNS_COUNT_MAX)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES_COUNT))]

    #[test]
    fn reported_anomalies_are_real(plans in plans()) {
        let txns = build(&plans);
        let history = history(&txns);
        let report = check_list_append_history(&history).expect("well-formed history");
        if !report.is_valid() {
            prop_assert!(
                !serializable(&txns),
                "false alarm:\n{}\n{}",
                report.describe(),
                history.to_edn()
            );
        }
    }
}

/// The checker must catch most of what the oracle refutes, and the generator must produce
/// both kinds of history, or the soundness property above proves little.
#[test]
fn most_refuted_histories_are_reported() {
    let mut runner = TestRunner::deterministic();
    let strategy = plans();
    let (mut valid, mut refuted, mut reported) = (0, 0, 0);
    for _ in 0..1000 {
        let txns = build(&strategy.new_tree(&mut runner).expect("a case").current());
        if serializable(&txns) {
            valid += 1;
        } else {
            refuted += 1;
            let report = check_list_append_history(&history(&txns)).expect("well-formed");
            reported += usize::from(!report.is_valid());
        }
    }
    println!("list-append vs brute force: {valid} valid, {refuted} refuted, {reported} reported");
    assert!(valid >= 100 && refuted >= 100, "{valid} valid, {refuted} refuted");
    assert!(reported * 10 >= refuted * 8, "only {reported} of {refuted} refuted were reported");
}
