//! The phase-2 pipeline: at most `W` slots in flight, back-pressure beyond; slots are chosen
//! in any order but applied strictly in slot order; chosen marks are persisted lazily.

use super::*;
use crate::consensus::replica::ProposeError;
use crate::constants::PIPELINE_WINDOW_SLOTS;

#[test]
fn a_master_pipelines_up_to_w_slots_and_refuses_beyond() {
    let mut replica = replica(1, &[1, 2, 3]);
    elect(&mut replica, n(2));
    assert_eq!(replica.frontier(), Slot(1), "the claim is slot 0");
    let mut effects = Vec::new();
    for index in 0..PIPELINE_WINDOW_SLOTS {
        let slot = replica.propose(bytes(&format!("v{index}")), &mut effects).unwrap();
        assert_eq!(slot, Slot(1 + index));
    }
    assert_eq!(replica.in_flight(), usize::try_from(PIPELINE_WINDOW_SLOTS).unwrap());
    let mut refused = Vec::new();
    assert_eq!(replica.propose(bytes("over"), &mut refused), Err(ProposeError::WindowFull));
    assert_eq!(refused, [], "a refused proposal has no effect");
    complete_all(&mut replica, &effects);
    replica.check_invariants();

    let mut effects = Vec::new();
    replica.on_message(
        n(3),
        Message::Accepted(Accepted::received(replica.promised(), Slot(1))),
        &mut effects,
    );
    assert_eq!(applies(&effects).len(), 1);
    assert_eq!(
        replica.propose(bytes("room"), &mut Vec::new()),
        Ok(Slot(PIPELINE_WINDOW_SLOTS + 1))
    );
}

#[test]
fn out_of_order_acceptances_are_applied_in_slot_order() {
    let mut replica = replica(1, &[1, 2, 3]);
    let ballot = elect(&mut replica, n(2));
    let mut effects = Vec::new();
    for text in ["a", "b", "c"] {
        replica.propose(bytes(text), &mut effects).unwrap();
    }
    complete_all(&mut replica, &effects);
    let stamp = replica.now() * crate::constants::TICK_MILLIS;
    let accepted = |slot| Message::Accepted(Accepted::received(ballot, Slot(slot)));

    let mut effects = Vec::new();
    replica.on_message(n(2), accepted(3), &mut effects);
    let mark = |id, slot| Effect::Persist {
        id: PersistId(id),
        promised: None,
        records: vec![],
        chosen: vec![Slot(slot)],
    };
    assert_eq!(effects, [mark(7, 3)], "slot 3 chosen: marked, not applied");
    let mut effects = Vec::new();
    replica.on_message(n(2), accepted(1), &mut effects);
    let apply =
        |slot, text: &str| Effect::Apply { slot: Slot(slot), value: batch(text.as_bytes(), stamp) };
    assert_eq!(effects, [apply(1, "a"), mark(8, 1)]);
    let mut effects = Vec::new();
    replica.on_message(n(3), accepted(2), &mut effects);
    assert_eq!(effects, [apply(2, "b"), apply(3, "c"), mark(9, 2)]);
    assert_eq!(replica.frontier(), Slot(4));
    assert_eq!(replica.applied(), Slot(4));
}

#[test]
fn a_duplicate_or_stale_acceptance_changes_nothing() {
    let mut replica = replica(1, &[1, 2, 3]);
    let ballot = elect(&mut replica, n(2));
    let mut effects = Vec::new();
    replica.propose(bytes("a"), &mut effects).unwrap();
    let mut effects = Vec::new();
    let stale = Accepted::received(b(ballot.round - 1, 3), Slot(1));
    replica.on_message(n(3), Message::Accepted(stale), &mut effects);
    let stranger = Accepted::received(ballot, Slot(1));
    replica.on_message(n(9), Message::Accepted(stranger), &mut effects);
    assert_eq!(effects, []);
    assert!(replica.chosen(Slot(1)).is_none(), "neither a stale ballot nor a non-member counts");
}
