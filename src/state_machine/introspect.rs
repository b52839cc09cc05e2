//! `OBJECT` and `MEMORY USAGE`: what Redis reports about one key's representation.
//!
//! `OBJECT FREQ` and `OBJECT IDLETIME` report the serving replica's access metadata, which is
//! not replicated state: the runtime should serve them on the read path (through the log they
//! reflect the replica that applied them; every replica's own reply may differ). Encodings are
//! derived from the current content with Redis 7.2's thresholds (Redis also remembers a past
//! conversion, so after deletes Redis may still report the larger encoding).

use super::command::{Command, ObjectField};
use super::keyspace::{Entry, lfu_decayed};
use super::machine::{EvictionPolicy, StateMachine};
use super::parse::parse_i64;
use super::reply::Reply;
use super::value::Value;

/// Redis's `hash-max-listpack-entries`, `set-max-listpack-entries`, `zset-max-listpack-entries`.
const LISTPACK_ENTRIES_MAX: usize = 128;
/// Redis's `*-max-listpack-value`: longest element a listpack holds, in bytes.
const LISTPACK_VALUE_BYTES_MAX: usize = 64;
/// Redis's `set-max-intset-entries`.
const INTSET_ENTRIES_MAX: usize = 512;
/// Longest string Redis stores as `embstr`.
const EMBSTR_BYTES_MAX: usize = 44;
/// Redis's `list-max-listpack-size -2`: a list stays one listpack up to 8 KiB.
const LIST_LISTPACK_BYTES_MAX: usize = 8 * 1024;

const LFU_SELECTED: &str = "ERR An LFU maxmemory policy is selected, idle time not tracked. \
    Please note that when switching between policies at runtime LRU and LFU data will take some \
    time to adjust.";
const LFU_NOT_SELECTED: &str = "ERR An LFU maxmemory policy is not selected, access frequency \
    not tracked. Please note that when switching between policies at runtime LRU and LFU data \
    will take some time to adjust.";

impl StateMachine {
    /// Runs `OBJECT`/`MEMORY USAGE` at `now`; `None` for every other command.
    pub(super) fn introspect(&self, now: u64, command: &Command) -> Option<Reply> {
        let (key, field) = match command {
            Command::Object { key, field } => (key, Some(*field)),
            Command::MemoryUsage { key } => (key, None),
            _ => return None,
        };
        let Some(entry) = self.keyspace.get(key, now) else {
            return Some(Reply::Null);
        };
        let is_lfu =
            matches!(self.limits.policy, EvictionPolicy::AllKeysLfu | EvictionPolicy::VolatileLfu);
        Some(match field {
            None => Reply::Integer(i64::try_from(entry.cost()).unwrap_or(i64::MAX)),
            Some(ObjectField::Encoding) => Reply::Bulk(encoding(entry).as_bytes().to_vec()),
            Some(ObjectField::RefCount) => Reply::Integer(1),
            Some(ObjectField::Freq) if is_lfu => {
                Reply::Integer(i64::from(lfu_decayed(entry.frequency, entry.access_millis, now)))
            }
            Some(ObjectField::Freq) => Reply::error(LFU_NOT_SELECTED),
            Some(ObjectField::IdleTime) if is_lfu => Reply::error(LFU_SELECTED),
            Some(ObjectField::IdleTime) => {
                let idle = now.saturating_sub(entry.access_millis) / 1000;
                Reply::Integer(i64::try_from(idle).unwrap_or(i64::MAX))
            }
        })
    }
}

fn small<'a>(length: usize, mut elements: impl Iterator<Item = &'a [u8]>) -> bool {
    length <= LISTPACK_ENTRIES_MAX && elements.all(|e| e.len() <= LISTPACK_VALUE_BYTES_MAX)
}

fn encoding(entry: &Entry) -> &'static str {
    match &entry.value {
        Value::String(bytes) if bytes.len() <= 20 && parse_i64(bytes).is_some() => "int",
        Value::String(bytes) if bytes.len() <= EMBSTR_BYTES_MAX => "embstr",
        Value::String(_) => "raw",
        Value::List(list) => {
            let bytes: usize = list.iter().map(|item| item.len() + 2).sum();
            if bytes <= LIST_LISTPACK_BYTES_MAX { "listpack" } else { "quicklist" }
        }
        Value::Hash(hash) => {
            let elements = hash.iter().flat_map(|(f, v)| [f.as_slice(), v.as_slice()]);
            if small(hash.len(), elements) { "listpack" } else { "hashtable" }
        }
        Value::Set(set) => {
            if set.len() <= INTSET_ENTRIES_MAX && set.iter().all(|m| parse_i64(m).is_some()) {
                "intset"
            } else if small(set.len(), set.iter().map(Vec::as_slice)) {
                "listpack"
            } else {
                "hashtable"
            }
        }
        Value::ZSet(zset) => {
            if small(zset.len(), zset.iter().map(|(member, _)| member)) {
                "listpack"
            } else {
                "skiplist"
            }
        }
    }
}
