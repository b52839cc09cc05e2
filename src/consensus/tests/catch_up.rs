//! Catch-up: any replica serves chosen values from a requested slot (at most
//! `CATCH_UP_ENTRIES_MAX`), offers its snapshot when the slot is truncated, and a lagging
//! replica asks for the snapshot, installs it and continues from its truncation point.

use super::*;
use crate::constants::CATCH_UP_ENTRIES_MAX;

fn chosen_replica(id: u64, count: u64) -> Replica {
    let snapshot = SnapshotMeta {
        slot: Slot(0),
        configurations: vec![(Slot(0), voters(1, &[1, 2, 3]))],
        stamp_millis: 0,
    };
    let records = (0..count)
        .map(|slot| Record { slot: Slot(slot), ballot: b(1, 1), value: noop(slot), chosen: true })
        .collect();
    let mut replica =
        Replica::restart(options(id), DurableState { promised: b(1, 1), snapshot, records });
    replica.on_tick(&mut Vec::new());
    replica
}

#[test]
fn a_catch_up_request_is_answered_with_chosen_values_up_to_the_limit() {
    let mut replica = chosen_replica(1, CATCH_UP_ENTRIES_MAX + 6);
    let mut effects = Vec::new();
    replica.on_message(n(3), Message::CatchUpRequest { from: Slot(4) }, &mut effects);
    let entries: Vec<(Slot, Value)> =
        (4..4 + CATCH_UP_ENTRIES_MAX).map(|slot| (Slot(slot), noop(slot))).collect();
    let frontier = Slot(CATCH_UP_ENTRIES_MAX + 6);
    let reply = Message::CatchUp { entries, frontier };
    assert_eq!(effects, [Effect::Send { to: n(3), message: reply }]);
}

#[test]
fn a_lagging_replica_catches_up_in_rounds_until_the_frontier() {
    let total = CATCH_UP_ENTRIES_MAX + 6;
    let mut server = chosen_replica(1, total);
    let mut lagging = replica(3, &[1, 2, 3]);
    let mut effects = Vec::new();
    let heartbeat = Message::Heartbeat {
        ballot: b(1, 1),
        frontier: Slot(total),
        truncation: Slot(0),
        round: 1,
    };
    lagging.on_message(n(1), heartbeat, &mut effects);
    for _ in 0..3 {
        let outgoing = sends(&effects);
        effects.clear();
        let mut replies = Vec::new();
        for (to, message) in outgoing {
            assert_eq!(to, n(1));
            server.on_message(n(3), message, &mut replies);
        }
        for (_, reply) in sends(&replies) {
            lagging.on_message(n(1), reply, &mut effects);
            lagging.check_invariants();
        }
    }
    assert_eq!(lagging.frontier(), Slot(total));
    assert_eq!(lagging.applied(), Slot(total));
}

#[test]
fn a_request_below_the_truncation_point_gets_a_snapshot_offer() {
    let mut server = chosen_replica(1, 20);
    server.on_snapshot_taken(Slot(10));
    assert_eq!(server.truncation(), Slot(10));
    let mut effects = Vec::new();
    server.on_message(n(3), Message::CatchUpRequest { from: Slot(2) }, &mut effects);
    let offer = Message::SnapshotOffer { slot: Slot(10) };
    assert_eq!(effects, [Effect::Send { to: n(3), message: offer.clone() }]);

    let mut lagging = replica(3, &[1, 2, 3]);
    let mut effects = Vec::new();
    lagging.on_message(n(1), offer.clone(), &mut effects);
    assert_eq!(effects, [Effect::SnapshotWanted { from: n(1), slot: Slot(10) }]);
    let mut effects = Vec::new();
    lagging.on_message(n(1), offer, &mut effects);
    assert_eq!(effects, [], "one fetch at a time");
    let meta = SnapshotMeta {
        slot: Slot(10),
        configurations: vec![(Slot(0), voters(1, &[1, 2, 3]))],
        stamp_millis: 9,
    };
    let mut effects = Vec::new();
    lagging.on_snapshot_installed(meta, &mut effects);
    assert_eq!(effects, [], "the snapshot replaces slots 0..10: nothing to apply");
    assert_eq!(
        (lagging.truncation(), lagging.frontier(), lagging.applied()),
        (Slot(10), Slot(10), Slot(10))
    );
    lagging.check_invariants();
    let mut effects = Vec::new();
    lagging.on_message(
        n(1),
        Message::CatchUp { entries: vec![(Slot(10), noop(10))], frontier: Slot(11) },
        &mut effects,
    );
    assert_eq!(applies(&effects), [(Slot(10), noop(10))]);
}

#[test]
fn a_candidate_told_it_is_behind_catches_up_from_the_acceptor() {
    let mut candidate = replica(1, &[1, 2, 3]);
    let effects = tick_until_candidate(&mut candidate);
    let ballot = candidate.promised();
    complete_all(&mut candidate, &effects);
    let mut effects = Vec::new();
    let promise = Promise::received((ballot, Slot(0)), (vec![], false), Some(Slot(500)));
    candidate.on_message(n(2), Message::Promise(promise), &mut effects);
    let request = Message::CatchUpRequest { from: Slot(0) };
    assert_eq!(effects, [Effect::Send { to: n(2), message: request }]);
    assert_eq!(candidate.role(), Role::Candidate, "a behind promise does not count");
}

#[test]
fn an_acceptor_far_ahead_of_the_candidate_answers_behind() {
    let mut acceptor = chosen_replica(2, crate::constants::PROMISE_ENTRIES_MAX + 1);
    for _ in 0..crate::constants::ELECTION_TIMEOUT_TICKS_MIN {
        acceptor.on_tick(&mut Vec::new());
    }
    let mut effects = Vec::new();
    let prepare = Message::Prepare { ballot: b(5, 1), from: Slot(0), transfer: false };
    acceptor.on_message(n(1), prepare, &mut effects);
    let out = complete_all(&mut acceptor, &effects);
    let frontier = Slot(crate::constants::PROMISE_ENTRIES_MAX + 1);
    let promise = Promise::received((b(5, 1), Slot(0)), (vec![], false), Some(frontier));
    assert_eq!(out, [Effect::Send { to: n(1), message: Message::Promise(promise) }]);
}

#[test]
fn a_replica_asks_for_a_snapshot_every_interval_and_forgets_the_slots_below_it() {
    use crate::constants::SNAPSHOT_INTERVAL_SLOTS;
    let snapshot = SnapshotMeta {
        slot: Slot(0),
        configurations: vec![(Slot(0), voters(1, &[1, 2, 3]))],
        stamp_millis: 0,
    };
    let records = (0..SNAPSHOT_INTERVAL_SLOTS)
        .map(|slot| Record { slot: Slot(slot), ballot: b(1, 1), value: noop(slot), chosen: true })
        .collect();
    let mut replica =
        Replica::restart(options(2), DurableState { promised: b(1, 1), snapshot, records });
    let mut effects = Vec::new();
    replica.on_tick(&mut effects);
    let take = effects.pop().unwrap();
    let meta = SnapshotMeta {
        slot: Slot(SNAPSHOT_INTERVAL_SLOTS),
        configurations: vec![(Slot(0), voters(1, &[1, 2, 3]))],
        stamp_millis: SNAPSHOT_INTERVAL_SLOTS - 1,
    };
    assert_eq!(take, Effect::TakeSnapshot { meta });
    assert_eq!(applies(&effects).len(), usize::try_from(SNAPSHOT_INTERVAL_SLOTS).unwrap());
    let mut again = Vec::new();
    replica.on_tick(&mut again);
    assert_eq!(again, [], "asked once until it is taken");
    replica.on_snapshot_taken(Slot(SNAPSHOT_INTERVAL_SLOTS));
    replica.check_invariants();
    assert_eq!(replica.truncation(), Slot(SNAPSHOT_INTERVAL_SLOTS));
    assert!(replica.chosen(Slot(0)).is_none(), "forgotten: it lives in the snapshot");
}

#[test]
fn a_stale_masters_accept_for_a_slot_learned_chosen_by_catch_up_is_ignored() {
    // Found by klein-sim (seed 102201): a replica learned slot 0 chosen through catch-up, so it
    // never promised the ballot that chose it; a delayed Accept of an older master then
    // carried another value for that slot. It used to trip "chosen twice" (or, without the
    // assertion, would have overwritten the chosen value).
    let mut replica = replica(2, &[1, 2, 3]);
    let chosen = batch(b"chosen", 5);
    let mut effects = Vec::new();
    let catch_up = Message::CatchUp { entries: vec![(Slot(0), chosen.clone())], frontier: Slot(1) };
    replica.on_message(n(3), catch_up, &mut effects);
    assert_eq!(replica.chosen(Slot(0)), Some(&chosen));
    let mut effects = Vec::new();
    let stale = batch(b"stale", 1);
    let accept =
        Message::Accept { ballot: b(1, 1), slot: Slot(0), value: stale, frontier: Slot(0) };
    replica.on_message(n(1), accept, &mut effects);
    replica.check_invariants();
    let records: Vec<&Record> = effects
        .iter()
        .filter_map(|effect| match effect {
            Effect::Persist { records, .. } => Some(records),
            _ => None,
        })
        .flatten()
        .collect();
    assert!(records.is_empty(), "nothing accepted: {records:?}");
    assert!(complete_all(&mut replica, &effects).is_empty(), "no Accepted announced");
    assert_eq!(replica.chosen(Slot(0)), Some(&chosen), "the chosen value stays");
}
