//! Parsers of the keyspace commands (`DEL`, `RENAME`, `SCAN`, the `EXPIRE` family...).

use super::{Parser, integer, is, owned};
use crate::state_machine::command::{Command, ExpireCondition, ExpireKind};
use crate::state_machine::limits::SCAN_COUNT_MAX;
use crate::state_machine::reply::{self, Reply};

pub(super) fn lookup(name: &str) -> Option<(i64, Parser, &'static str)> {
    Some(match name {
        "del" => (-2, |a| Ok(Command::Del { keys: owned(&a[1..]) }), "del"),
        "unlink" => (-2, |a| Ok(Command::Del { keys: owned(&a[1..]) }), "unlink"),
        "exists" => (-2, |a| Ok(Command::Exists { keys: owned(&a[1..]) }), "exists"),
        "type" => (2, |a| Ok(Command::Type { key: a[1].to_vec() }), "type"),
        "touch" => (-2, |a| Ok(Command::Touch { keys: owned(&a[1..]) }), "touch"),
        "rename" => (3, |a| Ok(rename(a, false)), "rename"),
        "renamenx" => (3, |a| Ok(rename(a, true)), "renamenx"),
        "copy" => (-3, copy, "copy"),
        "keys" => (2, |a| Ok(Command::Keys { pattern: a[1].to_vec() }), "keys"),
        "scan" => (-2, scan, "scan"),
        "randomkey" => (1, |_| Ok(Command::RandomKey {}), "randomkey"),
        "dbsize" => (1, |_| Ok(Command::DbSize {}), "dbsize"),
        "flushdb" => (-1, flush, "flushdb"),
        "flushall" => (-1, flush, "flushall"),
        "expire" => (-3, |a| expire(a, ExpireKind::Expire), "expire"),
        "pexpire" => (-3, |a| expire(a, ExpireKind::PExpire), "pexpire"),
        "expireat" => (-3, |a| expire(a, ExpireKind::ExpireAt), "expireat"),
        "pexpireat" => (-3, |a| expire(a, ExpireKind::PExpireAt), "pexpireat"),
        "ttl" => (2, |a| Ok(ttl(a, false, false)), "ttl"),
        "pttl" => (2, |a| Ok(ttl(a, true, false)), "pttl"),
        "expiretime" => (2, |a| Ok(ttl(a, false, true)), "expiretime"),
        "pexpiretime" => (2, |a| Ok(ttl(a, true, true)), "pexpiretime"),
        "persist" => (2, |a| Ok(Command::Persist { key: a[1].to_vec() }), "persist"),
        _ => return None,
    })
}

fn rename(args: &[&[u8]], only_if_absent: bool) -> Command {
    Command::Rename { source: args[1].to_vec(), destination: args[2].to_vec(), only_if_absent }
}

fn ttl(args: &[&[u8]], millis: bool, absolute: bool) -> Command {
    Command::Ttl { key: args[1].to_vec(), millis, absolute }
}

fn copy(args: &[&[u8]]) -> Result<Command, Reply> {
    let mut replace = false;
    let mut index = 3;
    while index < args.len() {
        let more = index + 1 < args.len();
        if is(args[index], "replace") {
            replace = true;
        } else if is(args[index], "db") && more {
            let database = integer(args[index + 1])?;
            if i32::try_from(database).is_err() {
                return Err(Reply::error(reply::NOT_INTEGER));
            }
            if database != 0 {
                return Err(Reply::error(reply::DB_OUT_OF_RANGE));
            }
            index += 1;
        } else {
            return Err(Reply::error(reply::SYNTAX));
        }
        index += 1;
    }
    Ok(Command::Copy { source: args[1].to_vec(), destination: args[2].to_vec(), replace })
}

/// Redis's `scanGenericCommand` options: pairs of `MATCH`, `COUNT` (>= 1), `TYPE`.
fn scan(args: &[&[u8]]) -> Result<Command, Reply> {
    let cursor = std::str::from_utf8(args[1])
        .ok()
        .filter(|text| !text.starts_with(['-', ' ']))
        .and_then(|text| text.parse::<u64>().ok())
        .ok_or_else(|| Reply::error(reply::INVALID_CURSOR))?;
    let (mut pattern, mut count, mut type_name) = (None, 10, None);
    let mut index = 2;
    while index < args.len() {
        let Some(&value) = args.get(index + 1) else {
            return Err(Reply::error(reply::SYNTAX));
        };
        if is(args[index], "count") {
            let wanted = integer(value)?;
            if wanted < 1 {
                return Err(Reply::error(reply::SYNTAX));
            }
            count = u64::try_from(wanted).map_or(SCAN_COUNT_MAX, |n| n.min(SCAN_COUNT_MAX));
        } else if is(args[index], "match") {
            pattern = Some(value.to_vec()).filter(|p| p.as_slice() != b"*");
        } else if is(args[index], "type") {
            type_name = Some(value.to_ascii_lowercase());
        } else {
            return Err(Reply::error(reply::SYNTAX));
        }
        index += 2;
    }
    Ok(Command::Scan { cursor, pattern, count, type_name })
}

fn flush(args: &[&[u8]]) -> Result<Command, Reply> {
    match args {
        [_] => Ok(Command::FlushAll {}),
        [_, mode] if is(mode, "async") || is(mode, "sync") => Ok(Command::FlushAll {}),
        _ => Err(Reply::error(reply::SYNTAX)),
    }
}

/// Redis's `expireGenericCommand` up to the stamp: options first, then the amount, then the
/// seconds-to-milliseconds overflow check. Adding the stamp happens at apply.
fn expire(args: &[&[u8]], kind: ExpireKind) -> Result<Command, Reply> {
    let (mut nx, mut xx, mut gt, mut lt) = (false, false, false, false);
    for option in &args[3..] {
        if is(option, "nx") {
            nx = true;
        } else if is(option, "xx") {
            xx = true;
        } else if is(option, "gt") {
            gt = true;
        } else if is(option, "lt") {
            lt = true;
        } else {
            let text = String::from_utf8_lossy(option);
            return Err(Reply::Error(format!("ERR Unsupported option {text}")));
        }
    }
    if nx && (xx || gt || lt) {
        return Err(Reply::error(
            "ERR NX and XX, GT or LT options at the same time are not compatible",
        ));
    }
    if gt && lt {
        return Err(Reply::error("ERR GT and LT options at the same time are not compatible"));
    }
    let amount = integer(args[2])?;
    let seconds = matches!(kind, ExpireKind::Expire | ExpireKind::ExpireAt);
    let amount_millis = if seconds {
        amount.checked_mul(1000).ok_or_else(|| reply::invalid_expire(kind.name()))?
    } else {
        amount
    };
    let condition = match (nx, xx, gt, lt) {
        (true, ..) => ExpireCondition::Nx,
        (_, _, true, _) => ExpireCondition::Gt,
        (_, true, _, true) => ExpireCondition::XxLt,
        (_, _, _, true) => ExpireCondition::Lt,
        (_, true, ..) => ExpireCondition::Xx,
        _ => ExpireCondition::Always,
    };
    Ok(Command::Expire { key: args[1].to_vec(), amount_millis, kind, condition })
}
