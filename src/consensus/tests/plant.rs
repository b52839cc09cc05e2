//! The plant switch (`plant.rs`): nothing is planted by default, a plant is set and cleared
//! only through the test-only setters, and every plant has a unique name. What each plant
//! breaks is the simulator's to show (`sim::cluster`, `klein-sim --plant`).

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
