//! The list commands that edit in the middle or move items: `LSET`, `LTRIM`, `LREM`,
//! `LINSERT`, `LMOVE`/`RPOPLPUSH`.

use super::{list, list_mut};
use crate::state_machine::command::Command;
use crate::state_machine::keyspace::Keyspace;
use crate::state_machine::reply::{self, Reply};

pub(super) fn execute(keyspace: &mut Keyspace, now: u64, command: &Command) -> Option<Reply> {
    Some(match command {
        Command::LSet { key, index, value } => lset(keyspace, now, key, *index, value),
        Command::LTrim { key, start, stop } => {
            let list = match list_mut(keyspace, key, now, false) {
                Ok(Some(list)) => list,
                Ok(None) => return Some(Reply::Ok),
                Err(error) => return Some(error),
            };
            let (start, end) = trim_bounds(*start, *stop, list.len());
            list.retain_range(start, end);
            keyspace.reaccount(key);
            Reply::Ok
        }
        Command::LRem { key, count, value } => {
            let list = match list_mut(keyspace, key, now, false) {
                Ok(Some(list)) => list,
                Ok(None) => return Some(Reply::Integer(0)),
                Err(error) => return Some(error),
            };
            let limit = usize::try_from(count.unsigned_abs()).unwrap_or(usize::MAX);
            let removed = list.remove_matching(value, limit, *count < 0);
            keyspace.reaccount(key);
            Reply::Integer(i64::try_from(removed).unwrap_or(i64::MAX))
        }
        Command::LInsert { key, before, pivot, value } => {
            let list = match list_mut(keyspace, key, now, false) {
                Ok(Some(list)) => list,
                Ok(None) => return Some(Reply::Integer(0)),
                Err(error) => return Some(error),
            };
            let Some(position) = list.position(pivot) else {
                return Some(Reply::Integer(-1));
            };
            list.insert(if *before { position } else { position + 1 }, value.clone());
            let length = list.len();
            keyspace.reaccount(key);
            Reply::Integer(i64::try_from(length).unwrap_or(i64::MAX))
        }
        Command::LMove { source, destination, from_left, to_left } => {
            lmove(keyspace, now, source, destination, *from_left, *to_left)
        }
        _ => return None,
    })
}

fn lset(keyspace: &mut Keyspace, now: u64, key: &[u8], index: i64, value: &[u8]) -> Reply {
    let list = match list_mut(keyspace, key, now, false) {
        Ok(Some(list)) => list,
        Ok(None) => return Reply::error(reply::NO_SUCH_KEY),
        Err(error) => return error,
    };
    let length = i64::try_from(list.len()).unwrap_or(i64::MAX);
    let index = if index < 0 { length + index } else { index };
    let replaced = usize::try_from(index).is_ok_and(|index| list.set(index, value.to_vec()));
    keyspace.reaccount(key);
    if replaced { Reply::Ok } else { Reply::error("ERR index out of range") }
}

/// Redis's `ltrimCommand` bounds: the kept items are `start..end`.
fn trim_bounds(start: i64, stop: i64, length: usize) -> (usize, usize) {
    let length_signed = i64::try_from(length).unwrap_or(i64::MAX);
    let start = if start < 0 { (length_signed + start).max(0) } else { start };
    let stop = if stop < 0 { length_signed + stop } else { stop };
    if start > stop || start >= length_signed {
        return (0, 0);
    }
    let stop = stop.min(length_signed - 1);
    (usize::try_from(start).unwrap_or(0), usize::try_from(stop + 1).unwrap_or(0))
}

/// Redis's `lmoveGenericCommand`: the source's type first, the destination's only when
/// there is an item to move.
fn lmove(
    keyspace: &mut Keyspace,
    now: u64,
    source: &[u8],
    destination: &[u8],
    from_left: bool,
    to_left: bool,
) -> Reply {
    match list(keyspace, source, now) {
        Ok(None) => return Reply::Null,
        Ok(Some(_)) => {}
        Err(error) => return error,
    }
    if let Err(error) = list(keyspace, destination, now) {
        return error;
    }
    let item = match list_mut(keyspace, source, now, false) {
        Ok(Some(list)) => list.pop(from_left),
        _ => None,
    };
    keyspace.reaccount(source);
    let Some(item) = item else {
        return Reply::Null;
    };
    if let Ok(Some(list)) = list_mut(keyspace, destination, now, true) {
        list.push(item.clone(), to_left);
    }
    keyspace.reaccount(destination);
    Reply::Bulk(item)
}
