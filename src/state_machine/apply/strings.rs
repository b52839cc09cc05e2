//! The string commands at apply (and read) time.

use super::{float_sum, string};
use crate::state_machine::command::{Command, Condition, Ttl};
use crate::state_machine::keyspace::{Entry, Keyspace};
use crate::state_machine::limits::STRING_SIZE_BYTES_MAX;
use crate::state_machine::parse::{parse_f64, parse_i64};
use crate::state_machine::reply::{self, Reply};
use crate::state_machine::value::Value;

pub(super) fn execute(keyspace: &mut Keyspace, now: u64, command: &Command) -> Option<Reply> {
    Some(match command {
        Command::Get { key } => match string(keyspace, key, now) {
            Ok(value) => value.map_or(Reply::Null, |v| Reply::bulk(v)),
            Err(error) => error,
        },
        Command::Set { key, value, ttl, condition, get, origin } => {
            let change = match resolve(*ttl, now, origin.name()) {
                Ok(change) => change,
                Err(error) => return Some(error),
            };
            set(keyspace, now, key, value, change, Guard::Condition(*condition), *get)
        }
        Command::SetIfEq { key, value, comparison, ttl, get } => {
            let change = match resolve(*ttl, now, "set") {
                Ok(change) => change,
                Err(error) => return Some(error),
            };
            set(keyspace, now, key, value, change, Guard::Equals(comparison), *get)
        }
        Command::SetNx { key, value } => {
            let absent = keyspace.get(key, now).is_none();
            if absent {
                keyspace.insert(key, Value::String(value.clone()), None, now);
            }
            Reply::Integer(i64::from(absent))
        }
        Command::MGet { keys } => {
            Reply::Array(keys.iter().map(|key| mget_one(keyspace, key, now)).collect())
        }
        Command::MSet { pairs } => {
            for (key, value) in pairs {
                keyspace.insert(key, Value::String(value.clone()), None, now);
            }
            Reply::Ok
        }
        Command::MSetNx { pairs } => {
            if pairs.iter().any(|(key, _)| keyspace.get(key, now).is_some()) {
                return Some(Reply::Integer(0));
            }
            for (key, value) in pairs {
                keyspace.insert(key, Value::String(value.clone()), None, now);
            }
            Reply::Integer(1)
        }
        Command::GetSet { key, value } => set(
            keyspace,
            now,
            key,
            value,
            Change::Set(None),
            Guard::Condition(Condition::Always),
            true,
        ),
        Command::GetDel { key } => match string(keyspace, key, now) {
            Err(error) => error,
            Ok(None) => Reply::Null,
            Ok(Some(_)) => match keyspace.remove(key).map(|entry| entry.value) {
                Some(Value::String(bytes)) => Reply::Bulk(bytes),
                _ => unreachable!("the key was just read as a string"),
            },
        },
        Command::GetEx { key, ttl } => getex(keyspace, now, key, *ttl),
        _ => return arithmetic_and_ranges(keyspace, now, command),
    })
}

fn arithmetic_and_ranges(keyspace: &mut Keyspace, now: u64, command: &Command) -> Option<Reply> {
    Some(match command {
        Command::IncrBy { key, delta } => incr_by(keyspace, now, key, *delta),
        Command::IncrByFloat { key, delta } => incr_by_float(keyspace, now, key, *delta),
        Command::Append { key, value } => append(keyspace, now, key, value),
        Command::StrLen { key } => match string(keyspace, key, now) {
            Ok(value) => Reply::Integer(value.map_or(0, |v| len_i64(v.len()))),
            Err(error) => error,
        },
        Command::GetRange { key, start, end } => match string(keyspace, key, now) {
            Ok(value) => getrange(value.map_or(&[][..], Vec::as_slice), *start, *end),
            Err(error) => error,
        },
        Command::SetRange { key, offset, value } => setrange(keyspace, now, key, *offset, value),
        _ => return None,
    })
}

fn len_i64(length: usize) -> i64 {
    i64::try_from(length).unwrap_or(i64::MAX)
}

fn mget_one(keyspace: &Keyspace, key: &[u8], now: u64) -> Reply {
    match keyspace.get(key, now).map(|entry| &entry.value) {
        Some(Value::String(bytes)) => Reply::bulk(bytes),
        _ => Reply::Null,
    }
}

/// What a write does to the deadline, with the stamp already added.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Change {
    /// Leave it.
    Keep,
    /// Set it (`None`: remove it).
    Set(Option<u64>),
}

/// Resolves a [`Ttl`] at `now`, with Redis's overflow check of `now + relative`.
pub(super) fn resolve(ttl: Ttl, now: u64, name: &str) -> Result<Change, Reply> {
    let now_signed = i64::try_from(now).unwrap_or(i64::MAX);
    Ok(match ttl {
        Ttl::Keep => Change::Keep,
        Ttl::Clear => Change::Set(None),
        Ttl::RelativeMillis(millis) => {
            if millis > i64::MAX - now_signed {
                return Err(reply::invalid_expire(name));
            }
            Change::Set(Some(u64::try_from(now_signed + millis).unwrap_or(0)))
        }
        Ttl::AbsoluteMillis(millis) => Change::Set(Some(u64::try_from(millis).unwrap_or(0))),
        Ttl::NotInteger => return Err(Reply::error(reply::NOT_INTEGER)),
        Ttl::InvalidExpire => return Err(reply::invalid_expire(name)),
    })
}

/// Applies a deadline change to an existing key; a deadline at or before `now` deletes it.
pub(super) fn apply_change(keyspace: &mut Keyspace, key: &[u8], change: Change, now: u64) {
    match change {
        Change::Keep => {}
        Change::Set(Some(deadline)) if deadline <= now => {
            keyspace.remove(key);
        }
        Change::Set(deadline) => {
            keyspace.set_deadline(key, deadline);
        }
    }
}

/// Redis's `setGenericCommand` after option parsing (also `GETSET`).
/// What `set` checks before writing: `NX`/`XX`, or Valkey's `IFEQ comparison`.
#[derive(Clone, Copy)]
enum Guard<'a> {
    Condition(Condition),
    /// Only over a string equal to this; a missing or non-string key is left alone (no
    /// WRONGTYPE unless `GET` asked for the old value).
    Equals(&'a [u8]),
}

fn set(
    keyspace: &mut Keyspace,
    now: u64,
    key: &[u8],
    value: &[u8],
    change: Change,
    guard: Guard<'_>,
    get: bool,
) -> Reply {
    let old = if get {
        match string(keyspace, key, now) {
            Ok(old) => Some(old.map_or(Reply::Null, |v| Reply::bulk(v))),
            Err(error) => return error,
        }
    } else {
        None
    };
    let existing = keyspace.get(key, now);
    let found = existing.is_some();
    let refused = match guard {
        Guard::Condition(Condition::IfAbsent) => found,
        Guard::Condition(Condition::IfPresent) => !found,
        Guard::Condition(Condition::Always) => false,
        Guard::Equals(comparison) => !existing.is_some_and(|entry| {
            matches!(&entry.value, Value::String(current) if current.as_slice() == comparison)
        }),
    };
    if refused {
        return old.unwrap_or(Reply::Null);
    }
    let deadline = match change {
        Change::Keep => existing.and_then(Entry::deadline),
        Change::Set(deadline) => deadline,
    };
    keyspace.insert(key, Value::String(value.to_vec()), deadline, now);
    if deadline.is_some_and(|deadline| deadline <= now) {
        keyspace.remove(key);
    }
    old.unwrap_or(Reply::Ok)
}

/// Redis 7.0's `getexCommand`: the lookup and type check come before the expire's checks.
fn getex(keyspace: &mut Keyspace, now: u64, key: &[u8], ttl: Ttl) -> Reply {
    let reply = match string(keyspace, key, now) {
        Ok(None) => return Reply::Null,
        Ok(Some(value)) => Reply::bulk(value),
        Err(error) => return error,
    };
    let change = match resolve(ttl, now, "getex") {
        Ok(change) => change,
        Err(error) => return error,
    };
    apply_change(keyspace, key, change, now);
    reply
}

/// Replaces the string at `key`, keeping its deadline (`INCR`, `APPEND`, `SETRANGE`).
fn store_keeping_ttl(keyspace: &mut Keyspace, key: &[u8], bytes: Vec<u8>, now: u64) {
    if let Some(entry) = keyspace.get_mut(key, now) {
        entry.value = Value::String(bytes);
        keyspace.reaccount(key);
    } else {
        keyspace.insert(key, Value::String(bytes), None, now);
    }
}

fn incr_by(keyspace: &mut Keyspace, now: u64, key: &[u8], delta: i64) -> Reply {
    let current = match string(keyspace, key, now) {
        Err(error) => return error,
        Ok(None) => 0,
        Ok(Some(bytes)) => match parse_i64(bytes) {
            Some(value) => value,
            None => return Reply::error(reply::NOT_INTEGER),
        },
    };
    let Some(value) = current.checked_add(delta) else {
        return Reply::error(reply::OVERFLOW);
    };
    store_keeping_ttl(keyspace, key, value.to_string().into_bytes(), now);
    Reply::Integer(value)
}

fn incr_by_float(keyspace: &mut Keyspace, now: u64, key: &[u8], delta: f64) -> Reply {
    let (text, current) = match string(keyspace, key, now) {
        Err(error) => return error,
        Ok(None) => (None, 0.0),
        Ok(Some(bytes)) => match parse_f64(bytes) {
            Some(value) => (Some(bytes.clone()), value),
            None => return Reply::error(reply::NOT_FLOAT),
        },
    };
    if delta.is_nan() {
        return Reply::error(reply::NOT_FLOAT);
    }
    let Some(text) = float_sum(text.as_deref(), current, delta) else {
        return Reply::error(reply::NAN_OR_INFINITY);
    };
    store_keeping_ttl(keyspace, key, text.clone(), now);
    Reply::Bulk(text)
}

fn append(keyspace: &mut Keyspace, now: u64, key: &[u8], suffix: &[u8]) -> Reply {
    let length = match string(keyspace, key, now) {
        Err(error) => return error,
        Ok(None) => 0,
        Ok(Some(bytes)) => bytes.len(),
    };
    if (length + suffix.len()) as u64 > STRING_SIZE_BYTES_MAX {
        return Reply::error(reply::STRING_TOO_LONG);
    }
    let bytes = string_mut(keyspace, key, now);
    bytes.extend_from_slice(suffix);
    let length = len_i64(bytes.len());
    keyspace.reaccount(key);
    Reply::Integer(length)
}

/// The string at `key` for changing in place (created empty when missing), keeping its
/// deadline. The caller checked the type and must `reaccount` the key after.
fn string_mut<'a>(keyspace: &'a mut Keyspace, key: &[u8], now: u64) -> &'a mut Vec<u8> {
    if keyspace.get(key, now).is_none() {
        keyspace.insert(key, Value::String(Vec::new()), None, now);
    }
    match keyspace.get_mut(key, now).map(|entry| &mut entry.value) {
        Some(Value::String(bytes)) => bytes,
        _ => unreachable!("the caller checked the type"),
    }
}

/// Redis 7's `getrangeCommand` index rules.
fn getrange(value: &[u8], start: i64, end: i64) -> Reply {
    let length = len_i64(value.len());
    if start < 0 && end < 0 && start > end {
        return Reply::Bulk(Vec::new());
    }
    let start = if start < 0 { (length + start).max(0) } else { start };
    let end = if end < 0 { (length + end).max(0) } else { end };
    let end = end.min(length - 1);
    if start > end || length == 0 {
        return Reply::Bulk(Vec::new());
    }
    let (start, end) = (usize::try_from(start).unwrap_or(0), usize::try_from(end).unwrap_or(0));
    Reply::bulk(&value[start..=end])
}

fn setrange(keyspace: &mut Keyspace, now: u64, key: &[u8], offset: u64, value: &[u8]) -> Reply {
    match string(keyspace, key, now) {
        Err(error) => return error,
        Ok(None) if value.is_empty() => return Reply::Integer(0),
        Ok(Some(bytes)) if value.is_empty() => return Reply::Integer(len_i64(bytes.len())),
        Ok(_) => {}
    }
    let end = offset.saturating_add(value.len() as u64);
    if end > STRING_SIZE_BYTES_MAX {
        return Reply::error(reply::STRING_TOO_LONG);
    }
    let (offset, end) = (usize::try_from(offset).unwrap_or(0), usize::try_from(end).unwrap_or(0));
    let bytes = string_mut(keyspace, key, now);
    if bytes.len() < end {
        bytes.resize(end, 0);
    }
    bytes[offset..end].copy_from_slice(value);
    let length = len_i64(bytes.len());
    keyspace.reaccount(key);
    Reply::Integer(length)
}
