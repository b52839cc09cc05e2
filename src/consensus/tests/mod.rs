//! Engine tests of the replica, one file per protocol rule; each feeds inputs and asserts the
//! exact effects. `Cluster` here is a tiny deterministic driver (perfect network, instant
//! disks, crash and restart from what the disk kept) for the tests that need several
//! replicas; the fault-injecting simulator is `klein-sim`.

mod ballots;
mod catch_up;
mod cluster;
mod commit;
mod durability;
mod lease;
mod membership;
mod pipeline;
mod plant;
mod reads;
mod restart;
mod takeover;
mod transfer;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

use super::durable::{DurableState, PersistId, Record, SnapshotMeta};
use super::jitter::Jitter;
use super::message::{Accepted, Message, Promise};
use super::replica::{Effect, Options, ReadId, Replica, Role};
use super::value::{Membership, Value, ValueKind};
use crate::constants::ELECTION_TIMEOUT_TICKS_MAX;
use crate::types::{Ballot, GroupId, NodeId, Slot};

pub(super) fn n(id: u64) -> NodeId {
    NodeId::new(id).unwrap()
}

pub(super) fn b(round: u64, node: u64) -> Ballot {
    Ballot { round, node }
}

pub(super) fn nodes(ids: &[u64]) -> BTreeSet<NodeId> {
    ids.iter().map(|id| n(*id)).collect()
}

pub(super) fn voters(epoch: u64, ids: &[u64]) -> Membership {
    Membership::majority(epoch, nodes(ids), BTreeSet::new()).unwrap()
}

pub(super) fn options(id: u64) -> Options {
    Options {
        node: n(id),
        group: GroupId(1),
        seed: id,
        clock_origin_millis: 0,
        snapshot_interval_slots: crate::constants::SNAPSHOT_INTERVAL_SLOTS,
    }
}

pub(super) fn replica(id: u64, ids: &[u64]) -> Replica {
    Replica::new(options(id), voters(1, ids))
}

pub(super) fn batch(bytes: &[u8], stamp_millis: u64) -> Value {
    Value { stamp_millis, kind: ValueKind::Batch(Arc::from(bytes)) }
}

pub(super) fn noop(stamp_millis: u64) -> Value {
    Value { stamp_millis, kind: ValueKind::Noop }
}

pub(super) fn bytes(text: &str) -> Arc<[u8]> {
    Arc::from(text.as_bytes())
}

/// The ids of the `Persist` effects, in order.
pub(super) fn persist_ids(effects: &[Effect]) -> Vec<PersistId> {
    effects
        .iter()
        .filter_map(|effect| match effect {
            Effect::Persist { id, .. } => Some(*id),
            _ => None,
        })
        .collect()
}

/// The `Send` effects as `(to, message)`.
pub(super) fn sends(effects: &[Effect]) -> Vec<(NodeId, Message)> {
    effects
        .iter()
        .filter_map(|effect| match effect {
            Effect::Send { to, message } => Some((*to, message.clone())),
            _ => None,
        })
        .collect()
}

/// The `Apply` effects as `(slot, value)`.
pub(super) fn applies(effects: &[Effect]) -> Vec<(Slot, Value)> {
    effects
        .iter()
        .filter_map(|effect| match effect {
            Effect::Apply { slot, value } => Some((*slot, value.clone())),
            _ => None,
        })
        .collect()
}

/// Completes every persist in `effects`, returning the effects that follow.
pub(super) fn complete_all(replica: &mut Replica, effects: &[Effect]) -> Vec<Effect> {
    let mut out = Vec::new();
    for id in persist_ids(effects) {
        replica.on_persisted(id, &mut out);
        replica.check_invariants();
    }
    out
}

/// Ticks `replica` until it becomes a candidate; returns that tick's effects.
pub(super) fn tick_until_candidate(replica: &mut Replica) -> Vec<Effect> {
    for _ in 0..=ELECTION_TIMEOUT_TICKS_MAX {
        let mut effects = Vec::new();
        replica.on_tick(&mut effects);
        replica.check_invariants();
        if replica.role() == Role::Candidate {
            return effects;
        }
    }
    panic!("no candidacy within the longest election timeout");
}

/// Makes `replica` (whose log is empty) the serving master with the help of `peer`'s promise
/// and acceptance; returns its ballot. Every message it sent is dropped.
pub(super) fn elect(replica: &mut Replica, peer: NodeId) -> Ballot {
    let effects = tick_until_candidate(replica);
    let ballot = replica.promised();
    let mut out = complete_all(replica, &effects);
    let promise = Promise::received((ballot, Slot(0)), (vec![], false), None);
    replica.on_message(peer, Message::Promise(promise), &mut out);
    assert_eq!(replica.role(), Role::Master);
    let claim = replica.frontier();
    let mut more = complete_all(replica, &out);
    let accepted = Accepted::received(ballot, claim);
    replica.on_message(peer, Message::Accepted(accepted), &mut more);
    complete_all(replica, &more);
    replica.check_invariants();
    assert!(replica.is_serving());
    ballot
}

/// What one node's disk kept.
#[derive(Clone, Debug, Default)]
pub(super) struct Disk {
    pub(super) promised: Option<Ballot>,
    pub(super) records: BTreeMap<Slot, Record>,
}

impl Disk {
    fn write(&mut self, promised: Option<Ballot>, records: &[Record], chosen: &[Slot]) {
        if let Some(ballot) = promised {
            self.promised = Some(self.promised.unwrap_or(Ballot::ZERO).max(ballot));
        }
        for record in records {
            self.records.insert(record.slot, record.clone());
        }
        for slot in chosen {
            if let Some(record) = self.records.get_mut(slot) {
                record.chosen = true;
            }
        }
    }

    pub(super) fn durable_state(&self, membership: &Membership) -> DurableState {
        DurableState {
            promised: self.promised.unwrap_or(Ballot::ZERO),
            snapshot: SnapshotMeta {
                slot: Slot(0),
                configurations: vec![(Slot(0), membership.clone())],
                stamp_millis: 0,
            },
            records: self.records.values().cloned().collect(),
        }
    }
}

/// A persist issued and not completed yet.
struct PendingPersist {
    node: NodeId,
    id: PersistId,
    promised: Option<Ballot>,
    records: Vec<Record>,
    chosen: Vec<Slot>,
}

/// A deterministic cluster: perfect network (FIFO), disks that complete in issue order, and
/// crash/restart. Every replica's invariants are checked after every event.
pub(super) struct Cluster {
    pub(super) membership: Membership,
    pub(super) replicas: BTreeMap<NodeId, Replica>,
    pub(super) disks: BTreeMap<NodeId, Disk>,
    pub(super) down: BTreeSet<NodeId>,
    pub(super) applied: BTreeMap<NodeId, Vec<(Slot, Value)>>,
    pub(super) reads_ready: Vec<(NodeId, ReadId)>,
    network: VecDeque<(NodeId, NodeId, Message)>,
    persists: VecDeque<PendingPersist>,
    /// Messages between these pairs (either direction) are dropped.
    pub(super) cut: BTreeSet<(NodeId, NodeId)>,
    /// Messages dropped at random, in parts per thousand, drawn from `loss`.
    pub(super) loss_per_mille: u64,
    loss: Jitter,
}

impl Cluster {
    /// Drops `per_mille` of the messages, chosen from `seed`.
    pub(super) fn lossy(&mut self, seed: u64, per_mille: u64) {
        self.loss = Jitter::new(seed);
        self.loss_per_mille = per_mille;
    }

    pub(super) fn new(ids: &[u64]) -> Cluster {
        Cluster::with_membership(voters(1, ids))
    }

    /// A cluster of every member (voter or learner) of `membership`.
    pub(super) fn with_membership(membership: Membership) -> Cluster {
        let ids: Vec<u64> = membership.members().iter().map(|node| node.get()).collect();
        let ids = &ids[..];
        let replicas =
            ids.iter().map(|id| (n(*id), Replica::new(options(*id), membership.clone()))).collect();
        Cluster {
            membership,
            replicas,
            disks: ids.iter().map(|id| (n(*id), Disk::default())).collect(),
            down: BTreeSet::new(),
            applied: ids.iter().map(|id| (n(*id), Vec::new())).collect(),
            reads_ready: Vec::new(),
            network: VecDeque::new(),
            persists: VecDeque::new(),
            cut: BTreeSet::new(),
            loss_per_mille: 0,
            loss: Jitter::new(0),
        }
    }

    pub(super) fn replica(&self, id: u64) -> &Replica {
        &self.replicas[&n(id)]
    }

    /// Runs `f` on a live replica and handles its effects.
    pub(super) fn with<T>(
        &mut self,
        id: u64,
        f: impl FnOnce(&mut Replica, &mut Vec<Effect>) -> T,
    ) -> T {
        let mut effects = Vec::new();
        let replica = self.replicas.get_mut(&n(id)).unwrap();
        let result = f(replica, &mut effects);
        replica.check_invariants();
        self.handle(n(id), effects);
        result
    }

    fn handle(&mut self, node: NodeId, effects: Vec<Effect>) {
        for effect in effects {
            match effect {
                Effect::Send { to, message } => self.network.push_back((node, to, message)),
                Effect::Persist { id, promised, records, chosen } => {
                    self.persists.push_back(PendingPersist { node, id, promised, records, chosen });
                }
                Effect::Apply { slot, value } => {
                    let log = self.applied.get_mut(&node).unwrap();
                    if let Some((last, _)) = log.last() {
                        assert_eq!(last.0 + 1, slot.0, "{node} applies in order");
                    }
                    log.push((slot, value));
                }
                Effect::ReadReady { id } => self.reads_ready.push((node, id)),
                Effect::ReadAborted { .. } | Effect::TakeSnapshot { .. } => {}
                Effect::SnapshotWanted { .. } => panic!("no snapshots in this cluster"),
            }
        }
    }

    fn is_cut(&self, from: NodeId, to: NodeId) -> bool {
        self.cut.contains(&(from, to)) || self.cut.contains(&(to, from))
    }

    /// Delivers messages and completes persists until nothing is left.
    pub(super) fn settle(&mut self) {
        for _ in 0..100_000 {
            if let Some(persist) = self.persists.pop_front() {
                let disk = self.disks.get_mut(&persist.node).unwrap();
                disk.write(persist.promised, &persist.records, &persist.chosen);
                let id = persist.id;
                self.with(persist.node.get(), |replica, effects| replica.on_persisted(id, effects));
            } else if let Some((from, to, message)) = self.network.pop_front() {
                if self.down.contains(&to) || self.is_cut(from, to) {
                    continue;
                }
                if self.loss_per_mille > 0 && self.loss.between(0, 1000) < self.loss_per_mille {
                    continue;
                }
                self.with(to.get(), |replica, effects| replica.on_message(from, message, effects));
            } else {
                return;
            }
        }
        panic!("the cluster did not settle");
    }

    /// `count` ticks of every live replica, settling after each.
    pub(super) fn run(&mut self, count: u64) {
        for _ in 0..count {
            let live: Vec<NodeId> =
                self.replicas.keys().filter(|node| !self.down.contains(node)).copied().collect();
            for node in live {
                self.with(node.get(), Replica::on_tick);
            }
            self.settle();
        }
    }

    /// The live serving master, if exactly one.
    pub(super) fn master(&self) -> Option<u64> {
        let serving: Vec<u64> = self
            .replicas
            .iter()
            .filter(|(node, replica)| !self.down.contains(node) && replica.is_serving())
            .map(|(node, _)| node.get())
            .collect();
        (serving.len() == 1).then(|| serving[0])
    }

    /// Ticks until a master serves (at most `limit` ticks).
    pub(super) fn run_until_master(&mut self, limit: u64) -> u64 {
        for _ in 0..limit {
            if let Some(master) = self.master() {
                return master;
            }
            self.run(1);
        }
        panic!("no master within {limit} ticks");
    }

    /// Crashes `id`: its unfinished persists are lost, messages to it dropped.
    pub(super) fn crash(&mut self, id: u64) {
        self.down.insert(n(id));
        self.persists.retain(|persist| persist.node != n(id));
    }

    /// Restarts `id` from what its disk kept.
    pub(super) fn restart(&mut self, id: u64) {
        let durable = self.disks[&n(id)].durable_state(&self.membership);
        self.replicas.insert(n(id), Replica::restart(options(id), durable));
        self.applied.insert(n(id), Vec::new());
        self.down.remove(&n(id));
    }

    /// The batches applied by `id`, in slot order, as strings.
    pub(super) fn batches(&self, id: u64) -> Vec<String> {
        self.applied[&n(id)]
            .iter()
            .filter_map(|(_, value)| match &value.kind {
                ValueKind::Batch(batch) => Some(String::from_utf8_lossy(batch).into_owned()),
                _ => None,
            })
            .collect()
    }
}
