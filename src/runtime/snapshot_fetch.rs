//! Snapshot transfer between the same core of two nodes: the fetching side ([`Fetches`]) and
//! the serving side ([`serve`]), as plain state; the shard task (`node.rs`) moves the messages
//! over the peer transport and feeds in the time.
//!
//! ```text
//!   Shard::take_snapshots_wanted (group, from, slot) --> Fetches::want --> Request(offset)
//!   serve(shard.snapshot(group), request) --> Chunk* (a window of SNAPSHOT_CHUNKS_PER_REQUEST)
//!   Fetches::on_chunk: append; window done --> next Request; all bytes --> Install
//!   Install --> Shard::install_snapshot      Abort (refused, timeout) --> Shard::snapshot_aborted
//! ```
//!
//! Streamed: a request asks for a window of chunks, all sent at once, and the next request
//! goes out when the window has arrived, so at most one window per transfer is in flight.
//! Resumable: a fetch that times out keeps the bytes it holds; when the replica asks again for
//! the same group from the same peer, the request continues at that offset, and the first
//! chunk's meta tells whether it is still the same snapshot (otherwise it starts over at 0).
//!
//! Must never: hold more than one transfer per group, or install bytes whose length differs
//! from the total the meta's chunks announced.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::consensus::SnapshotMeta;
use crate::constants::{
    SNAPSHOT_CHUNK_BYTES, SNAPSHOT_CHUNKS_PER_REQUEST, SNAPSHOT_FETCH_TIMEOUT_MILLIS,
};
use crate::types::{GroupId, NodeId, Slot};
use crate::wire::SnapshotMessage;

/// What the shard task does next for a transfer.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Send this message to the peer.
    Send(NodeId, SnapshotMessage),
    /// Every byte arrived: `Shard::install_snapshot`.
    Install(GroupId, SnapshotMeta, Arc<[u8]>),
    /// The transfer failed: `Shard::snapshot_aborted`.
    Abort(GroupId),
}

/// One transfer (running, or stopped and resumable).
#[derive(Debug)]
struct Fetch {
    from: NodeId,
    slot: Slot,
    /// The snapshot's meta and total length, once its first chunk arrived.
    meta: Option<(SnapshotMeta, u64)>,
    bytes: Vec<u8>,
    /// The end of the window asked for.
    window_end: u64,
    last_heard_millis: u64,
    running: bool,
}

/// The transfers of one core. See the module documentation.
#[derive(Debug, Default)]
pub struct Fetches {
    fetches: BTreeMap<GroupId, Fetch>,
}

fn window(offset: u64) -> u64 {
    offset + (SNAPSHOT_CHUNK_BYTES * SNAPSHOT_CHUNKS_PER_REQUEST) as u64
}

impl Fetches {
    /// The replica of `group` wants a snapshot covering `slot` from `from`: start a transfer,
    /// or resume the stopped one of the same peer.
    pub fn want(&mut self, group: GroupId, from: NodeId, slot: Slot, now_millis: u64) -> Outcome {
        let fetch = self.fetches.entry(group).or_insert_with(|| Fetch {
            from,
            slot,
            meta: None,
            bytes: Vec::new(),
            window_end: 0,
            last_heard_millis: now_millis,
            running: false,
        });
        let stale = fetch.from != from || fetch.meta.as_ref().is_some_and(|(m, _)| m.slot < slot);
        if stale {
            fetch.meta = None;
            fetch.bytes = Vec::new();
        }
        fetch.from = from;
        fetch.slot = slot;
        fetch.running = true;
        fetch.last_heard_millis = now_millis;
        let offset = fetch.bytes.len() as u64;
        fetch.window_end = window(offset);
        Outcome::Send(from, SnapshotMessage::Request { group, slot, offset })
    }

    /// A chunk arrived from `from`.
    #[allow(clippy::too_many_arguments)]
    pub fn on_chunk(
        &mut self,
        from: NodeId,
        group: GroupId,
        meta: SnapshotMeta,
        total: u64,
        offset: u64,
        bytes: &[u8],
        now_millis: u64,
    ) -> Option<Outcome> {
        let fetch = self.fetches.get_mut(&group).filter(|f| f.running && f.from == from)?;
        fetch.last_heard_millis = now_millis;
        if fetch.meta.as_ref().is_some_and(|(m, t)| *m != meta || *t != total) {
            // Another snapshot than the bytes held: start over.
            fetch.meta = None;
            fetch.bytes = Vec::new();
        }
        if fetch.meta.is_none() {
            if meta.slot < fetch.slot {
                return Some(self.abort(group));
            }
            fetch.meta = Some((meta, total));
        }
        let held = fetch.bytes.len() as u64;
        if offset != held {
            // A chunk of an earlier window (after a resume) or past a gap: ask from `held`.
            if offset > held {
                fetch.window_end = window(held);
                let request = SnapshotMessage::Request { group, slot: fetch.slot, offset: held };
                return Some(Outcome::Send(from, request));
            }
            return None;
        }
        fetch.bytes.extend_from_slice(bytes);
        let held = fetch.bytes.len() as u64;
        if held >= total {
            let fetch = self.fetches.remove(&group)?;
            let (meta, _) = fetch.meta?;
            return Some(Outcome::Install(group, meta, Arc::from(fetch.bytes)));
        }
        if held >= fetch.window_end {
            fetch.window_end = window(held);
            let request = SnapshotMessage::Request { group, slot: fetch.slot, offset: held };
            return Some(Outcome::Send(from, request));
        }
        None
    }

    /// The peer has no snapshot covering what was asked.
    pub fn on_refused(&mut self, from: NodeId, group: GroupId) -> Option<Outcome> {
        self.fetches.get(&group).filter(|f| f.running && f.from == from)?;
        Some(self.abort(group))
    }

    fn abort(&mut self, group: GroupId) -> Outcome {
        self.fetches.remove(&group);
        Outcome::Abort(group)
    }

    /// Stops the transfers that heard nothing for [`SNAPSHOT_FETCH_TIMEOUT_MILLIS`]; their
    /// bytes stay for a resume.
    pub fn expire(&mut self, now_millis: u64, out: &mut Vec<Outcome>) {
        for (group, fetch) in &mut self.fetches {
            let silent = fetch.last_heard_millis + SNAPSHOT_FETCH_TIMEOUT_MILLIS <= now_millis;
            if fetch.running && silent {
                fetch.running = false;
                out.push(Outcome::Abort(*group));
            }
        }
    }

    /// Bytes held by transfers (for metrics and tests).
    #[must_use]
    pub fn held_bytes(&self) -> usize {
        self.fetches.values().map(|fetch| fetch.bytes.len()).sum()
    }
}

/// The answer of a serving core to a request for `group` at `slot` from `offset`, given its
/// latest durable snapshot of the group: a window of chunks (at least one, so an empty state
/// arrives too), or a refusal when it has none covering `slot`.
#[must_use]
pub fn serve(
    snapshot: Option<(SnapshotMeta, Arc<[u8]>)>,
    group: GroupId,
    slot: Slot,
    offset: u64,
) -> Vec<SnapshotMessage> {
    let Some((meta, state)) = snapshot.filter(|(meta, _)| meta.slot >= slot) else {
        return vec![SnapshotMessage::Refused { group, slot }];
    };
    let total = state.len() as u64;
    let mut start = usize::try_from(offset.min(total)).unwrap_or(state.len());
    let mut chunks = Vec::new();
    while chunks.len() < SNAPSHOT_CHUNKS_PER_REQUEST && (chunks.is_empty() || start < state.len()) {
        let end = (start + SNAPSHOT_CHUNK_BYTES).min(state.len());
        let bytes = state.get(start..end).unwrap_or_default().to_vec();
        let offset = start as u64;
        chunks.push(SnapshotMessage::Chunk { group, meta: meta.clone(), total, offset, bytes });
        start = end;
    }
    chunks
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consensus::Membership;
    use std::collections::BTreeSet;

    fn node(id: u64) -> NodeId {
        NodeId::new(id).unwrap()
    }

    fn meta(slot: u64) -> SnapshotMeta {
        let voters: BTreeSet<NodeId> = (1..=3).map(node).collect();
        let membership = Membership::majority(1, voters, BTreeSet::new()).unwrap();
        SnapshotMeta {
            slot: Slot(slot),
            configurations: vec![(Slot(0), membership)],
            stamp_millis: 9,
        }
    }

    /// Runs one transfer to its end through `serve`, dropping the chunks `lose` says; returns
    /// what was installed.
    fn transfer(fetches: &mut Fetches, state: &Arc<[u8]>, lose: impl Fn(u64) -> bool) -> Arc<[u8]> {
        let group = GroupId(3);
        let mut now = 0;
        let mut next = vec![fetches.want(group, node(2), Slot(10), now)];
        for _ in 0..10_000 {
            now += 1;
            let mut after = Vec::new();
            for outcome in next.drain(..) {
                match outcome {
                    Outcome::Send(_, SnapshotMessage::Request { group, slot, offset }) => {
                        for chunk in serve(Some((meta(12), Arc::clone(state))), group, slot, offset)
                        {
                            let SnapshotMessage::Chunk { meta, total, offset, bytes, .. } = chunk
                            else {
                                panic!("chunks")
                            };
                            if lose(offset) {
                                continue;
                            }
                            after.extend(fetches.on_chunk(
                                node(2),
                                group,
                                meta,
                                total,
                                offset,
                                &bytes,
                                now,
                            ));
                        }
                    }
                    Outcome::Install(_, installed, bytes) => {
                        assert_eq!(installed, meta(12));
                        return bytes;
                    }
                    Outcome::Abort(group) => {
                        after.push(fetches.want(group, node(2), Slot(10), now));
                    }
                    Outcome::Send(..) => panic!("only requests go out"),
                }
            }
            if after.is_empty() {
                // Nothing in flight: time passes until the fetch times out.
                fetches.expire(now + SNAPSHOT_FETCH_TIMEOUT_MILLIS, &mut after);
            }
            next = after;
        }
        panic!("the transfer did not end")
    }

    #[test]
    fn a_snapshot_of_many_windows_arrives_whole_and_an_empty_one_too() {
        let state: Arc<[u8]> =
            (0..SNAPSHOT_CHUNK_BYTES * 9 + 17).map(|i| u8::try_from(i % 251).unwrap()).collect();
        assert_eq!(transfer(&mut Fetches::default(), &state, |_| false), state);
        let empty: Arc<[u8]> = Arc::from(Vec::new());
        assert_eq!(transfer(&mut Fetches::default(), &empty, |_| false), empty);
    }

    #[test]
    fn a_lost_chunk_is_resumed_from_the_bytes_held() {
        let state: Arc<[u8]> =
            (0..SNAPSHOT_CHUNK_BYTES * 6).map(|i| u8::try_from(i % 13).unwrap()).collect();
        let lost = std::cell::Cell::new(false);
        // The chunk at 5 MiB is lost once; the transfer times out and resumes there.
        let lose = |offset: u64| {
            let hit = offset == 5 * SNAPSHOT_CHUNK_BYTES as u64 && !lost.get();
            lost.set(lost.get() || hit);
            hit
        };
        assert_eq!(transfer(&mut Fetches::default(), &state, lose), state);
        assert!(lost.get());
    }

    #[test]
    fn a_peer_without_a_covering_snapshot_refuses_and_the_fetch_aborts() {
        let mut fetches = Fetches::default();
        let _ = fetches.want(GroupId(1), node(2), Slot(50), 0);
        let answer = serve(Some((meta(12), Arc::from(vec![1_u8]))), GroupId(1), Slot(50), 0);
        assert_eq!(answer, vec![SnapshotMessage::Refused { group: GroupId(1), slot: Slot(50) }]);
        assert_eq!(fetches.on_refused(node(2), GroupId(1)), Some(Outcome::Abort(GroupId(1))));
        assert_eq!(fetches.held_bytes(), 0);
    }
}
