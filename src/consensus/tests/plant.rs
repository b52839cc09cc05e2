//! The plant switch (`plant.rs`): nothing is planted by default, and a planted replica is
//! exactly as wrong as its plant says, at the code site it names.

use super::durability::past_stickiness;
use super::*;
use crate::consensus::plant::Plant;

#[test]
fn nothing_is_planted_by_default() {
    let replica = replica(1, &[1, 2, 3]);
    assert_eq!(replica.plant(), None);
    for plant in Plant::ALL {
        assert!(!replica.planted(plant), "{} planted by default", plant.name());
    }
    let restarted = Replica::restart(options(1), Disk::default().durable_state(&voters(1, &[1])));
    assert_eq!(restarted.plant(), None);
}

#[test]
fn a_plant_is_set_cleared_and_named_uniquely() {
    let mut replica = replica(1, &[1, 2, 3]).with_plant(Plant::ApplyOutOfOrder);
    assert!(replica.planted(Plant::ApplyOutOfOrder));
    assert!(!replica.planted(Plant::ReplyBeforePersist));
    replica.set_plant(None);
    assert_eq!(replica.plant(), None);
    for plant in Plant::ALL {
        assert_eq!(Plant::from_name(plant.name()), Some(plant));
        assert!(!plant.description().is_empty());
    }
    assert_eq!(Plant::from_name("no-such-plant"), None);
}

#[test]
fn reply_before_persist_answers_accepted_with_the_write_in_flight() {
    let mut replica = replica(2, &[1, 2, 3]).with_plant(Plant::ReplyBeforePersist);
    let mut effects = Vec::new();
    let accept = Message::Accept {
        ballot: b(1, 1),
        slot: Slot(0),
        value: batch(b"x", 5),
        frontier: Slot(0),
    };
    replica.on_message(n(1), accept, &mut effects);
    assert_eq!(persist_ids(&effects).len(), 1, "the write is still asked for");
    let accepted = Message::Accepted(Accepted::received(b(1, 1), Slot(0)));
    assert_eq!(sends(&effects), [(n(1), accepted)], "announced before the write completes");
    let after = complete_all(&mut replica, &effects);
    assert_eq!(sends(&after), [], "and not again after it");
}

#[test]
fn promise_not_persisted_asks_the_disk_for_no_promise() {
    let mut replica = replica(2, &[1, 2, 3]).with_plant(Plant::PromiseNotPersisted);
    past_stickiness(&mut replica);
    let mut effects = Vec::new();
    let prepare = Message::Prepare { ballot: b(1, 1), from: Slot(0), transfer: false };
    replica.on_message(n(1), prepare, &mut effects);
    let persist =
        Effect::Persist { id: PersistId(1), promised: None, records: vec![], chosen: vec![] };
    assert_eq!(effects, [persist]);
    let after = complete_all(&mut replica, &effects);
    let promise = Promise::received((b(1, 1), Slot(0)), (vec![], false), None);
    assert_eq!(sends(&after), [(n(1), Message::Promise(promise))], "yet the promise goes out");
}
