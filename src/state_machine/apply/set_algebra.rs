//! The set commands over several keys or chosen members: `SRANDMEMBER`, `SMOVE`, `SINTER`,
//! `SUNION`, `SDIFF` and their `STORE` forms.

use super::{set, set_mut};
use crate::state_machine::command::{Command, SetOperation};
use crate::state_machine::hash::{key_hash, mix64};
use crate::state_machine::keyspace::Keyspace;
use crate::state_machine::limits::RANDOM_MEMBERS_COUNT_MAX;
use crate::state_machine::reply::Reply;
use crate::state_machine::value::{SetValue, Value};

pub(super) fn execute(keyspace: &mut Keyspace, now: u64, command: &Command) -> Option<Reply> {
    Some(match command {
        Command::SRandMember { key, count } => match set(keyspace, key, now) {
            Ok(value) => random_members(value, key, now, *count),
            Err(error) => error,
        },
        Command::SMove { source, destination, member } => {
            smove(keyspace, now, source, destination, member)
        }
        Command::SetAlgebra { operation, destination, keys } => {
            let result = match combine(keyspace, now, *operation, keys) {
                Ok(result) => result,
                Err(error) => return Some(error),
            };
            match destination {
                None => Reply::Set(result.iter().map(|member| Reply::bulk(member)).collect()),
                Some(destination) => {
                    let cardinality = i64::try_from(result.len()).unwrap_or(i64::MAX);
                    keyspace.remove(destination);
                    if cardinality > 0 {
                        keyspace.insert(destination, Value::Set(Box::new(result)), None, now);
                    }
                    Reply::Integer(cardinality)
                }
            }
        }
        _ => return None,
    })
}

/// `SRANDMEMBER`: positive counts give distinct members, negative counts may repeat. Each
/// choice is a hash of the time, the key and the draw, so replicas agree at the same stamp.
fn random_members(set: Option<&SetValue>, key: &[u8], now: u64, count: Option<i64>) -> Reply {
    let members: Vec<&Vec<u8>> = set.map(|set| set.iter().collect()).unwrap_or_default();
    let seed = now ^ key_hash(key);
    let draw = |index: u64, size: usize| {
        usize::try_from(mix64(seed ^ index.rotate_left(23)) % size as u64).unwrap_or(0)
    };
    let Some(count) = count else {
        return match members.len() {
            0 => Reply::Null,
            size => Reply::bulk(members[draw(0, size)]),
        };
    };
    if count.unsigned_abs() > RANDOM_MEMBERS_COUNT_MAX {
        return Reply::error("ERR value is out of range");
    }
    if members.is_empty() || count == 0 {
        return Reply::Array(Vec::new());
    }
    if count < 0 {
        let picks = (0..count.unsigned_abs()).map(|i| Reply::bulk(members[draw(i, members.len())]));
        return Reply::Array(picks.collect());
    }
    let wanted = usize::try_from(count).unwrap_or(usize::MAX).min(members.len());
    let mut order: Vec<usize> = (0..members.len()).collect();
    for i in 0..wanted {
        let j = i + draw(i as u64, members.len() - i);
        order.swap(i, j);
    }
    Reply::Array(order[..wanted].iter().map(|&index| Reply::bulk(members[index])).collect())
}

/// Redis's `smoveCommand` order of checks.
fn smove(
    keyspace: &mut Keyspace,
    now: u64,
    source: &[u8],
    destination: &[u8],
    member: &[u8],
) -> Reply {
    let contains = match set(keyspace, source, now) {
        Ok(None) => return Reply::Integer(0),
        Ok(Some(set)) => set.contains(member),
        Err(error) => return error,
    };
    if let Err(error) = set(keyspace, destination, now) {
        return error;
    }
    if source == destination || !contains {
        return Reply::Integer(i64::from(contains));
    }
    if let Ok(Some(set)) = set_mut(keyspace, source, now, false) {
        set.remove(member);
    }
    keyspace.reaccount(source);
    if let Ok(Some(set)) = set_mut(keyspace, destination, now, true) {
        set.insert(member);
    }
    keyspace.reaccount(destination);
    Reply::Integer(1)
}

/// The result of an operation over `keys` (every key's type checked first; a missing key is
/// an empty set). Members keep the order of the first set, then of the later ones.
fn combine(
    keyspace: &Keyspace,
    now: u64,
    operation: SetOperation,
    keys: &[Vec<u8>],
) -> Result<SetValue, Reply> {
    let mut sets = Vec::with_capacity(keys.len());
    for key in keys {
        sets.push(set(keyspace, key, now)?);
    }
    let mut result = SetValue::default();
    let Some((first, rest)) = sets.split_first() else {
        return Ok(result);
    };
    match operation {
        SetOperation::Union => {
            for member in sets.iter().flatten().flat_map(|set| set.iter()) {
                result.insert(member);
            }
        }
        SetOperation::Inter => {
            if rest.iter().all(Option::is_some) {
                for member in first.iter().flat_map(|set| set.iter()) {
                    if rest.iter().flatten().all(|set| set.contains(member)) {
                        result.insert(member);
                    }
                }
            }
        }
        SetOperation::Diff => {
            for member in first.iter().flat_map(|set| set.iter()) {
                if !rest.iter().flatten().any(|set| set.contains(member)) {
                    result.insert(member);
                }
            }
        }
    }
    Ok(result)
}
