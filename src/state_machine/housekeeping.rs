//! The work the master proposes as ordinary replicated writes: deleting keys whose deadline
//! passed (active expiry) and evicting keys over `maxmemory`.
//!
//! `housekeeping` never mutates: the master turns its result into log entries
//! ([`Command::Expired`], [`Command::Evict`]), so every replica deletes the same keys at the
//! same log position. Active expiry is exact rather than sampled (the deadline index yields
//! the earliest deadlines first). Victims are chosen like Redis: a sample of
//! [`EVICTION_SAMPLES_COUNT`] keys from a position derived from `now` and the round, best
//! candidate under the policy; `volatile-ttl` takes the nearest deadlines exactly. The LRU
//! and LFU inputs are the master's own access metadata (which its reads also update).

use std::collections::BTreeSet;

use super::command::Command;
use super::hash::mix64;
use super::keyspace::{Entry, Key, lfu_decayed};
use super::limits::{EVICTION_SAMPLES_COUNT, EVICTION_WALK_STEPS_MAX};
use super::machine::{EvictionPolicy, StateMachine};

impl StateMachine {
    /// Up to `max` commands to propose at `now_millis`: first `Expired` for keys whose
    /// deadline passed (earliest first), then `Evict` victims while accounted memory (less
    /// what those deletes free) is over `maxmemory` under an evicting policy.
    #[must_use]
    pub fn housekeeping(&self, now_millis: u64, max: usize) -> Vec<Command> {
        let mut commands = Vec::new();
        let mut freed = 0_u64;
        let mut chosen: BTreeSet<&Key> = BTreeSet::new();
        for (deadline, key) in self.keyspace.deadlines() {
            if *deadline > now_millis || commands.len() >= max {
                break;
            }
            commands.push(Command::Expired { key: key.bytes().to_vec() });
            freed += self.keyspace.entry(key).map_or(0, |(_, entry)| entry.cost());
            chosen.insert(key);
        }
        let limit = self.limits.maxmemory_bytes;
        if limit == 0 || self.limits.policy == EvictionPolicy::NoEviction {
            return commands;
        }
        let mut used = self.keyspace.used_bytes().saturating_sub(freed);
        let mut round = 0_u64;
        while used > limit && commands.len() < max {
            let Some((key, entry)) = self.victim(now_millis, round, &chosen) else {
                break;
            };
            commands.push(Command::Evict { key: key.bytes().to_vec() });
            used = used.saturating_sub(entry.cost());
            chosen.insert(key);
            round += 1;
        }
        commands
    }

    /// The best victim under the policy among a deterministic sample, skipping `chosen`.
    fn victim(&self, now: u64, round: u64, chosen: &BTreeSet<&Key>) -> Option<(&Key, &Entry)> {
        let policy = self.limits.policy;
        if policy == EvictionPolicy::VolatileTtl {
            return self
                .keyspace
                .deadlines()
                .map(|(_, key)| key)
                .find(|key| !chosen.contains(key))
                .and_then(|key| self.keyspace.entry(key));
        }
        let start = mix64(now ^ round.rotate_left(40));
        let samples = self
            .keyspace
            .iter_from(start)
            .chain(self.keyspace.iter())
            .take(EVICTION_WALK_STEPS_MAX)
            .filter(|(key, entry)| {
                !chosen.contains(key) && (!policy.is_volatile() || entry.deadline().is_some())
            })
            .take(EVICTION_SAMPLES_COUNT);
        match policy {
            EvictionPolicy::AllKeysLru | EvictionPolicy::VolatileLru => {
                samples.min_by_key(|(key, entry)| (entry.access_millis, key.hash()))
            }
            EvictionPolicy::AllKeysLfu | EvictionPolicy::VolatileLfu => {
                samples.min_by_key(|(key, entry)| {
                    let count = lfu_decayed(entry.frequency, entry.access_millis, now);
                    (count, entry.access_millis, key.hash())
                })
            }
            _ => samples.into_iter().next(),
        }
    }
}
