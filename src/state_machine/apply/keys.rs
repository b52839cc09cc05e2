//! The keyspace commands at apply (and read) time: deletes, renames, scans, deadlines.

use super::strings::{Change, apply_change};
use crate::state_machine::command::{Command, ExpireCondition, ExpireKind};
use crate::state_machine::glob;
use crate::state_machine::hash::mix64;
use crate::state_machine::keyspace::Keyspace;
use crate::state_machine::limits::RANDOM_KEY_WALK_STEPS_MAX;
use crate::state_machine::reply::{self, Reply};

pub(super) fn execute(keyspace: &mut Keyspace, now: u64, command: &Command) -> Option<Reply> {
    Some(match command {
        Command::Del { keys } => {
            let mut removed = 0;
            for key in keys {
                if keyspace.get(key, now).is_some() {
                    keyspace.remove(key);
                    removed += 1;
                }
            }
            Reply::Integer(removed)
        }
        Command::Exists { keys } | Command::Touch { keys } => {
            Reply::Integer(keys.iter().map(|key| i64::from(keyspace.get(key, now).is_some())).sum())
        }
        Command::Type { key } => Reply::Simple(
            keyspace.get(key, now).map_or("none", |entry| entry.value.type_name()).to_owned(),
        ),
        Command::Rename { source, destination, only_if_absent } => {
            rename(keyspace, now, source, destination, *only_if_absent)
        }
        Command::Copy { source, destination, replace } => {
            copy(keyspace, now, source, destination, *replace)
        }
        Command::Keys { pattern } => Reply::Array(
            keyspace
                .iter()
                .filter(|(key, entry)| {
                    !entry.is_expired(now) && glob::matches(pattern, key.bytes())
                })
                .map(|(key, _)| Reply::bulk(key.bytes()))
                .collect(),
        ),
        Command::Scan { cursor, pattern, count, type_name } => {
            scan(keyspace, now, *cursor, pattern.as_deref(), *count, type_name.as_deref())
        }
        Command::RandomKey {} => random_key(keyspace, now),
        Command::DbSize {} => Reply::Integer(i64::try_from(keyspace.len()).unwrap_or(i64::MAX)),
        Command::FlushAll {} => {
            keyspace.clear();
            Reply::Ok
        }
        _ => return deadlines(keyspace, now, command),
    })
}

fn deadlines(keyspace: &mut Keyspace, now: u64, command: &Command) -> Option<Reply> {
    Some(match command {
        Command::Expire { key, amount_millis, kind, condition } => {
            expire(keyspace, now, key, *amount_millis, *kind, *condition)
        }
        Command::Ttl { key, millis, absolute } => ttl(keyspace, now, key, *millis, *absolute),
        Command::Persist { key } => {
            let has_deadline = keyspace.get(key, now).is_some_and(|e| e.deadline().is_some());
            if has_deadline {
                keyspace.set_deadline(key, None);
            }
            Reply::Integer(i64::from(has_deadline))
        }
        Command::Expired { key } => Reply::Integer(i64::from(keyspace.purge_if_expired(key, now))),
        Command::Evict { key } => Reply::Integer(i64::from(keyspace.remove(key).is_some())),
        _ => return None,
    })
}

fn rename(
    keyspace: &mut Keyspace,
    now: u64,
    source: &[u8],
    destination: &[u8],
    only_if_absent: bool,
) -> Reply {
    let done = if only_if_absent { Reply::Integer(1) } else { Reply::Ok };
    if keyspace.get(source, now).is_none() {
        return Reply::error(reply::NO_SUCH_KEY);
    }
    if source == destination {
        return if only_if_absent { Reply::Integer(0) } else { Reply::Ok };
    }
    if only_if_absent && keyspace.get(destination, now).is_some() {
        return Reply::Integer(0);
    }
    let entry = keyspace.remove(source).expect("the source was just found");
    let deadline = entry.deadline();
    keyspace.insert(destination, entry.value, deadline, now);
    done
}

fn copy(
    keyspace: &mut Keyspace,
    now: u64,
    source: &[u8],
    destination: &[u8],
    replace: bool,
) -> Reply {
    if source == destination {
        return Reply::error(reply::SAME_OBJECT);
    }
    let Some(entry) = keyspace.get(source, now) else {
        return Reply::Integer(0);
    };
    if !replace && keyspace.get(destination, now).is_some() {
        return Reply::Integer(0);
    }
    let (value, deadline) = (entry.value.clone(), entry.deadline());
    keyspace.insert(destination, value, deadline, now);
    Reply::Integer(1)
}

/// `SCAN`: the cursor is the next key hash to visit. A call visits `count` keys in hash
/// order, then the rest of the keys sharing the last visited hash, so a key present for the
/// whole iteration is returned exactly once, whatever is inserted or deleted meanwhile. The
/// reply's cursor is 0 when the iteration is complete.
fn scan(
    keyspace: &Keyspace,
    now: u64,
    cursor: u64,
    pattern: Option<&[u8]>,
    count: u64,
    type_name: Option<&[u8]>,
) -> Reply {
    let mut keys = Vec::new();
    let mut last_hash = None;
    let mut next = 0;
    for (visited, (key, entry)) in (0_u64..).zip(keyspace.iter_from(cursor)) {
        if visited >= count && last_hash != Some(key.hash()) {
            next = key.hash();
            break;
        }
        last_hash = Some(key.hash());
        let wanted = !entry.is_expired(now)
            && pattern.is_none_or(|pattern| glob::matches(pattern, key.bytes()))
            && type_name.is_none_or(|name| name == entry.value.type_name().as_bytes());
        if wanted {
            keys.push(Reply::bulk(key.bytes()));
        }
    }
    Reply::Array(vec![Reply::Bulk(next.to_string().into_bytes()), Reply::Array(keys)])
}

/// `RANDOMKEY`: the first live key at or after a hash of `now` and the key count (wrapping
/// around), so replicas applying it at the same stamp agree.
fn random_key(keyspace: &Keyspace, now: u64) -> Reply {
    let start = mix64(now ^ (keyspace.len() as u64).rotate_left(32));
    keyspace
        .iter_from(start)
        .chain(keyspace.iter())
        .take(RANDOM_KEY_WALK_STEPS_MAX)
        .find(|(_, entry)| !entry.is_expired(now))
        .map_or(Reply::Null, |(key, _)| Reply::bulk(key.bytes()))
}

/// Redis's `expireGenericCommand` from the stamp addition on.
fn expire(
    keyspace: &mut Keyspace,
    now: u64,
    key: &[u8],
    amount_millis: i64,
    kind: ExpireKind,
    condition: ExpireCondition,
) -> Reply {
    let base = if kind.is_relative() { i64::try_from(now).unwrap_or(i64::MAX) } else { 0 };
    if amount_millis > i64::MAX - base {
        return reply::invalid_expire(kind.name());
    }
    let when = amount_millis + base;
    let Some(entry) = keyspace.get(key, now) else {
        return Reply::Integer(0);
    };
    let current = entry.deadline().map(|deadline| i64::try_from(deadline).unwrap_or(i64::MAX));
    let allowed = match condition {
        ExpireCondition::Always => true,
        ExpireCondition::Nx => current.is_none(),
        ExpireCondition::Xx => current.is_some(),
        ExpireCondition::Gt => current.is_some_and(|current| when > current),
        ExpireCondition::Lt => current.is_none_or(|current| when < current),
        ExpireCondition::XxLt => current.is_some_and(|current| when < current),
    };
    if !allowed {
        return Reply::Integer(0);
    }
    apply_change(keyspace, key, Change::Set(Some(u64::try_from(when).unwrap_or(0))), now);
    Reply::Integer(1)
}

/// `TTL`, `PTTL`, `EXPIRETIME`, `PEXPIRETIME` (Redis's `ttlGenericCommand`, rounding
/// seconds to nearest).
fn ttl(keyspace: &Keyspace, now: u64, key: &[u8], millis: bool, absolute: bool) -> Reply {
    let Some(entry) = keyspace.get(key, now) else {
        return Reply::Integer(-2);
    };
    let Some(deadline) = entry.deadline() else {
        return Reply::Integer(-1);
    };
    let value = if absolute { deadline } else { deadline.saturating_sub(now) };
    let value = if millis { value } else { value.saturating_add(500) / 1000 };
    Reply::Integer(i64::try_from(value).unwrap_or(i64::MAX))
}
