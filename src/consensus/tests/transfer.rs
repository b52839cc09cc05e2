//! Leader transfer: the master stops proposing and serving lease reads, waits until the
//! target applied up to its commit frontier, then sends `TimeoutNow`; the target campaigns
//! with the transfer flag, which acceptors honour despite stickiness.

use super::*;
use crate::consensus::replica::{ProposeError, ReadPath};
use crate::constants::ELECTION_TIMEOUT_TICKS_MAX;

#[test]
fn a_transfer_waits_for_the_target_to_catch_up_then_sends_timeout_now() {
    let mut replica = replica(1, &[1, 2, 3]);
    let ballot = elect(&mut replica, n(2));
    replica.on_message(
        n(2),
        Message::HeartbeatAck { ballot, round: 1, applied: Slot(1) },
        &mut Vec::new(),
    );
    assert!(replica.has_lease());
    let mut effects = Vec::new();
    assert_eq!(replica.transfer(n(3), &mut effects), Ok(()));
    assert_eq!(sends(&effects).len(), 2, "a heartbeat round to learn the target's progress");
    assert!(!replica.has_lease(), "no lease reads from the moment the transfer starts");
    assert_eq!(replica.propose(bytes("x"), &mut Vec::new()), Err(ProposeError::Transferring));
    assert_eq!(replica.read(ReadId(1), &mut Vec::new()), Err(ProposeError::Transferring));

    let mut effects = Vec::new();
    replica.on_message(
        n(3),
        Message::HeartbeatAck { ballot, round: 2, applied: Slot(0) },
        &mut effects,
    );
    assert_eq!(effects, [], "the target has not applied the claim yet");
    replica.on_message(
        n(3),
        Message::HeartbeatAck { ballot, round: 2, applied: Slot(1) },
        &mut effects,
    );
    assert_eq!(effects, [Effect::Send { to: n(3), message: Message::TimeoutNow { ballot } }]);
}

#[test]
fn the_target_campaigns_at_once_with_the_transfer_flag() {
    let mut replica = replica(3, &[1, 2, 3]);
    let heartbeat =
        Message::Heartbeat { ballot: b(1, 1), frontier: Slot(0), truncation: Slot(0), round: 1 };
    replica.on_message(n(1), heartbeat, &mut Vec::new());
    let mut effects = Vec::new();
    replica.on_message(n(2), Message::TimeoutNow { ballot: b(1, 1) }, &mut effects);
    assert_eq!(effects, [], "only the master it follows may ask");
    replica.on_message(n(1), Message::TimeoutNow { ballot: b(1, 1) }, &mut effects);
    let prepare = Message::Prepare { ballot: b(2, 3), from: Slot(0), transfer: true };
    let persist = Effect::Persist {
        id: PersistId(1),
        promised: Some(b(2, 3)),
        records: vec![],
        chosen: vec![],
    };
    assert_eq!(
        effects,
        [
            persist,
            Effect::Send { to: n(1), message: prepare.clone() },
            Effect::Send { to: n(2), message: prepare }
        ]
    );
}

#[test]
fn a_transfer_moves_mastership_in_a_cluster() {
    let mut cluster = Cluster::new(&[1, 2, 3]);
    let first = cluster.run_until_master(4 * ELECTION_TIMEOUT_TICKS_MAX);
    let target = if first == 3 { 2 } else { 3 };
    cluster.with(first, |replica, effects| replica.transfer(n(target), effects)).unwrap();
    cluster.settle();
    cluster.run(1);
    assert_eq!(cluster.master(), Some(target));
    cluster.with(target, |replica, effects| replica.propose(bytes("moved"), effects)).unwrap();
    cluster.settle();
    cluster.run(20);
    for id in [1, 2, 3] {
        assert_eq!(cluster.batches(id), ["moved"]);
    }
}

#[test]
fn a_master_that_sent_timeout_now_never_serves_lease_reads_again_under_its_ballot() {
    // Found by klein-sim (seed 400041, a master-change storm under partitions): the target
    // won with transfer-flagged Prepares (stickiness does not hold them back), the old master
    // never heard of it, its transfer timed out, and it served lease reads on its old lease
    // (renewed by acks sent before the acceptors promised the target): stale reads.
    let mut replica = replica(1, &[1, 2, 3]);
    let ballot = elect(&mut replica, n(2));
    replica.transfer(n(3), &mut Vec::new()).unwrap();
    let mut effects = Vec::new();
    let caught_up = Message::HeartbeatAck { ballot, round: 2, applied: Slot(1) };
    replica.on_message(n(3), caught_up, &mut effects);
    assert_eq!(effects, [Effect::Send { to: n(3), message: Message::TimeoutNow { ballot } }]);
    // The transfer times out while peers keep acknowledging every heartbeat round.
    for _ in 0..=crate::constants::TRANSFER_TICKS_MAX {
        let mut effects = Vec::new();
        replica.on_tick(&mut effects);
        for (to, message) in sends(&effects) {
            if let Message::Heartbeat { round, .. } = message {
                let ack = Message::HeartbeatAck { ballot, round, applied: Slot(1) };
                replica.on_message(to, ack, &mut Vec::new());
            }
        }
        replica.check_invariants();
    }
    assert!(replica.is_serving(), "the transfer timed out: it masters on");
    assert!(!replica.has_lease(), "but without a lease");
    assert_eq!(replica.read(ReadId(7), &mut Vec::new()), Ok(ReadPath::ReadIndex));
}
