//! Unit tests of the linearizability search on hand-built register histories.

use super::*;
use crate::jepsen::edn::Edn;
use crate::jepsen::history::{Function, Recorder};

fn op(
    id: u64,
    input: RegisterOp,
    output: Option<RegisterOutput>,
    call: u64,
    ret: Option<u64>,
) -> Operation<RegisterOp, RegisterOutput> {
    Operation { id, process: id, input, output, call, ret }
}

fn read(id: u64, seen: Option<i64>, call: u64, ret: u64) -> Operation<RegisterOp, RegisterOutput> {
    op(id, RegisterOp::Read(seen), Some(RegisterOutput::Read(seen)), call, Some(ret))
}

fn write(id: u64, value: i64, call: u64, ret: u64) -> Operation<RegisterOp, RegisterOutput> {
    op(id, RegisterOp::Write(value), Some(RegisterOutput::Written), call, Some(ret))
}

fn check(
    ops: &[Operation<RegisterOp, RegisterOutput>],
) -> KeyVerdict<RegisterOp, RegisterOutput, Option<i64>> {
    check_operations(&RegisterModel, ops, Budget { steps_max: 1 << 20, time_max: None }).0
}

#[test]
fn sequential_history_is_linearizable() {
    let ops =
        [write(0, 1, 0, 1), read(1, Some(1), 2, 3), write(2, 2, 4, 5), read(3, Some(2), 6, 7)];
    assert_eq!(check(&ops), KeyVerdict::Linearizable);
}

#[test]
fn concurrent_reads_may_see_either_side_of_a_write() {
    let ops =
        [write(0, 1, 0, 10), read(1, None, 1, 2), read(2, Some(1), 3, 4), write(3, 2, 20, 21)];
    assert_eq!(check(&ops), KeyVerdict::Linearizable);
}

#[test]
fn stale_read_after_a_completed_write_is_reported_with_its_window() {
    let ops = [write(0, 1, 0, 1), write(1, 2, 2, 3), read(2, Some(1), 4, 5)];
    let KeyVerdict::NotLinearizable(counterexample) = check(&ops) else { panic!("must fail") };
    assert_eq!(counterexample.blocked.id, 2);
    assert_eq!(counterexample.linearized_count, 2);
    assert_eq!(counterexample.state, Some(2));
    assert_eq!(counterexample.window.iter().map(|op| op.id).collect::<Vec<_>>(), vec![2]);
    let text = counterexample.to_string();
    assert!(text.contains("failing window (1 ops"), "{text}");
}

#[test]
fn reads_flipping_between_values_are_not_linearizable() {
    // Two writes concurrent with everything; reads in sequence see 1, 2, 1.
    let ops = [
        write(0, 1, 0, 100),
        write(1, 2, 0, 100),
        read(2, Some(1), 10, 11),
        read(3, Some(2), 20, 21),
        read(4, Some(1), 30, 31),
    ];
    let KeyVerdict::NotLinearizable(counterexample) = check(&ops) else { panic!("must fail") };
    assert!(counterexample.window.iter().any(|op| op.id == 4), "{counterexample}");
}

#[test]
fn unknown_write_may_take_effect_late_or_never() {
    let unknown = op(0, RegisterOp::Write(7), None, 0, None);
    // Taking effect long after its call, after a read that missed it.
    let late = [unknown.clone(), read(1, None, 5, 6), read(2, Some(7), 50, 51)];
    assert_eq!(check(&late), KeyVerdict::Linearizable);
    // Never taking effect.
    let never = [unknown.clone(), read(1, None, 5, 6), read(2, None, 50, 51)];
    assert_eq!(check(&never), KeyVerdict::Linearizable);
    // But once seen, it cannot be unseen.
    let flip = [unknown, read(1, Some(7), 5, 6), read(2, None, 50, 51)];
    assert!(matches!(check(&flip), KeyVerdict::NotLinearizable(_)));
}

#[test]
fn compare_and_set_outcomes_constrain_the_state() {
    let ok = op(1, RegisterOp::Cas(1, 2), Some(RegisterOutput::Cas(true)), 2, Some(3));
    assert_eq!(
        check(&[write(0, 1, 0, 1), ok.clone(), read(2, Some(2), 4, 5)]),
        KeyVerdict::Linearizable
    );
    let wrong = op(1, RegisterOp::Cas(5, 2), Some(RegisterOutput::Cas(true)), 2, Some(3));
    assert!(matches!(check(&[write(0, 1, 0, 1), wrong]), KeyVerdict::NotLinearizable(_)));
    let mismatch = op(1, RegisterOp::Cas(1, 2), Some(RegisterOutput::Cas(false)), 2, Some(3));
    assert!(matches!(check(&[write(0, 1, 0, 1), mismatch]), KeyVerdict::NotLinearizable(_)));
}

#[test]
fn exhausted_step_budget_is_unknown_not_a_guess() {
    let mut ops = Vec::new();
    for id in 0..12 {
        ops.push(write(id, i64::try_from(id).unwrap(), 0, 1000));
    }
    ops.push(read(12, Some(-1), 2000, 2001));
    let budget = Budget { steps_max: 50, time_max: None };
    let (verdict, steps) = check_operations(&RegisterModel, &ops, budget);
    assert_eq!(verdict, KeyVerdict::Unknown(Exhausted::Steps));
    assert_eq!(steps, 50);
    let budget = Budget { steps_max: u64::MAX, time_max: Some(Duration::ZERO) };
    let (verdict, _) = check_operations(&RegisterModel, &ops, budget);
    assert_eq!(verdict, KeyVerdict::Unknown(Exhausted::Time));
}

#[test]
fn memo_keeps_many_concurrent_equal_writes_tractable() {
    // 12 concurrent writes of one value, then an impossible read: refuting it without the
    // memo walks all 12! orders; with it, each subset of writes is visited once.
    let mut ops: Vec<_> = (0..12).map(|id| write(id, 1, 0, 1000)).collect();
    ops.push(read(12, Some(2), 2000, 2001));
    let (verdict, steps) =
        check_operations(&RegisterModel, &ops, Budget { steps_max: 1 << 20, time_max: None });
    assert!(matches!(verdict, KeyVerdict::NotLinearizable(_)));
    assert!(steps < 200_000, "{steps} steps");
}

#[test]
fn history_is_checked_per_key_and_fail_ops_are_left_out() {
    let mut recorder = Recorder::new();
    let mut run = |process, register: RegisterOp, key, kind, seen: RegisterOp, t| {
        let (f, value) = register.encode(key);
        recorder.invoke(process, f, value, t);
        recorder.complete(process, kind, seen.encode(key).1, t + 1);
    };
    run(0, RegisterOp::Write(1), 1, OpType::Ok, RegisterOp::Write(1), 0);
    run(0, RegisterOp::Write(9), 2, OpType::Fail, RegisterOp::Write(9), 2);
    run(1, RegisterOp::Read(None), 2, OpType::Ok, RegisterOp::Read(None), 4);
    run(1, RegisterOp::Read(None), 1, OpType::Ok, RegisterOp::Read(Some(1)), 6);
    let history = recorder.finish();
    let report = check_register_history(&history, Budget::default()).unwrap();
    assert_eq!(report.verdict(), Verdict::Valid);
    assert_eq!(report.keys.len(), 2);

    // The same history with key 2's read seeing the failed write is invalid on key 2 only.
    let mut broken = history.clone();
    broken.ops[5].value = Edn::Vector(vec![Edn::Int(2), Edn::Int(9)]);
    let report = check_register_history(&broken, Budget::default()).unwrap();
    assert_eq!(report.verdict(), Verdict::Invalid);
    assert_eq!(report.keys[&1], KeyVerdict::Linearizable);
    assert!(report.describe().contains("key 2: not linearizable"), "{}", report.describe());
    assert_eq!(broken.ops[4].f, Function::Read);
}
