//! [`StateMachine`]: applies chosen batches in log order, serves the read path, and reports
//! its size. The one type the runtime holds per group.
//!
//! Apply order per entry: deduplicate `(client, sequence)`; refuse a memory-growing write
//! over the limit (OOM); delete the entry's keys that expired at the batch's stamp (lazy
//! expiry, deterministic because every replica applies the same stamp); run the command;
//! record the access (LRU/LFU metadata, not replicated state); retain the reply for retries.

use super::apply;
use super::codec::{DecodeError, decode_batch};
use super::command::{Access, Command};
use super::keyspace::Keyspace;
use super::limits::EVICTION_OVERSHOOT_PERCENT;
use super::reply::{self, Reply};
use super::sessions::Sessions;

/// How keys are chosen for eviction over `maxmemory` (Redis's `maxmemory-policy`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum EvictionPolicy {
    /// Never evict; memory-growing writes over the limit get the OOM error.
    #[default]
    NoEviction,
    /// Least recently used among all keys (sampled).
    AllKeysLru,
    /// Least recently used among keys with a deadline (sampled).
    VolatileLru,
    /// Least frequently used among all keys (sampled).
    AllKeysLfu,
    /// Least frequently used among keys with a deadline (sampled).
    VolatileLfu,
    /// Any key.
    AllKeysRandom,
    /// Any key with a deadline.
    VolatileRandom,
    /// The key with the nearest deadline (exact, from the deadline index).
    VolatileTtl,
}

impl EvictionPolicy {
    /// Every policy with its Redis name.
    pub const ALL: [(EvictionPolicy, &'static str); 8] = [
        (EvictionPolicy::NoEviction, "noeviction"),
        (EvictionPolicy::AllKeysLru, "allkeys-lru"),
        (EvictionPolicy::VolatileLru, "volatile-lru"),
        (EvictionPolicy::AllKeysLfu, "allkeys-lfu"),
        (EvictionPolicy::VolatileLfu, "volatile-lfu"),
        (EvictionPolicy::AllKeysRandom, "allkeys-random"),
        (EvictionPolicy::VolatileRandom, "volatile-random"),
        (EvictionPolicy::VolatileTtl, "volatile-ttl"),
    ];

    /// The policy named `name` (Redis's spelling, any case).
    #[must_use]
    pub fn from_name(name: &str) -> Option<EvictionPolicy> {
        EvictionPolicy::ALL
            .iter()
            .find(|(_, known)| known.eq_ignore_ascii_case(name))
            .map(|&(policy, _)| policy)
    }

    /// Redis's name of the policy (`CONFIG GET maxmemory-policy`, `INFO`).
    #[must_use]
    pub fn name(self) -> &'static str {
        EvictionPolicy::ALL.iter().find(|(policy, _)| *policy == self).map_or("", |(_, n)| n)
    }

    /// Whether only keys with a deadline may be evicted.
    #[must_use]
    pub fn is_volatile(self) -> bool {
        matches!(
            self,
            EvictionPolicy::VolatileLru
                | EvictionPolicy::VolatileLfu
                | EvictionPolicy::VolatileRandom
                | EvictionPolicy::VolatileTtl
        )
    }
}

/// The memory bound of one state machine. Part of the group's configuration: every replica
/// of a group must use equal limits (the OOM decision is made at apply time on each replica),
/// so a change must reach them through the log (`StateMachine::set_limits` at a log position).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Limits {
    /// Accounted bytes above which writes are refused or keys evicted; 0 means no bound.
    pub maxmemory_bytes: u64,
    /// What happens over the bound.
    pub policy: EvictionPolicy,
}

/// The replicated data of one group.
#[derive(Clone, Debug)]
pub struct StateMachine {
    pub(super) keyspace: Keyspace,
    pub(super) sessions: Sessions,
    pub(super) limits: Limits,
    /// Writes applied so far (replicated, in snapshots): the version a write gives its keys.
    pub(super) writes: u64,
}

impl StateMachine {
    /// An empty state machine.
    #[must_use]
    pub fn new(limits: Limits) -> StateMachine {
        StateMachine {
            keyspace: Keyspace::default(),
            sessions: Sessions::default(),
            limits,
            writes: 0,
        }
    }

    /// The memory limits.
    #[must_use]
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Changes the memory limits. Call it at the same log position on every replica.
    pub fn set_limits(&mut self, limits: Limits) {
        self.limits = limits;
    }

    /// Applies every entry of a chosen batch in order at the master's `stamp_millis`,
    /// pushing one reply per entry. A retried `(client, sequence)` (sequence != 0) gets its
    /// first reply again without being applied again.
    ///
    /// # Errors
    /// [`DecodeError`] when the batch does not decode; then no entry is applied and no reply
    /// pushed (a chosen batch that does not decode means corruption or a newer version).
    pub fn apply_batch(
        &mut self,
        stamp_millis: u64,
        batch: &[u8],
        replies: &mut Vec<Reply>,
    ) -> Result<(), DecodeError> {
        let entries = decode_batch(batch)?;
        replies.reserve(entries.len());
        for entry in entries {
            if entry.sequence != 0
                && let Some(reply) = self.sessions.replay(entry.client, entry.sequence)
            {
                replies.push(reply);
                continue;
            }
            let reply = self.apply_command(stamp_millis, &entry.command);
            if entry.sequence != 0 {
                self.sessions.record(entry.client, entry.sequence, stamp_millis, &reply);
            }
            replies.push(reply);
        }
        Ok(())
    }

    /// Applies one command at `stamp` (the body of `apply_batch`, without deduplication).
    ///
    /// Every applied write counts in `writes` and gives the keys it names that count as their
    /// modification version (a write that happened to change nothing counts too: `WATCH` may
    /// abort where Redis would not, never the other way round). Keys it deletes have none.
    pub fn apply_command(&mut self, stamp: u64, command: &Command) -> Reply {
        match command {
            Command::Exec { commands } => {
                return Reply::Array(
                    commands.iter().map(|c| self.apply_command(stamp, c)).collect(),
                );
            }
            Command::WatchedExec { guards, commands } => {
                let changed = guards
                    .iter()
                    .any(|(key, version)| self.keyspace.version(key, stamp) != *version);
                if changed {
                    return Reply::NullArray;
                }
                return Reply::Array(
                    commands.iter().map(|c| self.apply_command(stamp, c)).collect(),
                );
            }
            Command::KeyVersions { keys } => return self.key_versions(stamp, keys),
            Command::Expired { .. } | Command::Evict { .. } => {
                return apply::execute(&mut self.keyspace, stamp, command);
            }
            _ => {}
        }
        if command.may_grow_memory() && self.is_over_write_limit() {
            return Reply::error(reply::OOM);
        }
        let keys = command.keys();
        for key in &keys {
            self.keyspace.purge_if_expired(key, stamp);
        }
        if let Some(reply) = self.introspect(stamp, command) {
            return reply;
        }
        let reply = apply::execute(&mut self.keyspace, stamp, command);
        let write = command.access() == Access::Write;
        if write {
            self.writes += 1;
        }
        for key in &keys {
            self.keyspace.touch(key, stamp);
            if write {
                self.keyspace.set_version(key, self.writes);
            }
        }
        reply
    }

    /// `KeyVersions`: each key's modification version at `now`, 0 when missing or expired.
    fn key_versions(&self, now: u64, keys: &[Vec<u8>]) -> Reply {
        Reply::Array(
            keys.iter()
                .map(|key| {
                    let version = self.keyspace.version(key, now);
                    Reply::Integer(i64::try_from(version).unwrap_or(i64::MAX))
                })
                .collect(),
        )
    }

    /// Whether memory-growing writes are refused: over `maxmemory` under `noeviction`, or
    /// over it by [`EVICTION_OVERSHOOT_PERCENT`] under an evicting policy (whose victims are
    /// replicated deletes that trail the writes).
    fn is_over_write_limit(&self) -> bool {
        let limit = self.limits.maxmemory_bytes;
        if limit == 0 {
            return false;
        }
        let limit = match self.limits.policy {
            EvictionPolicy::NoEviction => limit,
            _ => limit.saturating_add(limit / 100 * EVICTION_OVERSHOOT_PERCENT),
        };
        self.keyspace.used_bytes() > limit
    }

    /// Serves a read-only command without the log (lease, read-index or stale reads) at
    /// `now_millis`: expired keys are invisible, nothing is deleted. Only the access metadata
    /// (LRU/LFU) changes, which is not replicated state.
    pub fn read(&mut self, now_millis: u64, command: &Command) -> Reply {
        if command.access() != Access::Read {
            return Reply::error(reply::NOT_READ_ONLY);
        }
        if let Command::Exec { commands } = command {
            return Reply::Array(commands.iter().map(|c| self.read(now_millis, c)).collect());
        }
        if let Command::KeyVersions { keys } = command {
            return self.key_versions(now_millis, keys);
        }
        if let Some(reply) = self.introspect(now_millis, command) {
            return reply;
        }
        let reply = apply::execute(&mut self.keyspace, now_millis, command);
        for key in command.keys() {
            self.keyspace.touch(key, now_millis);
        }
        reply
    }

    /// Accounted memory of all keys, in bytes (see `limits` for the per-key overheads).
    #[must_use]
    pub fn used_memory(&self) -> u64 {
        self.keyspace.used_bytes()
    }

    /// Keys stored (expired keys not yet deleted included, as Redis's `DBSIZE`).
    #[must_use]
    pub fn key_count(&self) -> usize {
        self.keyspace.len()
    }

    /// Keys with a deadline.
    #[must_use]
    pub fn expires_count(&self) -> usize {
        self.keyspace.deadlines_len()
    }

    /// Client sessions retained for deduplication.
    #[must_use]
    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }
}
