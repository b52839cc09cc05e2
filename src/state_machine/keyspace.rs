//! The keyspace: keys in a B-tree ordered by (stable hash, key bytes), each with its value,
//! deadline and accounted size, plus an index of deadlines and the running memory total.
//!
//! The hash order gives `SCAN` a cursor that survives inserts and deletes (the cursor is the
//! next hash to visit) and gives `RANDOMKEY`, eviction sampling and snapshots a deterministic
//! order that is the same on every replica and after a restore. Lookups compare the 64-bit
//! hash first, so they rarely touch key bytes.
//!
//! Expired keys are invisible to every lookup taking `now`; they are deleted only by
//! [`Keyspace::purge_if_expired`] (lazy expiry during apply) or by replicated deletes.
//! Access metadata (`access_millis`, `frequency`) is outside the replicated state: it feeds
//! only the master's choice of eviction victims and is not in snapshots or digests.

use std::borrow::Borrow;
use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;

use super::hash::key_hash;
use super::limits::{DEADLINE_OVERHEAD_BYTES, KEY_OVERHEAD_BYTES, LFU_INITIAL_COUNT};
use super::value::Value;

/// A key with its stable hash.
#[derive(Clone, Debug)]
pub struct Key {
    hash: u64,
    bytes: Box<[u8]>,
}

impl Key {
    /// The key's bytes.
    #[must_use]
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The key's stable hash.
    #[must_use]
    pub fn hash(&self) -> u64 {
        self.hash
    }
}

/// A key's order: what both stored keys and borrowed lookups compare by.
trait KeyOrder {
    fn parts(&self) -> (u64, &[u8]);
}

impl KeyOrder for Key {
    fn parts(&self) -> (u64, &[u8]) {
        (self.hash, &self.bytes)
    }
}

impl KeyOrder for (u64, &[u8]) {
    fn parts(&self) -> (u64, &[u8]) {
        (self.0, self.1)
    }
}

impl<'a> Borrow<dyn KeyOrder + 'a> for Key {
    fn borrow(&self) -> &(dyn KeyOrder + 'a) {
        self
    }
}

impl PartialEq for dyn KeyOrder + '_ {
    fn eq(&self, other: &Self) -> bool {
        self.parts() == other.parts()
    }
}

impl Eq for dyn KeyOrder + '_ {}

impl PartialOrd for dyn KeyOrder + '_ {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for dyn KeyOrder + '_ {
    fn cmp(&self, other: &Self) -> Ordering {
        self.parts().cmp(&other.parts())
    }
}

impl PartialEq for Key {
    fn eq(&self, other: &Key) -> bool {
        self.parts() == other.parts()
    }
}

impl Eq for Key {}

impl PartialOrd for Key {
    fn partial_cmp(&self, other: &Key) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Key {
    fn cmp(&self, other: &Key) -> Ordering {
        self.parts().cmp(&other.parts())
    }
}

/// One key's value and metadata.
#[derive(Clone, Debug)]
pub struct Entry {
    /// The value. After changing it in place, call [`Keyspace::reaccount`].
    pub value: Value,
    deadline: Option<u64>,
    /// Last access in master-stamp or read-path milliseconds (LRU; not replicated state).
    pub access_millis: u64,
    /// Logarithmic access counter (LFU; not replicated state).
    pub frequency: u8,
    cost: u64,
    /// The state machine's write count when a write last named this key (replicated, in
    /// snapshots): what `WATCH` compares. Kept by an overwrite in place, then raised.
    version: u64,
}

impl Entry {
    /// The Unix time in milliseconds at which the key expires, if any.
    #[must_use]
    pub fn deadline(&self) -> Option<u64> {
        self.deadline
    }

    /// The key's modification version (see [`Keyspace::set_version`]).
    #[must_use]
    pub fn version(&self) -> u64 {
        self.version
    }

    /// Accounted bytes of the key.
    #[must_use]
    pub fn cost(&self) -> u64 {
        self.cost
    }

    /// Whether the key is logically gone at `now`.
    #[must_use]
    pub fn is_expired(&self, now: u64) -> bool {
        self.deadline.is_some_and(|deadline| deadline <= now)
    }
}

fn cost_of(key: &[u8], value: &Value, deadline: Option<u64>) -> u64 {
    let deadline_bytes =
        if deadline.is_some() { DEADLINE_OVERHEAD_BYTES + key.len() as u64 } else { 0 };
    KEY_OVERHEAD_BYTES + key.len() as u64 + value.payload_bytes() + deadline_bytes
}

fn lookup(key: &[u8]) -> (u64, &[u8]) {
    (key_hash(key), key)
}

/// All keys of one state machine.
#[derive(Clone, Debug, Default)]
pub struct Keyspace {
    map: BTreeMap<Key, Entry>,
    deadlines: BTreeSet<(u64, Key)>,
    used_bytes: u64,
}

impl Keyspace {
    /// The entry of `key` unless it is missing or expired at `now`.
    #[must_use]
    pub fn get(&self, key: &[u8], now: u64) -> Option<&Entry> {
        let probe = lookup(key);
        self.map.get(&probe as &dyn KeyOrder).filter(|entry| !entry.is_expired(now))
    }

    /// The entry of `key` for changing its value, unless missing or expired at `now`.
    pub fn get_mut(&mut self, key: &[u8], now: u64) -> Option<&mut Entry> {
        let probe = lookup(key);
        self.map.get_mut(&probe as &dyn KeyOrder).filter(|entry| !entry.is_expired(now))
    }

    /// Stores `value` under `key` with `deadline`, replacing any previous entry (in place:
    /// an overwrite does not move the B-tree).
    pub fn insert(&mut self, key: &[u8], value: Value, deadline: Option<u64>, now: u64) {
        let probe = lookup(key);
        if let Some(entry) = self.map.get_mut(&probe as &dyn KeyOrder) {
            let same_deadline = entry.deadline == deadline;
            let cost = cost_of(key, &value, entry.deadline);
            self.used_bytes = self.used_bytes - entry.cost + cost;
            *entry =
                Entry { value, access_millis: now, frequency: LFU_INITIAL_COUNT, cost, ..*entry };
            if !same_deadline {
                self.set_deadline(key, deadline);
            }
            return;
        }
        let cost = cost_of(key, &value, deadline);
        let key = Key { hash: probe.0, bytes: key.into() };
        if let Some(deadline) = deadline {
            self.deadlines.insert((deadline, key.clone()));
        }
        self.used_bytes += cost;
        let entry = Entry {
            value,
            deadline,
            access_millis: now,
            frequency: LFU_INITIAL_COUNT,
            cost,
            version: 0,
        };
        self.map.insert(key, entry);
    }

    /// Sets the modification version of an existing `key` (expired or not); a missing key
    /// has none (version 0).
    pub fn set_version(&mut self, key: &[u8], version: u64) {
        let probe = lookup(key);
        if let Some(entry) = self.map.get_mut(&probe as &dyn KeyOrder) {
            entry.version = version;
        }
    }

    /// The modification version of `key` at `now`: 0 when it is missing or expired.
    #[must_use]
    pub fn version(&self, key: &[u8], now: u64) -> u64 {
        self.get(key, now).map_or(0, Entry::version)
    }

    /// Removes `key` (expired or not); returns its entry.
    pub fn remove(&mut self, key: &[u8]) -> Option<Entry> {
        let probe = lookup(key);
        let (key, entry) = self.map.remove_entry(&probe as &dyn KeyOrder)?;
        if let Some(deadline) = entry.deadline {
            self.deadlines.remove(&(deadline, key));
        }
        self.used_bytes -= entry.cost;
        Some(entry)
    }

    /// Sets or clears the deadline of an existing `key`; returns whether the key exists.
    pub fn set_deadline(&mut self, key: &[u8], deadline: Option<u64>) -> bool {
        let probe = lookup(key);
        let Some((stored, entry)) = self.map.get_key_value(&probe as &dyn KeyOrder) else {
            return false;
        };
        if entry.deadline == deadline {
            return true;
        }
        let stored = stored.clone();
        if let Some(old) = entry.deadline {
            self.deadlines.remove(&(old, stored.clone()));
        }
        if let Some(new) = deadline {
            self.deadlines.insert((new, stored.clone()));
        }
        let entry = self.map.get_mut(&stored).expect("the key was just found");
        entry.deadline = deadline;
        self.refresh_cost(key);
        true
    }

    /// Recomputes the accounted size of `key` after its value changed in place, and deletes
    /// it if it became an empty collection.
    pub fn reaccount(&mut self, key: &[u8]) {
        let probe = lookup(key);
        let empty = match self.map.get(&probe as &dyn KeyOrder) {
            None => return,
            Some(entry) => entry.value.is_empty_collection(),
        };
        if empty {
            self.remove(key);
        } else {
            self.refresh_cost(key);
        }
    }

    fn refresh_cost(&mut self, key: &[u8]) {
        let probe = lookup(key);
        if let Some(entry) = self.map.get_mut(&probe as &dyn KeyOrder) {
            let cost = cost_of(key, &entry.value, entry.deadline);
            self.used_bytes = self.used_bytes - entry.cost + cost;
            entry.cost = cost;
        }
    }

    /// Deletes `key` if it expired at `now`; returns whether it did.
    pub fn purge_if_expired(&mut self, key: &[u8], now: u64) -> bool {
        let probe = lookup(key);
        let expired = self.map.get(&probe as &dyn KeyOrder).is_some_and(|e| e.is_expired(now));
        if expired {
            self.remove(key);
        }
        expired
    }

    /// Records an access of `key` at `now` (LRU clock and LFU counter; not replicated).
    pub fn touch(&mut self, key: &[u8], now: u64) {
        if let Some(entry) = self.get_mut(key, now) {
            entry.frequency = lfu_increment(entry.frequency, entry.access_millis, now);
            entry.access_millis = entry.access_millis.max(now);
        }
    }

    /// Deletes every key.
    pub fn clear(&mut self) {
        *self = Keyspace::default();
    }

    /// Keys stored, expired or not (Redis's `DBSIZE` also counts expired keys not yet
    /// deleted).
    #[must_use]
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Keys with a deadline.
    #[must_use]
    pub fn deadlines_len(&self) -> usize {
        self.deadlines.len()
    }

    /// Accounted bytes of all keys.
    #[must_use]
    pub fn used_bytes(&self) -> u64 {
        self.used_bytes
    }

    /// The stored key and entry of `key`, expired or not.
    #[must_use]
    pub fn entry(&self, key: &Key) -> Option<(&Key, &Entry)> {
        self.map.get_key_value(key)
    }

    /// Every entry in hash order.
    pub fn iter(&self) -> impl Iterator<Item = (&Key, &Entry)> {
        self.map.iter()
    }

    /// Entries from the first key whose hash is at least `hash`, in hash order.
    pub fn iter_from(&self, hash: u64) -> impl Iterator<Item = (&Key, &Entry)> {
        let start: (u64, &[u8]) = (hash, &[]);
        self.map
            .range::<dyn KeyOrder, _>((Bound::Included(&start as &dyn KeyOrder), Bound::Unbounded))
    }

    /// Deadlines and keys from the earliest deadline.
    pub fn deadlines(&self) -> impl Iterator<Item = &(u64, Key)> {
        self.deadlines.iter()
    }
}

/// Redis's logarithmic LFU counter, made deterministic: the counter first decays by one per
/// [`super::limits::LFU_DECAY_MILLIS`] since the last access, then grows by one with
/// probability `1 / ((counter - initial) * 10 + 1)`, the "coin" being a hash of the times.
#[must_use]
pub fn lfu_increment(counter: u8, last_millis: u64, now: u64) -> u8 {
    let counter = lfu_decayed(counter, last_millis, now);
    if counter == u8::MAX {
        return counter;
    }
    let base = u64::from(counter.saturating_sub(LFU_INITIAL_COUNT));
    let coin = super::hash::mix64(now ^ (last_millis << 1) ^ u64::from(counter)) % 1_000_000;
    let threshold = 1_000_000 / (base * 10 + 1);
    if coin < threshold { counter + 1 } else { counter }
}

/// The LFU counter after decay at `now`.
#[must_use]
pub fn lfu_decayed(counter: u8, last_millis: u64, now: u64) -> u8 {
    let periods = now.saturating_sub(last_millis) / super::limits::LFU_DECAY_MILLIS;
    let periods = u8::try_from(periods).unwrap_or(u8::MAX);
    counter.saturating_sub(periods)
}
