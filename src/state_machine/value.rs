//! The values a key holds (string, hash, list, set, sorted set) and their accounted size.
//!
//! Every collection keeps its payload size up to date on each change, so a key's accounted
//! memory is O(1) to read. Hashes and sets iterate in insertion order (with Redis's listpack
//! behaviour on removal while small, see `limits::ORDERED_REMOVAL_ELEMENTS_MAX`); sorted sets
//! in (score, member) order. No order here depends on a hasher or on history that a snapshot
//! does not carry: a restored value iterates exactly as the original.

use std::cmp::Ordering;
use std::collections::{BTreeSet, VecDeque};

use indexmap::{IndexMap, IndexSet};

use super::hash::FixedState;
use super::limits::{ELEMENT_OVERHEAD_BYTES, ORDERED_REMOVAL_ELEMENTS_MAX};

/// The value of one key. Collections are boxed so that a keyspace entry stays small: B-tree
/// nodes move entries on every insert and delete.
#[derive(Clone, Debug)]
pub enum Value {
    /// A string (also integers and floats, as text).
    String(Vec<u8>),
    /// A hash.
    Hash(Box<HashValue>),
    /// A list.
    List(Box<ListValue>),
    /// A set.
    Set(Box<SetValue>),
    /// A sorted set.
    ZSet(Box<ZSetValue>),
}

impl Value {
    /// The name `TYPE` replies with.
    #[must_use]
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::String(_) => "string",
            Value::Hash(_) => "hash",
            Value::List(_) => "list",
            Value::Set(_) => "set",
            Value::ZSet(_) => "zset",
        }
    }

    /// Accounted bytes of the value (not of its key).
    #[must_use]
    pub fn payload_bytes(&self) -> u64 {
        match self {
            Value::String(bytes) => bytes.len() as u64,
            Value::Hash(hash) => hash.bytes,
            Value::List(list) => list.bytes,
            Value::Set(set) => set.bytes,
            Value::ZSet(zset) => zset.bytes,
        }
    }

    /// Whether this is a collection without elements (Redis deletes such keys).
    #[must_use]
    pub fn is_empty_collection(&self) -> bool {
        match self {
            Value::String(_) => false,
            Value::Hash(hash) => hash.map.is_empty(),
            Value::List(list) => list.items.is_empty(),
            Value::Set(set) => set.members.is_empty(),
            Value::ZSet(zset) => zset.scores.is_empty(),
        }
    }
}

fn element_bytes(parts: &[&[u8]]) -> u64 {
    ELEMENT_OVERHEAD_BYTES + parts.iter().map(|part| part.len() as u64).sum::<u64>()
}

/// A hash: fields to values, in insertion order.
#[derive(Clone, Debug, Default)]
pub struct HashValue {
    map: IndexMap<Vec<u8>, Vec<u8>, FixedState>,
    bytes: u64,
}

impl HashValue {
    /// Sets `field`; returns whether it is new.
    pub fn insert(&mut self, field: &[u8], value: Vec<u8>) -> bool {
        if let Some(old) = self.map.get_mut(field) {
            self.bytes = self.bytes - old.len() as u64 + value.len() as u64;
            *old = value;
            return false;
        }
        self.bytes += element_bytes(&[field, &value]);
        self.map.insert(field.to_vec(), value);
        true
    }

    /// The value of `field`.
    #[must_use]
    pub fn get(&self, field: &[u8]) -> Option<&Vec<u8>> {
        self.map.get(field)
    }

    /// Removes `field`; returns whether it was there.
    pub fn remove(&mut self, field: &[u8]) -> bool {
        let removed = if self.map.len() <= ORDERED_REMOVAL_ELEMENTS_MAX {
            self.map.shift_remove_entry(field)
        } else {
            self.map.swap_remove_entry(field)
        };
        match removed {
            Some((field, value)) => {
                self.bytes -= element_bytes(&[&field, &value]);
                true
            }
            None => false,
        }
    }

    /// Number of fields.
    #[must_use]
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Fields and values in order.
    pub fn iter(&self) -> impl Iterator<Item = (&Vec<u8>, &Vec<u8>)> {
        self.map.iter()
    }
}

/// A list.
#[derive(Clone, Debug, Default)]
pub struct ListValue {
    items: VecDeque<Vec<u8>>,
    bytes: u64,
}

impl ListValue {
    /// Replaces the item at `index`; returns whether it exists.
    pub fn set(&mut self, index: usize, item: Vec<u8>) -> bool {
        let Some(slot) = self.items.get_mut(index) else {
            return false;
        };
        self.bytes = self.bytes - slot.len() as u64 + item.len() as u64;
        *slot = item;
        true
    }

    /// Inserts `item` before the item at `index` (`index == len` appends).
    pub fn insert(&mut self, index: usize, item: Vec<u8>) {
        self.bytes += element_bytes(&[&item]);
        self.items.insert(index, item);
    }

    /// Keeps only the items `start..end`.
    pub fn retain_range(&mut self, start: usize, end: usize) {
        let end = end.min(self.items.len());
        self.items.truncate(end);
        self.items.drain(..start.min(end));
        self.bytes = self.items.iter().map(|item| element_bytes(&[item])).sum();
    }

    /// Removes up to `count` items equal to `item` (0: all), from the head or, when
    /// `from_tail`, from the tail; returns how many.
    pub fn remove_matching(&mut self, item: &[u8], count: usize, from_tail: bool) -> usize {
        let mut removed = 0;
        let mut kept = VecDeque::with_capacity(self.items.len());
        let limit = if count == 0 { usize::MAX } else { count };
        let items = std::mem::take(&mut self.items);
        let mut visit = |candidate: Vec<u8>, kept: &mut VecDeque<Vec<u8>>, at_front: bool| {
            if removed < limit && candidate == item {
                removed += 1;
            } else if at_front {
                kept.push_front(candidate);
            } else {
                kept.push_back(candidate);
            }
        };
        if from_tail {
            for candidate in items.into_iter().rev() {
                visit(candidate, &mut kept, true);
            }
        } else {
            for candidate in items {
                visit(candidate, &mut kept, false);
            }
        }
        self.items = kept;
        self.bytes -= removed as u64 * element_bytes(&[item]);
        removed
    }

    /// The index of the first item equal to `item`.
    #[must_use]
    pub fn position(&self, item: &[u8]) -> Option<usize> {
        self.items.iter().position(|candidate| candidate == item)
    }

    /// Pushes at the head (`left`) or the tail.
    pub fn push(&mut self, item: Vec<u8>, left: bool) {
        self.bytes += element_bytes(&[&item]);
        if left {
            self.items.push_front(item);
        } else {
            self.items.push_back(item);
        }
    }

    /// Pops from the head (`left`) or the tail.
    pub fn pop(&mut self, left: bool) -> Option<Vec<u8>> {
        let item = if left { self.items.pop_front() } else { self.items.pop_back() }?;
        self.bytes -= element_bytes(&[&item]);
        Some(item)
    }

    /// Number of items.
    #[must_use]
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// The item at `index` from the head.
    #[must_use]
    pub fn get(&self, index: usize) -> Option<&Vec<u8>> {
        self.items.get(index)
    }

    /// Items from head to tail.
    pub fn iter(&self) -> impl Iterator<Item = &Vec<u8>> {
        self.items.iter()
    }
}

/// A set, in insertion order.
#[derive(Clone, Debug, Default)]
pub struct SetValue {
    members: IndexSet<Vec<u8>, FixedState>,
    bytes: u64,
}

impl SetValue {
    /// Adds `member`; returns whether it is new.
    pub fn insert(&mut self, member: &[u8]) -> bool {
        if self.members.contains(member) {
            return false;
        }
        self.bytes += element_bytes(&[member]);
        self.members.insert(member.to_vec());
        true
    }

    /// Removes `member`; returns whether it was there.
    pub fn remove(&mut self, member: &[u8]) -> bool {
        let removed = if self.members.len() <= ORDERED_REMOVAL_ELEMENTS_MAX {
            self.members.shift_remove(member)
        } else {
            self.members.swap_remove(member)
        };
        if removed {
            self.bytes -= element_bytes(&[member]);
        }
        removed
    }

    /// Removes and returns the member at `index` (in iteration order).
    pub fn remove_at(&mut self, index: usize) -> Option<Vec<u8>> {
        let member = if self.members.len() <= ORDERED_REMOVAL_ELEMENTS_MAX {
            self.members.shift_remove_index(index)
        } else {
            self.members.swap_remove_index(index)
        }?;
        self.bytes -= element_bytes(&[&member]);
        Some(member)
    }

    /// Whether `member` is in the set.
    #[must_use]
    pub fn contains(&self, member: &[u8]) -> bool {
        self.members.contains(member)
    }

    /// Number of members.
    #[must_use]
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether there is no member.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Members in order.
    pub fn iter(&self) -> impl Iterator<Item = &Vec<u8>> {
        self.members.iter()
    }
}

/// A score with a total order: scores are never NaN (commands refuse NaN), so `partial_cmp`
/// is total, and `-0.0 == 0.0` as in Redis's comparisons.
#[derive(Clone, Copy, Debug)]
pub struct Score(pub f64);

impl PartialEq for Score {
    fn eq(&self, other: &Score) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Score {}

impl PartialOrd for Score {
    fn partial_cmp(&self, other: &Score) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Score {
    fn cmp(&self, other: &Score) -> Ordering {
        self.0.partial_cmp(&other.0).unwrap_or(Ordering::Equal)
    }
}

/// A sorted set: members by (score, member bytes), and member to score.
#[derive(Clone, Debug, Default)]
pub struct ZSetValue {
    scores: hashbrown::HashMap<Vec<u8>, f64, FixedState>,
    order: BTreeSet<(Score, Vec<u8>)>,
    bytes: u64,
}

impl ZSetValue {
    /// Sets the score of `member`; returns whether it is new.
    pub fn insert(&mut self, member: &[u8], score: f64) -> bool {
        debug_assert!(!score.is_nan());
        if let Some(old) = self.scores.get_mut(member) {
            let removed = self.order.remove(&(Score(*old), member.to_vec()));
            debug_assert!(removed);
            *old = score;
            self.order.insert((Score(score), member.to_vec()));
            return false;
        }
        self.bytes += element_bytes(&[member, member]) + 8;
        self.scores.insert(member.to_vec(), score);
        self.order.insert((Score(score), member.to_vec()));
        true
    }

    /// Removes `member`; returns whether it was there.
    pub fn remove(&mut self, member: &[u8]) -> bool {
        match self.scores.remove(member) {
            Some(score) => {
                self.order.remove(&(Score(score), member.to_vec()));
                self.bytes -= element_bytes(&[member, member]) + 8;
                true
            }
            None => false,
        }
    }

    /// The score of `member`.
    #[must_use]
    pub fn score(&self, member: &[u8]) -> Option<f64> {
        self.scores.get(member).copied()
    }

    /// Number of members.
    #[must_use]
    pub fn len(&self) -> usize {
        self.scores.len()
    }

    /// Members and scores from the lowest score.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (&[u8], f64)> {
        self.order.iter().map(|(score, member)| (member.as_slice(), score.0))
    }

    /// The rank of `member` from the lowest score.
    #[must_use]
    pub fn rank(&self, member: &[u8]) -> Option<usize> {
        let score = self.score(member)?;
        Some(self.order.range(..(Score(score), member.to_vec())).count())
    }
}
