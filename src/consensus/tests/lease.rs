//! Leases: granted only when a phase-2 quorum acknowledged a heartbeat round, lasting
//! `LEASE_TICKS` from the round's start; acceptors that acknowledged refuse Prepare for an
//! election timeout (stickiness) unless the master asked for a transfer; a master with no
//! quorum for an election timeout steps down (check-quorum).

use super::durability::past_stickiness;
use super::*;
use crate::constants::{ELECTION_TIMEOUT_TICKS_MIN, LEASE_TICKS};

fn ack(ballot: Ballot, round: u64) -> Message {
    Message::HeartbeatAck { ballot, round, applied: Slot(1) }
}

#[test]
fn a_lease_needs_a_quorum_of_acknowledgements_and_expires() {
    let mut replica = replica(1, &[1, 2, 3]);
    let ballot = elect(&mut replica, n(2));
    let start = replica.now(); // Round 1 started when it became master.
    assert!(!replica.has_lease(), "nobody acknowledged round 1 yet");
    let mut effects = Vec::new();
    replica.on_message(n(3), ack(ballot, 1), &mut effects);
    assert_eq!(effects, []);
    assert!(replica.has_lease(), "itself and 3: a majority");
    while replica.now() < start + LEASE_TICKS - 1 {
        replica.on_tick(&mut Vec::new());
        assert!(replica.has_lease());
    }
    replica.on_tick(&mut Vec::new());
    assert!(!replica.has_lease(), "expired at start + LEASE_TICKS");
    assert_eq!(replica.role(), Role::Master, "but still master");
}

#[test]
fn an_acknowledgement_of_an_unknown_round_or_ballot_grants_nothing() {
    let mut replica = replica(1, &[1, 2, 3]);
    let ballot = elect(&mut replica, n(2));
    let mut effects = Vec::new();
    replica.on_message(n(3), ack(ballot, 99), &mut effects);
    replica.on_message(n(3), ack(b(ballot.round + 1, 3), 1), &mut effects);
    assert!(!replica.has_lease());
}

#[test]
fn check_quorum_steps_a_master_down_after_an_election_timeout_without_a_quorum() {
    let mut replica = replica(1, &[1, 2, 3]);
    let ballot = elect(&mut replica, n(2));
    let start = replica.now();
    replica.on_message(n(3), ack(ballot, 1), &mut Vec::new());
    while replica.now() < start + ELECTION_TIMEOUT_TICKS_MIN - 1 {
        replica.on_tick(&mut Vec::new());
        replica.check_invariants();
    }
    assert_eq!(replica.role(), Role::Master);
    let mut effects = Vec::new();
    replica.on_tick(&mut effects);
    assert_eq!(replica.role(), Role::Follower);
    assert_eq!(effects, []);
}

#[test]
fn stickiness_refuses_prepare_while_a_master_is_live_unless_it_transfers() {
    let mut replica = replica(2, &[1, 2, 3]);
    past_stickiness(&mut replica);
    let mut effects = Vec::new();
    let heartbeat =
        Message::Heartbeat { ballot: b(1, 1), frontier: Slot(0), truncation: Slot(0), round: 1 };
    replica.on_message(n(1), heartbeat, &mut effects);
    let mut effects = Vec::new();
    let prepare = Message::Prepare { ballot: b(5, 3), from: Slot(0), transfer: false };
    replica.on_message(n(3), prepare.clone(), &mut effects);
    let reject = Message::Reject { ballot: b(5, 3), promised: Ballot::ZERO };
    assert_eq!(effects, [Effect::Send { to: n(3), message: reject }]);

    let mut effects = Vec::new();
    let transfer = Message::Prepare { ballot: b(5, 3), from: Slot(0), transfer: true };
    replica.on_message(n(3), transfer, &mut effects);
    let persist = Effect::Persist {
        id: PersistId(1),
        promised: Some(b(5, 3)),
        records: vec![],
        chosen: vec![],
    };
    assert_eq!(effects, [persist]);
}

#[test]
fn stickiness_ends_an_election_timeout_after_the_master_was_last_heard() {
    let mut replica = replica(2, &[1, 2, 3]);
    past_stickiness(&mut replica);
    let heartbeat =
        Message::Heartbeat { ballot: b(1, 1), frontier: Slot(0), truncation: Slot(0), round: 1 };
    replica.on_message(n(1), heartbeat, &mut Vec::new());
    for _ in 0..ELECTION_TIMEOUT_TICKS_MIN {
        replica.on_tick(&mut Vec::new());
    }
    let mut effects = Vec::new();
    let prepare = Message::Prepare { ballot: b(5, 3), from: Slot(0), transfer: false };
    replica.on_message(n(3), prepare, &mut effects);
    assert_eq!(persist_ids(&effects).len(), 1, "promised");
    assert_eq!(replica.promised(), b(5, 3));
}

#[test]
fn a_master_refuses_prepare_while_it_is_master() {
    let mut replica = replica(1, &[1, 2, 3]);
    let ballot = elect(&mut replica, n(2));
    let mut effects = Vec::new();
    let prepare = Message::Prepare { ballot: b(9, 3), from: Slot(0), transfer: false };
    replica.on_message(n(3), prepare, &mut effects);
    let reject = Message::Reject { ballot: b(9, 3), promised: ballot };
    assert_eq!(effects, [Effect::Send { to: n(3), message: reject }]);
    assert_eq!(replica.role(), Role::Master);
}

#[test]
fn no_other_master_serves_while_a_partitioned_master_holds_its_lease() {
    let mut cluster = Cluster::new(&[1, 2, 3]);
    let old = cluster.run_until_master(4 * crate::constants::ELECTION_TIMEOUT_TICKS_MAX);
    cluster.run(2 * crate::constants::HEARTBEAT_INTERVAL_TICKS);
    assert!(cluster.replica(old).has_lease());
    for other in [1, 2, 3].into_iter().filter(|id| *id != old) {
        cluster.cut.insert((n(old), n(other)));
    }
    let mut lease_ended = false;
    let mut new_master = None;
    for _ in 0..4 * crate::constants::ELECTION_TIMEOUT_TICKS_MAX {
        cluster.run(1);
        let serving: Vec<u64> =
            [1, 2, 3].into_iter().filter(|id| cluster.replica(*id).is_serving()).collect();
        if cluster.replica(old).has_lease() {
            assert_eq!(serving, [old], "a second master while the old lease holds");
        } else {
            lease_ended = true;
        }
        if let Some(other) = serving.iter().find(|id| **id != old) {
            assert!(lease_ended, "elected before the lease ended");
            new_master = Some(*other);
        }
    }
    assert!(new_master.is_some(), "the majority side elects a master after the lease");
    assert_ne!(cluster.replica(old).role(), Role::Master, "check-quorum deposed the old one");
}
