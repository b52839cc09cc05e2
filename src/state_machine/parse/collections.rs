//! Parsers of the hash, list and set commands.

use super::{Parser, float, integer, owned, pairs, positive_count};
use crate::state_machine::command::Command;
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

fn hincrbyfloat(args: &[&[u8]]) -> Result<Command, Reply> {
    let delta = float(args[3])?;
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
