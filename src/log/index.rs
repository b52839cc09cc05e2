//! The in-memory index of a core's log: (group, slot) -> where its latest durable record is.
//!
//! Catch-up reads ranges of one group's slots, so each group keeps its slots ordered. Each
//! segment counts the index entries that point into it; a segment no entry points to (and that
//! is not being written) holds nothing any group needs and can be reclaimed.
//!
//! The index only ever moves forward: an entry is replaced only by a record written later in
//! the log (a higher [`Position`]), which is what makes "the latest record wins" the same rule
//! at run time and in recovery.

use std::collections::{BTreeMap, VecDeque};
use std::ops::{Bound, RangeBounds};

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

/// Largest run of absent slots a group's dense slot array bridges; a slot further away turns
/// the group's slots into a sparse map (consensus slots are contiguous, so in practice never).
const DENSE_GAP_SLOTS_MAX: u64 = 4096;

/// One group's slots. Dense (an array from `base`, absent slots marked) for the contiguous
/// slots consensus produces: one 48-byte entry per slot and no allocation per insert, which
/// is what lets recovery index millions of small records a second. Sparse (a `BTreeMap`) when
/// slots are far apart.
#[derive(Debug)]
enum Slots {
    Dense { base: u64, entries: VecDeque<Option<Location>>, present: usize },
    Sparse(BTreeMap<Slot, Location>),
}

impl Default for Slots {
    fn default() -> Slots {
        Slots::Dense { base: 0, entries: VecDeque::new(), present: 0 }
    }
}

impl Slots {
    fn get(&self, slot: Slot) -> Option<&Location> {
        match self {
            Slots::Dense { base, entries, .. } => {
                let index = usize::try_from(slot.0.checked_sub(*base)?).ok()?;
                entries.get(index)?.as_ref()
            }
            Slots::Sparse(map) => map.get(&slot),
        }
    }

    /// Puts `location` at `slot`; returns what was there.
    fn insert(&mut self, slot: Slot, location: Location) -> Option<Location> {
        if let Slots::Dense { base, entries, present } = self {
            if entries.is_empty() {
                *base = slot.0;
            }
            let fits = if slot.0 < *base {
                *base - slot.0 <= DENSE_GAP_SLOTS_MAX
            } else {
                slot.0 - *base < entries.len() as u64 + DENSE_GAP_SLOTS_MAX
            };
            if fits {
                while slot.0 < *base {
                    entries.push_front(None);
                    *base -= 1;
                }
                let index = usize::try_from(slot.0 - *base).expect("bounded by the gap");
                if index >= entries.len() {
                    entries.resize(index + 1, None);
                }
                let old = entries[index].replace(location);
                if old.is_none() {
                    *present += 1;
                }
                return old;
            }
            let sparse = (0_u64..)
                .zip(entries.iter())
                .filter_map(|(offset, entry)| {
                    entry.map(|location| (Slot(*base + offset), location))
                })
                .collect();
            *self = Slots::Sparse(sparse);
        }
        let Slots::Sparse(map) = self else { unreachable!("made sparse above") };
        map.insert(slot, location)
    }

    fn range(
        &self,
        slots: impl RangeBounds<Slot>,
    ) -> Box<dyn Iterator<Item = (Slot, &Location)> + '_> {
        match self {
            Slots::Dense { base, entries, .. } => {
                let base = *base;
                let start = match slots.start_bound() {
                    Bound::Included(slot) => slot.0,
                    Bound::Excluded(slot) => slot.0.saturating_add(1),
                    Bound::Unbounded => 0,
                };
                let end = match slots.end_bound() {
                    Bound::Included(slot) => slot.0.saturating_add(1),
                    Bound::Excluded(slot) => slot.0,
                    Bound::Unbounded => u64::MAX,
                };
                let first = start.saturating_sub(base);
                let last = end.saturating_sub(base).min(entries.len() as u64);
                let (first, last) = (
                    usize::try_from(first).unwrap_or(usize::MAX).min(entries.len()),
                    usize::try_from(last).unwrap_or(usize::MAX),
                );
                Box::new((first..last.max(first)).filter_map(move |index| {
                    entries[index].as_ref().map(|location| (Slot(base + index as u64), location))
                }))
            }
            Slots::Sparse(map) => {
                // `BTreeMap::range` panics on an inverted range; an inverted range is empty.
                let inverted = match (slots.start_bound(), slots.end_bound()) {
                    (Bound::Included(start), Bound::Included(end)) => start > end,
                    (Bound::Included(start) | Bound::Excluded(start), Bound::Excluded(end))
                    | (Bound::Excluded(start), Bound::Included(end)) => start >= end,
                    _ => false,
                };
                if inverted {
                    return Box::new(std::iter::empty());
                }
                let bounds = (slots.start_bound().cloned(), slots.end_bound().cloned());
                Box::new(map.range(bounds).map(|(slot, location)| (*slot, location)))
            }
        }
    }

    /// Removes every slot below `before`; returns the locations removed.
    fn truncate_prefix(&mut self, before: Slot) -> Vec<Location> {
        match self {
            Slots::Dense { base, entries, present } => {
                let count = before.0.saturating_sub(*base).min(entries.len() as u64);
                let dropped: Vec<Location> = entries
                    .drain(..usize::try_from(count).expect("at most the length"))
                    .flatten()
                    .collect();
                *base += count;
                *present -= dropped.len();
                dropped
            }
            Slots::Sparse(map) => {
                let kept = map.split_off(&before);
                std::mem::replace(map, kept).into_values().collect()
            }
        }
    }

    fn len(&self) -> usize {
        match self {
            Slots::Dense { present, .. } => *present,
            Slots::Sparse(map) => map.len(),
        }
    }

    fn values(&self) -> Box<dyn Iterator<Item = &Location> + '_> {
        match self {
            Slots::Dense { entries, .. } => Box::new(entries.iter().flatten()),
            Slots::Sparse(map) => Box::new(map.values()),
        }
    }
}

/// The index of one core's log.
#[derive(Debug, Default)]
pub struct Index {
    groups: HashMap<GroupId, Slots>,
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
        if let Some(existing) = slots.get(slot) {
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
        self.groups.get(&group)?.get(slot)
    }

    /// The group's durable records in `slots`, in slot order (for catch-up).
    pub fn range(
        &self,
        group: GroupId,
        slots: impl RangeBounds<Slot>,
    ) -> impl Iterator<Item = (Slot, &Location)> {
        let bounds = (slots.start_bound().cloned(), slots.end_bound().cloned());
        self.groups.get(&group).into_iter().flat_map(move |entries| entries.range(bounds))
    }

    /// Forgets the group's slots below `before` (they are covered by a snapshot). Returns how
    /// many entries were dropped.
    pub fn truncate_prefix(&mut self, group: GroupId, before: Slot) -> usize {
        let Some(slots) = self.groups.get_mut(&group) else {
            return 0;
        };
        let dropped = slots.truncate_prefix(before);
        for location in &dropped {
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
        self.groups.values().map(Slots::len).sum()
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
            if let Slots::Dense { entries, present, .. } = slots {
                assert_eq!(entries.iter().flatten().count(), *present);
            }
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

    /// The dense and the sparse representation answer alike, across far-apart slots (which
    /// switch a group to sparse), inserts below the base, truncation and replacement.
    #[test]
    fn dense_and_sparse_slots_agree_with_a_plain_map() {
        let mut prng = 0x9E37_79B9_u64;
        let mut next = move |bound: u64| {
            prng ^= prng << 13;
            prng ^= prng >> 7;
            prng ^= prng << 17;
            prng % bound
        };
        for round in 0..200 {
            let mut index = Index::new();
            let mut model: BTreeMap<u64, Location> = BTreeMap::new();
            let spread = if round % 4 == 0 { 100_000 } else { 300 };
            for step in 0..300_u64 {
                let slot = next(spread);
                if next(10) == 0 {
                    index.truncate_prefix(GROUP, Slot(slot));
                    model = model.split_off(&slot);
                } else {
                    let location = at(1 + step / 50, step * 64, step);
                    index.insert(GROUP, Slot(slot), location);
                    model.insert(slot, location);
                }
                if step % 50 == 0 {
                    index.check_invariants();
                }
            }
            index.check_invariants();
            assert_eq!(index.len(), model.len());
            let all: Vec<(u64, Location)> =
                index.range(GROUP, ..).map(|(slot, location)| (slot.0, *location)).collect();
            let expected: Vec<(u64, Location)> = model.iter().map(|(s, l)| (*s, *l)).collect();
            assert_eq!(all, expected);
            let (low, high) = (next(spread), next(spread));
            let some: Vec<u64> =
                index.range(GROUP, Slot(low)..=Slot(high)).map(|(s, _)| s.0).collect();
            let expected: Vec<u64> = model.range(low..=high.max(low)).map(|(s, _)| *s).collect();
            assert_eq!(some, if low <= high { expected } else { Vec::new() });
            for slot in 0..50 {
                assert_eq!(index.get(GROUP, Slot(slot)), model.get(&slot));
            }
        }
    }
}
