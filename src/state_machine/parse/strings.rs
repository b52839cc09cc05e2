//! Parsers of the string commands (`GET`, `SET` and its options, `INCR`...).

use super::{Parser, float, integer, is, owned, pairs};
use crate::state_machine::command::{Command, Condition, SetOrigin, Ttl};
use crate::state_machine::reply::{self, Reply};

pub(super) fn lookup(name: &str) -> Option<(i64, Parser, &'static str)> {
    Some(match name {
        "get" => (2, |a| Ok(Command::Get { key: a[1].to_vec() }), "get"),
        "set" => (-3, set, "set"),
        "setnx" => {
            (3, |a| Ok(Command::SetNx { key: a[1].to_vec(), value: a[2].to_vec() }), "setnx")
        }
        "setex" => (4, |a| set_expiring(a, SetOrigin::SetEx, true), "setex"),
        "psetex" => (4, |a| set_expiring(a, SetOrigin::PSetEx, false), "psetex"),
        "mget" => (-2, |a| Ok(Command::MGet { keys: owned(&a[1..]) }), "mget"),
        "mset" => (-3, |a| mset(a, "mset").map(|pairs| Command::MSet { pairs }), "mset"),
        "msetnx" => (-3, |a| mset(a, "msetnx").map(|pairs| Command::MSetNx { pairs }), "msetnx"),
        "getset" => {
            (3, |a| Ok(Command::GetSet { key: a[1].to_vec(), value: a[2].to_vec() }), "getset")
        }
        "getdel" => (2, |a| Ok(Command::GetDel { key: a[1].to_vec() }), "getdel"),
        "getex" => (-2, getex, "getex"),
        "incr" => (2, |a| Ok(Command::IncrBy { key: a[1].to_vec(), delta: 1 }), "incr"),
        "decr" => (2, |a| Ok(Command::IncrBy { key: a[1].to_vec(), delta: -1 }), "decr"),
        "incrby" => {
            (3, |a| Ok(Command::IncrBy { key: a[1].to_vec(), delta: integer(a[2])? }), "incrby")
        }
        "decrby" => (3, decrby, "decrby"),
        "incrbyfloat" => (3, incrbyfloat, "incrbyfloat"),
        "append" => {
            (3, |a| Ok(Command::Append { key: a[1].to_vec(), value: a[2].to_vec() }), "append")
        }
        "strlen" => (2, |a| Ok(Command::StrLen { key: a[1].to_vec() }), "strlen"),
        "getrange" => (4, getrange, "getrange"),
        "substr" => (4, getrange, "substr"),
        "setrange" => (4, setrange, "setrange"),
        _ => return None,
    })
}

/// The options of `SET` and `GETEX`, accepted in Redis's exact combinations.
#[derive(Default)]
#[allow(clippy::struct_excessive_bools)] // One flag per Redis option.
struct Options<'a> {
    nx: bool,
    xx: bool,
    get: bool,
    keep_ttl: bool,
    persist: bool,
    /// `IFEQ comparison` (Valkey 8.1), exclusive with `NX` and `XX`.
    ifeq: Option<&'a [u8]>,
    /// The expire argument, whether it counts seconds, whether it is absolute.
    expire: Option<(&'a [u8], bool, bool)>,
}

/// Redis's `parseExtendedStringArgumentsOrReply`: each option is accepted only when it does
/// not conflict with one already seen; anything else is a syntax error.
fn options<'a>(args: &[&'a [u8]], is_set: bool) -> Result<Options<'a>, Reply> {
    let mut options = Options::default();
    let mut index = 0;
    while index < args.len() {
        let option = args[index];
        let next = args.get(index + 1).copied();
        let has_expire = options.expire.is_some();
        let conditioned = options.nx || options.xx || options.ifeq.is_some();
        if is_set && is(option, "nx") && !options.xx && options.ifeq.is_none() {
            options.nx = true;
        } else if is_set && is(option, "xx") && !options.nx && options.ifeq.is_none() {
            options.xx = true;
        } else if let (true, true, false, Some(comparison)) =
            (is_set, is(option, "ifeq"), conditioned, next)
        {
            options.ifeq = Some(comparison);
            index += 1;
        } else if is_set && is(option, "get") {
            options.get = true;
        } else if is_set && is(option, "keepttl") && !has_expire {
            options.keep_ttl = true;
        } else if !is_set && is(option, "persist") && !has_expire {
            options.persist = true;
        } else if let (Some(unit), Some(value)) = (expire_unit(option), next) {
            let (seconds, absolute) = unit;
            let same = options.expire.is_none_or(|(_, s, a)| s == seconds && a == absolute);
            if options.keep_ttl || options.persist || !same {
                return Err(Reply::error(reply::SYNTAX));
            }
            options.expire = Some((value, seconds, absolute));
            index += 1;
        } else {
            return Err(Reply::error(reply::SYNTAX));
        }
        index += 1;
    }
    Ok(options)
}

/// `EX`, `PX`, `EXAT`, `PXAT`: (counts seconds, is absolute).
fn expire_unit(option: &[u8]) -> Option<(bool, bool)> {
    if is(option, "ex") {
        Some((true, false))
    } else if is(option, "px") {
        Some((false, false))
    } else if is(option, "exat") {
        Some((true, true))
    } else if is(option, "pxat") {
        Some((false, true))
    } else {
        None
    }
}

/// Redis's `getExpireMillisecondsOrReply` up to the stamp: > 0, and seconds that fit in
/// milliseconds. Adding the stamp (and its overflow check) happens at apply.
fn expire_ttl(value: &[u8], seconds: bool, absolute: bool, name: &str) -> Result<Ttl, Reply> {
    let amount = integer(value)?;
    if amount <= 0 || (seconds && amount > i64::MAX / 1000) {
        return Err(reply::invalid_expire(name));
    }
    let millis = if seconds { amount * 1000 } else { amount };
    Ok(if absolute { Ttl::AbsoluteMillis(millis) } else { Ttl::RelativeMillis(millis) })
}

fn set(args: &[&[u8]]) -> Result<Command, Reply> {
    let options = options(&args[3..], true)?;
    let ttl = match options.expire {
        Some((value, seconds, absolute)) => expire_ttl(value, seconds, absolute, "set")?,
        None if options.keep_ttl => Ttl::Keep,
        None => Ttl::Clear,
    };
    if let Some(comparison) = options.ifeq {
        return Ok(Command::SetIfEq {
            key: args[1].to_vec(),
            value: args[2].to_vec(),
            comparison: comparison.to_vec(),
            ttl,
            get: options.get,
        });
    }
    let condition = if options.nx {
        Condition::IfAbsent
    } else if options.xx {
        Condition::IfPresent
    } else {
        Condition::Always
    };
    Ok(Command::Set {
        key: args[1].to_vec(),
        value: args[2].to_vec(),
        ttl,
        condition,
        get: options.get,
        origin: SetOrigin::Set,
    })
}

fn set_expiring(args: &[&[u8]], origin: SetOrigin, seconds: bool) -> Result<Command, Reply> {
    let ttl = expire_ttl(args[2], seconds, false, origin.name())?;
    Ok(Command::Set {
        key: args[1].to_vec(),
        value: args[3].to_vec(),
        ttl,
        condition: Condition::Always,
        get: false,
        origin,
    })
}

fn getex(args: &[&[u8]]) -> Result<Command, Reply> {
    let options = options(&args[2..], false)?;
    let ttl = match options.expire {
        Some((value, seconds, absolute)) => match expire_ttl(value, seconds, absolute, "getex") {
            Ok(ttl) => ttl,
            Err(_) if integer(value).is_err() => Ttl::NotInteger,
            Err(_) => Ttl::InvalidExpire,
        },
        None if options.persist => Ttl::Clear,
        None => Ttl::Keep,
    };
    Ok(Command::GetEx { key: args[1].to_vec(), ttl })
}

/// Key/value pairs.
type Pairs = Vec<(Vec<u8>, Vec<u8>)>;

fn mset(args: &[&[u8]], name: &str) -> Result<Pairs, Reply> {
    if args.len().is_multiple_of(2) {
        return Err(reply::wrong_arity(name));
    }
    Ok(pairs(&args[1..]))
}

fn decrby(args: &[&[u8]]) -> Result<Command, Reply> {
    let delta = integer(args[2])?;
    let delta = delta.checked_neg().ok_or_else(|| Reply::error(reply::DECREMENT_OVERFLOW))?;
    Ok(Command::IncrBy { key: args[1].to_vec(), delta })
}

/// An increment that is not a valid float travels as NaN: Redis 7.0 reports it only after the
/// type check (WRONGTYPE first).
#[allow(clippy::unnecessary_wraps)] // A `Parser`: every parser returns a `Result`.
fn incrbyfloat(args: &[&[u8]]) -> Result<Command, Reply> {
    Ok(Command::IncrByFloat { key: args[1].to_vec(), delta: float(args[2]).unwrap_or(f64::NAN) })
}

fn getrange(args: &[&[u8]]) -> Result<Command, Reply> {
    let (start, end) = (integer(args[2])?, integer(args[3])?);
    Ok(Command::GetRange { key: args[1].to_vec(), start, end })
}

fn setrange(args: &[&[u8]]) -> Result<Command, Reply> {
    let offset = integer(args[2])?;
    let offset = u64::try_from(offset).map_err(|_| Reply::error(reply::OFFSET_OUT_OF_RANGE))?;
    Ok(Command::SetRange { key: args[1].to_vec(), offset, value: args[3].to_vec() })
}
