//! The in-memory index of a core's log: (group, slot) -> where its latest durable record is.
//!
//! Catch-up reads ranges of one group's slots, so each group keeps its slots ordered. Each
//! segment counts the index entries that point into it; a segment no entry points to (and that
//! is not being written) holds nothing any group needs and can be reclaimed.
//!
//! The index only ever moves forward: an entry is replaced only by a record written later in
//! the log (a higher [`Position`]), which is what makes "the latest record wins" the same rule
//! at run time and in recovery.

use std::collections::BTreeMap;
use std::ops::RangeBounds;

use hashbrown::HashMap;

use crate::types::{Ballot, GroupId, Slot};

/// Where a record starts: its segment and byte offset. Orders records by when they were
/// written, because segments are numbered in creation order and filled front to back.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Position {
    /// The segment number.
    pub segment: u64,
    /// Byte offset of the record within the segment.
    pub offset: u64,
}

/// What the index knows about a slot's latest durable record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Location {
    /// Where the record starts.
    pub position: Position,
    /// The record's total size in bytes (header, payload, padding).
    pub size_bytes: u32,
    /// The ballot the record was written under.
    pub ballot: Ballot,
    /// Whether the record says the slot's value is chosen.
    pub is_chosen: bool,
}

/// The index of one core's log.
#[derive(Debug, Default)]
pub struct Index {
    groups: HashMap<GroupId, BTreeMap<Slot, Location>>,
    /// Entries pointing into each segment.
    /// A hash map: it is touched on every insert (recovery inserts millions) and never
    /// iterated where order matters.
    segment_entries: HashMap<u64, u64>,
}

impl Index {
    /// An empty index.
    #[must_use]
    pub fn new() -> Index {
        Index::default()
    }

    /// Records that `location` is the latest durable record of (`group`, `slot`), unless the
    /// index already has a later one. Returns whether the index changed.
    pub fn insert(&mut self, group: GroupId, slot: Slot, location: Location) -> bool {
        let slots = self.groups.entry(group).or_default();
        if let Some(existing) = slots.get(&slot) {
            if existing.position >= location.position {
                return false;
            }
            let old = existing.position.segment;
            Index::release(&mut self.segment_entries, old);
        }
        slots.insert(slot, location);
        *self.segment_entries.entry(location.position.segment).or_insert(0) += 1;
        true
    }

    /// The latest durable record of (`group`, `slot`).
    #[must_use]
    pub fn get(&self, group: GroupId, slot: Slot) -> Option<&Location> {
        self.groups.get(&group)?.get(&slot)
    }

    /// The group's durable records in `slots`, in slot order (for catch-up).
    pub fn range(
        &self,
        group: GroupId,
        slots: impl RangeBounds<Slot>,
    ) -> impl Iterator<Item = (Slot, &Location)> {
        self.groups
            .get(&group)
            .into_iter()
            .flat_map(move |entries| {
                entries.range((slots.start_bound().cloned(), slots.end_bound().cloned()))
            })
            .map(|(slot, location)| (*slot, location))
    }

    /// Forgets the group's slots below `before` (they are covered by a snapshot). Returns how
    /// many entries were dropped.
    pub fn truncate_prefix(&mut self, group: GroupId, before: Slot) -> usize {
        let Some(slots) = self.groups.get_mut(&group) else {
            return 0;
        };
        let kept = slots.split_off(&before);
        let dropped = std::mem::replace(slots, kept);
        for location in dropped.values() {
            Index::release(&mut self.segment_entries, location.position.segment);
        }
        dropped.len()
    }

    /// Whether any entry points into `segment`.
    #[must_use]
    pub fn is_segment_needed(&self, segment: u64) -> bool {
        self.segment_entries.contains_key(&segment)
    }

    /// Number of (group, slot) entries.
    #[must_use]
    pub fn len(&self) -> usize {
        self.groups.values().map(BTreeMap::len).sum()
    }

    /// Whether the index is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.segment_entries.is_empty()
    }

    fn release(segment_entries: &mut HashMap<u64, u64>, segment: u64) {
        let count = segment_entries.get_mut(&segment).expect("an entry points into the segment");
        assert!(*count > 0);
        *count -= 1;
        if *count == 0 {
            segment_entries.remove(&segment);
        }
    }

    /// Checks the index's internal consistency: every segment count equals the entries that
    /// point into it. O(entries); for tests and the simulator.
    ///
    /// # Panics
    /// When the counts disagree.
    pub fn check_invariants(&self) {
        let mut counted: BTreeMap<u64, u64> = BTreeMap::new();
        for slots in self.groups.values() {
            for location in slots.values() {
                *counted.entry(location.position.segment).or_insert(0) += 1;
            }
        }
        let expected: BTreeMap<u64, u64> =
            self.segment_entries.iter().map(|(s, n)| (*s, *n)).collect();
        assert_eq!(counted, expected);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GROUP: GroupId = GroupId(1);

    fn at(segment: u64, offset: u64, round: u64) -> Location {
        Location {
            position: Position { segment, offset },
            size_bytes: 80,
            ballot: Ballot { round, node: 1 },
            is_chosen: false,
        }
    }

    #[test]
    fn a_later_record_replaces_an_earlier_one_and_never_the_reverse() {
        let mut index = Index::new();
        assert!(index.insert(GROUP, Slot(5), at(1, 64, 1)));
        assert!(index.insert(GROUP, Slot(5), at(2, 0, 2)));
        assert!(!index.insert(GROUP, Slot(5), at(1, 128, 3)), "older position");
        assert_eq!(index.get(GROUP, Slot(5)).unwrap().ballot.round, 2);
        assert!(!index.is_segment_needed(1));
        assert!(index.is_segment_needed(2));
        index.check_invariants();
    }

    #[test]
    fn ranges_are_in_slot_order_per_group() {
        let mut index = Index::new();
        for slot in [7, 3, 5, 9] {
            index.insert(GROUP, Slot(slot), at(1, slot * 64, 1));
        }
        index.insert(GroupId(2), Slot(4), at(1, 4096, 1));
        let slots: Vec<u64> =
            index.range(GROUP, Slot(4)..Slot(9)).map(|(slot, _)| slot.0).collect();
        assert_eq!(slots, vec![5, 7]);
        assert_eq!(index.range(GroupId(3), ..).count(), 0);
    }

    #[test]
    fn truncation_releases_segments() {
        let mut index = Index::new();
        index.insert(GROUP, Slot(1), at(1, 0, 1));
        index.insert(GROUP, Slot(2), at(2, 0, 1));
        index.insert(GroupId(2), Slot(1), at(1, 64, 1));
        assert_eq!(index.truncate_prefix(GROUP, Slot(2)), 1);
        assert!(index.is_segment_needed(1), "group 2 still needs segment 1");
        assert_eq!(index.truncate_prefix(GroupId(2), Slot(10)), 1);
        assert!(!index.is_segment_needed(1));
        assert_eq!(index.len(), 1);
        index.check_invariants();
    }
}
