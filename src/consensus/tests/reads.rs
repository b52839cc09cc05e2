//! Linearizable reads at the master: under a valid lease at once, otherwise read-index (a
//! heartbeat round confirmed by a quorum); never at a follower; aborted on step-down.

use super::*;
use crate::consensus::replica::{ProposeError, ReadPath};

#[test]
fn a_read_under_the_lease_is_ready_at_once() {
    let mut replica = replica(1, &[1, 2, 3]);
    let ballot = elect(&mut replica, n(2));
    let ack = Message::HeartbeatAck { ballot, round: 1, applied: Slot(1) };
    replica.on_message(n(2), ack, &mut Vec::new());
    let mut effects = Vec::new();
    assert_eq!(replica.read(ReadId(1), &mut effects), Ok(ReadPath::Lease));
    assert_eq!(effects, [Effect::ReadReady { id: ReadId(1) }]);
}

#[test]
fn without_a_lease_a_read_waits_for_its_own_heartbeat_round() {
    let mut replica = replica(1, &[1, 2, 3]);
    let ballot = elect(&mut replica, n(2));
    let mut effects = Vec::new();
    assert_eq!(replica.read(ReadId(7), &mut effects), Ok(ReadPath::ReadIndex));
    let heartbeat = Message::Heartbeat { ballot, frontier: Slot(1), truncation: Slot(0), round: 2 };
    assert_eq!(
        effects,
        [
            Effect::Send { to: n(2), message: heartbeat.clone() },
            Effect::Send { to: n(3), message: heartbeat }
        ]
    );
    let mut effects = Vec::new();
    replica.on_message(
        n(2),
        Message::HeartbeatAck { ballot, round: 1, applied: Slot(1) },
        &mut effects,
    );
    assert_eq!(effects, [], "an older round does not confirm this read");
    replica.on_message(
        n(3),
        Message::HeartbeatAck { ballot, round: 2, applied: Slot(1) },
        &mut effects,
    );
    assert_eq!(effects, [Effect::ReadReady { id: ReadId(7) }]);
}

#[test]
fn a_follower_refuses_reads_and_names_its_master() {
    let mut replica = replica(2, &[1, 2, 3]);
    let heartbeat =
        Message::Heartbeat { ballot: b(1, 1), frontier: Slot(0), truncation: Slot(0), round: 1 };
    replica.on_message(n(1), heartbeat, &mut Vec::new());
    let refused = replica.read(ReadId(1), &mut Vec::new());
    assert_eq!(refused, Err(ProposeError::NotMaster { master: Some(n(1)) }));
}

#[test]
fn a_master_that_steps_down_aborts_its_waiting_reads() {
    let mut replica = replica(1, &[1, 2, 3]);
    let ballot = elect(&mut replica, n(2));
    replica.read(ReadId(3), &mut Vec::new()).unwrap();
    let mut effects = Vec::new();
    let accept = Message::Accept {
        ballot: b(ballot.round + 1, 3),
        slot: Slot(1),
        value: noop(0),
        frontier: Slot(1),
    };
    replica.on_message(n(3), accept, &mut effects);
    assert_eq!(effects[0], Effect::ReadAborted { id: ReadId(3) });
    assert_eq!(replica.role(), Role::Follower);
    assert_eq!(replica.master(), Some(n(3)));
}
