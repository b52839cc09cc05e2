//! Membership: one change at a time, governing `W` slots after the slot that chose it; phase
//! 1 needs a quorum of every configuration that may govern the candidate's window (a joint
//! quorum across a pending change); learners receive everything and never count; flexible
//! phase sizes; a master removed by a change steps down once it governs.

use super::*;
use crate::consensus::message::PromiseEntry;
use crate::consensus::replica::ProposeError;
use crate::constants::{ELECTION_TIMEOUT_TICKS_MAX, PIPELINE_WINDOW_SLOTS};

fn accept_targets(effects: &[Effect]) -> Vec<NodeId> {
    sends(effects)
        .into_iter()
        .filter(|(_, message)| matches!(message, Message::Accept { .. }))
        .map(|(to, _)| to)
        .collect()
}

#[test]
fn a_change_governs_w_slots_after_the_slot_that_chose_it() {
    let mut replica = replica(1, &[1, 2, 3]);
    let ballot = elect(&mut replica, n(2));
    let mut effects = Vec::new();
    let change = voters(2, &[1, 2, 3, 4]);
    assert_eq!(replica.propose_membership(change.clone(), &mut effects), Ok(Slot(1)));
    assert_eq!(accept_targets(&effects), [n(2), n(3)], "slot 1 is governed by epoch 1");
    let again = replica.propose_membership(voters(3, &[1, 2, 3]), &mut Vec::new());
    assert_eq!(again, Err(ProposeError::MembershipChange), "one change at a time");
    complete_all(&mut replica, &effects);
    replica.on_message(
        n(2),
        Message::Accepted(Accepted::received(ballot, Slot(1))),
        &mut Vec::new(),
    );
    assert!(replica.chosen(Slot(1)).is_some());
    assert_eq!(replica.configuration(Slot(PIPELINE_WINDOW_SLOTS)).epoch, 1);
    assert_eq!(replica.configuration(Slot(1 + PIPELINE_WINDOW_SLOTS)), &change);

    let mut last = Vec::new();
    for index in 0..PIPELINE_WINDOW_SLOTS {
        last.clear();
        let slot = replica.propose(bytes(&format!("{index}")), &mut last).unwrap();
        assert_eq!(slot, Slot(2 + index));
    }
    assert_eq!(accept_targets(&last), [n(2), n(3), n(4)], "slot 1 + W: the new voter too");
}

#[test]
fn a_learner_receives_everything_but_never_counts() {
    let membership = Membership::majority(1, nodes(&[1, 2, 3]), nodes(&[4])).unwrap();
    let mut replica = Replica::new(options(1), membership.clone());
    let ballot = elect(&mut replica, n(2));
    let mut effects = Vec::new();
    replica.propose(bytes("x"), &mut effects).unwrap();
    assert_eq!(accept_targets(&effects), [n(2), n(3), n(4)]);
    complete_all(&mut replica, &effects);
    let mut effects = Vec::new();
    replica.on_message(n(4), Message::Accepted(Accepted::received(ballot, Slot(1))), &mut effects);
    replica.on_message(
        n(4),
        Message::HeartbeatAck { ballot, round: 1, applied: Slot(1) },
        &mut effects,
    );
    assert!(replica.chosen(Slot(1)).is_none(), "a learner's acceptance does not count");
    assert!(!replica.has_lease(), "nor does its acknowledgement");
    replica.on_message(n(3), Message::Accepted(Accepted::received(ballot, Slot(1))), &mut effects);
    assert!(replica.chosen(Slot(1)).is_some());

    let mut learner = Replica::new(options(4), membership);
    for _ in 0..3 * ELECTION_TIMEOUT_TICKS_MAX {
        let mut effects = Vec::new();
        learner.on_tick(&mut effects);
        assert_eq!(effects, [], "a learner never campaigns");
    }
}

#[test]
fn phase_one_needs_a_quorum_of_every_configuration_the_promises_report() {
    let mut replica = replica(1, &[1, 2, 3]);
    let effects = tick_until_candidate(&mut replica);
    let ballot = replica.promised();
    complete_all(&mut replica, &effects);
    let change =
        Value { stamp_millis: 0, kind: ValueKind::MembershipChange(voters(2, &[1, 4, 5])) };
    let reported =
        vec![PromiseEntry { slot: Slot(0), ballot: b(0, 7), value: change.clone(), chosen: false }];
    let mut effects = Vec::new();
    replica.on_message(
        n(2),
        Message::Promise(Promise::received((ballot, Slot(0)), (reported, false), None)),
        &mut effects,
    );
    let prepare = Message::Prepare { ballot, from: Slot(0), transfer: false };
    assert_eq!(
        effects,
        [
            Effect::Send { to: n(4), message: prepare.clone() },
            Effect::Send { to: n(5), message: prepare }
        ],
        "a majority of {{1, 2, 3}} but not of {{1, 4, 5}}: ask the new voters"
    );
    assert_eq!(replica.role(), Role::Candidate);
    let mut effects = Vec::new();
    replica.on_message(
        n(4),
        Message::Promise(Promise::received((ballot, Slot(0)), (vec![], false), None)),
        &mut effects,
    );
    assert_eq!(replica.role(), Role::Master, "{{1, 2}} and {{1, 4}}: a joint quorum");
    let first = sends(&effects)
        .into_iter()
        .find(|(_, message)| matches!(message, Message::Accept { .. }))
        .unwrap();
    let reproposed = Message::Accept { ballot, slot: Slot(0), value: change, frontier: Slot(0) };
    assert_eq!(first, (n(2), reproposed), "the reported change is re-proposed");
}

#[test]
fn flexible_quorums_use_the_configured_phase_sizes() {
    let membership = Membership::flexible(1, nodes(&[1, 2, 3, 4, 5]), nodes(&[]), 4, 2).unwrap();
    let mut replica = Replica::new(options(1), membership);
    let effects = tick_until_candidate(&mut replica);
    let ballot = replica.promised();
    complete_all(&mut replica, &effects);
    let promise = || Message::Promise(Promise::received((ballot, Slot(0)), (vec![], false), None));
    let mut effects = Vec::new();
    replica.on_message(n(2), promise(), &mut effects);
    replica.on_message(n(3), promise(), &mut effects);
    assert_eq!(replica.role(), Role::Candidate, "3 promises, phase 1 needs 4");
    replica.on_message(n(4), promise(), &mut effects);
    assert_eq!(replica.role(), Role::Master);
    let mut out = complete_all(&mut replica, &effects);
    replica.on_message(n(5), Message::Accepted(Accepted::received(ballot, Slot(0))), &mut out);
    assert!(replica.is_serving(), "itself and 5: phase 2 needs 2");
}

#[test]
fn a_master_removed_by_a_change_steps_down_once_it_governs() {
    let mut cluster = Cluster::new(&[1, 2, 3]);
    let first = cluster.run_until_master(4 * ELECTION_TIMEOUT_TICKS_MAX);
    let others: Vec<u64> = [1, 2, 3].into_iter().filter(|id| *id != first).collect();
    let change = voters(2, &others);
    cluster.with(first, |replica, effects| replica.propose_membership(change, effects)).unwrap();
    let change_slot = cluster.replica(first).frontier();
    let mut proposed = 0;
    while cluster.replica(first).role() == Role::Master {
        cluster.settle();
        let text = format!("{proposed}");
        if cluster.with(first, |replica, effects| replica.propose(bytes(&text), effects)).is_ok() {
            proposed += 1;
        }
    }
    assert_eq!(proposed, PIPELINE_WINDOW_SLOTS - 1, "stepped down when slot s + W came due");
    assert_eq!(cluster.replica(first).frontier(), Slot(change_slot.0 + PIPELINE_WINDOW_SLOTS));
    let second = cluster.run_until_master(6 * ELECTION_TIMEOUT_TICKS_MAX);
    assert!(others.contains(&second));
}
