//! Commit notification: the master's frontier, riding on Accept and Heartbeat, marks a slot
//! chosen only where the replica holds the master's ballot; other slots below it are gaps the
//! replica fetches with a catch-up request.

use super::*;

#[test]
fn the_frontier_marks_chosen_only_slots_accepted_under_the_masters_ballot() {
    let old = batch(b"old", 1);
    let snapshot = SnapshotMeta {
        slot: Slot(0),
        configurations: vec![(Slot(0), voters(1, &[1, 2, 3]))],
        stamp_millis: 0,
    };
    let records =
        vec![Record { slot: Slot(2), ballot: b(1, 3), value: old.clone(), chosen: false }];
    let durable = DurableState { promised: b(1, 3), snapshot, records };
    let mut replica = Replica::restart(options(2), durable);
    let ballot = b(2, 1);
    let (zero, one, two) = (batch(b"zero", 2), batch(b"one", 2), batch(b"two", 2));
    let mut effects = Vec::new();
    for (slot, value) in [(0, &zero), (1, &one)] {
        let accept =
            Message::Accept { ballot, slot: Slot(slot), value: value.clone(), frontier: Slot(0) };
        replica.on_message(n(1), accept, &mut effects);
    }
    complete_all(&mut replica, &effects);
    assert_eq!(replica.frontier(), Slot(0));

    let mut effects = Vec::new();
    let heartbeat = Message::Heartbeat { ballot, frontier: Slot(3), truncation: Slot(0), round: 4 };
    replica.on_message(n(1), heartbeat, &mut effects);
    let ack = Message::HeartbeatAck { ballot, round: 4, applied: Slot(2) };
    let request = Message::CatchUpRequest { from: Slot(2) };
    let marks = Effect::Persist {
        id: PersistId(3),
        promised: None,
        records: vec![],
        chosen: vec![Slot(0), Slot(1)],
    };
    assert_eq!(
        effects,
        [
            Effect::Send { to: n(1), message: request },
            Effect::Apply { slot: Slot(0), value: zero },
            Effect::Apply { slot: Slot(1), value: one },
            Effect::Send { to: n(1), message: ack },
            marks,
        ]
    );
    assert!(replica.chosen(Slot(2)).is_none(), "slot 2 holds another ballot's value");

    let mut effects = Vec::new();
    let catch_up = Message::CatchUp { entries: vec![(Slot(2), two.clone())], frontier: Slot(3) };
    replica.on_message(n(1), catch_up, &mut effects);
    let record = Record { slot: Slot(2), ballot: b(1, 3), value: two.clone(), chosen: true };
    let persist =
        Effect::Persist { id: PersistId(4), promised: None, records: vec![record], chosen: vec![] };
    assert_eq!(effects, [Effect::Apply { slot: Slot(2), value: two }, persist]);
    assert_eq!(replica.frontier(), Slot(3));
}

#[test]
fn the_frontier_on_an_accept_commits_the_slots_before_it() {
    let mut replica = replica(2, &[1, 2, 3]);
    let ballot = b(1, 1);
    let (zero, one) = (batch(b"zero", 0), batch(b"one", 0));
    let mut effects = Vec::new();
    let first = Message::Accept { ballot, slot: Slot(0), value: zero.clone(), frontier: Slot(0) };
    replica.on_message(n(1), first, &mut effects);
    complete_all(&mut replica, &effects);
    let mut effects = Vec::new();
    let second = Message::Accept { ballot, slot: Slot(1), value: one, frontier: Slot(1) };
    replica.on_message(n(1), second, &mut effects);
    assert_eq!(applies(&effects), [(Slot(0), zero)]);
    assert_eq!(replica.frontier(), Slot(1));
}
