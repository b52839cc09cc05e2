//! [`Shard`]: everything one core does for the Paxos groups it owns, as pure code.
//!
//! ```text
//!   Request (write / read) --> per-group queue (bounded) --flush--> propose(batch) --> slot
//!   tick / message / disk completion --> Replica --> effects:
//!       Send       --> outbox (this node's own messages loop back at once)
//!       Persist    --> Storage --> log requests (pump) --> completions --> on_persisted
//!       Apply      --> Machine::apply_batch --> replies to the requests of that batch
//!       ReadReady  --> Machine::read --> reply
//!       TakeSnapshot --> Machine::snapshot --> Storage
//! ```
//!
//! A shard opens its core's log ([`Shard::open`]: the production `Opener`), recovers every
//! group (`Storage::recover`), restores each state machine from its snapshot and replays the
//! chosen prefix, then serves. The executor around it (`runtime/node.rs`) only moves bytes:
//! it feeds requests, ticks, peer messages and disk completions in, and carries disk
//! requests, peer messages and replies out.
//!
//! Writes: a request joins its group's queue; [`Shard::flush`] (once per loop turn) proposes
//! each group's queue as one batch (split at [`SHARD_BATCH_BYTES_MAX`]), so one slot carries
//! every write that arrived during a turn and batches grow by themselves when the disk or the
//! quorum is slower (self-clocking). A request is answered when its batch is applied; if
//! another value was chosen in its slot (a new master), it is answered
//! [`ShardError::NotMaster`] and the caller may retry: writes carry (client, sequence), which
//! the state machine deduplicates, so a retry never applies twice.
//!
//! Followers: a write or a linearizable/lease read at a replica that follows another master
//! is forwarded to it (`host/forward.rs`): the same batching per turn, answered with the
//! master's replies, resent with the same (client, sequence) when unanswered, so a write
//! sent to any node works and applies once.
//!
//! Snapshots: each group keeps its latest durable snapshot (taken, installed from a peer, or
//! recovered at start-up) in memory as `(SnapshotMeta, Arc<[u8]>)` ([`Shard::snapshot`]), so
//! the runtime can stream it to a lagging peer without reading it back from the log. This
//! doubles a group's memory while a snapshot is held (the state machine plus one encoded copy);
//! acceptable for now because the state machines are memory-bounded (eviction) and a node
//! already needs that headroom to encode a snapshot at all. Reading the snapshot back through
//! the log's chunk reads instead is the open item that removes the copy. A fetched snapshot
//! goes in through [`Shard::install_snapshot`]: the storage writes it, and once it is durable
//! the state machine loads it *before* the replica learns it is installed (the replica then
//! applies what follows it, which must land on the snapshot's state).
//!
//! Every queue is bounded ([`SHARD_QUEUE_ENTRIES_MAX`], [`SHARD_QUEUE_BYTES_MAX`],
//! `READS_PENDING_MAX`): beyond it a request is refused with [`ShardError::Overloaded`] at
//! once, never held without bound.
//!
//! Must never: reply to a write before its batch is applied (so chosen, so durable on a
//! quorum), name glommio, read a clock (time comes in with [`Shard::tick`]), or perform I/O
//! other than through the requests it hands out.

mod forward;

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use forward::remote_master;

use super::storage::{RecoveredGroup, Storage, StorageEvent};
use crate::consensus::{
    Effect, Membership, Message, Options, ProposeError, ReadId, Replica, SnapshotMeta, Value,
    ValueKind,
};
use crate::constants::{
    FORWARD_PAYLOAD_BYTES_MAX, READS_PENDING_MAX, SHARD_BATCH_BYTES_MAX,
    SHARD_FORWARD_GIVE_UP_TICKS, SHARD_FORWARD_RESEND_TICKS, SHARD_FORWARD_RETRY_TICKS,
    SHARD_FORWARDS_IN_FLIGHT_MAX, SHARD_HOUSEKEEPING_KEYS_MAX, SHARD_HOUSEKEEPING_TICKS,
    SHARD_MASTER_PREFERENCE_TICKS, SHARD_MASTER_WAIT_TICKS, SHARD_PEER_LIVE_TICKS,
    SHARD_QUEUE_BYTES_MAX, SHARD_QUEUE_ENTRIES_MAX, SHARD_REMOTE_REQUESTS_MAX,
};
use crate::log::disk::{Completion, FileId, OpId, Request as DiskRequest};
use crate::log::open::{OpenError, Opened, Opener};
use crate::log::superblock::Superblock;
use crate::log::writer::WriterOptions;
use crate::types::{GroupId, NodeId, Slot};
use crate::wire::{ForwardMessage, ForwardRefusal, WireForwardKind};

/// The replicated state machine a shard drives (`state_machine::StateMachine` in the node;
/// small ones in tests). Applying the same batches in the same order must give the same state
/// and the same replies on every replica.
pub trait Machine {
    /// A parsed command.
    type Command;
    /// What a command answers.
    type Reply;
    /// Encodes writes as one batch: (client, sequence, command) each.
    fn encode_batch(&self, entries: &[(u64, u64, &Self::Command)]) -> Vec<u8>;
    /// Decodes a batch [`Machine::encode_batch`] made (one a follower forwarded).
    ///
    /// # Errors
    /// The bytes are not such a batch.
    fn decode_batch(&self, batch: &[u8]) -> Result<Vec<(u64, u64, Self::Command)>, String>;
    /// Encodes replies for the follower that forwarded their requests.
    fn encode_replies(&self, replies: &[Self::Reply]) -> Vec<u8>;
    /// Decodes what [`Machine::encode_replies`] made.
    ///
    /// # Errors
    /// The bytes are not such a list.
    fn decode_replies(&self, bytes: &[u8]) -> Result<Vec<Self::Reply>, String>;
    /// Applies a chosen batch at the master's stamp; one reply per entry, in order.
    ///
    /// # Errors
    /// The batch does not decode (a bug or a damaged log: the node must stop).
    fn apply_batch(
        &mut self,
        stamp_millis: u64,
        batch: &[u8],
        replies: &mut Vec<Self::Reply>,
    ) -> Result<(), String>;
    /// Serves a read-only command at `now_millis`.
    fn read(&mut self, now_millis: u64, command: &Self::Command) -> Self::Reply;
    /// Writes the master should propose now: deletes of expired keys and eviction victims.
    fn housekeeping(&self, now_millis: u64, max: usize) -> Vec<Self::Command>;
    /// Keys, keys with a deadline, and memory in bytes (for `INFO` and metrics); zeros for a
    /// machine that does not count them.
    fn sizes(&self) -> (u64, u64, u64) {
        (0, 0, 0)
    }
    /// The whole state, as bytes a [`Machine::restore`] loads.
    fn snapshot(&self) -> Vec<u8>;
    /// Replaces the state with a snapshot's.
    ///
    /// # Errors
    /// The bytes do not decode.
    fn restore(&mut self, bytes: &[u8]) -> Result<(), String>;
}

/// Names one request; chosen by the host, handed back with the reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Token(pub u64);

/// The token of the writes a master proposes for itself (housekeeping): never answered.
const HOUSEKEEPING: Token = Token(u64::MAX);

/// Tokens from here up (below [`HOUSEKEEPING`]) name the entries of requests a follower
/// forwarded: their replies go back to it, not to the host. Hosts number their tokens from
/// the bottom and never reach this.
const REMOTE_TOKENS: u64 = 1 << 63;

fn is_remote(token: Token) -> bool {
    token.0 >= REMOTE_TOKENS && token != HOUSEKEEPING
}

/// What a read carried through the log counts against the byte bounds.
const READ_IN_BATCH_BYTES: usize = 64;

/// How a read is served.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Consistency {
    /// At the master, after it confirms it still is one (`Replica::read`: under a valid lease
    /// locally, else after a heartbeat round), with everything chosen before the read applied.
    #[default]
    Linearizable,
    /// At the master under its lease, locally; the same path as `Linearizable` while the lease
    /// holds (a read-index round otherwise).
    Lease,
    /// From this replica's state as it is, master or not: may be behind.
    Stale,
}

/// Why a request was not served.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ShardError {
    /// This replica is not the group's serving master; `master` is the one it follows.
    #[error("not the master of the group; master: {master:?}")]
    NotMaster {
        /// The master this replica knows of.
        master: Option<NodeId>,
    },
    /// A queue is full: retry later.
    #[error("the group's queue is full")]
    Overloaded,
    /// The group is not hosted on this core, or the shard is not serving yet.
    #[error("the group is not available here: {0}")]
    Unavailable(String),
}

/// One request into the shard.
#[derive(Debug)]
pub enum Request<C> {
    /// A command through the log.
    Write {
        /// The group.
        group: GroupId,
        /// The client, for deduplication (0: none).
        client: u64,
        /// The client's sequence number of this command (0: none).
        sequence: u64,
        /// The command.
        command: C,
        /// Handed back with the reply.
        token: Token,
        /// The command's encoded size, for the byte bounds.
        bytes: usize,
    },
    /// A read-only command.
    Read {
        /// The group.
        group: GroupId,
        /// How.
        consistency: Consistency,
        /// The command.
        command: C,
        /// Handed back with the reply.
        token: Token,
        /// The caller has writes to this group it has not seen answered (a pipeline `SET k v`,
        /// `GET k`): the read goes through the log, in the next batch after them, so it sees
        /// them. Otherwise it takes the read path of `consistency` at once.
        behind_writes: bool,
    },
}

/// A fatal condition: the process must stop (`EXIT_CODE_STORAGE_FAILURE` for storage).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Fatal {
    /// The log could not be opened.
    #[error("opening the log failed: {0}")]
    Open(String),
    /// The log or the storage failed (a failed write or sync, a full disk).
    #[error("{0}")]
    Storage(String),
    /// Recovery found a group damaged: it must not vote with this log.
    #[error("recovery found damage: {0}")]
    Damage(String),
    /// A chosen batch or a snapshot did not load into the state machine.
    #[error("the state machine refused: {0}")]
    Machine(String),
}

/// How a shard opens.
#[derive(Clone, Debug)]
pub struct ShardOptions {
    /// This node.
    pub node: NodeId,
    /// The groups this core hosts.
    pub groups: Vec<GroupId>,
    /// A new group's first membership.
    pub membership: Membership,
    /// The log's identity (cluster id, node, core) written at format time.
    pub identity: Superblock,
    /// The log writer's sizes.
    pub writer: WriterOptions,
    /// Applied slots between snapshots (`SNAPSHOT_INTERVAL_SLOTS` in production).
    pub snapshot_interval_slots: u64,
    /// Seed of the replicas' election jitter (each group derives its own).
    pub seed: u64,
    /// Masters move to the live voter with the lowest node id (the default); `false` leaves
    /// them where elections put them.
    pub prefer_lowest_master: bool,
}

/// A batch proposed and not yet applied.
#[derive(Debug)]
struct InFlight {
    batch: Arc<[u8]>,
    tokens: Vec<Token>,
}

/// A write waiting in its group's queue.
#[derive(Debug)]
struct Queued<C> {
    client: u64,
    sequence: u64,
    command: C,
    token: Token,
    bytes: usize,
    /// The shard's tick when it arrived.
    since: u64,
}

/// A read waiting for a master.
#[derive(Debug)]
struct Parked<C> {
    consistency: Consistency,
    command: C,
    token: Token,
    since: u64,
}

/// One hosted group.
struct Group<M: Machine> {
    id: GroupId,
    replica: Replica,
    machine: M,
    queue: VecDeque<Queued<M::Command>>,
    queued_bytes: usize,
    in_flight: BTreeMap<Slot, InFlight>,
    reads: BTreeMap<ReadId, (M::Command, Token)>,
    parked: VecDeque<Parked<M::Command>>,
    /// The highest stamp applied: reads never run at an earlier time.
    stamp_millis: u64,
    /// The latest durable snapshot: (meta, state machine bytes), served to lagging peers.
    snapshot: Option<(SnapshotMeta, Arc<[u8]>)>,
    /// A snapshot being written (taken or installed) until the storage reports it durable.
    writing: Option<(SnapshotMeta, Arc<[u8]>)>,
    /// Requests forwarded to the master and not answered yet, by request id.
    forwarded: BTreeMap<u64, Forwarded<M::Command>>,
    /// Reads to forward to the master with this turn's flush.
    forward_reads: Vec<(Consistency, M::Command, Token)>,
}

/// A request a follower forwarded to its group's master.
#[derive(Debug)]
struct Forwarded<C> {
    /// Its entries, kept to run them here if this replica becomes the master.
    entries: ForwardedEntries<C>,
    /// The encoded batch, for resends.
    batch: Vec<u8>,
    /// Where it went last.
    to: NodeId,
    /// The tick it was first sent.
    first: u64,
    /// The tick it is sent again, unless answered first.
    resend: u64,
}

#[derive(Debug)]
enum ForwardedEntries<C> {
    /// Writes (and reads behind them), in queue order.
    Writes(Vec<Queued<C>>),
    /// Reads of one consistency.
    Reads(Consistency, Vec<(C, Token)>),
}

impl<C> ForwardedEntries<C> {
    fn tokens(&self) -> Vec<Token> {
        match self {
            ForwardedEntries::Writes(queued) => queued.iter().map(|q| q.token).collect(),
            ForwardedEntries::Reads(_, reads) => reads.iter().map(|(_, token)| *token).collect(),
        }
    }
}

/// A request a follower forwarded here, while its entries run.
#[derive(Debug)]
struct Remote<R> {
    replies: Vec<Option<R>>,
    missing: usize,
    failed: Option<ShardError>,
}

impl<M: Machine> Group<M> {
    /// Whether requests should wait here for a master: none is known (an election runs), or
    /// this replica is the one becoming master.
    fn awaits_master(&self) -> bool {
        !self.replica.is_serving()
            && self.replica.master().is_none_or(|master| master == self.replica.node())
    }
}

/// Where the shard is in its life. (One shard per core, so the variants' sizes do not matter.)
#[allow(clippy::large_enum_variant)]
enum Phase<M: Machine> {
    Opening(Opener),
    Recovering(Storage),
    Serving(Storage, Vec<Group<M>>),
    /// Only while one phase's state moves into the next.
    Moving,
}

/// Counters for monitoring (instances, batching, reads).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ShardStats {
    /// Batches proposed by this shard as master.
    pub batches_proposed: u64,
    /// Writes carried by those batches.
    pub writes_proposed: u64,
    /// Slots applied (all kinds).
    pub slots_applied: u64,
    /// Reads served.
    pub reads_served: u64,
    /// Requests refused as overloaded.
    pub overloaded: u64,
    /// Writes answered `NotMaster` because another value took their slot.
    pub writes_lost_slot: u64,
    /// Requests (batches) this shard forwarded to a master, resends included.
    pub forwards_sent: u64,
    /// Forwarded requests this shard received as master.
    pub forwards_received: u64,
}

/// One core's groups. See the module documentation.
pub struct Shard<M: Machine> {
    options: ShardOptions,
    phase: Phase<M>,
    /// A fresh state machine for each group (cloned from this factory's output).
    make_machine: Box<dyn Fn() -> M>,
    now_millis: u64,
    ticks: u64,
    next_read: u64,
    outbox: Vec<(NodeId, GroupId, Message)>,
    replies: Vec<(Token, Result<M::Reply, ShardError>)>,
    wanted: Vec<(GroupId, NodeId, Slot)>,
    /// The tick each peer was last heard from (any group).
    last_heard: BTreeMap<NodeId, u64>,
    /// Forwarding messages to send: (to, message).
    forwards: Vec<(NodeId, ForwardMessage)>,
    /// The next id of a request this shard forwards.
    next_forward: u64,
    /// The next token of an entry a follower forwarded here.
    next_remote: u64,
    /// Entries of forwarded requests running here: token -> (request, position).
    remote_tokens: BTreeMap<Token, ((NodeId, GroupId, u64), usize)>,
    /// Forwarded requests running here, by (follower, group, its request id).
    remote: BTreeMap<(NodeId, GroupId, u64), Remote<M::Reply>>,
    /// The stats so far.
    pub stats: ShardStats,
}

impl<M: Machine> Shard<M> {
    /// A shard opening the log whose files are `listing`, at `now_millis`.
    #[must_use]
    pub fn open(
        options: ShardOptions,
        listing: Vec<(FileId, u64)>,
        now_millis: u64,
        make_machine: Box<dyn Fn() -> M>,
    ) -> Shard<M> {
        let opener = Opener::new(options.writer, options.identity.clone(), listing);
        Shard {
            options,
            phase: Phase::Opening(opener),
            make_machine,
            now_millis,
            ticks: 0,
            next_read: 0,
            outbox: Vec::new(),
            replies: Vec::new(),
            wanted: Vec::new(),
            last_heard: BTreeMap::new(),
            forwards: Vec::new(),
            next_forward: 0,
            next_remote: REMOTE_TOKENS,
            remote_tokens: BTreeMap::new(),
            remote: BTreeMap::new(),
            stats: ShardStats::default(),
        }
    }

    /// Whether every group is recovered and serving.
    #[must_use]
    pub fn is_serving(&self) -> bool {
        matches!(self.phase, Phase::Serving(..))
    }

    /// The groups' replicas, once serving (for status and tests).
    pub fn replicas(&self) -> impl Iterator<Item = &Replica> {
        let groups: &[Group<M>] = match &self.phase {
            Phase::Serving(_, groups) => groups,
            _ => &[],
        };
        groups.iter().map(|group| &group.replica)
    }

    /// Every group's replication state (for `INFO`, `KLEIN STATUS` and metrics).
    #[must_use]
    pub fn group_status(&self) -> Vec<crate::runtime::status::GroupStatus> {
        let Phase::Serving(_, groups) = &self.phase else { return Vec::new() };
        groups
            .iter()
            .map(|group| {
                let replica = &group.replica;
                let configuration = replica.configuration(replica.frontier());
                let promised = replica.promised();
                let peers_applied = configuration
                    .members()
                    .into_iter()
                    .filter(|peer| *peer != self.options.node)
                    .filter_map(|peer| replica.peer_applied(peer).map(|slot| (peer, slot.0)))
                    .collect();
                crate::runtime::status::GroupStatus {
                    group: group.id,
                    role: replica.role(),
                    serving: replica.is_serving(),
                    master: replica.master(),
                    ballot: (promised.round, promised.node),
                    chosen: replica.frontier().0,
                    applied: replica.applied().0,
                    truncation: replica.truncation().0,
                    voters: configuration.voters().iter().copied().collect(),
                    learners: configuration.learners().iter().copied().collect(),
                    peers_applied,
                    queued: group.queue.len(),
                    in_flight: group.in_flight.len(),
                    forwarded: group.forwarded.len(),
                    sizes: group.machine.sizes(),
                }
            })
            .collect()
    }

    /// The state machine of `group`, once serving.
    #[must_use]
    pub fn machine(&self, group: GroupId) -> Option<&M> {
        match &self.phase {
            Phase::Serving(_, groups) => groups.iter().find(|g| g.id == group).map(|g| &g.machine),
            _ => None,
        }
    }

    /// Disk requests to submit now.
    ///
    /// # Errors
    /// [`Fatal`]: the process must stop.
    pub fn pump(&mut self) -> Result<Vec<(OpId, DiskRequest)>, Fatal> {
        loop {
            match &mut self.phase {
                Phase::Opening(opener) => match opener.poll_ready() {
                    Some(result) => self.opened(result)?,
                    None => return Ok(opener.pump()),
                },
                Phase::Recovering(storage) => {
                    if let Some(groups) = storage.take_recovered() {
                        self.recovered(groups)?;
                        continue;
                    }
                    return Ok(storage.pump());
                }
                Phase::Serving(storage, _) => return Ok(storage.pump()),
                Phase::Moving => unreachable!("transient"),
            }
        }
    }

    /// A disk request completed.
    ///
    /// # Errors
    /// [`Fatal`]: the process must stop.
    pub fn on_completion(&mut self, completion: &Completion) -> Result<(), Fatal> {
        match &mut self.phase {
            Phase::Opening(opener) => {
                if let Some(result) = opener.on_completion(completion) {
                    self.opened(result)?;
                }
                Ok(())
            }
            Phase::Recovering(storage) => {
                storage.on_completion(completion).map_err(|e| Fatal::Storage(e.to_string()))
            }
            Phase::Serving(storage, _) => {
                storage.on_completion(completion).map_err(|e| Fatal::Storage(e.to_string()))?;
                self.storage_events()
            }
            Phase::Moving => unreachable!("transient"),
        }
    }

    fn opened(&mut self, result: Result<Opened, OpenError>) -> Result<(), Fatal> {
        let opened = result.map_err(|error| Fatal::Open(error.to_string()))?;
        let initial = SnapshotMeta {
            slot: Slot(0),
            configurations: vec![(Slot(0), self.options.membership.clone())],
            stamp_millis: 0,
        };
        self.phase = Phase::Recovering(Storage::recover(opened, &self.options.groups, &initial));
        Ok(())
    }

    /// Every group is read back: restore the machines, restart the replicas, replay.
    fn recovered(
        &mut self,
        recovered: BTreeMap<GroupId, Result<RecoveredGroup, String>>,
    ) -> Result<(), Fatal> {
        let Phase::Recovering(storage) = std::mem::replace(&mut self.phase, Phase::Moving) else {
            unreachable!("recovered only while recovering");
        };
        let mut groups = Vec::new();
        for (id, result) in recovered {
            let recovered = result.map_err(|damage| Fatal::Damage(format!("{id}: {damage}")))?;
            let mut machine = (self.make_machine)();
            if let Some(state) = &recovered.state {
                machine
                    .restore(state.as_slice())
                    .map_err(|e| Fatal::Machine(format!("{id}: {e}")))?;
            }
            let stamp_millis = recovered.durable.snapshot.stamp_millis;
            let snapshot = recovered
                .state
                .map(|state| (recovered.durable.snapshot.clone(), Arc::<[u8]>::from(state)));
            let options = Options {
                node: self.options.node,
                group: id,
                seed: self.options.seed ^ u64::from(id.0).wrapping_mul(0x9e37_79b9_7f4a_7c15),
                clock_origin_millis: self.now_millis,
                snapshot_interval_slots: self.options.snapshot_interval_slots,
            };
            let replica = Replica::restart(options, recovered.durable);
            groups.push(Group {
                id,
                replica,
                machine,
                queue: VecDeque::new(),
                queued_bytes: 0,
                in_flight: BTreeMap::new(),
                reads: BTreeMap::new(),
                parked: VecDeque::new(),
                stamp_millis,
                snapshot,
                writing: None,
                forwarded: BTreeMap::new(),
                forward_reads: Vec::new(),
            });
        }
        self.phase = Phase::Serving(storage, groups);
        Ok(())
    }

    /// One tick of `TICK_MILLIS` passed; `now_millis` is the wall clock (for read times).
    ///
    /// # Errors
    /// [`Fatal`]: the process must stop.
    pub fn tick(&mut self, now_millis: u64) -> Result<(), Fatal> {
        self.now_millis = self.now_millis.max(now_millis);
        self.ticks += 1;
        let housekeeping = self.ticks.is_multiple_of(SHARD_HOUSEKEEPING_TICKS);
        let prefer = self.options.prefer_lowest_master
            && self.ticks.is_multiple_of(SHARD_MASTER_PREFERENCE_TICKS);
        let count = self.group_count();
        for index in 0..count {
            self.input(index, Replica::on_tick)?;
            if housekeeping {
                self.housekeeping(index);
            }
            if prefer {
                self.prefer_lowest_master(index)?;
            }
            self.expire_waits(index);
            self.release_parked(index)?;
            self.forward_timers(index);
        }
        Ok(())
    }

    /// A peer's message for `group`.
    ///
    /// # Errors
    /// [`Fatal`]: the process must stop.
    pub fn on_message(
        &mut self,
        from: NodeId,
        group: GroupId,
        message: Message,
    ) -> Result<(), Fatal> {
        self.last_heard.insert(from, self.ticks);
        let Some(index) = self.group_index(group) else { return Ok(()) };
        self.input(index, |replica, effects| replica.on_message(from, message, effects))
    }

    /// A request from a client; its reply comes out of [`Shard::take_replies`].
    pub fn submit(&mut self, request: Request<M::Command>) {
        match request {
            Request::Write { group, client, sequence, command, token, bytes } => {
                let since = self.ticks;
                let queued = Queued { client, sequence, command, token, bytes, since };
                if let Err(error) = self.enqueue(group, queued) {
                    self.replies.push((token, Err(error)));
                }
            }
            Request::Read { group, command, token, behind_writes: true, .. } => {
                let since = self.ticks;
                let bytes = READ_IN_BATCH_BYTES;
                let queued = Queued { client: 0, sequence: 0, command, token, bytes, since };
                if let Err(error) = self.enqueue(group, queued) {
                    self.replies.push((token, Err(error)));
                }
            }
            Request::Read { group, consistency, command, token, behind_writes: false } => {
                if let Err(error) = self.read(group, consistency, command, token) {
                    self.replies.push((token, Err(error)));
                }
            }
        }
    }

    fn enqueue(&mut self, group: GroupId, queued: Queued<M::Command>) -> Result<(), ShardError> {
        let index = self.group_index(group).ok_or_else(|| self.unavailable(group))?;
        let Phase::Serving(_, groups) = &mut self.phase else { unreachable!("indexed") };
        let target = &mut groups[index];
        let full = target.queue.len() >= SHARD_QUEUE_ENTRIES_MAX
            || (target.queued_bytes + queued.bytes > SHARD_QUEUE_BYTES_MAX
                && !target.queue.is_empty());
        if full {
            self.stats.overloaded += 1;
            return Err(ShardError::Overloaded);
        }
        target.queued_bytes += queued.bytes;
        target.queue.push_back(queued);
        Ok(())
    }

    fn read(
        &mut self,
        group: GroupId,
        consistency: Consistency,
        command: M::Command,
        token: Token,
    ) -> Result<(), ShardError> {
        let index = self.group_index(group).ok_or_else(|| self.unavailable(group))?;
        let since = self.ticks;
        let Phase::Serving(_, groups) = &mut self.phase else { unreachable!("indexed") };
        let target = &mut groups[index];
        if consistency != Consistency::Stale && target.awaits_master() {
            if target.parked.len() >= READS_PENDING_MAX {
                self.stats.overloaded += 1;
                return Err(ShardError::Overloaded);
            }
            target.parked.push_back(Parked { consistency, command, token, since });
            return Ok(());
        }
        self.serve_read(index, consistency, command, token)
    }

    /// Runs a read whose earlier writes are resolved.
    fn serve_read(
        &mut self,
        index: usize,
        consistency: Consistency,
        command: M::Command,
        token: Token,
    ) -> Result<(), ShardError> {
        let now = self.now_millis;
        let Phase::Serving(_, groups) = &mut self.phase else { unreachable!("indexed") };
        let target = &mut groups[index];
        if consistency == Consistency::Stale {
            let reply = target.machine.read(now.max(target.stamp_millis), &command);
            self.stats.reads_served += 1;
            self.replies.push((token, Ok(reply)));
            return Ok(());
        }
        if let Some(master) = remote_master(target) {
            // A follower: the master serves it (`Shard::flush` forwards this turn's reads).
            if is_remote(token) {
                return Err(ShardError::NotMaster { master: Some(master) });
            }
            if target.forward_reads.len() >= READS_PENDING_MAX {
                self.stats.overloaded += 1;
                return Err(ShardError::Overloaded);
            }
            target.forward_reads.push((consistency, command, token));
            return Ok(());
        }
        if target.reads.len() >= READS_PENDING_MAX {
            self.stats.overloaded += 1;
            return Err(ShardError::Overloaded);
        }
        self.next_read += 1;
        let id = ReadId(self.next_read);
        let mut effects = Vec::new();
        match target.replica.read(id, &mut effects) {
            Ok(_) => {
                target.reads.insert(id, (command, token));
            }
            Err(ProposeError::WindowFull) => {
                self.stats.overloaded += 1;
                return Err(ShardError::Overloaded);
            }
            Err(ProposeError::NotMaster { master }) => {
                return Err(ShardError::NotMaster { master });
            }
            Err(_) => return Err(ShardError::NotMaster { master: None }),
        }
        self.effects(index, effects).map_err(|fatal| ShardError::Unavailable(fatal.to_string()))
    }

    /// Serves the parked reads of group `index` whose writes are resolved, in order, once a
    /// master serves (stale reads need none).
    fn release_parked(&mut self, index: usize) -> Result<(), Fatal> {
        loop {
            let Phase::Serving(_, groups) = &mut self.phase else { return Ok(()) };
            let group = &mut groups[index];
            let ready = !group.parked.is_empty() && !group.awaits_master();
            if !ready {
                return Ok(());
            }
            let parked = group.parked.pop_front().expect("checked");
            if let Err(error) =
                self.serve_read(index, parked.consistency, parked.command, parked.token)
            {
                if let ShardError::Unavailable(fatal) = error {
                    return Err(Fatal::Storage(fatal));
                }
                self.replies.push((parked.token, Err(error)));
            }
        }
    }

    /// Fails writes and reads that waited for a master longer than `SHARD_MASTER_WAIT_TICKS`.
    fn expire_waits(&mut self, index: usize) {
        let ticks = self.ticks;
        let Phase::Serving(_, groups) = &mut self.phase else { return };
        let group = &mut groups[index];
        let expired = |since: u64| since + SHARD_MASTER_WAIT_TICKS <= ticks;
        let error = ShardError::NotMaster { master: group.replica.master() };
        if !group.replica.is_serving() && group.queue.front().is_some_and(|q| expired(q.since)) {
            self.fail_queue(index, &error);
        }
        let Phase::Serving(_, groups) = &mut self.phase else { return };
        let group = &mut groups[index];
        while group.awaits_master() && group.parked.front().is_some_and(|p| expired(p.since)) {
            let parked = group.parked.pop_front().expect("checked");
            self.replies.push((parked.token, Err(error.clone())));
        }
    }

    /// Proposes every group's queued writes (call once per loop turn, after the requests
    /// that arrived in it).
    ///
    /// # Errors
    /// [`Fatal`]: the process must stop.
    pub fn flush(&mut self) -> Result<(), Fatal> {
        for index in 0..self.group_count() {
            self.propose_queue(index)?;
            self.forward_reads(index);
        }
        Ok(())
    }

    fn propose_queue(&mut self, index: usize) -> Result<(), Fatal> {
        loop {
            let Phase::Serving(_, groups) = &mut self.phase else { return Ok(()) };
            let group = &mut groups[index];
            if group.queue.is_empty() || group.awaits_master() {
                return self.release_parked(index);
            }
            if remote_master(group).is_some() {
                self.forward_queue(index);
                return self.release_parked(index);
            }
            let (count, bytes) = batch_prefix(&group.queue);
            let entries: Vec<(u64, u64, &M::Command)> = group
                .queue
                .iter()
                .take(count)
                .map(|queued| (queued.client, queued.sequence, &queued.command))
                .collect();
            let batch: Arc<[u8]> = Arc::from(group.machine.encode_batch(&entries));
            let mut effects = Vec::new();
            match group.replica.propose(Arc::clone(&batch), &mut effects) {
                Ok(slot) => {
                    let tokens: Vec<Token> =
                        group.queue.drain(..count).map(|queued| queued.token).collect();
                    group.queued_bytes -= bytes;
                    self.stats.batches_proposed += 1;
                    self.stats.writes_proposed += tokens.len() as u64;
                    group.in_flight.insert(slot, InFlight { batch, tokens });
                }
                // Back-pressure: the queue waits for the window (bounded by the queue limits).
                Err(ProposeError::WindowFull | ProposeError::MembershipChange) => {
                    return self.release_parked(index);
                }
                Err(ProposeError::NotMaster { master }) => {
                    self.fail_queue(index, &ShardError::NotMaster { master });
                    return Ok(());
                }
                // A transfer ends within `TRANSFER_TICKS_MAX`: the queue waits, then is
                // proposed here or forwarded to the new master.
                Err(ProposeError::Transferring) => return self.release_parked(index),
            }
            self.effects(index, effects)?;
        }
    }

    fn fail_queue(&mut self, index: usize, error: &ShardError) {
        let Phase::Serving(_, groups) = &mut self.phase else { return };
        let group = &mut groups[index];
        group.queued_bytes = 0;
        for queued in group.queue.drain(..) {
            self.replies.push((queued.token, Err(error.clone())));
        }
    }

    /// A master hands its group to the live voter with the lowest node id, once that voter
    /// has applied everything chosen: by default every group's master sits on the lowest live
    /// node, so clients connected there pay no forwarding and operators know where masters
    /// are. "Live": heard from within `SHARD_PEER_LIVE_TICKS`.
    fn prefer_lowest_master(&mut self, index: usize) -> Result<(), Fatal> {
        let (node, ticks) = (self.options.node, self.ticks);
        let Phase::Serving(_, groups) = &mut self.phase else { return Ok(()) };
        let replica = &groups[index].replica;
        if !replica.is_serving() || replica.is_transferring() {
            return Ok(());
        }
        let frontier = replica.frontier();
        let live = |peer: &NodeId| {
            self.last_heard.get(peer).is_some_and(|heard| heard + SHARD_PEER_LIVE_TICKS >= ticks)
        };
        let preferred = replica
            .configuration(frontier)
            .voters()
            .iter()
            .copied()
            .find(|voter| *voter == node || live(voter));
        let Some(target) = preferred.filter(|target| *target < node) else { return Ok(()) };
        if replica.peer_applied(target).is_none_or(|applied| applied < frontier) {
            return Ok(());
        }
        self.input(index, |replica, effects| {
            // Refused only if the state changed under us; the next pass tries again.
            let _ = replica.transfer(target, effects);
        })
    }

    fn housekeeping(&mut self, index: usize) {
        let now = self.now_millis;
        let Phase::Serving(_, groups) = &mut self.phase else { return };
        let group = &mut groups[index];
        if !group.replica.is_serving() || !group.queue.is_empty() || !group.in_flight.is_empty() {
            return;
        }
        for command in group.machine.housekeeping(now, SHARD_HOUSEKEEPING_KEYS_MAX) {
            // Answered to nobody.
            group.queue.push_back(Queued {
                client: 0,
                sequence: 0,
                command,
                token: HOUSEKEEPING,
                bytes: 0,
                since: self.ticks,
            });
        }
    }

    /// Peer messages to send: (to, group, message).
    pub fn take_outbox(&mut self) -> Vec<(NodeId, GroupId, Message)> {
        std::mem::take(&mut self.outbox)
    }

    /// Replies ready: (token, reply or error).
    pub fn take_replies(&mut self) -> Vec<(Token, Result<M::Reply, ShardError>)> {
        self.route_remote_replies();
        let mut replies = std::mem::take(&mut self.replies);
        replies.retain(|(token, _)| *token != HOUSEKEEPING);
        replies
    }

    /// Forwarding messages to send: (to, message): requests to masters, answers to
    /// followers.
    pub fn take_forwards(&mut self) -> Vec<(NodeId, ForwardMessage)> {
        self.route_remote_replies();
        std::mem::take(&mut self.forwards)
    }

    /// Snapshots replicas asked for from peers: (group, from, slot). The host fetches each
    /// and calls [`Shard::install_snapshot`], or [`Shard::snapshot_aborted`].
    pub fn take_snapshots_wanted(&mut self) -> Vec<(GroupId, NodeId, Slot)> {
        std::mem::take(&mut self.wanted)
    }

    /// The latest durable snapshot of `group` (meta, state machine bytes), to serve a peer.
    #[must_use]
    pub fn snapshot(&self, group: GroupId) -> Option<(SnapshotMeta, Arc<[u8]>)> {
        match &self.phase {
            Phase::Serving(_, groups) => {
                groups.iter().find(|g| g.id == group).and_then(|g| g.snapshot.clone())
            }
            _ => None,
        }
    }

    /// A snapshot of `group` fetched from a peer: the storage writes it; once durable the
    /// state machine loads `state` and the replica continues after `meta.slot`. A snapshot
    /// that is not ahead of this replica, or that the storage cannot take now, is aborted
    /// (the replica asks again later if it still needs one).
    pub fn install_snapshot(&mut self, group: GroupId, meta: SnapshotMeta, state: Arc<[u8]>) {
        let Some(index) = self.group_index(group) else { return };
        let Phase::Serving(storage, groups) = &mut self.phase else { return };
        let target = &mut groups[index];
        let ahead = meta.slot > target.replica.applied();
        if !ahead || target.writing.is_some() {
            target.replica.on_snapshot_aborted();
            return;
        }
        match storage.install_snapshot(group, &meta, &state) {
            Ok(()) => target.writing = Some((meta, state)),
            Err(_) => target.replica.on_snapshot_aborted(),
        }
    }

    /// A fetched snapshot could not be had.
    pub fn snapshot_aborted(&mut self, group: GroupId) {
        if let (Some(index), Phase::Serving(_, groups)) = (self.group_index(group), &mut self.phase)
        {
            groups[index].replica.on_snapshot_aborted();
        }
    }

    fn group_count(&self) -> usize {
        match &self.phase {
            Phase::Serving(_, groups) => groups.len(),
            _ => 0,
        }
    }

    fn group_index(&self, group: GroupId) -> Option<usize> {
        match &self.phase {
            Phase::Serving(_, groups) => groups.iter().position(|g| g.id == group),
            _ => None,
        }
    }

    fn unavailable(&self, group: GroupId) -> ShardError {
        if self.is_serving() {
            ShardError::Unavailable(format!("{group} is not hosted on this core"))
        } else {
            ShardError::Unavailable("the node is still recovering its log".to_string())
        }
    }

    /// Runs one input of the replica of group `index`, then its effects (and the effects of
    /// messages it sent to itself).
    fn input(
        &mut self,
        index: usize,
        f: impl FnOnce(&mut Replica, &mut Vec<Effect>),
    ) -> Result<(), Fatal> {
        let Phase::Serving(_, groups) = &mut self.phase else { return Ok(()) };
        let mut effects = Vec::new();
        f(&mut groups[index].replica, &mut effects);
        self.effects(index, effects)
    }

    fn effects(&mut self, index: usize, effects: Vec<Effect>) -> Result<(), Fatal> {
        let node = self.options.node;
        let mut pending: VecDeque<Effect> = effects.into();
        while let Some(effect) = pending.pop_front() {
            let Phase::Serving(storage, groups) = &mut self.phase else { return Ok(()) };
            let group = &mut groups[index];
            match effect {
                Effect::Send { to, message } if to == node => {
                    let mut more = Vec::new();
                    group.replica.on_message(node, message, &mut more);
                    pending.extend(more);
                }
                Effect::Send { to, message } => self.outbox.push((to, group.id, message)),
                Effect::Persist { id, promised, records, chosen } => storage
                    .persist(group.id, id, promised, &records, &chosen)
                    .map_err(|error| Fatal::Storage(format!("persist refused: {error}")))?,
                Effect::Apply { slot, value } => {
                    apply(group, slot, &value, &mut self.replies, &mut self.stats)?;
                }
                Effect::ReadReady { id } => {
                    if let Some((command, token)) = group.reads.remove(&id) {
                        let now = self.now_millis.max(group.stamp_millis);
                        let reply = group.machine.read(now, &command);
                        self.stats.reads_served += 1;
                        self.replies.push((token, Ok(reply)));
                    }
                }
                Effect::ReadAborted { id } => {
                    if let Some((_, token)) = group.reads.remove(&id) {
                        let master = group.replica.master();
                        self.replies.push((token, Err(ShardError::NotMaster { master })));
                    }
                }
                Effect::TakeSnapshot { meta } => {
                    let state: Arc<[u8]> = Arc::from(group.machine.snapshot());
                    // A snapshot the storage cannot take now is asked for again later.
                    if group.writing.is_none()
                        && storage.take_snapshot(group.id, &meta, &state).is_ok()
                    {
                        group.writing = Some((meta, state));
                    }
                }
                Effect::SnapshotWanted { from, slot } => self.wanted.push((group.id, from, slot)),
            }
        }
        Ok(())
    }

    fn storage_events(&mut self) -> Result<(), Fatal> {
        let Phase::Serving(storage, _) = &mut self.phase else { return Ok(()) };
        for event in storage.take_events() {
            match event {
                StorageEvent::Persisted { group, id } => {
                    let Some(index) = self.group_index(group) else { continue };
                    self.input(index, |replica, effects| replica.on_persisted(id, effects))?;
                }
                StorageEvent::SnapshotTaken { group, slot } => {
                    if let (Some(index), Phase::Serving(_, groups)) =
                        (self.group_index(group), &mut self.phase)
                    {
                        let target = &mut groups[index];
                        if target.writing.as_ref().is_some_and(|(meta, _)| meta.slot == slot) {
                            target.snapshot = target.writing.take();
                        }
                        target.replica.on_snapshot_taken(slot);
                    }
                }
                StorageEvent::SnapshotInstalled { group, meta } => {
                    let Some(index) = self.group_index(group) else { continue };
                    self.snapshot_loaded(index, &meta)?;
                    self.input(index, |replica, effects| {
                        replica.on_snapshot_installed(meta, effects);
                    })?;
                }
                StorageEvent::SnapshotAborted { group, installing, .. } => {
                    if let (Some(index), Phase::Serving(_, groups)) =
                        (self.group_index(group), &mut self.phase)
                    {
                        groups[index].writing = None;
                    }
                    if installing {
                        self.snapshot_aborted(group);
                    }
                }
            }
        }
        Ok(())
    }
}

impl<M: Machine> Shard<M> {
    /// An installed snapshot is durable: the state machine loads it (before the replica
    /// continues after it), and it becomes the snapshot this node serves.
    fn snapshot_loaded(&mut self, index: usize, meta: &SnapshotMeta) -> Result<(), Fatal> {
        let Phase::Serving(_, groups) = &mut self.phase else { return Ok(()) };
        let group = &mut groups[index];
        let Some((writing, state)) = group.writing.take() else { return Ok(()) };
        debug_assert_eq!(writing.slot, meta.slot, "one snapshot written at a time");
        if meta.slot > group.replica.applied() {
            let mut machine = (self.make_machine)();
            machine
                .restore(&state)
                .map_err(|error| Fatal::Machine(format!("{} snapshot: {error}", group.id)))?;
            group.machine = machine;
            group.stamp_millis = group.stamp_millis.max(meta.stamp_millis);
        }
        group.snapshot = Some((writing, state));
        Ok(())
    }
}

/// How many queued writes (and their bytes) the next batch takes: up to
/// [`SHARD_BATCH_BYTES_MAX`], at least one.
fn batch_prefix<C>(queue: &VecDeque<Queued<C>>) -> (usize, usize) {
    let (mut count, mut bytes) = (0, 0);
    for queued in queue {
        if count > 0 && bytes + queued.bytes > SHARD_BATCH_BYTES_MAX {
            break;
        }
        bytes += queued.bytes;
        count += 1;
    }
    (count, bytes)
}

/// Applies one chosen slot to the group's machine and answers the writes it carried.
fn apply<M: Machine>(
    group: &mut Group<M>,
    slot: Slot,
    value: &Value,
    replies: &mut Vec<(Token, Result<M::Reply, ShardError>)>,
    stats: &mut ShardStats,
) -> Result<(), Fatal> {
    stats.slots_applied += 1;
    group.stamp_millis = group.stamp_millis.max(value.stamp_millis);
    let ours = group.in_flight.remove(&slot);
    let ValueKind::Batch(batch) = &value.kind else {
        if let Some(lost) = ours {
            lose(group, lost, replies, stats);
        }
        return Ok(());
    };
    let mut out = Vec::new();
    group
        .machine
        .apply_batch(value.stamp_millis, batch, &mut out)
        .map_err(|error| Fatal::Machine(format!("{} slot {slot}: {error}", group.id)))?;
    match ours {
        Some(in_flight) if Arc::ptr_eq(&in_flight.batch, batch) || in_flight.batch == *batch => {
            for (token, reply) in in_flight.tokens.into_iter().zip(out) {
                if token != HOUSEKEEPING {
                    replies.push((token, Ok(reply)));
                }
            }
        }
        Some(lost) => lose(group, lost, replies, stats),
        None => {}
    }
    Ok(())
}

/// Another value took the slot of `lost`: its writes were not applied there.
fn lose<M: Machine>(
    group: &Group<M>,
    lost: InFlight,
    replies: &mut Vec<(Token, Result<M::Reply, ShardError>)>,
    stats: &mut ShardStats,
) {
    let master = group.replica.master();
    for token in lost.tokens {
        stats.writes_lost_slot += 1;
        if token != HOUSEKEEPING {
            replies.push((token, Err(ShardError::NotMaster { master })));
        }
    }
}
