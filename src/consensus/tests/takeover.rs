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
    let promise = Promise::received(ballot, reported, None);
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
    let promise = Promise::received(ballot, reported, None);
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
