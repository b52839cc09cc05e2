//! The list and set commands at apply (and read) time.

use super::{Read, clamp_range, list, list_mut, set, set_mut};
use crate::state_machine::command::Command;
use crate::state_machine::hash::{key_hash, mix64};
use crate::state_machine::keyspace::Keyspace;
use crate::state_machine::reply::Reply;
use crate::state_machine::value::{ListValue, SetValue};

pub(super) fn execute(keyspace: &mut Keyspace, now: u64, command: &Command) -> Option<Reply> {
    Some(match command {
        Command::Push { key, values, left, only_if_exists } => {
            let length = match list_mut(keyspace, key, now, !only_if_exists) {
                Ok(Some(list)) => {
                    for value in values {
                        list.push(value.clone(), *left);
                    }
                    list.len()
                }
                Ok(None) => 0,
                Err(error) => return Some(error),
            };
            keyspace.reaccount(key);
            Reply::Integer(count(length))
        }
        Command::Pop { key, left, count: wanted } => pop(keyspace, now, key, *left, *wanted),
        Command::LRange { key, start, stop } => match list(keyspace, key, now) {
            Ok(None) => Reply::Array(Vec::new()),
            Ok(Some(list)) => match clamp_range(*start, *stop, list.len()) {
                None => Reply::Array(Vec::new()),
                Some((start, stop)) => {
                    Reply::bulks(list.iter().skip(start).take(stop - start + 1).map(Vec::as_slice))
                }
            },
            Err(error) => error,
        },
        Command::LLen { key } => match list(keyspace, key, now) {
            Ok(list) => Reply::Integer(count(list.map_or(0, ListValue::len))),
            Err(error) => error,
        },
        Command::LIndex { key, index } => match list(keyspace, key, now) {
            Ok(None) => Reply::Null,
            Ok(Some(list)) => {
                let length = count(list.len());
                let index = if *index < 0 { length + index } else { *index };
                usize::try_from(index)
                    .ok()
                    .and_then(|index| list.get(index))
                    .map_or(Reply::Null, |item| Reply::bulk(item))
            }
            Err(error) => error,
        },
        _ => return sets(keyspace, now, command),
    })
}

fn count(value: usize) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn pop(keyspace: &mut Keyspace, now: u64, key: &[u8], left: bool, wanted: Option<u64>) -> Reply {
    let list = match list_mut(keyspace, key, now, false) {
        Ok(Some(list)) => list,
        Ok(None) => return if wanted.is_some() { Reply::NullArray } else { Reply::Null },
        Err(error) => return error,
    };
    let reply = match wanted {
        None => list.pop(left).map_or(Reply::Null, Reply::Bulk),
        Some(wanted) => {
            let mut items = Vec::new();
            while (items.len() as u64) < wanted {
                match list.pop(left) {
                    Some(item) => items.push(Reply::Bulk(item)),
                    None => break,
                }
            }
            Reply::Array(items)
        }
    };
    keyspace.reaccount(key);
    reply
}

fn sets(keyspace: &mut Keyspace, now: u64, command: &Command) -> Option<Reply> {
    Some(match command {
        Command::SAdd { key, members } => {
            let added = match set_mut(keyspace, key, now, true) {
                Ok(Some(set)) => members.iter().filter(|member| set.insert(member)).count(),
                Ok(None) => 0,
                Err(error) => return Some(error),
            };
            keyspace.reaccount(key);
            Reply::Integer(count(added))
        }
        Command::SRem { key, members } => {
            let removed = match set_mut(keyspace, key, now, false) {
                Ok(Some(set)) => members.iter().filter(|member| set.remove(member)).count(),
                Ok(None) => 0,
                Err(error) => return Some(error),
            };
            keyspace.reaccount(key);
            Reply::Integer(count(removed))
        }
        Command::SPop { key, count: wanted } => spop(keyspace, now, key, *wanted),
        _ => return set_reads(keyspace, now, command),
    })
}

fn set_reads(keyspace: &Keyspace, now: u64, command: &Command) -> Option<Reply> {
    let (key, read): (&[u8], Read<'_, SetValue>) = match command {
        Command::SMembers { key } => (key, &|s| {
            Reply::Set(s.into_iter().flat_map(SetValue::iter).map(|m| Reply::bulk(m)).collect())
        }),
        Command::SIsMember { key, member } => {
            (key, &|s| Reply::Integer(i64::from(s.is_some_and(|s| s.contains(member)))))
        }
        Command::SMIsMember { key, members } => (key, &|s| {
            Reply::Array(
                members
                    .iter()
                    .map(|m| Reply::Integer(i64::from(s.is_some_and(|s| s.contains(m)))))
                    .collect(),
            )
        }),
        Command::SCard { key } => (key, &|s| Reply::Integer(count(s.map_or(0, SetValue::len)))),
        _ => return None,
    };
    Some(match set(keyspace, key, now) {
        Ok(value) => read(value),
        Err(error) => error,
    })
}

/// `SPOP`: each popped member is at index `mix64(stamp, key, size) % size` of the set's
/// order, so every replica pops the same members.
fn spop(keyspace: &mut Keyspace, now: u64, key: &[u8], wanted: Option<u64>) -> Reply {
    let set = match set_mut(keyspace, key, now, false) {
        Ok(Some(set)) => set,
        Ok(None) => return if wanted.is_some() { Reply::Set(Vec::new()) } else { Reply::Null },
        Err(error) => return error,
    };
    let seed = now ^ key_hash(key);
    let mut popped = Vec::new();
    let has_count = wanted.is_some();
    let wanted = wanted.unwrap_or(1);
    while (popped.len() as u64) < wanted && !set.is_empty() {
        let size = set.len() as u64;
        let index = usize::try_from(mix64(seed ^ size.rotate_left(17)) % size).unwrap_or(0);
        if let Some(member) = set.remove_at(index) {
            popped.push(member);
        }
    }
    keyspace.reaccount(key);
    if has_count {
        Reply::Set(popped.into_iter().map(Reply::Bulk).collect())
    } else {
        popped.pop().map_or(Reply::Null, Reply::Bulk)
    }
}
