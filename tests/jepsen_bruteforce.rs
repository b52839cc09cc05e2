//! The linearizability checker against brute force on small random register histories.
//!
//! Each case is at most [`OPERATIONS_COUNT_MAX`] operations on one register with overlapping
//! intervals, random outputs and some unknown outcomes. The oracle tries every order of every
//! subset that contains all known-outcome operations (unknown ones may be left out: they never
//! took effect), respecting real time, and applies the register model; the search must agree
//! with it on every case.

use klein::jepsen::history::RegisterOp;
use klein::jepsen::linearizability::{
    Budget, KeyVerdict, Model, Operation, RegisterModel, RegisterOutput, check_operations,
};
use proptest::prelude::*;

/// Most operations in one case: 8! orders times 2^8 subsets is still instant to enumerate.
const OPERATIONS_COUNT_MAX: usize = 8;

/// Values are drawn from a small domain so reads and compare-and-sets often match.
const VALUE_MAX: i64 = 2;

/// Cases per run (proptest's default is 256).
const CASES_COUNT: u32 = 2048;

type RegisterOperation = Operation<RegisterOp, RegisterOutput>;

fn brute_force(ops: &[RegisterOperation]) -> bool {
    fn search(ops: &[RegisterOperation], placed: &mut Vec<bool>, state: Option<i64>) -> bool {
        let known_left = ops.iter().zip(placed.iter()).any(|(op, done)| !done && op.ret.is_some());
        if !known_left {
            return true;
        }
        for at in 0..ops.len() {
            if placed[at] {
                continue;
            }
            // Every known op that returned before this one was called must already be placed.
            let ready = ops
                .iter()
                .zip(placed.iter())
                .all(|(other, done)| *done || other.ret.is_none_or(|ret| ret >= ops[at].call));
            if !ready {
                continue;
            }
            let Some(next) = RegisterModel.step(&state, &ops[at].input, ops[at].output.as_ref())
            else {
                continue;
            };
            placed[at] = true;
            let found = search(ops, placed, next);
            placed[at] = false;
            if found {
                return true;
            }
        }
        false
    }
    search(ops, &mut vec![false; ops.len()], RegisterModel.init())
}

fn value() -> impl Strategy<Value = i64> {
    0..=VALUE_MAX
}

fn operation() -> impl Strategy<Value = (RegisterOp, Option<i64>, bool, u64, u64, bool)> {
    let input = prop_oneof![
        Just(RegisterOp::Read(None)),
        value().prop_map(RegisterOp::Write),
        (value(), value()).prop_map(|(old, new)| RegisterOp::Cas(old, new)),
    ];
    // (input, a read's value, a cas's result, call, duration, unknown outcome)
    (
        input,
        proptest::option::of(value()),
        any::<bool>(),
        0..20_u64,
        0..8_u64,
        proptest::bool::weighted(0.2),
    )
}

fn history() -> impl Strategy<Value = Vec<RegisterOperation>> {
    proptest::collection::vec(operation(), 1..=OPERATIONS_COUNT_MAX).prop_map(|ops| {
        ops.into_iter()
            .enumerate()
            .map(|(id, (input, seen, swapped, call, duration, unknown))| {
                let output = match input {
                    RegisterOp::Read(_) => RegisterOutput::Read(seen),
                    RegisterOp::Write(_) => RegisterOutput::Written,
                    RegisterOp::Cas(..) => RegisterOutput::Cas(swapped),
                };
                let input = match input {
                    RegisterOp::Read(_) => RegisterOp::Read(seen),
                    other => other,
                };
                Operation {
                    id: id as u64,
                    process: id as u64,
                    input,
                    output: (!unknown).then_some(output),
                    call,
                    ret: (!unknown).then_some(call + duration),
                }
            })
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES_COUNT))]

    #[test]
    fn search_agrees_with_brute_force(ops in history()) {
        let budget = Budget { steps_max: u64::MAX, time_max: None };
        let (verdict, _) = check_operations(&RegisterModel, &ops, budget);
        let expected = brute_force(&ops);
        match verdict {
            KeyVerdict::Linearizable => prop_assert!(expected, "search says yes: {ops:#?}"),
            KeyVerdict::NotLinearizable(counterexample) => {
                prop_assert!(!expected, "search says no: {ops:#?}\n{counterexample}");
            }
            KeyVerdict::Unknown(why) => prop_assert!(false, "unlimited budget ran out: {why:?}"),
        }
    }
}

/// The generator must produce both verdicts often, or agreement proves little.
#[test]
fn random_histories_cover_both_verdicts() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let strategy = history();
    let (mut yes, mut no) = (0, 0);
    for _ in 0..500 {
        let ops = strategy.new_tree(&mut runner).expect("a case").current();
        if brute_force(&ops) {
            yes += 1;
        } else {
            no += 1;
        }
    }
    assert!(yes >= 50 && no >= 50, "{yes} linearizable, {no} not, of 500");
}
