//! The sorted-set commands at apply (and read) time.

use super::{Read, clamp_range, zset, zset_mut};
use crate::state_machine::command::{Command, LexBound, ScoreBound, ZAddFlags, ZRangeBy};
use crate::state_machine::keyspace::Keyspace;
use crate::state_machine::reply::{self, Reply};
use crate::state_machine::value::ZSetValue;

pub(super) fn execute(keyspace: &mut Keyspace, now: u64, command: &Command) -> Option<Reply> {
    Some(match command {
        Command::ZAdd { key, flags, pairs } => zadd(keyspace, now, key, *flags, pairs),
        Command::ZRem { key, members } => {
            let removed = match zset_mut(keyspace, key, now, false) {
                Ok(Some(zset)) => members.iter().filter(|member| zset.remove(member)).count(),
                Ok(None) => 0,
                Err(error) => return Some(error),
            };
            keyspace.reaccount(key);
            Reply::Integer(count(removed))
        }
        Command::ZPop { key, max, count: wanted } => zpop(keyspace, now, key, *max, *wanted),
        Command::ZRemRangeByScore { key, min, max } => {
            let (min, max) = (*min, *max);
            remove_where(keyspace, now, key, |_, score| in_range(score, min, max))
        }
        Command::ZRemRangeByRank { key, start, stop } => {
            let length = match zset(keyspace, key, now) {
                Ok(value) => value.map_or(0, ZSetValue::len),
                Err(error) => return Some(error),
            };
            let Some((start, stop)) = clamp_range(*start, *stop, length) else {
                return Some(Reply::Integer(0));
            };
            remove_where(keyspace, now, key, |rank, _| (start..=stop).contains(&rank))
        }
        _ => return reads(keyspace, now, command),
    })
}

fn reads(keyspace: &Keyspace, now: u64, command: &Command) -> Option<Reply> {
    let (key, read): (&[u8], Read<'_, ZSetValue>) = match command {
        Command::ZScore { key, member } => {
            (key, &|z| z.and_then(|z| z.score(member)).map_or(Reply::Null, Reply::Double))
        }
        Command::ZLexCount { key, min, max } => (key, &|z| {
            let members = z.into_iter().flat_map(ZSetValue::iter);
            let within = members.filter(|&(m, _)| lex_above_min(m, min) && lex_below_max(m, max));
            Reply::Integer(count(within.count()))
        }),
        Command::ZMScore { key, members } => (key, &|z| {
            let score = |m: &Vec<u8>| z.and_then(|z| z.score(m)).map_or(Reply::Null, Reply::Double);
            Reply::Array(members.iter().map(score).collect())
        }),
        Command::ZCard { key } => (key, &|z| Reply::Integer(count(z.map_or(0, ZSetValue::len)))),
        Command::ZRange { key, by, rev, limit, with_scores } => (key, &|z| {
            z.map_or(Reply::Array(Vec::new()), |z| range(z, by, *rev, *limit, *with_scores))
        }),
        Command::ZRank { key, member, rev } => (key, &|z| {
            let Some(z) = z else { return Reply::Null };
            z.rank(member).map_or(Reply::Null, |rank| {
                Reply::Integer(count(if *rev { z.len() - 1 - rank } else { rank }))
            })
        }),
        Command::ZCount { key, min, max } => (key, &|z| {
            let within =
                z.into_iter().flat_map(ZSetValue::iter).filter(|&(_, s)| in_range(s, *min, *max));
            Reply::Integer(count(within.count()))
        }),
        _ => return None,
    };
    Some(match zset(keyspace, key, now) {
        Ok(value) => read(value),
        Err(error) => error,
    })
}

fn count(value: usize) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn above_min(score: f64, min: ScoreBound) -> bool {
    if min.exclusive { score > min.value } else { score >= min.value }
}

fn below_max(score: f64, max: ScoreBound) -> bool {
    if max.exclusive { score < max.value } else { score <= max.value }
}

fn in_range(score: f64, min: ScoreBound, max: ScoreBound) -> bool {
    above_min(score, min) && below_max(score, max)
}

/// The members between `low` and `high` (predicates true from the bound on), in order or in
/// reverse.
fn bounded<'a>(
    zset: &'a ZSetValue,
    rev: bool,
    low: impl Fn(&(&'a [u8], f64)) -> bool + 'a,
    high: impl Fn(&(&'a [u8], f64)) -> bool + 'a,
) -> Box<dyn Iterator<Item = (&'a [u8], f64)> + 'a> {
    if rev {
        Box::new(zset.iter().rev().skip_while(move |i| !high(i)).take_while(move |i| low(i)))
    } else {
        Box::new(zset.iter().skip_while(move |i| !low(i)).take_while(move |i| high(i)))
    }
}

fn lex_above_min(member: &[u8], min: &LexBound) -> bool {
    match min {
        LexBound::Min => true,
        LexBound::Max => false,
        LexBound::Inclusive(bound) => member >= bound.as_slice(),
        LexBound::Exclusive(bound) => member > bound.as_slice(),
    }
}

fn lex_below_max(member: &[u8], max: &LexBound) -> bool {
    match max {
        LexBound::Max => true,
        LexBound::Min => false,
        LexBound::Inclusive(bound) => member <= bound.as_slice(),
        LexBound::Exclusive(bound) => member < bound.as_slice(),
    }
}

/// Redis's `zsetAdd` per pair, with `zaddGenericCommand`'s reply.
fn zadd(
    keyspace: &mut Keyspace,
    now: u64,
    key: &[u8],
    flags: ZAddFlags,
    pairs: &[(f64, Vec<u8>)],
) -> Reply {
    let zset = match zset_mut(keyspace, key, now, !flags.xx) {
        Ok(Some(zset)) => zset,
        Ok(None) => return if flags.incr { Reply::Null } else { Reply::Integer(0) },
        Err(error) => return error,
    };
    let (mut added, mut updated, mut last) = (0, 0, None);
    for (score, member) in pairs {
        let Some(current) = zset.score(member) else {
            if !flags.xx {
                zset.insert(member, *score);
                added += 1;
                last = Some(*score);
            }
            continue;
        };
        if flags.nx {
            continue;
        }
        let new = if flags.incr { current + score } else { *score };
        if new.is_nan() {
            keyspace.reaccount(key);
            return Reply::error(reply::SCORE_NAN);
        }
        if (flags.lt && new >= current) || (flags.gt && new <= current) {
            continue;
        }
        last = Some(new);
        #[allow(clippy::float_cmp)] // Redis compares scores exactly.
        if new != current {
            zset.insert(member, new);
            updated += 1;
        }
    }
    keyspace.reaccount(key);
    if flags.incr {
        last.map_or(Reply::Null, Reply::Double)
    } else {
        Reply::Integer(if flags.ch { added + updated } else { added })
    }
}

fn range(
    zset: &ZSetValue,
    by: &ZRangeBy,
    rev: bool,
    limit: Option<(i64, i64)>,
    with_scores: bool,
) -> Reply {
    let (offset, take) = match limit {
        None => (0, usize::MAX),
        Some((offset, _)) if offset < 0 => (0, 0),
        Some((offset, count)) => (
            usize::try_from(offset).unwrap_or(usize::MAX),
            usize::try_from(count).unwrap_or(usize::MAX),
        ),
    };
    let selected: Vec<(&[u8], f64)> = match by {
        ZRangeBy::Index { start, stop } => match clamp_range(*start, *stop, zset.len()) {
            None => Vec::new(),
            Some((start, stop)) => {
                let take = stop - start + 1;
                if rev {
                    zset.iter().rev().skip(start).take(take).collect()
                } else {
                    zset.iter().skip(start).take(take).collect()
                }
            }
        },
        ZRangeBy::Score { min, max } => {
            let (min, max) = (*min, *max);
            let low = move |&(_, s): &(&[u8], f64)| above_min(s, min);
            let high = move |&(_, s): &(&[u8], f64)| below_max(s, max);
            bounded(zset, rev, low, high).skip(offset).take(take).collect()
        }
        ZRangeBy::Lex { min, max } => {
            let low = |&(m, _): &(&[u8], f64)| lex_above_min(m, min);
            let high = |&(m, _): &(&[u8], f64)| lex_below_max(m, max);
            bounded(zset, rev, low, high).skip(offset).take(take).collect()
        }
    };
    if with_scores {
        Reply::ScoredMembers(selected.into_iter().map(|(m, s)| (m.to_vec(), s)).collect())
    } else {
        Reply::bulks(selected.into_iter().map(|(member, _)| member))
    }
}

/// `ZPOPMIN`/`ZPOPMAX`: without a count a flat `[member, score]`, with one scored pairs.
fn zpop(keyspace: &mut Keyspace, now: u64, key: &[u8], max: bool, wanted: Option<u64>) -> Reply {
    let zset = match zset_mut(keyspace, key, now, false) {
        Ok(Some(zset)) => zset,
        Ok(None) => return Reply::Array(Vec::new()),
        Err(error) => return error,
    };
    let mut popped = Vec::new();
    while (popped.len() as u64) < wanted.unwrap_or(1) {
        let next = if max { zset.iter().next_back() } else { zset.iter().next() };
        let Some((member, score)) = next.map(|(m, s)| (m.to_vec(), s)) else {
            break;
        };
        zset.remove(&member);
        popped.push((member, score));
    }
    keyspace.reaccount(key);
    match wanted {
        Some(_) => Reply::ScoredMembers(popped),
        None => Reply::Array(
            popped.into_iter().flat_map(|(m, s)| [Reply::Bulk(m), Reply::Double(s)]).collect(),
        ),
    }
}

/// Removes the members whose (rank, score) satisfy `remove`; replies with how many.
fn remove_where(
    keyspace: &mut Keyspace,
    now: u64,
    key: &[u8],
    remove: impl Fn(usize, f64) -> bool,
) -> Reply {
    let zset = match zset_mut(keyspace, key, now, false) {
        Ok(Some(zset)) => zset,
        Ok(None) => return Reply::Integer(0),
        Err(error) => return error,
    };
    let doomed: Vec<Vec<u8>> = zset
        .iter()
        .enumerate()
        .filter(|&(rank, (_, score))| remove(rank, score))
        .map(|(_, (member, _))| member.to_vec())
        .collect();
    for member in &doomed {
        zset.remove(member);
    }
    keyspace.reaccount(key);
    Reply::Integer(count(doomed.len()))
}
