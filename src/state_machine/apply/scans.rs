//! `HSCAN`, `SSCAN`, `ZSCAN`: the whole collection in one reply, cursor 0.
//!
//! Redis answers the same way for collections in their small encodings; returning everything
//! at once satisfies SCAN's guarantees trivially (every element present for the whole scan is
//! returned, once) at the cost of one reply as large as `HGETALL`'s.

use super::{hash, set, zset};
use crate::state_machine::command::{CollectionKind, Command};
use crate::state_machine::glob;
use crate::state_machine::keyspace::Keyspace;
use crate::state_machine::reply::Reply;
use crate::state_machine::value::{HashValue, SetValue, ZSetValue};

pub(super) fn execute(keyspace: &Keyspace, now: u64, command: &Command) -> Option<Reply> {
    let Command::ScanCollection { key, kind, cursor: _, pattern, no_values } = command else {
        return None;
    };
    let wanted = |item: &[u8]| pattern.as_deref().is_none_or(|p| glob::matches(p, item));
    let mut items = Vec::new();
    let found = match kind {
        CollectionKind::Hash => hash(keyspace, key, now).map(|hash| {
            for (field, value) in hash.into_iter().flat_map(HashValue::iter) {
                if wanted(field) {
                    items.push(Reply::bulk(field));
                    if !no_values {
                        items.push(Reply::bulk(value));
                    }
                }
            }
        }),
        CollectionKind::Set => set(keyspace, key, now).map(|set| {
            let members = set.into_iter().flat_map(SetValue::iter);
            items.extend(members.filter(|m| wanted(m)).map(|m| Reply::bulk(m)));
        }),
        CollectionKind::ZSet => zset(keyspace, key, now).map(|zset| {
            for (member, score) in zset.into_iter().flat_map(ZSetValue::iter) {
                if wanted(member) {
                    items.push(Reply::bulk(member));
                    items.push(Reply::Bulk(score_text(score)));
                }
            }
        }),
    };
    Some(match found {
        Ok(()) => Reply::Array(vec![Reply::bulk(b"0"), Reply::Array(items)]),
        Err(error) => error,
    })
}

/// A score as `ZSCAN` sends it (a bulk string in both protocols): the shortest round-trip
/// text, `inf`, `-inf`.
fn score_text(score: f64) -> Vec<u8> {
    if score.is_infinite() {
        return if score > 0.0 { b"inf".to_vec() } else { b"-inf".to_vec() };
    }
    format!("{score}").into_bytes()
}
