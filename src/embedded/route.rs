//! Routing a command to its group(s), and combining the replies of commands split across
//! groups. See the module documentation of `embedded` for the rules.

use super::{Combine, Consistency, Handle, Prepared};
use crate::constants::SCAN_CURSOR_GROUP_SHIFT;
use crate::runtime::node::Op;
use crate::state_machine::{Access, Command, Reply, parse};
use crate::types::GroupId;

/// Redis Cluster's text for keys in different slots; clients know it.
pub const CROSSSLOT: &str = "CROSSSLOT Keys in request don't hash to the same slot";

/// Commands that run on every group and combine.
const EVERY_GROUP: [(&str, Combine); 5] = [
    ("DBSIZE", Combine::Sum),
    ("KEYS", Combine::Concat),
    ("FLUSHALL", Combine::AllOk),
    ("FLUSHDB", Combine::AllOk),
    ("RANDOMKEY", Combine::FirstNonNull),
];

/// Multi-key commands whose keys are independent: (name, first key, keys step, combine).
const SPLITTABLE: [(&str, usize); 6] =
    [("MGET", 1), ("MSET", 2), ("DEL", 1), ("UNLINK", 1), ("EXISTS", 1), ("TOUCH", 1)];

pub(super) fn prepare(
    handle: &Handle,
    args: &[&[u8]],
    consistency: Consistency,
) -> Result<Prepared, Reply> {
    let command = parse(args)?;
    let name = String::from_utf8_lossy(args[0]).to_ascii_uppercase();
    let groups = handle.groups();
    if let Some((_, combine)) = EVERY_GROUP.iter().find(|(every, _)| *every == name) {
        let ops =
            (0..groups).map(|group| op(handle, GroupId(group), command.clone(), args, consistency));
        return Ok(Prepared { ops: ops.collect(), combine: combine.clone() });
    }
    if name == "SCAN" {
        return scan(handle, args, consistency);
    }
    let keys = command.keys();
    let Some(first) = keys.first() else {
        return Ok(single(handle, GroupId(0), command, args, consistency));
    };
    let group = handle.router.group_of(first);
    if keys.iter().all(|key| handle.router.group_of(key) == group) {
        return Ok(single(handle, group, command, args, consistency));
    }
    match SPLITTABLE.iter().find(|(split, _)| *split == name) {
        Some(&(_, step)) => split(handle, &name, args, step, consistency),
        None => Err(Reply::Error(CROSSSLOT.to_string())),
    }
}

pub(super) fn parse_queued(args: &[&[u8]]) -> Result<Command, Reply> {
    let command = parse(args)?;
    if command.keys().is_empty() {
        let name = String::from_utf8_lossy(args[0]).to_ascii_lowercase();
        return Err(Reply::Error(format!(
            "ERR '{name}' spans every group and cannot run inside MULTI in Klein"
        )));
    }
    Ok(command)
}

pub(super) fn prepare_watch(handle: &Handle, keys: &[&[u8]]) -> Prepared {
    // Per group: its keys, and their positions in `keys`.
    let mut parts: Vec<(GroupId, Vec<Vec<u8>>, Vec<usize>)> = Vec::new();
    for (position, key) in keys.iter().enumerate() {
        let group = handle.router.group_of(key);
        let index = parts.iter().position(|(g, _, _)| *g == group).unwrap_or_else(|| {
            parts.push((group, Vec::new(), Vec::new()));
            parts.len() - 1
        });
        parts[index].1.push(key.to_vec());
        parts[index].2.push(position);
    }
    let mut ops = Vec::with_capacity(parts.len());
    let mut positions = Vec::with_capacity(parts.len());
    for (group, keys, part_positions) in parts {
        let command = Command::KeyVersions { keys };
        ops.push(Op::Read {
            group,
            consistency: Consistency::Linearizable,
            command,
            behind_writes: false,
        });
        positions.push(part_positions);
    }
    Prepared { ops, combine: Combine::Scatter { positions } }
}

pub(super) fn prepare_exec(
    handle: &Handle,
    commands: Vec<Command>,
    guards: Vec<(Vec<u8>, u64)>,
    consistency: Consistency,
) -> Result<Option<Prepared>, Reply> {
    let command = if guards.is_empty() {
        Command::Exec { commands }
    } else {
        Command::WatchedExec { guards, commands }
    };
    let keys = command.keys();
    let Some(first) = keys.first() else {
        return Ok(None);
    };
    let group = handle.router.group_of(first);
    if keys.iter().any(|key| handle.router.group_of(key) != group) {
        return Err(Reply::Error(CROSSSLOT.to_string()));
    }
    let op = match command.access() {
        Access::Write => {
            let mut encoded = Vec::new();
            command.encode(&mut encoded);
            Op::Write {
                group,
                client: handle.client,
                sequence: handle.next_sequence(),
                command,
                bytes: encoded.len(),
            }
        }
        Access::Read => Op::Read { group, consistency, command, behind_writes: false },
    };
    Ok(Some(Prepared { ops: vec![op], combine: Combine::Single }))
}

fn single(
    handle: &Handle,
    group: GroupId,
    command: Command,
    args: &[&[u8]],
    consistency: Consistency,
) -> Prepared {
    Prepared { ops: vec![op(handle, group, command, args, consistency)], combine: Combine::Single }
}

fn op(
    handle: &Handle,
    group: GroupId,
    command: Command,
    args: &[&[u8]],
    consistency: Consistency,
) -> Op<Command> {
    match command.access() {
        Access::Write => Op::Write {
            group,
            client: handle.client,
            sequence: handle.next_sequence(),
            command,
            bytes: args.iter().map(|arg| arg.len() + 8).sum(),
        },
        Access::Read => Op::Read { group, consistency, command, behind_writes: false },
    }
}

/// Splits a multi-key command per group, keeping each part's keys in their order.
fn split(
    handle: &Handle,
    name: &str,
    args: &[&[u8]],
    step: usize,
    consistency: Consistency,
) -> Result<Prepared, Reply> {
    // Per group: its argv, and the positions of its keys in the original command.
    type Part<'a> = (GroupId, Vec<&'a [u8]>, Vec<usize>);
    let mut parts: Vec<Part<'_>> = Vec::new();
    for (position, chunk) in args[1..].chunks(step).enumerate() {
        let group = handle.router.group_of(chunk[0]);
        let index = parts.iter().position(|(g, _, _)| *g == group).unwrap_or_else(|| {
            parts.push((group, vec![args[0]], Vec::new()));
            parts.len() - 1
        });
        parts[index].1.extend_from_slice(chunk);
        parts[index].2.push(position);
    }
    let mut ops = Vec::with_capacity(parts.len());
    let mut positions = Vec::with_capacity(parts.len());
    for (group, part_args, part_positions) in parts {
        let command = parse(&part_args)?;
        ops.push(op(handle, group, command, &part_args, consistency));
        positions.push(part_positions);
    }
    let combine = match name {
        "MGET" => Combine::Scatter { positions },
        "MSET" => Combine::AllOk,
        _ => Combine::Sum,
    };
    Ok(Prepared { ops, combine })
}

/// `SCAN cursor ...`: the cursor's high bits are the group, the low bits that group's cursor.
fn scan(handle: &Handle, args: &[&[u8]], consistency: Consistency) -> Result<Prepared, Reply> {
    let invalid = || Reply::Error("ERR invalid cursor".to_string());
    let cursor = args
        .get(1)
        .and_then(|cursor| std::str::from_utf8(cursor).ok())
        .and_then(|cursor| cursor.parse::<u64>().ok())
        .ok_or_else(invalid)?;
    let groups = handle.groups();
    let group = u32::try_from(cursor >> SCAN_CURSOR_GROUP_SHIFT).map_err(|_| invalid())?;
    if group >= groups {
        return Err(invalid());
    }
    let inner = unpack_inner_cursor(cursor & ((1 << SCAN_CURSOR_GROUP_SHIFT) - 1)).to_string();
    let mut part: Vec<&[u8]> = args.to_vec();
    part[1] = inner.as_bytes();
    let command = parse(&part)?;
    let op = op(handle, GroupId(group), command, &part, consistency);
    Ok(Prepared { ops: vec![op], combine: Combine::Scan { group, groups } })
}

/// Low bits of a group's own `SCAN` cursor dropped when packing it under the group index.
const SCAN_INNER_DROPPED_BITS: u32 = 64 - SCAN_CURSOR_GROUP_SHIFT + 1;

/// A group's cursor is a full 64-bit key hash; only `SCAN_CURSOR_GROUP_SHIFT` bits fit below
/// the group index. Keep its high bits plus one (so a nonzero cursor never packs to 0, "done"):
/// resuming from the rounded-down hash may repeat keys, which `SCAN` allows, but never skips.
fn pack_inner_cursor(inner: u64) -> u64 {
    if inner == 0 { 0 } else { (inner >> SCAN_INNER_DROPPED_BITS) + 1 }
}

/// The group's cursor to resume from: at or before the one `pack_inner_cursor` packed.
fn unpack_inner_cursor(packed: u64) -> u64 {
    if packed == 0 { 0 } else { (packed - 1) << SCAN_INNER_DROPPED_BITS }
}

/// One reply from the replies of a prepared command's operations.
pub fn combine(combine: &Combine, replies: Vec<Reply>) -> Reply {
    if let Some(error) = replies.iter().find(|reply| matches!(reply, Reply::Error(_))) {
        return error.clone();
    }
    match combine {
        Combine::Single => replies.into_iter().next().unwrap_or(Reply::Null),
        Combine::Sum => Reply::Integer(
            replies.iter().map(|r| if let Reply::Integer(n) = r { *n } else { 0 }).sum(),
        ),
        Combine::AllOk => Reply::Ok,
        Combine::Concat => Reply::Array(
            replies
                .into_iter()
                .flat_map(|r| if let Reply::Array(v) = r { v } else { vec![] })
                .collect(),
        ),
        Combine::Scatter { positions } => {
            let count = positions.iter().map(Vec::len).sum();
            let mut out = vec![Reply::Null; count];
            for (reply, places) in replies.into_iter().zip(positions) {
                let Reply::Array(items) = reply else { continue };
                for (item, place) in items.into_iter().zip(places) {
                    out[*place] = item;
                }
            }
            Reply::Array(out)
        }
        Combine::FirstNonNull => {
            replies.into_iter().find(|reply| *reply != Reply::Null).unwrap_or(Reply::Null)
        }
        Combine::Scan { group, groups } => scan_reply(replies, *group, *groups),
    }
}

fn scan_reply(replies: Vec<Reply>, group: u32, groups: u32) -> Reply {
    let Some(Reply::Array(mut parts)) = replies.into_iter().next() else {
        return Reply::Error("ERR scan failed".to_string());
    };
    if parts.len() != 2 {
        return Reply::Error("ERR scan failed".to_string());
    }
    let keys = parts.pop().expect("two parts");
    let inner = match parts.pop() {
        Some(Reply::Bulk(cursor)) => String::from_utf8_lossy(&cursor).parse::<u64>().unwrap_or(0),
        _ => 0,
    };
    let inner = pack_inner_cursor(inner);
    let next = if inner != 0 {
        (u64::from(group) << SCAN_CURSOR_GROUP_SHIFT) | inner
    } else if group + 1 < groups {
        u64::from(group + 1) << SCAN_CURSOR_GROUP_SHIFT
    } else {
        0
    };
    Reply::Array(vec![Reply::Bulk(next.to_string().into_bytes()), keys])
}

#[cfg(test)]
mod tests {
    use super::{SCAN_CURSOR_GROUP_SHIFT, pack_inner_cursor, unpack_inner_cursor};

    #[test]
    fn a_packed_scan_cursor_fits_below_the_group_and_resumes_at_or_before_the_hash() {
        for inner in [0, 1, 65_535, 1 << 40, u64::MAX - 1, u64::MAX, 14_696_629_515_781_040_635] {
            let packed = pack_inner_cursor(inner);
            assert!(packed < 1 << SCAN_CURSOR_GROUP_SHIFT, "{inner}");
            assert_eq!(packed == 0, inner == 0, "{inner}");
            assert!(unpack_inner_cursor(packed) <= inner, "{inner}");
        }
    }
}
