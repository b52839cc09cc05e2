//! Parsers of the hash, list and set commands.

use super::is;
use super::{Parser, float, integer, owned, pairs, positive_count};
use crate::state_machine::command::{Command, SetOperation};
use crate::state_machine::reply::{self, Reply};

pub(super) fn lookup(name: &str) -> Option<(i64, Parser, &'static str)> {
    hashes(name).or_else(|| lists_and_sets(name))
}

fn hashes(name: &str) -> Option<(i64, Parser, &'static str)> {
    Some(match name {
        "hset" => (-4, |a| hset(a, false), "hset"),
        "hmset" => (-4, |a| hset(a, true), "hmset"),
        "hget" => (3, |a| Ok(Command::HGet { key: a[1].to_vec(), field: a[2].to_vec() }), "hget"),
        "hmget" => {
            (-3, |a| Ok(Command::HMGet { key: a[1].to_vec(), fields: owned(&a[2..]) }), "hmget")
        }
        "hgetall" => (2, |a| Ok(Command::HGetAll { key: a[1].to_vec() }), "hgetall"),
        "hdel" => {
            (-3, |a| Ok(Command::HDel { key: a[1].to_vec(), fields: owned(&a[2..]) }), "hdel")
        }
        "hexists" => {
            (3, |a| Ok(Command::HExists { key: a[1].to_vec(), field: a[2].to_vec() }), "hexists")
        }
        "hlen" => (2, |a| Ok(Command::HLen { key: a[1].to_vec() }), "hlen"),
        "hkeys" => (2, |a| Ok(Command::HKeys { key: a[1].to_vec() }), "hkeys"),
        "hvals" => (2, |a| Ok(Command::HVals { key: a[1].to_vec() }), "hvals"),
        "hincrby" => (4, hincrby, "hincrby"),
        "hincrbyfloat" => (4, hincrbyfloat, "hincrbyfloat"),
        "hsetnx" => (4, |a| Ok(hsetnx(a)), "hsetnx"),
        "hstrlen" => {
            (3, |a| Ok(Command::HStrLen { key: a[1].to_vec(), field: a[2].to_vec() }), "hstrlen")
        }
        _ => return None,
    })
}

fn lists_and_sets(name: &str) -> Option<(i64, Parser, &'static str)> {
    Some(match name {
        "lpush" => (-3, |a| Ok(push(a, true, false)), "lpush"),
        "rpush" => (-3, |a| Ok(push(a, false, false)), "rpush"),
        "lpushx" => (-3, |a| Ok(push(a, true, true)), "lpushx"),
        "rpushx" => (-3, |a| Ok(push(a, false, true)), "rpushx"),
        "lpop" => (-2, |a| pop(a, true, "lpop"), "lpop"),
        "rpop" => (-2, |a| pop(a, false, "rpop"), "rpop"),
        "lrange" => (4, lrange, "lrange"),
        "llen" => (2, |a| Ok(Command::LLen { key: a[1].to_vec() }), "llen"),
        "lindex" => {
            (3, |a| Ok(Command::LIndex { key: a[1].to_vec(), index: integer(a[2])? }), "lindex")
        }
        "lset" => (4, lset, "lset"),
        "ltrim" => (4, ltrim, "ltrim"),
        "lrem" => (4, lrem, "lrem"),
        "linsert" => (5, linsert, "linsert"),
        "lmove" => (5, lmove, "lmove"),
        "rpoplpush" => (3, |a| Ok(rpoplpush(a)), "rpoplpush"),
        _ => return sets(name),
    })
}

fn sets(name: &str) -> Option<(i64, Parser, &'static str)> {
    Some(match name {
        "srandmember" => (-2, srandmember, "srandmember"),
        "smove" => (4, |a| Ok(smove(a)), "smove"),
        "sinter" => (-2, |a| Ok(algebra(a, SetOperation::Inter, false)), "sinter"),
        "sunion" => (-2, |a| Ok(algebra(a, SetOperation::Union, false)), "sunion"),
        "sdiff" => (-2, |a| Ok(algebra(a, SetOperation::Diff, false)), "sdiff"),
        "sinterstore" => (-3, |a| Ok(algebra(a, SetOperation::Inter, true)), "sinterstore"),
        "sunionstore" => (-3, |a| Ok(algebra(a, SetOperation::Union, true)), "sunionstore"),
        "sdiffstore" => (-3, |a| Ok(algebra(a, SetOperation::Diff, true)), "sdiffstore"),
        "sadd" => {
            (-3, |a| Ok(Command::SAdd { key: a[1].to_vec(), members: owned(&a[2..]) }), "sadd")
        }
        "srem" => {
            (-3, |a| Ok(Command::SRem { key: a[1].to_vec(), members: owned(&a[2..]) }), "srem")
        }
        "smembers" => (2, |a| Ok(Command::SMembers { key: a[1].to_vec() }), "smembers"),
        "sismember" => (3, |a| Ok(sismember(a)), "sismember"),
        "smismember" => (
            -3,
            |a| Ok(Command::SMIsMember { key: a[1].to_vec(), members: owned(&a[2..]) }),
            "smismember",
        ),
        "scard" => (2, |a| Ok(Command::SCard { key: a[1].to_vec() }), "scard"),
        "spop" => (-2, spop, "spop"),
        _ => return None,
    })
}

fn hset(args: &[&[u8]], reply_ok: bool) -> Result<Command, Reply> {
    if !args.len().is_multiple_of(2) {
        return Err(reply::wrong_arity(if reply_ok { "hmset" } else { "hset" }));
    }
    Ok(Command::HSet { key: args[1].to_vec(), pairs: pairs(&args[2..]), reply_ok })
}

fn hincrby(args: &[&[u8]]) -> Result<Command, Reply> {
    let delta = integer(args[3])?;
    Ok(Command::HIncrBy { key: args[1].to_vec(), field: args[2].to_vec(), delta })
}

/// Redis 7 refuses an infinite increment before it looks at the key.
fn hincrbyfloat(args: &[&[u8]]) -> Result<Command, Reply> {
    let delta = float(args[3])?;
    if delta.is_infinite() {
        return Err(Reply::error("ERR value is NaN or Infinity"));
    }
    Ok(Command::HIncrByFloat { key: args[1].to_vec(), field: args[2].to_vec(), delta })
}

fn hsetnx(args: &[&[u8]]) -> Command {
    let (key, field, value) = (args[1].to_vec(), args[2].to_vec(), args[3].to_vec());
    Command::HSetNx { key, field, value }
}

fn push(args: &[&[u8]], left: bool, only_if_exists: bool) -> Command {
    Command::Push { key: args[1].to_vec(), values: owned(&args[2..]), left, only_if_exists }
}

/// `LPOP key [count]`: more arguments are an arity error (Redis 7's `popGenericCommand`).
fn pop(args: &[&[u8]], left: bool, name: &str) -> Result<Command, Reply> {
    let count = match args.len() {
        2 => None,
        3 => Some(positive_count(args[2])?),
        _ => return Err(reply::wrong_arity(name)),
    };
    Ok(Command::Pop { key: args[1].to_vec(), left, count })
}

fn lrange(args: &[&[u8]]) -> Result<Command, Reply> {
    let (start, stop) = (integer(args[2])?, integer(args[3])?);
    Ok(Command::LRange { key: args[1].to_vec(), start, stop })
}

fn sismember(args: &[&[u8]]) -> Command {
    Command::SIsMember { key: args[1].to_vec(), member: args[2].to_vec() }
}

/// `SPOP key [count]`: more arguments are a syntax error.
fn spop(args: &[&[u8]]) -> Result<Command, Reply> {
    let count = match args.len() {
        2 => None,
        3 => Some(positive_count(args[2])?),
        _ => return Err(Reply::error(reply::SYNTAX)),
    };
    Ok(Command::SPop { key: args[1].to_vec(), count })
}

fn lset(args: &[&[u8]]) -> Result<Command, Reply> {
    Ok(Command::LSet { key: args[1].to_vec(), index: integer(args[2])?, value: args[3].to_vec() })
}

fn ltrim(args: &[&[u8]]) -> Result<Command, Reply> {
    let (start, stop) = (integer(args[2])?, integer(args[3])?);
    Ok(Command::LTrim { key: args[1].to_vec(), start, stop })
}

fn lrem(args: &[&[u8]]) -> Result<Command, Reply> {
    Ok(Command::LRem { key: args[1].to_vec(), count: integer(args[2])?, value: args[3].to_vec() })
}

fn linsert(args: &[&[u8]]) -> Result<Command, Reply> {
    let before = if is(args[2], "before") {
        true
    } else if is(args[2], "after") {
        false
    } else {
        return Err(Reply::error(reply::SYNTAX));
    };
    let (key, pivot, value) = (args[1].to_vec(), args[3].to_vec(), args[4].to_vec());
    Ok(Command::LInsert { key, before, pivot, value })
}

fn side(argument: &[u8]) -> Result<bool, Reply> {
    if is(argument, "left") {
        Ok(true)
    } else if is(argument, "right") {
        Ok(false)
    } else {
        Err(Reply::error(reply::SYNTAX))
    }
}

fn lmove(args: &[&[u8]]) -> Result<Command, Reply> {
    let (from_left, to_left) = (side(args[3])?, side(args[4])?);
    Ok(Command::LMove {
        source: args[1].to_vec(),
        destination: args[2].to_vec(),
        from_left,
        to_left,
    })
}

fn rpoplpush(args: &[&[u8]]) -> Command {
    let (source, destination) = (args[1].to_vec(), args[2].to_vec());
    Command::LMove { source, destination, from_left: false, to_left: true }
}

/// `SRANDMEMBER key [count]`: more arguments are a syntax error.
fn srandmember(args: &[&[u8]]) -> Result<Command, Reply> {
    let count = match args.len() {
        2 => None,
        3 => Some(integer(args[2])?),
        _ => return Err(Reply::error(reply::SYNTAX)),
    };
    Ok(Command::SRandMember { key: args[1].to_vec(), count })
}

fn smove(args: &[&[u8]]) -> Command {
    let (source, destination, member) = (args[1].to_vec(), args[2].to_vec(), args[3].to_vec());
    Command::SMove { source, destination, member }
}

fn algebra(args: &[&[u8]], operation: SetOperation, store: bool) -> Command {
    let (destination, keys) =
        if store { (Some(args[1].to_vec()), owned(&args[2..])) } else { (None, owned(&args[1..])) };
    Command::SetAlgebra { operation, destination, keys }
}
