//! Parsers of the keyspace commands (`DEL`, `RENAME`, `SCAN`, the `EXPIRE` family...).

use super::{Parser, integer, is, owned};
use crate::state_machine::command::{
    CollectionKind, Command, ExpireCondition, ExpireKind, ObjectField,
};
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
        "hscan" => (-3, |a| scan_collection(a, CollectionKind::Hash), "hscan"),
        "sscan" => (-3, |a| scan_collection(a, CollectionKind::Set), "sscan"),
        "zscan" => (-3, |a| scan_collection(a, CollectionKind::ZSet), "zscan"),
        "object" => (-2, object, "object"),
        "memory" => (-2, memory, "memory"),
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

/// Redis's `parseScanCursorOrReply`: an unsigned decimal.
fn cursor(argument: &[u8]) -> Result<u64, Reply> {
    std::str::from_utf8(argument)
        .ok()
        .filter(|text| !text.starts_with(['-', ' ']))
        .and_then(|text| text.parse::<u64>().ok())
        .ok_or_else(|| Reply::error(reply::INVALID_CURSOR))
}

/// The options of the `SCAN` family.
#[derive(Default)]
struct ScanOptions {
    pattern: Option<Vec<u8>>,
    count: Option<u64>,
    type_name: Option<Vec<u8>>,
    no_values: bool,
}

/// Redis's `scanGenericCommand` options: pairs of `MATCH`, `COUNT` (>= 1), `TYPE` (`SCAN`
/// only), and the single word `NOVALUES` (`HSCAN` only).
fn scan_options(args: &[&[u8]], is_scan: bool, is_hash: bool) -> Result<ScanOptions, Reply> {
    let mut options = ScanOptions::default();
    let mut index = 0;
    while index < args.len() {
        if is_hash && is(args[index], "novalues") {
            options.no_values = true;
            index += 1;
            continue;
        }
        let Some(&value) = args.get(index + 1) else {
            return Err(Reply::error(reply::SYNTAX));
        };
        if is(args[index], "count") {
            let wanted = integer(value)?;
            if wanted < 1 {
                return Err(Reply::error(reply::SYNTAX));
            }
            let wanted = u64::try_from(wanted).unwrap_or(SCAN_COUNT_MAX);
            options.count = Some(wanted.min(SCAN_COUNT_MAX));
        } else if is(args[index], "match") {
            options.pattern = Some(value.to_vec()).filter(|p| p.as_slice() != b"*");
        } else if is_scan && is(args[index], "type") {
            options.type_name = Some(value.to_ascii_lowercase());
        } else {
            return Err(Reply::error(reply::SYNTAX));
        }
        index += 2;
    }
    Ok(options)
}

fn scan(args: &[&[u8]]) -> Result<Command, Reply> {
    let cursor = cursor(args[1])?;
    let options = scan_options(&args[2..], true, false)?;
    let (pattern, type_name) = (options.pattern, options.type_name);
    Ok(Command::Scan { cursor, pattern, count: options.count.unwrap_or(10), type_name })
}

fn scan_collection(args: &[&[u8]], kind: CollectionKind) -> Result<Command, Reply> {
    let cursor = cursor(args[2])?;
    let options = scan_options(&args[3..], false, kind == CollectionKind::Hash)?;
    let (key, pattern, no_values) = (args[1].to_vec(), options.pattern, options.no_values);
    Ok(Command::ScanCollection { key, kind, cursor, pattern, no_values })
}

/// Redis 7's subcommand errors: unknown, or the wrong count for a known one.
fn subcommand_error(args: &[&[u8]], command: &str, known: bool) -> Reply {
    let sub = String::from_utf8_lossy(&args[1][..args[1].len().min(128)]).to_ascii_lowercase();
    if known {
        return reply::wrong_arity(&format!("{}|{sub}", command.to_ascii_lowercase()));
    }
    let sub = String::from_utf8_lossy(&args[1][..args[1].len().min(128)]).into_owned();
    Reply::Error(format!("ERR unknown subcommand '{sub}'. Try {command} HELP."))
}

fn object(args: &[&[u8]]) -> Result<Command, Reply> {
    let field = match args[1].to_ascii_lowercase().as_slice() {
        b"encoding" => ObjectField::Encoding,
        b"freq" => ObjectField::Freq,
        b"idletime" => ObjectField::IdleTime,
        b"refcount" => ObjectField::RefCount,
        _ => return Err(subcommand_error(args, "OBJECT", false)),
    };
    if args.len() != 3 {
        return Err(subcommand_error(args, "OBJECT", true));
    }
    Ok(Command::Object { key: args[2].to_vec(), field })
}

/// `MEMORY USAGE key [SAMPLES count]`; the other `MEMORY` subcommands are the server's.
fn memory(args: &[&[u8]]) -> Result<Command, Reply> {
    if !is(args[1], "usage") {
        return Err(subcommand_error(args, "MEMORY", false));
    }
    if args.len() < 3 {
        return Err(subcommand_error(args, "MEMORY", true));
    }
    let mut index = 3;
    while index < args.len() {
        if is(args[index], "samples") && index + 1 < args.len() {
            if integer(args[index + 1])? < 0 {
                return Err(Reply::error(reply::SYNTAX));
            }
            index += 2;
        } else {
            return Err(Reply::error(reply::SYNTAX));
        }
    }
    Ok(Command::MemoryUsage { key: args[2].to_vec() })
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
