//! Restart from what the disk kept: promises survive (the superblock's and those implied by
//! accepted records), the chosen prefix is applied again, and a restarted replica refuses
//! every Prepare for an election timeout (it may have acknowledged a lease round).

use super::*;
use crate::constants::ELECTION_TIMEOUT_TICKS_MIN;

fn durable(promised: Ballot, records: Vec<Record>) -> DurableState {
    let snapshot = SnapshotMeta {
        slot: Slot(0),
        configurations: vec![(Slot(0), voters(1, &[1, 2, 3]))],
        stamp_millis: 0,
    };
    DurableState { promised, snapshot, records }
}

fn record(slot: u64, ballot: Ballot, text: &str, chosen: bool) -> Record {
    Record { slot: Slot(slot), ballot, value: batch(text.as_bytes(), slot), chosen }
}

#[test]
fn a_restarted_replica_keeps_the_highest_promise_of_superblock_and_records() {
    let records = vec![record(0, b(3, 2), "a", false)];
    let mut replica = Replica::restart(options(1), durable(b(2, 1), records));
    assert_eq!(replica.promised(), b(3, 2), "an accept under b is a promise of b");
    for _ in 0..ELECTION_TIMEOUT_TICKS_MIN {
        replica.on_tick(&mut Vec::new());
    }
    let mut effects = Vec::new();
    let prepare = Message::Prepare { ballot: b(3, 1), from: Slot(0), transfer: false };
    replica.on_message(n(3), prepare, &mut effects);
    let reject = Message::Reject { ballot: b(3, 1), promised: b(3, 2) };
    assert_eq!(effects, [Effect::Send { to: n(3), message: reject }]);
}

#[test]
fn a_restarted_replica_refuses_prepare_for_an_election_timeout() {
    let mut replica = Replica::restart(options(2), durable(b(1, 1), vec![]));
    let mut effects = Vec::new();
    let prepare = Message::Prepare { ballot: b(9, 3), from: Slot(0), transfer: false };
    replica.on_message(n(3), prepare.clone(), &mut effects);
    let reject = Message::Reject { ballot: b(9, 3), promised: b(1, 1) };
    assert_eq!(effects, [Effect::Send { to: n(3), message: reject }]);
    for _ in 0..ELECTION_TIMEOUT_TICKS_MIN {
        replica.on_tick(&mut Vec::new());
    }
    let mut effects = Vec::new();
    replica.on_message(n(3), prepare, &mut effects);
    assert_eq!(persist_ids(&effects).len(), 1, "promised once the timeout passed");
}

#[test]
fn a_restarted_replica_applies_its_chosen_prefix_again_in_order() {
    let records = vec![
        record(1, b(1, 1), "b", true),
        record(0, b(1, 1), "a", true),
        record(2, b(1, 1), "c", false),
        record(3, b(1, 1), "d", true),
    ];
    let mut replica = Replica::restart(options(2), durable(b(1, 1), records));
    assert_eq!(replica.frontier(), Slot(2), "slot 2 is not known chosen");
    assert_eq!(replica.applied(), Slot(0));
    let mut effects = Vec::new();
    replica.on_tick(&mut effects);
    assert_eq!(
        effects,
        [
            Effect::Apply { slot: Slot(0), value: batch(b"a", 0) },
            Effect::Apply { slot: Slot(1), value: batch(b"b", 1) },
        ]
    );
    replica.check_invariants();
}
