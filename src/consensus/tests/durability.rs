//! The durability rule: a promise, an acceptance and so a client's write are announced only
//! after the persist they depend on completes (type-level in `durable.rs`/`message.rs`,
//! behavioural here).

use super::*;
use crate::consensus::durable::Persists;
use crate::constants::ELECTION_TIMEOUT_TICKS_MIN;

/// Ticks past the stickiness every (re)started replica begins with.
pub(super) fn past_stickiness(replica: &mut Replica) {
    for _ in 0..ELECTION_TIMEOUT_TICKS_MIN {
        replica.on_tick(&mut Vec::new());
    }
    assert_eq!(replica.role(), Role::Follower, "pick another seed: this one campaigned");
}

#[test]
fn a_promise_is_sent_only_after_its_persist_completes() {
    let mut replica = replica(2, &[1, 2, 3]);
    past_stickiness(&mut replica);
    let mut effects = Vec::new();
    let prepare = Message::Prepare { ballot: b(1, 1), from: Slot(0), transfer: false };
    replica.on_message(n(1), prepare, &mut effects);
    let persist = Effect::Persist {
        id: PersistId(1),
        promised: Some(b(1, 1)),
        records: vec![],
        chosen: vec![],
    };
    assert_eq!(effects, [persist], "nothing is sent before the persist");
    assert_eq!(replica.promised(), b(1, 1));
    let mut effects = Vec::new();
    replica.on_persisted(PersistId(1), &mut effects);
    let promise = Promise::received((b(1, 1), Slot(0)), (vec![], false), None);
    assert_eq!(effects, [Effect::Send { to: n(1), message: Message::Promise(promise) }]);
}

#[test]
fn an_acceptance_is_sent_only_after_its_persist_completes() {
    let mut replica = replica(2, &[1, 2, 3]);
    let mut effects = Vec::new();
    let value = batch(b"x", 5);
    let accept =
        Message::Accept { ballot: b(1, 1), slot: Slot(0), value: value.clone(), frontier: Slot(0) };
    replica.on_message(n(1), accept, &mut effects);
    let record = Record { slot: Slot(0), ballot: b(1, 1), value, chosen: false };
    let persist = Effect::Persist {
        id: PersistId(1),
        promised: Some(b(1, 1)),
        records: vec![record],
        chosen: vec![],
    };
    assert_eq!(effects, [persist], "an accept under b is a promise of b, persisted with it");
    let mut effects = Vec::new();
    replica.on_persisted(PersistId(1), &mut effects);
    let accepted = Accepted::received(b(1, 1), Slot(0));
    assert_eq!(effects, [Effect::Send { to: n(1), message: Message::Accepted(accepted) }]);
}

#[test]
fn a_master_counts_its_own_acceptance_only_after_its_persist() {
    let mut replica = replica(1, &[1]);
    let effects = tick_until_candidate(&mut replica);
    let out = complete_all(&mut replica, &effects); // Own promise: master of a group of one.
    assert_eq!(replica.role(), Role::Master);
    assert!(!replica.is_serving(), "its claim is not durable yet");
    assert!(replica.chosen(Slot(0)).is_none());
    let out = complete_all(&mut replica, &out);
    assert!(matches!(&out[..], [Effect::Apply { slot: Slot(0), .. }, Effect::Persist { .. }]));
    assert!(replica.is_serving());
}

#[test]
#[should_panic(expected = "promise of b1.1 before its persist")]
fn a_promise_cannot_be_built_from_a_proof_that_does_not_cover_it() {
    let mut persists: Persists<()> = Persists::new();
    let id = persists.start(None, vec![(Slot(0), b(1, 1))], ());
    let (proof, ()) = persists.complete(id).unwrap();
    let _ = Promise::new(&proof, (b(1, 1), Slot(0)), (vec![], false), None);
}

#[test]
#[should_panic(expected = "accepted s1 before its persist")]
fn an_acceptance_cannot_be_built_for_another_slot() {
    let mut persists: Persists<()> = Persists::new();
    let id = persists.start(None, vec![(Slot(0), b(1, 1))], ());
    let (proof, ()) = persists.complete(id).unwrap();
    let _ = Accepted::new(&proof, b(1, 1), Slot(1));
}

#[test]
#[should_panic(expected = "unknown persist id")]
fn a_completion_for_a_persist_never_started_is_a_bug() {
    let mut replica = replica(2, &[1, 2, 3]);
    replica.on_persisted(PersistId(9), &mut Vec::new());
}
