//! Parsers of the sorted-set commands (`ZADD` with its flags, the `ZRANGE` family...).

use super::{Parser, integer, is, owned, parse_f64, positive_count};
use crate::state_machine::command::{Command, LexBound, ScoreBound, ZAddFlags, ZRangeBy};
use crate::state_machine::reply::{self, Reply};

pub(super) fn lookup(name: &str) -> Option<(i64, Parser, &'static str)> {
    Some(match name {
        "zadd" => (-4, zadd, "zadd"),
        "zincrby" => (4, zincrby, "zincrby"),
        "zrem" => {
            (-3, |a| Ok(Command::ZRem { key: a[1].to_vec(), members: owned(&a[2..]) }), "zrem")
        }
        "zscore" => {
            (3, |a| Ok(Command::ZScore { key: a[1].to_vec(), member: a[2].to_vec() }), "zscore")
        }
        "zcard" => (2, |a| Ok(Command::ZCard { key: a[1].to_vec() }), "zcard"),
        "zrange" => (-4, |a| zrange(a, Legacy::None), "zrange"),
        "zrevrange" => (-4, |a| zrange(a, Legacy::RevRank), "zrevrange"),
        "zrangebyscore" => (-4, |a| zrange(a, Legacy::ByScore), "zrangebyscore"),
        "zrevrangebyscore" => (-4, |a| zrange(a, Legacy::RevByScore), "zrevrangebyscore"),
        "zrangebylex" => (-4, |a| zrange(a, Legacy::ByLex), "zrangebylex"),
        "zrevrangebylex" => (-4, |a| zrange(a, Legacy::RevByLex), "zrevrangebylex"),
        "zlexcount" => (4, zlexcount, "zlexcount"),
        "zpopmin" => (-2, |a| zpop(a, false), "zpopmin"),
        "zpopmax" => (-2, |a| zpop(a, true), "zpopmax"),
        "zrank" => (3, |a| Ok(zrank(a, false)), "zrank"),
        "zrevrank" => (3, |a| Ok(zrank(a, true)), "zrevrank"),
        "zcount" => (4, zcount, "zcount"),
        "zmscore" => (
            -3,
            |a| Ok(Command::ZMScore { key: a[1].to_vec(), members: owned(&a[2..]) }),
            "zmscore",
        ),
        "zremrangebyscore" => (4, zremrangebyscore, "zremrangebyscore"),
        "zremrangebyrank" => (4, zremrangebyrank, "zremrangebyrank"),
        _ => return None,
    })
}

fn score(argument: &[u8]) -> Result<f64, Reply> {
    parse_f64(argument).ok_or_else(|| Reply::error(reply::NOT_FLOAT))
}

/// Redis's `zaddGenericCommand`: flags until the first non-flag, then score/member pairs.
fn zadd(args: &[&[u8]]) -> Result<Command, Reply> {
    let mut flags = ZAddFlags::default();
    let mut index = 2;
    while let Some(option) = args.get(index) {
        let flag = match () {
            () if is(option, "nx") => &mut flags.nx,
            () if is(option, "xx") => &mut flags.xx,
            () if is(option, "gt") => &mut flags.gt,
            () if is(option, "lt") => &mut flags.lt,
            () if is(option, "ch") => &mut flags.ch,
            () if is(option, "incr") => &mut flags.incr,
            () => break,
        };
        *flag = true;
        index += 1;
    }
    let rest = &args[index..];
    if rest.is_empty() || !rest.len().is_multiple_of(2) {
        return Err(Reply::error(reply::SYNTAX));
    }
    if flags.nx && flags.xx {
        return Err(Reply::error("ERR XX and NX options at the same time are not compatible"));
    }
    if (flags.nx && (flags.gt || flags.lt)) || (flags.gt && flags.lt) {
        return Err(Reply::error(
            "ERR GT, LT, and/or NX options at the same time are not compatible",
        ));
    }
    if flags.incr && rest.len() > 2 {
        return Err(Reply::error("ERR INCR option supports a single increment-element pair"));
    }
    let mut pairs = Vec::with_capacity(rest.len() / 2);
    for pair in rest.chunks_exact(2) {
        pairs.push((score(pair[0])?, pair[1].to_vec()));
    }
    Ok(Command::ZAdd { key: args[1].to_vec(), flags, pairs })
}

fn zincrby(args: &[&[u8]]) -> Result<Command, Reply> {
    let flags = ZAddFlags { incr: true, ..ZAddFlags::default() };
    let pairs = vec![(score(args[2])?, args[3].to_vec())];
    Ok(Command::ZAdd { key: args[1].to_vec(), flags, pairs })
}

/// Which legacy command fixed the direction and range type.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Legacy {
    None,
    RevRank,
    ByScore,
    RevByScore,
    ByLex,
    RevByLex,
}

/// How `ZRANGE` reads its bounds.
#[derive(Clone, Copy, PartialEq, Eq)]
enum RangeType {
    Rank,
    Score,
    Lex,
}

/// Redis's `zrangeGenericCommand` option loop and conflict checks.
fn zrange(args: &[&[u8]], legacy: Legacy) -> Result<Command, Reply> {
    let mut rev = matches!(legacy, Legacy::RevRank | Legacy::RevByScore | Legacy::RevByLex);
    let mut range_type = match legacy {
        Legacy::ByScore | Legacy::RevByScore => Some(RangeType::Score),
        Legacy::ByLex | Legacy::RevByLex => Some(RangeType::Lex),
        Legacy::RevRank => Some(RangeType::Rank),
        Legacy::None => None,
    };
    let (mut with_scores, mut limit) = (false, None);
    let mut index = 4;
    while index < args.len() {
        let option = args[index];
        let left = args.len() - index - 1;
        let free = legacy == Legacy::None;
        if is(option, "withscores") {
            with_scores = true;
        } else if is(option, "limit") && left >= 2 {
            limit = Some((integer(args[index + 1])?, integer(args[index + 2])?));
            index += 2;
        } else if free && is(option, "rev") {
            rev = true;
        } else if free && range_type.is_none() && is(option, "byscore") {
            range_type = Some(RangeType::Score);
        } else if free && range_type.is_none() && is(option, "bylex") {
            range_type = Some(RangeType::Lex);
        } else {
            return Err(Reply::error(reply::SYNTAX));
        }
        index += 1;
    }
    let range_type = range_type.unwrap_or(RangeType::Rank);
    let limit = limit.filter(|&(_, count)| count != -1);
    if limit.is_some() && range_type == RangeType::Rank {
        return Err(Reply::error(
            "ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX",
        ));
    }
    if with_scores && range_type == RangeType::Lex {
        return Err(Reply::error(
            "ERR syntax error, WITHSCORES not supported in combination with BYLEX",
        ));
    }
    let swap = rev && range_type != RangeType::Rank;
    let (low, high) = if swap { (args[3], args[2]) } else { (args[2], args[3]) };
    let by = match range_type {
        RangeType::Score => ZRangeBy::Score { min: score_bound(low)?, max: score_bound(high)? },
        RangeType::Lex => ZRangeBy::Lex { min: lex_bound(low)?, max: lex_bound(high)? },
        RangeType::Rank => ZRangeBy::Index { start: integer(low)?, stop: integer(high)? },
    };
    Ok(Command::ZRange { key: args[1].to_vec(), by, rev, limit, with_scores })
}

/// Redis's `zslParseLexRangeItem`: `-`, `+`, `[member`, `(member`.
fn lex_bound(argument: &[u8]) -> Result<LexBound, Reply> {
    match argument.split_first() {
        Some((b'-', [])) => Ok(LexBound::Min),
        Some((b'+', [])) => Ok(LexBound::Max),
        Some((b'[', rest)) => Ok(LexBound::Inclusive(rest.to_vec())),
        Some((b'(', rest)) => Ok(LexBound::Exclusive(rest.to_vec())),
        _ => Err(Reply::error("ERR min or max not valid string range item")),
    }
}

fn zlexcount(args: &[&[u8]]) -> Result<Command, Reply> {
    let (min, max) = (lex_bound(args[2])?, lex_bound(args[3])?);
    Ok(Command::ZLexCount { key: args[1].to_vec(), min, max })
}

/// Redis's `zslParseRange` bound: `(` for exclusive, then a float (`-inf`, `+inf` too).
fn score_bound(argument: &[u8]) -> Result<ScoreBound, Reply> {
    let (exclusive, number) = match argument.split_first() {
        Some((b'(', rest)) => (true, rest),
        _ => (false, argument),
    };
    let value = parse_f64(number).ok_or_else(|| Reply::error(reply::MIN_MAX_NOT_FLOAT))?;
    Ok(ScoreBound { value, exclusive })
}

/// `ZPOPMIN key [count]`: more arguments are a syntax error.
fn zpop(args: &[&[u8]], max: bool) -> Result<Command, Reply> {
    let count = match args.len() {
        2 => None,
        3 => Some(positive_count(args[2])?),
        _ => return Err(Reply::error(reply::SYNTAX)),
    };
    Ok(Command::ZPop { key: args[1].to_vec(), max, count })
}

fn zrank(args: &[&[u8]], rev: bool) -> Command {
    Command::ZRank { key: args[1].to_vec(), member: args[2].to_vec(), rev }
}

fn zcount(args: &[&[u8]]) -> Result<Command, Reply> {
    let (min, max) = (score_bound(args[2])?, score_bound(args[3])?);
    Ok(Command::ZCount { key: args[1].to_vec(), min, max })
}

fn zremrangebyscore(args: &[&[u8]]) -> Result<Command, Reply> {
    let (min, max) = (score_bound(args[2])?, score_bound(args[3])?);
    Ok(Command::ZRemRangeByScore { key: args[1].to_vec(), min, max })
}

fn zremrangebyrank(args: &[&[u8]]) -> Result<Command, Reply> {
    let (start, stop) = (integer(args[2])?, integer(args[3])?);
    Ok(Command::ZRemRangeByRank { key: args[1].to_vec(), start, stop })
}
