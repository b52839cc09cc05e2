//! The hash commands at apply (and read) time.

use super::{Read, float_sum, hash, hash_mut};
use crate::state_machine::command::Command;
use crate::state_machine::keyspace::Keyspace;
use crate::state_machine::parse::{parse_f64, parse_i64};
use crate::state_machine::reply::{self, Reply};
use crate::state_machine::value::HashValue;

pub(super) fn execute(keyspace: &mut Keyspace, now: u64, command: &Command) -> Option<Reply> {
    Some(match command {
        Command::HSet { key, pairs, reply_ok } => {
            let added = match hash_mut(keyspace, key, now, true) {
                Ok(Some(hash)) => pairs.iter().filter(|(f, v)| hash.insert(f, v.clone())).count(),
                Ok(None) => unreachable!("created"),
                Err(error) => return Some(error),
            };
            keyspace.reaccount(key);
            if *reply_ok { Reply::Ok } else { Reply::Integer(count(added)) }
        }
        Command::HSetNx { key, field, value } => {
            let added = match hash_mut(keyspace, key, now, true) {
                Ok(Some(hash)) => hash.get(field).is_none() && hash.insert(field, value.clone()),
                Ok(None) => unreachable!("created"),
                Err(error) => return Some(error),
            };
            keyspace.reaccount(key);
            Reply::Integer(i64::from(added))
        }
        Command::HDel { key, fields } => {
            let removed = match hash_mut(keyspace, key, now, false) {
                Ok(Some(hash)) => fields.iter().filter(|field| hash.remove(field)).count(),
                Ok(None) => 0,
                Err(error) => return Some(error),
            };
            keyspace.reaccount(key);
            Reply::Integer(count(removed))
        }
        Command::HIncrBy { key, field, delta } => incr_by(keyspace, now, key, field, *delta),
        Command::HIncrByFloat { key, field, delta } => {
            incr_by_float(keyspace, now, key, field, *delta)
        }
        _ => return reads(keyspace, now, command),
    })
}

fn reads(keyspace: &Keyspace, now: u64, command: &Command) -> Option<Reply> {
    let (key, read): (&[u8], Read<'_, HashValue>) = match command {
        Command::HGet { key, field } => (key, &|h| field_reply(h, field)),
        Command::HMGet { key, fields } => {
            (key, &|h| Reply::Array(fields.iter().map(|f| field_reply(h, f)).collect()))
        }
        Command::HGetAll { key } => (key, &|h| {
            Reply::Map(
                h.into_iter()
                    .flat_map(HashValue::iter)
                    .map(|(f, v)| (Reply::bulk(f), Reply::bulk(v)))
                    .collect(),
            )
        }),
        Command::HExists { key, field } => {
            (key, &|h| Reply::Integer(i64::from(h.is_some_and(|h| h.get(field).is_some()))))
        }
        Command::HLen { key } => (key, &|h| Reply::Integer(count(h.map_or(0, HashValue::len)))),
        Command::HKeys { key } => (key, &|h| {
            Reply::bulks(h.into_iter().flat_map(HashValue::iter).map(|(f, _)| f.as_slice()))
        }),
        Command::HVals { key } => (key, &|h| {
            Reply::bulks(h.into_iter().flat_map(HashValue::iter).map(|(_, v)| v.as_slice()))
        }),
        Command::HStrLen { key, field } => {
            (key, &|h| Reply::Integer(count(h.and_then(|h| h.get(field)).map_or(0, Vec::len))))
        }
        _ => return None,
    };
    Some(match hash(keyspace, key, now) {
        Ok(value) => read(value),
        Err(error) => error,
    })
}

fn field_reply(hash: Option<&HashValue>, field: &[u8]) -> Reply {
    hash.and_then(|hash| hash.get(field)).map_or(Reply::Null, |value| Reply::bulk(value))
}

fn count(value: usize) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn incr_by(keyspace: &mut Keyspace, now: u64, key: &[u8], field: &[u8], delta: i64) -> Reply {
    let current = match hash(keyspace, key, now) {
        Err(error) => return error,
        Ok(hash) => hash.and_then(|hash| hash.get(field)).cloned(),
    };
    let current = match current {
        None => 0,
        Some(bytes) => match parse_i64(&bytes) {
            Some(value) => value,
            None => return Reply::error(reply::HASH_NOT_INTEGER),
        },
    };
    let Some(value) = current.checked_add(delta) else {
        return Reply::error(reply::OVERFLOW);
    };
    if let Ok(Some(hash)) = hash_mut(keyspace, key, now, true) {
        hash.insert(field, value.to_string().into_bytes());
    }
    keyspace.reaccount(key);
    Reply::Integer(value)
}

fn incr_by_float(keyspace: &mut Keyspace, now: u64, key: &[u8], field: &[u8], delta: f64) -> Reply {
    let current = match hash(keyspace, key, now) {
        Err(error) => return error,
        Ok(hash) => hash.and_then(|hash| hash.get(field)).cloned(),
    };
    let value = match &current {
        None => 0.0,
        Some(bytes) => match parse_f64(bytes) {
            Some(value) => value,
            None => return Reply::error(reply::HASH_NOT_FLOAT),
        },
    };
    let Some(text) = float_sum(current.as_deref(), value, delta) else {
        return Reply::error(reply::NAN_OR_INFINITY);
    };
    if let Ok(Some(hash)) = hash_mut(keyspace, key, now, true) {
        hash.insert(field, text.clone());
    }
    keyspace.reaccount(key);
    Reply::Bulk(text)
}
