//! Running one command against the keyspace at a given time: the dispatch to each family and
//! the typed lookups they share (`WRONGTYPE` checks, create-on-write).
//!
//! The same code serves the apply path (time = the batch's master stamp, after lazy expiry
//! has deleted the command's expired keys) and the read path (time = the caller's clock; an
//! expired key is simply invisible). Must never: read a clock, or iterate anything whose
//! order is not deterministic.

mod decimal;
mod hashes;
mod keys;
mod list_edits;
mod lists;
mod scans;
mod set_algebra;
mod strings;
mod zsets;

use super::command::Command;
use super::keyspace::Keyspace;
use super::reply::{self, Reply};
use super::value::{HashValue, ListValue, SetValue, Value, ZSetValue};

/// Runs `command` at `now`. `Exec` runs its commands in order, one reply each.
pub fn execute(keyspace: &mut Keyspace, now: u64, command: &Command) -> Reply {
    if let Command::Exec { commands } = command {
        return Reply::Array(commands.iter().map(|c| execute(keyspace, now, c)).collect());
    }
    if let Some(reply) = strings::execute(keyspace, now, command) {
        return reply;
    }
    if let Some(reply) = keys::execute(keyspace, now, command) {
        return reply;
    }
    if let Some(reply) = hashes::execute(keyspace, now, command) {
        return reply;
    }
    if let Some(reply) = lists::execute(keyspace, now, command) {
        return reply;
    }
    if let Some(reply) = scans::execute(keyspace, now, command) {
        return reply;
    }
    if let Some(reply) = list_edits::execute(keyspace, now, command) {
        return reply;
    }
    if let Some(reply) = set_algebra::execute(keyspace, now, command) {
        return reply;
    }
    if let Some(reply) = zsets::execute(keyspace, now, command) {
        return reply;
    }
    unreachable!("every command belongs to a family: {command:?}")
}

/// A read of an optional collection of type `T`.
type Read<'a, T> = &'a dyn Fn(Option<&T>) -> Reply;

fn wrong_type() -> Reply {
    Reply::error(reply::WRONGTYPE)
}

/// The string at `key`, `None` if missing, `WRONGTYPE` if another type.
fn string<'a>(keyspace: &'a Keyspace, key: &[u8], now: u64) -> Result<Option<&'a Vec<u8>>, Reply> {
    match keyspace.get(key, now).map(|entry| &entry.value) {
        None => Ok(None),
        Some(Value::String(bytes)) => Ok(Some(bytes)),
        Some(_) => Err(wrong_type()),
    }
}

/// Typed read and create-on-write lookups for one collection type.
macro_rules! collection_access {
    ($read:ident, $write:ident, $variant:ident, $type:ty) => {
        /// The collection at `key`, `None` if missing, `WRONGTYPE` if another type.
        fn $read<'a>(
            keyspace: &'a Keyspace,
            key: &[u8],
            now: u64,
        ) -> Result<Option<&'a $type>, Reply> {
            match keyspace.get(key, now).map(|entry| &entry.value) {
                None => Ok(None),
                Some(Value::$variant(value)) => Ok(Some(value)),
                Some(_) => Err(wrong_type()),
            }
        }

        /// The collection at `key` for writing, created empty when missing (`create`), or
        /// `None`; `WRONGTYPE` if another type. The caller must `reaccount` the key after.
        fn $write<'a>(
            keyspace: &'a mut Keyspace,
            key: &[u8],
            now: u64,
            create: bool,
        ) -> Result<Option<&'a mut $type>, Reply> {
            $read(keyspace, key, now)?;
            if create && keyspace.get(key, now).is_none() {
                keyspace.insert(key, Value::$variant(Box::default()), None, now);
            }
            match keyspace.get_mut(key, now).map(|entry| &mut entry.value) {
                Some(Value::$variant(value)) => Ok(Some(value)),
                _ => Ok(None),
            }
        }
    };
}

collection_access!(hash, hash_mut, Hash, HashValue);
collection_access!(list, list_mut, List, ListValue);
collection_access!(set, set_mut, Set, SetValue);
collection_access!(zset, zset_mut, ZSet, ZSetValue);

/// Redis's index normalisation for `LRANGE`/`ZRANGE`/`GETRANGE`-style inclusive ranges over
/// `length` elements: `None` when the range is empty.
fn clamp_range(start: i64, stop: i64, length: usize) -> Option<(usize, usize)> {
    let length = i64::try_from(length).unwrap_or(i64::MAX);
    let start = if start < 0 { (length + start).max(0) } else { start };
    let stop = if stop < 0 { length + stop } else { stop };
    let stop = stop.min(length - 1);
    if start > stop || start >= length {
        return None;
    }
    Some((usize::try_from(start).ok()?, usize::try_from(stop).ok()?))
}

/// `current + delta` as `INCRBYFLOAT` stores it: the exact decimal sum when both are short
/// decimals (as Redis's `long double` prints for moderate values), else the `f64` sum in its
/// shortest round-trip text, never with an exponent. `None` when the sum is not finite.
fn float_sum(current_text: Option<&[u8]>, current: f64, delta: f64) -> Option<Vec<u8>> {
    let value = current + delta;
    if !value.is_finite() {
        return None;
    }
    let current_text = current_text.and_then(|t| std::str::from_utf8(t).ok()).unwrap_or("0");
    Some(
        decimal::add(current_text, &format!("{delta}"))
            .unwrap_or_else(|| format!("{value}").into_bytes()),
    )
}
