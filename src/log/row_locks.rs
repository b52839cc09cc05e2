//! Row locks: a latch per (group, slot) that orders the updates of one Paxos instance.
//!
//! # What it protects
//! A slot can be written several times before any of those writes is durable: an Accept at
//! ballot b1, then an Accept at b2 > b1 after a master change, then a Chosen record (the
//! "learn"). The consensus core decides them in that order; the latch makes sure the log
//! *persists and reports* them in that order too:
//! - every update of a slot takes the next version of the slot's latch when it is appended
//!   (the decision order);
//! - an update is reported durable only in version order, and a report for a version older
//!   than the slot's latest durable one is impossible (asserted);
//! - the index and catch-up reads only ever move a slot forward to a later version.
//!
//! So no one can observe "b2 is durable" and later, after a crash or a reordered completion,
//! find b1 as the slot's last word. Different slots take different latches and never wait for
//! each other: the log still batches updates of any number of slots into one fsync.
//!
//! # What it does not protect
//! The order between different slots (the log does not need one: each slot's state is
//! independent), and anything about values (the consensus core decides what may be written).
//!
//! A latch exists only while its slot has updates that are not yet durable, so memory is
//! bounded by the updates in flight.

use hashbrown::HashMap;

use crate::types::{GroupId, Slot};

/// The version of one update of a slot: 1 for the first update the latch saw, then 2, 3, ...
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version(pub u64);

#[derive(Clone, Copy, Debug)]
struct Latch {
    /// The version of the latest update appended.
    appended: Version,
    /// The version of the latest update known durable (`Version(0)`: none yet).
    durable: Version,
}

/// The latches of one core's log.
#[derive(Debug, Default)]
pub struct RowLocks {
    latches: HashMap<(GroupId, Slot), Latch>,
}

impl RowLocks {
    /// No latches held.
    #[must_use]
    pub fn new() -> RowLocks {
        RowLocks::default()
    }

    /// Takes the slot's latch for a new update and returns its version (the update's place in
    /// the slot's decision order).
    pub fn acquire(&mut self, group: GroupId, slot: Slot) -> Version {
        let latch = self
            .latches
            .entry((group, slot))
            .or_insert(Latch { appended: Version(0), durable: Version(0) });
        latch.appended = Version(latch.appended.0 + 1);
        latch.appended
    }

    /// Records that update `version` of the slot is durable. Returns true when it is the
    /// slot's latest update, which releases the latch.
    ///
    /// # Panics
    /// If versions become durable out of order, or a version that was never appended is
    /// reported: either would let a reader see an older update after a newer one.
    pub fn on_durable(&mut self, group: GroupId, slot: Slot, version: Version) -> bool {
        let latch = self.latches.get_mut(&(group, slot)).expect("durable update of a latched slot");
        assert!(version > latch.durable, "updates of a slot become durable in order");
        assert!(version <= latch.appended, "only appended updates become durable");
        latch.durable = version;
        if latch.durable == latch.appended {
            self.latches.remove(&(group, slot));
            true
        } else {
            false
        }
    }

    /// Whether the slot has updates that are not durable yet.
    #[must_use]
    pub fn is_latched(&self, group: GroupId, slot: Slot) -> bool {
        self.latches.contains_key(&(group, slot))
    }

    /// Number of slots with updates in flight.
    #[must_use]
    pub fn latched_count(&self) -> usize {
        self.latches.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GROUP: GroupId = GroupId(3);

    #[test]
    fn updates_of_one_slot_take_increasing_versions() {
        let mut locks = RowLocks::new();
        assert_eq!(locks.acquire(GROUP, Slot(1)), Version(1));
        assert_eq!(locks.acquire(GROUP, Slot(1)), Version(2));
        assert_eq!(locks.acquire(GROUP, Slot(2)), Version(1), "another slot has its own latch");
    }

    #[test]
    fn the_latch_is_released_when_the_latest_update_is_durable() {
        let mut locks = RowLocks::new();
        let first = locks.acquire(GROUP, Slot(1));
        let second = locks.acquire(GROUP, Slot(1));
        assert!(!locks.on_durable(GROUP, Slot(1), first));
        assert!(locks.is_latched(GROUP, Slot(1)));
        assert!(locks.on_durable(GROUP, Slot(1), second));
        assert!(!locks.is_latched(GROUP, Slot(1)));
        assert_eq!(locks.latched_count(), 0);
    }

    #[test]
    #[should_panic(expected = "in order")]
    fn an_older_update_reported_after_a_newer_one_is_a_bug() {
        let mut locks = RowLocks::new();
        let first = locks.acquire(GROUP, Slot(1));
        let second = locks.acquire(GROUP, Slot(1));
        locks.acquire(GROUP, Slot(1));
        locks.on_durable(GROUP, Slot(1), second);
        locks.on_durable(GROUP, Slot(1), first);
    }

    #[test]
    fn different_slots_never_wait_for_each_other() {
        let mut locks = RowLocks::new();
        let a = locks.acquire(GROUP, Slot(1));
        let b = locks.acquire(GROUP, Slot(2));
        assert!(locks.on_durable(GROUP, Slot(2), b), "slot 2 released while slot 1 is pending");
        assert!(locks.is_latched(GROUP, Slot(1)));
        assert!(locks.on_durable(GROUP, Slot(1), a));
    }
}
