//! Ballots: an acceptor refuses every ballot at or below its promise (Prepare) or below it
//! (Accept, Heartbeat), never persisting for them, and a refused proposer steps down.

use super::durability::past_stickiness;
use super::*;

fn promised_replica(ballot: Ballot) -> Replica {
    let mut replica = replica(2, &[1, 2, 3]);
    past_stickiness(&mut replica);
    let mut effects = Vec::new();
    let prepare = Message::Prepare { ballot, from: Slot(0), transfer: false };
    replica.on_message(n(ballot.node), prepare, &mut effects);
    complete_all(&mut replica, &effects);
    replica
}

#[test]
fn a_prepare_at_or_below_the_promise_is_rejected_without_a_persist() {
    let mut replica = promised_replica(b(2, 1));
    for ballot in [b(1, 3), b(2, 1), b(1, 1)] {
        let mut effects = Vec::new();
        let prepare = Message::Prepare { ballot, from: Slot(0), transfer: false };
        replica.on_message(n(3), prepare, &mut effects);
        let reject = Message::Reject { ballot, promised: b(2, 1) };
        assert_eq!(effects, [Effect::Send { to: n(3), message: reject }], "{ballot}");
        assert_eq!(replica.promised(), b(2, 1));
    }
}

#[test]
fn an_accept_or_heartbeat_below_the_promise_is_rejected() {
    let mut replica = promised_replica(b(2, 3));
    let mut effects = Vec::new();
    let accept =
        Message::Accept { ballot: b(1, 1), slot: Slot(0), value: noop(0), frontier: Slot(0) };
    replica.on_message(n(1), accept, &mut effects);
    let heartbeat =
        Message::Heartbeat { ballot: b(2, 1), frontier: Slot(0), truncation: Slot(0), round: 1 };
    replica.on_message(n(1), heartbeat, &mut effects);
    let reject_one = Message::Reject { ballot: b(1, 1), promised: b(2, 3) };
    let reject_two = Message::Reject { ballot: b(2, 1), promised: b(2, 3) };
    assert_eq!(
        effects,
        [
            Effect::Send { to: n(1), message: reject_one },
            Effect::Send { to: n(1), message: reject_two }
        ]
    );
    assert!(replica.chosen(Slot(0)).is_none());
}

#[test]
fn an_accept_at_the_promise_is_accepted() {
    let mut replica = promised_replica(b(2, 1));
    let mut effects = Vec::new();
    let accept =
        Message::Accept { ballot: b(2, 1), slot: Slot(0), value: noop(0), frontier: Slot(0) };
    replica.on_message(n(1), accept, &mut effects);
    let record = Record { slot: Slot(0), ballot: b(2, 1), value: noop(0), chosen: false };
    let persist =
        Effect::Persist { id: PersistId(2), promised: None, records: vec![record], chosen: vec![] };
    assert_eq!(effects, [persist], "no new promise to persist");
}

#[test]
fn a_candidate_steps_down_on_a_reject_with_a_higher_promise_and_campaigns_above_it() {
    let mut replica = replica(1, &[1, 2, 3]);
    tick_until_candidate(&mut replica);
    let ballot = replica.promised();
    assert_eq!(ballot, b(1, 1));
    let mut effects = Vec::new();
    let reject = Message::Reject { ballot, promised: b(7, 3) };
    replica.on_message(n(2), reject, &mut effects);
    assert_eq!(effects, []);
    assert_eq!(replica.role(), Role::Follower);
    let effects = tick_until_candidate(&mut replica);
    assert_eq!(replica.promised(), b(8, 1), "above every round seen");
    let prepare = Message::Prepare { ballot: b(8, 1), from: Slot(0), transfer: false };
    assert_eq!(sends(&effects), [(n(2), prepare.clone()), (n(3), prepare)]);
}

#[test]
fn the_promise_never_decreases() {
    let mut replica = promised_replica(b(5, 1));
    let mut effects = Vec::new();
    let prepare = Message::Prepare { ballot: b(3, 3), from: Slot(0), transfer: false };
    replica.on_message(n(3), prepare, &mut effects);
    replica.check_invariants();
    assert_eq!(replica.promised(), b(5, 1));
}
