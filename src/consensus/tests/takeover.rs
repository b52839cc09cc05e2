//! A new master re-proposes, for every slot its phase-1 quorum reported, the value with the
//! highest accepted ballot (a slot reported chosen stays as it is), fills holes with no-ops,
//! then proposes its master claim; it serves only once the claim is chosen and applied.

use super::*;
use crate::consensus::message::PromiseEntry;
use crate::consensus::replica::ProposeError;

fn accept(ballot: Ballot, slot: u64, value: &Value, frontier: u64) -> Message {
    Message::Accept { ballot, slot: Slot(slot), value: value.clone(), frontier: Slot(frontier) }
}

fn record(slot: u64, ballot: Ballot, value: &Value) -> Record {
    Record { slot: Slot(slot), ballot, value: value.clone(), chosen: false }
}

/// The exact effects of proposing `value` in `slot` under `ballot` to peers 2 and 3.
fn proposal(id: u64, ballot: Ballot, slot: u64, value: &Value) -> Vec<Effect> {
    let persist = Effect::Persist {
        id: PersistId(id),
        promised: None,
        records: vec![record(slot, ballot, value)],
        chosen: vec![],
    };
    let to = |node| Effect::Send { to: n(node), message: accept(ballot, slot, value, 0) };
    vec![persist, to(2), to(3)]
}

#[test]
fn a_new_master_re_proposes_the_highest_ballot_values_and_fills_holes_with_noops() {
    let ours = batch(b"ours", 3);
    let theirs = batch(b"theirs", 2);
    let later = batch(b"later", 4);
    let snapshot = SnapshotMeta {
        slot: Slot(0),
        configurations: vec![(Slot(0), voters(1, &[1, 2, 3]))],
        stamp_millis: 0,
    };
    let durable =
        DurableState { promised: b(3, 3), snapshot, records: vec![record(0, b(3, 3), &ours)] };
    let mut replica = Replica::restart(options(1), durable);
    let effects = tick_until_candidate(&mut replica);
    let ballot = b(4, 1);
    let prepare = Message::Prepare { ballot, from: Slot(0), transfer: false };
    let own_promise = Effect::Persist {
        id: PersistId(1),
        promised: Some(ballot),
        records: vec![],
        chosen: vec![],
    };
    let prepare_to = |node| Effect::Send { to: n(node), message: prepare.clone() };
    assert_eq!(effects, [own_promise, prepare_to(2), prepare_to(3)]);
    assert_eq!(complete_all(&mut replica, &effects), [], "one promise is no quorum");

    let entry = |slot, ballot, value: &Value| PromiseEntry {
        slot: Slot(slot),
        ballot,
        value: value.clone(),
        chosen: false,
    };
    let reported = vec![entry(0, b(2, 2), &theirs), entry(2, b(3, 3), &later)];
    let mut effects = Vec::new();
    let promise = Promise::received((ballot, Slot(0)), (reported, false), None);
    replica.on_message(n(2), Message::Promise(promise), &mut effects);
    assert_eq!(replica.role(), Role::Master);
    let stamp = replica.now() * crate::constants::TICK_MILLIS;
    let mut expected = Vec::new();
    for node in [2, 3] {
        let heartbeat =
            Message::Heartbeat { ballot, frontier: Slot(0), truncation: Slot(0), round: 1 };
        expected.push(Effect::Send { to: n(node), message: heartbeat });
    }
    expected.extend(proposal(2, ballot, 0, &ours)); // b3.3 beats b2.2
    expected.extend(proposal(3, ballot, 1, &noop(stamp))); // nobody reported slot 1
    expected.extend(proposal(4, ballot, 2, &later));
    let claim = Value { stamp_millis: stamp, kind: ValueKind::MasterClaim { node: n(1), ballot } };
    expected.extend(proposal(5, ballot, 3, &claim));
    assert_eq!(effects, expected);

    // Not serving before the claim is chosen and applied.
    assert!(!replica.is_serving());
    let refused = replica.propose(bytes("early"), &mut Vec::new());
    assert_eq!(refused, Err(ProposeError::NotMaster { master: None }));
    assert_eq!(complete_all(&mut replica, &effects), [], "own acceptances alone choose nothing");
    let mut effects = Vec::new();
    for slot in [3, 1, 0] {
        let accepted = Accepted::received(ballot, Slot(slot));
        replica.on_message(n(3), Message::Accepted(accepted), &mut effects);
    }
    assert_eq!(applies(&effects).len(), 2, "slots 0 and 1; slot 2 is a gap");
    assert!(!replica.is_serving(), "chosen but not applied: the claim waits for slot 2");
    let mut effects = Vec::new();
    replica.on_message(n(2), Message::Accepted(Accepted::received(ballot, Slot(2))), &mut effects);
    assert_eq!(applies(&effects), [(Slot(2), later), (Slot(3), claim)]);
    assert!(replica.is_serving());
    assert_eq!(replica.propose(bytes("now"), &mut Vec::new()), Ok(Slot(4)));
}

#[test]
fn a_slot_reported_chosen_is_kept_not_re_proposed() {
    let mut replica = replica(1, &[1, 2, 3]);
    let effects = tick_until_candidate(&mut replica);
    let ballot = replica.promised();
    complete_all(&mut replica, &effects);
    let chosen = batch(b"chosen", 1);
    let reported =
        vec![PromiseEntry { slot: Slot(0), ballot: b(0, 9), value: chosen.clone(), chosen: true }];
    let mut effects = Vec::new();
    let promise = Promise::received((ballot, Slot(0)), (reported, false), None);
    replica.on_message(n(3), Message::Promise(promise), &mut effects);
    assert_eq!(applies(&effects), [(Slot(0), chosen.clone())]);
    assert_eq!(replica.chosen(Slot(0)), Some(&chosen));
    let accepts: Vec<Slot> = sends(&effects)
        .into_iter()
        .filter_map(|(_, message)| match message {
            Message::Accept { slot, .. } => Some(slot),
            _ => None,
        })
        .collect();
    assert_eq!(accepts, [Slot(1), Slot(1)], "only the claim, in slot 1");
}

/// The slots each `Accept` in `effects` proposes, in order (one per peer sent to).
fn accept_slots(effects: &[Effect]) -> Vec<u64> {
    sends(effects)
        .into_iter()
        .filter_map(|(_, message)| match message {
            Message::Accept { slot, .. } => Some(slot.0),
            _ => None,
        })
        .collect()
}

#[test]
fn a_master_whose_acceptors_hold_slots_beyond_the_window_prepares_the_next_window() {
    // Found by klein-sim (seeds 1184, 5067): acceptors held accepted slots more than a window
    // past every replica's frontier, answered "behind", and no candidate ever won.
    let window = crate::constants::PROMISE_ENTRIES_MAX;
    let mut replica = replica(1, &[1, 2, 3]);
    let effects = tick_until_candidate(&mut replica);
    let ballot = replica.promised();
    complete_all(&mut replica, &effects);
    let theirs = batch(b"theirs", 1);
    let entry = |slot, value: &Value| PromiseEntry {
        slot: Slot(slot),
        ballot: b(0, 2),
        value: value.clone(),
        chosen: false,
    };
    let first = Promise::received((ballot, Slot(0)), (vec![entry(0, &theirs)], true), None);
    let mut effects = Vec::new();
    replica.on_message(n(2), Message::Promise(first.clone()), &mut effects);
    assert_eq!(replica.role(), Role::Master);
    let proposed: Vec<u64> = (0..window).flat_map(|slot| [slot, slot]).collect();
    assert_eq!(accept_slots(&effects), proposed, "the first window only, and no claim yet");

    // Every slot of the window chosen: the next window's phase 1, same ballot, from W.
    let mut effects = complete_all(&mut replica, &effects);
    for slot in 0..window {
        let accepted = Accepted::received(ballot, Slot(slot));
        replica.on_message(n(3), Message::Accepted(accepted), &mut effects);
    }
    assert_eq!(replica.frontier(), Slot(window));
    assert!(accept_slots(&effects).is_empty(), "nothing proposed beyond the horizon");
    let prepare = Message::Prepare { ballot, from: Slot(window), transfer: false };
    let prepares: Vec<(NodeId, Message)> =
        sends(&effects).into_iter().filter(|(_, m)| matches!(m, Message::Prepare { .. })).collect();
    assert_eq!(prepares, [(n(2), prepare.clone()), (n(3), prepare)]);
    let mut effects = complete_all(&mut replica, &effects); // Its own promise for window 2.

    // A late promise of the first window does not count for the second.
    replica.on_message(n(2), Message::Promise(first), &mut effects);
    assert!(accept_slots(&effects).is_empty(), "a stale window's promise is not counted");
    let later = batch(b"later", 2);
    let late_slot = window + 3;
    let second =
        Promise::received((ballot, Slot(window)), (vec![entry(late_slot, &later)], false), None);
    replica.on_message(n(3), Message::Promise(second), &mut effects);
    let proposed: Vec<u64> = (window..=late_slot + 1).flat_map(|slot| [slot, slot]).collect();
    assert_eq!(accept_slots(&effects), proposed, "window 2 up to the reported slot, then claim");
    let reproposed = sends(&effects).into_iter().find_map(|(_, message)| match message {
        Message::Accept { slot, value, .. } if slot == Slot(late_slot) => Some(value),
        _ => None,
    });
    assert_eq!(reproposed, Some(later), "the reported value, re-proposed");
}

#[test]
fn an_acceptor_reports_one_window_and_answers_its_masters_next_prepare() {
    let mut replica = replica(2, &[1, 2, 3]);
    let ballot = b(1, 1);
    let mut effects = Vec::new();
    let prepare = |from| Message::Prepare { ballot, from: Slot(from), transfer: false };
    replica.on_message(n(1), prepare(0), &mut effects);
    complete_all(&mut replica, &effects);
    let window = crate::constants::PROMISE_ENTRIES_MAX;
    let mut effects = Vec::new();
    for slot in [0, window + 1] {
        let value = batch(b"v", slot);
        replica.on_message(n(1), accept(ballot, slot, &value, 0), &mut effects);
    }
    complete_all(&mut replica, &effects);

    // The master (whose heartbeats make this acceptor sticky) prepares again under its own
    // ballot: answered, reporting the window and that slots lie beyond it.
    let mut effects = Vec::new();
    replica.on_message(n(1), prepare(0), &mut effects);
    let promised = complete_all(&mut replica, &effects);
    let [Effect::Send { to, message: Message::Promise(promise) }] = promised.as_slice() else {
        panic!("one promise expected: {promised:?}");
    };
    assert_eq!(*to, n(1));
    assert_eq!((promise.ballot(), promise.from(), promise.behind()), (ballot, Slot(0), None));
    assert_eq!(promise.entries().iter().map(|e| e.slot.0).collect::<Vec<_>>(), [0]);
    assert!(promise.more());

    // Anyone else with the same ballot is refused, as is a lower or equal one from elsewhere.
    let mut effects = Vec::new();
    replica.on_message(n(3), prepare(0), &mut effects);
    assert_eq!(sends(&effects), [(n(3), Message::Reject { ballot, promised: ballot })]);
}

#[test]
fn a_follower_that_missed_the_first_window_promises_its_masters_next_window() {
    // Found by klein-sim (seed 200985 with membership changes): a replica down during the
    // master's first window followed its heartbeats afterwards, so stickiness refused the
    // master's own next-window Prepare, and the master waited forever.
    let mut replica = replica(2, &[1, 2, 3]);
    let ballot = b(3, 1);
    let heartbeat = Message::Heartbeat { ballot, frontier: Slot(0), truncation: Slot(0), round: 1 };
    replica.on_message(n(1), heartbeat, &mut Vec::new());
    assert_eq!(replica.master(), Some(n(1)));
    let window = crate::constants::PROMISE_ENTRIES_MAX;

    // Another candidate is still refused: the master is live.
    let mut effects = Vec::new();
    let other = Message::Prepare { ballot: b(4, 3), from: Slot(0), transfer: false };
    replica.on_message(n(3), other, &mut effects);
    let refused = Message::Reject { ballot: b(4, 3), promised: Ballot::ZERO };
    assert_eq!(sends(&effects), [(n(3), refused)]);

    let mut effects = Vec::new();
    let prepare = Message::Prepare { ballot, from: Slot(window), transfer: false };
    replica.on_message(n(1), prepare, &mut effects);
    let persist = Effect::Persist {
        id: PersistId(1),
        promised: Some(ballot),
        records: vec![],
        chosen: vec![],
    };
    assert_eq!(effects, [persist]);
    let promised = complete_all(&mut replica, &effects);
    let [Effect::Send { to, message: Message::Promise(promise) }] = promised.as_slice() else {
        panic!("one promise expected: {promised:?}");
    };
    assert_eq!((*to, promise.ballot(), promise.from()), (n(1), ballot, Slot(window)));
    assert_eq!(replica.master(), Some(n(1)), "still following its master");
}
