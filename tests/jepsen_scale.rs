//! The checkers at the harness's scale: long histories made linearizable by construction must
//! pass quickly, and the same histories with one corrupted read must fail.
//!
//! Each generated history has [`PROCESSES_COUNT`] clients running operations back to back with
//! random durations; every operation takes effect at a random instant inside its interval, and
//! outputs are computed by applying the operations in the order of those instants (so a
//! linearization exists by construction). Some operations end `:info`, having taken effect or
//! not. This is the shape of a real run: about 10k operations, bounded concurrency, many keys.

use std::time::Instant;

use klein::jepsen::edn::Edn;
use klein::jepsen::history::{Function, History, Mop, OpType, RegisterOp, encode_txn};
use klein::jepsen::linearizability::{Budget, Verdict, check_register_history};
use klein::jepsen::list_append::check_list_append_history;

/// Concurrent clients.
const PROCESSES_COUNT: u64 = 8;

/// Operations per history.
const OPERATIONS_COUNT: usize = 10_000;

/// Keys of the register history (about 200 operations per key, as VERIFICATION.md plans).
const REGISTER_KEYS_COUNT: i64 = 50;

/// Keys of the list-append history.
const LIST_KEYS_COUNT: i64 = 20;

/// A fixed-seed xorshift: the histories are the same on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound
    }

    fn key(&mut self, count: i64) -> i64 {
        i64::try_from(self.below(u64::try_from(count).expect("positive"))).expect("small")
    }
}

/// One planned operation: process, call, effect instant, return, unknown outcome, whether an
/// unknown one took effect.
struct Slot {
    process: u64,
    call: u64,
    effect: u64,
    ret: u64,
    unknown: bool,
    applies: bool,
}

fn slots(rng: &mut Rng) -> Vec<Slot> {
    let mut slots = Vec::with_capacity(OPERATIONS_COUNT);
    let mut clocks = vec![0_u64; usize::try_from(PROCESSES_COUNT).expect("small")];
    for _ in 0..OPERATIONS_COUNT {
        let process = rng.below(PROCESSES_COUNT);
        let clock = &mut clocks[usize::try_from(process).expect("small")];
        let call = *clock + 1 + rng.below(5);
        let effect = call + rng.below(10);
        let ret = effect + rng.below(10);
        let unknown = rng.below(50) == 0;
        let applies = !unknown || rng.below(2) == 0;
        *clock = ret;
        slots.push(Slot { process, call, effect, ret, unknown, applies });
    }
    slots
}

/// Invocations and completions in time order; an unknown outcome never completes, and its
/// process moves on under a new process id, as Jepsen does.
fn history(slots: &[Slot], values: &[(Function, Edn, Edn)]) -> History {
    let mut events: Vec<(u64, bool, usize)> = Vec::new();
    let mut renamed = vec![0_u64; slots.len()];
    let mut generation = vec![0_u64; usize::try_from(PROCESSES_COUNT).expect("small")];
    for (at, slot) in slots.iter().enumerate() {
        let process = usize::try_from(slot.process).expect("small");
        renamed[at] = slot.process + PROCESSES_COUNT * generation[process];
        if slot.unknown {
            generation[process] += 1;
        } else {
            events.push((slot.ret, true, at));
        }
        events.push((slot.call, false, at));
    }
    events.sort_unstable();
    let mut recorder = klein::jepsen::history::Recorder::new();
    for (time, is_return, at) in events {
        let (f, invoke, seen) = &values[at];
        if is_return {
            recorder.complete(renamed[at], OpType::Ok, seen.clone(), time);
        } else {
            recorder.invoke(renamed[at], *f, invoke.clone(), time);
        }
    }
    recorder.finish()
}

fn register_history(rng: &mut Rng) -> History {
    let slots = slots(rng);
    let mut inputs = Vec::with_capacity(slots.len());
    for _ in &slots {
        let key = rng.key(REGISTER_KEYS_COUNT);
        let value = i64::try_from(rng.below(5)).expect("small");
        let op = match rng.below(3) {
            0 => RegisterOp::Read(None),
            1 => RegisterOp::Write(value),
            _ => RegisterOp::Cas(value, i64::try_from(rng.below(5)).expect("small")),
        };
        inputs.push((key, op));
    }
    let mut order: Vec<usize> = (0..slots.len()).collect();
    order.sort_by_key(|&at| (slots[at].effect, at));
    let mut state = vec![None; usize::try_from(REGISTER_KEYS_COUNT).expect("small")];
    let mut values: Vec<Option<(Function, Edn, Edn)>> = (0..slots.len()).map(|_| None).collect();
    for at in order {
        let (key, op) = inputs[at];
        let cell = &mut state[usize::try_from(key).expect("small")];
        let (f, invoke) = op.encode(key);
        let seen = match op {
            RegisterOp::Read(_) => RegisterOp::Read(*cell).encode(key).1,
            RegisterOp::Write(value) => {
                if slots[at].applies {
                    *cell = Some(value);
                }
                invoke.clone()
            }
            RegisterOp::Cas(old, new) => {
                if *cell == Some(old) && slots[at].applies {
                    *cell = Some(new);
                } else if !slots[at].unknown && *cell != Some(old) {
                    // A compare that did not match is a :fail in Jepsen's reading; recording it
                    // as a read-free no-op keeps the history valid: turn it into a read.
                    let (_, seen) = RegisterOp::Read(*cell).encode(key);
                    values[at] = Some((Function::Read, RegisterOp::Read(None).encode(key).1, seen));
                    continue;
                }
                invoke.clone()
            }
        };
        values[at] = Some((f, invoke, seen));
    }
    history(
        &slots,
        &values.into_iter().map(|value| value.expect("every op ran")).collect::<Vec<_>>(),
    )
}

fn list_history(rng: &mut Rng) -> History {
    let slots = slots(rng);
    let mut plans: Vec<Vec<(bool, i64)>> = Vec::with_capacity(slots.len());
    for _ in &slots {
        let count = 1 + rng.below(3);
        plans.push((0..count).map(|_| (rng.below(2) == 0, rng.key(LIST_KEYS_COUNT))).collect());
    }
    let mut order: Vec<usize> = (0..slots.len()).collect();
    order.sort_by_key(|&at| (slots[at].effect, at));
    let mut lists = vec![Vec::new(); usize::try_from(LIST_KEYS_COUNT).expect("small")];
    let mut values: Vec<Option<(Function, Edn, Edn)>> = (0..slots.len()).map(|_| None).collect();
    let mut next_element = 0;
    for at in order {
        let mut scratch = lists.clone();
        let (mut invoke, mut seen) = (Vec::new(), Vec::new());
        for &(is_append, key) in &plans[at] {
            let list: &mut Vec<i64> = &mut scratch[usize::try_from(key).expect("small")];
            if is_append {
                next_element += 1;
                list.push(next_element);
                invoke.push(Mop::Append { key, element: next_element });
                seen.push(Mop::Append { key, element: next_element });
            } else {
                invoke.push(Mop::Read { key, list: None });
                seen.push(Mop::Read { key, list: Some(list.clone()) });
            }
        }
        if slots[at].applies {
            lists = scratch;
        }
        values[at] = Some((Function::Txn, encode_txn(&invoke), encode_txn(&seen)));
    }
    history(
        &slots,
        &values.into_iter().map(|value| value.expect("every txn ran")).collect::<Vec<_>>(),
    )
}

#[test]
fn register_history_of_ten_thousand_ops_checks_quickly_and_a_stale_read_fails_it() {
    let history = register_history(&mut Rng(0x9E37_79B9_7F4A_7C15));
    let budget = Budget { steps_max: 1 << 24, time_max: None };
    let started = Instant::now();
    let report = check_register_history(&history, budget).expect("a register history");
    println!(
        "register: {} ops, {} keys, {} steps, {:?}",
        history.ops.len(),
        report.keys.len(),
        report.steps,
        started.elapsed()
    );
    assert_eq!(report.verdict(), Verdict::Valid, "{}", report.describe());
    assert_eq!(report.keys.len(), usize::try_from(REGISTER_KEYS_COUNT).expect("small"));

    // Corrupt the last completed read that saw a value: make it see a value never written.
    let mut broken = history.clone();
    let op = broken
        .ops
        .iter_mut()
        .rev()
        .find(|op| {
            op.kind == OpType::Ok
                && op.f == Function::Read
                && matches!(op.value.as_seq(), Some([_, Edn::Int(_)]))
        })
        .expect("a read that saw a value");
    let key = op.value.as_seq().and_then(<[Edn]>::first).cloned().expect("matched above");
    op.value = Edn::Vector(vec![key, Edn::Int(99)]);
    let report = check_register_history(&broken, budget).expect("a register history");
    assert_eq!(report.verdict(), Verdict::Invalid);
}

#[test]
fn list_append_history_of_ten_thousand_txns_checks_quickly_and_a_corrupt_read_fails_it() {
    let history = list_history(&mut Rng(0xD1B5_4A32_D192_ED03));
    let started = Instant::now();
    let report = check_list_append_history(&history).expect("a list-append history");
    println!("list-append: {} ops, {:?}", history.ops.len(), started.elapsed());
    assert!(report.is_valid(), "{}", report.describe());
    assert_eq!(report.keys, usize::try_from(LIST_KEYS_COUNT).expect("small"));

    // Drop the first element from the last completed read of a list of two or more.
    let mut broken = history.clone();
    let op = broken
        .ops
        .iter_mut()
        .rev()
        .find(|op| {
            op.kind == OpType::Ok
                && op.value.as_seq().is_some_and(|mops| {
                    mops.iter().any(
                        |mop| matches!(mop.as_seq(), Some([_, _, Edn::Vector(l)]) if l.len() > 1),
                    )
                })
        })
        .expect("a read of a non-empty list");
    let Edn::Vector(mops) = &mut op.value else { unreachable!("a txn is a vector") };
    for mop in mops.iter_mut() {
        if let Edn::Vector(parts) = mop
            && let Some(Edn::Vector(list)) = parts.get_mut(2)
            && list.len() > 1
        {
            list.remove(0);
            break;
        }
    }
    let report = check_list_append_history(&broken).expect("a list-append history");
    assert!(!report.is_valid());
    println!("corrupted: {:?}", report.counts);
    let shown = report.describe();
    assert!(shown.lines().all(|line| line.len() < 400), "reports stay readable: {shown}");
}
