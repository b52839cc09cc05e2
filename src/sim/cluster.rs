//! The deterministic cluster: 3 or 5 nodes x `GROUP_COUNT` groups in one thread, from a
//! seed. Every node runs, per group, the production `consensus::Replica`; messages travel
//! through [`SimNetwork`]; ticks follow each node's drifting clock; clients propose KV commands
//! (the `linearizability` KV model) encoded as batch bytes, and a tiny KV state machine per
//! replica applies the chosen batches. Checkers run after every event and at the end.
//!
//! Reads: most GETs (and every GET of the one read-only client per group) go through the
//! master's read path (`Replica::read`: under the lease at once, else read-index), answered
//! from the node's state machine when `ReadReady` arrives; the rest go through the log. An
//! aborted read is retried (nothing happened). Besides the swarm's blind partitions, a
//! master-isolation fault cuts a serving master off for longer than an election, the schedule
//! in which a deposed master could still answer.
//!
//! Checkers: one value per slot, in-order apply, equal state hashes at equal applied slots,
//! the promise never regresses and every announced acceptance survives a restart, acked writes
//! survive, linearizability of every group's history (reads included), liveness after the
//! heal; a panic of the core (its own assertions) is a violation too, with the trace kept.
//! Plants (`Planted`): bugs of the core (`consensus::Plant`) or of the simulated disk that a
//! run must catch.
//!
//! Storage: each node has one `log::sim_disk::SimDisk` and, over it, the production log
//! (`log::log::Log`, opened by `log::open::Opener`) behind the shard's
//! `runtime::shard::Storage`, for all its groups (one core). `Effect::Persist` goes to the
//! storage; `on_persisted` is called only when the storage reports the persist durable. The
//! simulator drives the disk as timed events: requests are submitted at once and the disk is
//! polled after a drawn latency (the slow-disk fault draws long ones), so a crash meets writes
//! in flight or unsynced. A crash drops the node's memory; with the `torn-write` fault it is a
//! power loss (`SimDisk::crash`: unsynced writes lost, kept or torn), without it a process
//! crash (the page cache survives). A restart opens the log with the production opener,
//! recovers every group through the storage, restarts each replica from its durable state
//! and rebuilds the KV state machine from the snapshot's bytes (if any) and the replica's
//! re-applied chosen prefix.
//!
//! Snapshots: `TakeSnapshot` encodes the state machine (which is exactly at the snapshot's
//! slot, checked) into a snapshot file; `SnapshotWanted` copies the newest durable snapshot
//! of the offering node after a network-like delay (the chunked network transfer is the
//! runtime's job, issue 5), failing if it is down or cut off, and installs it.
//!
//! Disk faults (swarm kinds): `torn-write` (crashes are power losses), `read-error`
//! (transient read errors while a node recovers: it retries), `write-error` and `sync-error`
//! (fail-stop: the node crashes as the production process exits with
//! `EXIT_CODE_STORAGE_FAILURE`, and restarts later), `misdirected-write` and `bit-rot`
//! (corruption found by checksums at recovery). Corruption is injected into one node per run
//! only, so a majority stays healthy; a node whose log recovery reports damaged stays down for
//! the rest of the run (the reason is traced): a node that lost data may rejoin only as a new
//! member, which is issue 5's membership work. Damage on any other node is a violation.
//!
//! Past finding (core, fixed by "phase 1 by windows under one ballot"): seeds 1184 and 5067
//! of the first workload failed the liveness check, acceptors holding slots a window past
//! every frontier answering "behind" to every candidate. The workload has changed since
//! (reads through the read path), so those seed numbers now draw other schedules.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use super::linearizability::{self, Bytes, KvCommand, KvInput, KvModel, KvOperation, KvOutput};
use super::network::{
    MILLISECOND_NS, NEMESIS_PHASE_NS_MIN, NetworkFaults, NetworkNemesis, Partition, SECOND_NS,
    SimNetwork,
};
use super::prng::{PARTS_PER_MILLION, Prng};
use crate::consensus::Plant as CorePlant;
use crate::consensus::{
    Effect, Membership, Message, Options, ProposeError, ReadId, Replica, SnapshotMeta, Value,
    ValueKind,
};
use crate::constants::{EXIT_CODE_STORAGE_FAILURE, TICK_MILLIS};
use crate::log::disk::{Completion, Disk, DiskError, Response};
use crate::log::open::{OpenError, Opened, Opener};
use crate::log::sim_disk::{SimDisk, SimDiskOptions};
use crate::log::superblock::Superblock;
use crate::log::writer::WriterOptions;
use crate::runtime::shard::{RecoveredGroup, Storage, StorageEvent};
use crate::types::{Ballot, CoreIndex, GroupId, NodeId, Slot};

/// Nodes in a small cluster.
pub const NODE_COUNT_SMALL: u64 = 3;
/// Nodes in a large cluster.
pub const NODE_COUNT_LARGE: u64 = 5;
/// Groups every node replicates.
pub const GROUP_COUNT: u32 = 2;
/// Clients per group, each with at most one request outstanding.
pub const CLIENTS_PER_GROUP: u64 = 3;
/// Keys each group's workload touches.
pub const KEY_COUNT: u64 = 3;
/// Virtual time of the faulty phase of a run.
pub const FAULT_PHASE_NS: u64 = 20 * SECOND_NS;
/// After the faults heal, every request called this late or later must complete.
pub const LIVENESS_NS_MAX: u64 = 10 * SECOND_NS;
/// How long the checked (fault-free) window of the liveness phase lasts.
pub const LIVENESS_WINDOW_NS: u64 = 2 * CLIENT_TIMEOUT_NS;
/// A client gives up on a request after this long (the outcome becomes unknown).
pub const CLIENT_TIMEOUT_NS: u64 = 3 * SECOND_NS;
/// Longest pause between a client's requests.
pub const CLIENT_THINK_NS_MAX: u64 = 20 * MILLISECOND_NS;
/// Chance that a GET goes through the master's read path (lease or read-index) instead of
/// through the log.
pub const CLIENT_READ_PATH_PPM: u32 = PARTS_PER_MILLION * 3 / 4;
/// Backoff of a client whose node refused the proposal.
pub const CLIENT_RETRY_NS: u64 = 10 * MILLISECOND_NS;
/// Shortest simulated disk write, ns.
pub const DISK_LATENCY_NS_MIN: u64 = 20_000;
/// Longest simulated disk write without the slow-disk fault, ns.
pub const DISK_LATENCY_NS_MAX: u64 = 200_000;
/// Longest simulated disk write with the slow-disk fault, ns.
pub const DISK_SLOW_NS_MAX: u64 = 50 * MILLISECOND_NS;
/// Largest clock drift of a node, parts per million (either way).
pub const DRIFT_PPM_MAX: u64 = 2_000;
/// Longest time between two crash (or pause) decisions of the nemesis.
pub const NEMESIS_PROCESS_NS_MAX: u64 = 3 * SECOND_NS;
/// Longest time a crashed node stays down or a paused node stays paused.
pub const DOWN_NS_MAX: u64 = 3 * SECOND_NS;
/// Shortest time the master-isolation fault cuts a master off: past an election and a client
/// timeout, so the others elect a new master and the writers stuck at the old one find it.
pub const ISOLATE_MASTER_NS_MIN: u64 = CLIENT_TIMEOUT_NS + 2 * SECOND_NS;
/// Longest time the master-isolation fault cuts a master off.
pub const ISOLATE_MASTER_NS_MAX: u64 = 8 * SECOND_NS;
/// Longest time between two master isolations.
pub const ISOLATE_MASTER_GAP_NS_MAX: u64 = 4 * SECOND_NS;
/// Whether the swarm enables `write-error` (see `SimFaults::swarm`: an open finding).
const WRITE_ERROR_IN_SWARM: bool = false;
/// Whether the swarm enables `bit-rot` (see `SimFaults::swarm`: an open finding).
const BIT_ROT_IN_SWARM: bool = false;
/// Chance that a completed write reports an error (`write-error`: fail-stop).
pub const DISK_WRITE_ERROR_PPM: u32 = 1_000;
/// Chance that a completed sync reports an error (`sync-error`: fail-stop).
pub const DISK_SYNC_ERROR_PPM: u32 = 1_000;
/// Chance that a read fails, transiently (`read-error`).
pub const DISK_READ_ERROR_PPM: u32 = 20_000;
/// Chance that a write of the corrupted node lands elsewhere in its file (`misdirected-write`).
pub const DISK_MISDIRECT_PPM: u32 = 200;
/// Attempts a restarting node makes to open its log (read errors) before it stays down.
pub const OPEN_ATTEMPTS_MAX: u32 = 100;
/// Longest time a snapshot takes to arrive from the node that offered it.
pub const SNAPSHOT_FETCH_NS_MAX: u64 = 20 * MILLISECOND_NS;
/// The log of every simulated node: small segments and staging, so runs roll segments over,
/// reclaim them behind snapshots and meet backpressure.
const SIM_WRITER_OPTIONS: WriterOptions =
    WriterOptions { segment_size_bytes: 256 * 1024, staged_bytes_max: 64 * 1024 };
/// Applied slots between two snapshots of a replica: far fewer than production's
/// `SNAPSHOT_INTERVAL_SLOTS`, so every run takes snapshots, truncates its logs, reclaims
/// segments and sends lagging replicas snapshots (the core requires more than
/// `ACCEPT_AHEAD_SLOTS_MAX`).
pub const SIM_SNAPSHOT_INTERVAL_SLOTS: u64 = crate::constants::ACCEPT_AHEAD_SLOTS_MAX + 88;
/// Virtual nanoseconds per tick at zero drift.
const TICK_NS: u64 = TICK_MILLIS * MILLISECOND_NS;
/// Longest time between two control actions (a leader transfer or a membership step): short,
/// so transfers come as a master-change storm.
pub const CONTROL_NS_MAX: u64 = 600 * MILLISECOND_NS;
/// The events a run may take at most (a livelock guard).
const EVENTS_MAX: u64 = 50_000_000;

/// The faults one seed exercises, drawn by [`SimFaults::swarm`].
#[derive(Clone, Debug)]
pub struct SimFaults {
    /// Nodes in the cluster (not a fault, but drawn with them).
    pub nodes: u64,
    /// Network faults.
    pub network: NetworkFaults,
    /// Crash with power loss, then restart from the durable state.
    pub crash: bool,
    /// Process pauses.
    pub pause: bool,
    /// Per-node clock drift.
    pub drift: bool,
    /// Slow disk writes.
    pub disk_slow: bool,
    /// Crashes are power losses that lose or tear unsynced writes (only with `crash`).
    pub torn_write: bool,
    /// Transient read errors while a node recovers (only with `crash`).
    pub read_error: bool,
    /// Writes of one node land elsewhere in their file (only with `crash`, which detects it).
    pub misdirected_write: bool,
    /// Bits of one node's files flip while it is down (only with `crash`).
    pub bit_rot: bool,
    /// Write errors: the node fails stop and restarts.
    pub write_error: bool,
    /// Sync errors: the node fails stop and restarts.
    pub sync_error: bool,
    /// Leader transfers requested of the masters, again and again (a master-change storm).
    pub transfer: bool,
    /// Membership changes under load: a voter removed, added back as a learner, promoted.
    pub membership: bool,
}

impl SimFaults {
    /// A swarm draw: each process fault enabled with probability 1/2.
    #[must_use]
    pub fn swarm(prng: &mut Prng) -> SimFaults {
        let half = PARTS_PER_MILLION / 2;
        let quarter = PARTS_PER_MILLION / 4;
        let nodes = if prng.chance(half) { NODE_COUNT_LARGE } else { NODE_COUNT_SMALL };
        let network = NetworkFaults::swarm(prng);
        let crash = prng.chance(half);
        let (pause, drift, disk_slow) = (prng.chance(half), prng.chance(half), prng.chance(half));
        // Faults only a recovery exposes are drawn (and counted) only with crashes.
        let torn_write = prng.chance(half) && crash;
        let read_error = prng.chance(quarter) && crash;
        let misdirected_write = prng.chance(quarter) && crash;
        // Held out of the swarm like `write-error`: seed 1013748 flipped a bit in the last
        // batch of a node's newest segment; recovery cannot tell that from a torn write, cut
        // it off as a torn tail, and acceptances the node had announced were gone (the
        // acceptance checker caught it). TODO(issue 4): the log must tell synced batches from
        // a torn tail (a durable watermark) before this fault comes back.
        let bit_rot = prng.chance(quarter) && crash && BIT_ROT_IN_SWARM;
        // Drawn but not enabled in the swarm yet: seed 3232367800 found a node whose log was
        // reported damaged (a zeroed header mid-segment) after a write-error fail-stop, a
        // restart and a power loss, with no corruption injected. TODO(issue 4): find whether
        // the log's resume after a failed write or the simulated disk is wrong, then enable.
        let write_error = prng.chance(quarter) && WRITE_ERROR_IN_SWARM;
        let sync_error = prng.chance(quarter);
        let (transfer, membership) = (prng.chance(half), prng.chance(half));
        SimFaults {
            nodes,
            network,
            crash,
            pause,
            drift,
            disk_slow,
            torn_write,
            read_error,
            misdirected_write,
            bit_rot,
            write_error,
            sync_error,
            transfer,
            membership,
        }
    }

    /// The names of the enabled fault kinds.
    #[must_use]
    pub fn kinds(&self) -> Vec<&'static str> {
        let mut kinds = self.network.fault_kinds_enabled();
        for (enabled, name) in [
            (self.crash, "crash"),
            (self.pause, "pause"),
            (self.drift, "clock-drift"),
            (self.disk_slow, "disk-slow"),
            (self.transfer, "master-transfer"),
            (self.membership, "membership"),
            (self.torn_write, "torn-write"),
            (self.read_error, "read-error"),
            (self.misdirected_write, "misdirected-write"),
            (self.bit_rot, "bit-rot"),
            (self.write_error, "write-error"),
            (self.sync_error, "sync-error"),
        ] {
            if enabled {
                kinds.push(name);
            }
        }
        kinds
    }
}

/// A bug planted in the harness's persistence so a run shows the checkers catch it. Lives in
/// the simulator only: production code cannot reach it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Plant {
    /// A completed persist reports its promise durable but the disk drops it.
    PromiseNotPersisted,
    /// A completed persist reports its accepted records durable but the disk drops them.
    AcceptNotPersisted,
}

impl Plant {
    /// Every plant.
    pub const ALL: [Plant; 2] = [Plant::PromiseNotPersisted, Plant::AcceptNotPersisted];

    /// The plant's command line name (`disk-` set apart from the core's plants).
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Plant::PromiseNotPersisted => "disk-drops-promise",
            Plant::AcceptNotPersisted => "disk-drops-accept",
        }
    }

    /// One line on what goes wrong.
    #[must_use]
    pub fn description(self) -> &'static str {
        match self {
            Plant::PromiseNotPersisted => "sim disk: a completed write loses its promise",
            Plant::AcceptNotPersisted => "sim disk: a completed write loses its accepted records",
        }
    }

    /// The plant named `name`.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Plant> {
        Plant::ALL.into_iter().find(|plant| plant.name() == name)
    }
}

/// Any bug `klein-sim --plant` can plant: in the harness's disk, or in the consensus core
/// (`consensus::Plant`, planted on every replica, restarted ones included).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Planted {
    /// A bug of the simulated disk.
    Disk(Plant),
    /// A bug of the consensus core.
    Core(CorePlant),
}

impl Planted {
    /// Every plant, the core's first.
    #[must_use]
    pub fn all() -> Vec<Planted> {
        let core = CorePlant::ALL.into_iter().map(Planted::Core);
        core.chain(Plant::ALL.into_iter().map(Planted::Disk)).collect()
    }

    /// The command line name.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Planted::Disk(plant) => plant.name(),
            Planted::Core(plant) => plant.name(),
        }
    }

    /// One line on what goes wrong.
    #[must_use]
    pub fn description(self) -> &'static str {
        match self {
            Planted::Disk(plant) => plant.description(),
            Planted::Core(plant) => plant.description(),
        }
    }

    /// The plant named `name`.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Planted> {
        Planted::all().into_iter().find(|plant| plant.name() == name)
    }
}

/// What one run found.
#[derive(Debug, Default)]
pub struct RunReport {
    /// Client operations issued.
    pub ops: u64,
    /// Of which returned.
    pub returned: u64,
    /// Nodes in the cluster.
    pub nodes: u64,
    /// Groups whose history the linearizability search gave up on (budget spent).
    pub linearizability_unknown: u64,
    /// Fault kinds enabled.
    pub fault_kinds: Vec<&'static str>,
    /// Everything a checker refused; empty for a good run.
    pub violations: Vec<String>,
    /// Crashes injected.
    pub crashes: u64,
}

/// The master-isolation fault: cuts the serving master of a random group off from every other
/// node for a while. The swarm's partitions pick their nodes blindly and seldom cut a master
/// off for longer than an election; this schedule is the one that exposes a deposed master
/// still answering (stale lease reads, lost check-quorum).
#[derive(Debug)]
struct MasterIsolation {
    next_ns: u64,
    /// The partition this fault set, while in force.
    partition: Option<Partition>,
}

/// A snapshot a node waits to receive from the node that offered it.
#[derive(Debug)]
struct Fetch {
    due_ns: u64,
    group: usize,
    from: NodeId,
    slot: Slot,
}

/// A snapshot's meta and the state machine's bytes.
type SnapshotCopy = (SnapshotMeta, Arc<[u8]>);

/// The KV state machine of one replica.
#[derive(Clone, Debug)]
struct Machine {
    data: BTreeMap<Bytes, Bytes>,
    /// Every slot below this one is applied.
    applied: Slot,
    ops: BTreeSet<u64>,
    /// FNV-1a over the applied ops in the order applied, kept as they come: hashing the
    /// whole set after every apply made runs quadratic in their length.
    ops_digest: u64,
}

/// FNV-1a parameters.
const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0100_0000_01b3;

fn fnv(mut hash: u64, bytes: &[u8]) -> u64 {
    for byte in bytes {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(FNV_PRIME);
    }
    hash
}

impl Machine {
    fn new() -> Machine {
        Machine {
            data: BTreeMap::new(),
            applied: Slot(0),
            ops: BTreeSet::new(),
            ops_digest: FNV_OFFSET,
        }
    }

    /// Applies one command once (a duplicate of an applied op is ignored).
    fn apply(&mut self, op: &EncodedOp) -> Option<KvOutput> {
        if !self.ops.insert(op.op) {
            return None;
        }
        self.ops_digest = fnv(self.ops_digest, &op.op.to_le_bytes());
        let value = self.data.get(&op.input.key).cloned();
        let (after, output) = KvModel::apply(&value, &op.input.command);
        match after {
            Some(bytes) => self.data.insert(op.input.key.clone(), bytes),
            None => self.data.remove(&op.input.key),
        };
        Some(output)
    }

    /// FNV-1a over the contents, then the digest of the applied ops.
    fn hash(&self) -> u64 {
        let mut hash = FNV_OFFSET;
        for (key, value) in &self.data {
            hash = fnv(hash, &key.0);
            hash = fnv(hash, &[0xff]);
            hash = fnv(hash, &value.0);
            hash = fnv(hash, &[0xfe]);
        }
        fnv(hash, &self.ops_digest.to_le_bytes())
    }

    /// The snapshot bytes of the machine: applied slot, digest of the applied ops, contents,
    /// applied ops.
    fn encode(&self) -> Vec<u8> {
        let mut out = self.applied.0.to_le_bytes().to_vec();
        out.extend_from_slice(&self.ops_digest.to_le_bytes());
        let length = |out: &mut Vec<u8>, length: usize| {
            out.extend_from_slice(&u32::try_from(length).expect("small").to_le_bytes());
        };
        length(&mut out, self.data.len());
        for (key, value) in &self.data {
            for bytes in [key, value] {
                length(&mut out, bytes.0.len());
                out.extend_from_slice(&bytes.0);
            }
        }
        length(&mut out, self.ops.len());
        for op in &self.ops {
            out.extend_from_slice(&op.to_le_bytes());
        }
        out
    }

    /// The machine `bytes` (from [`Machine::encode`]) hold; `None` for bad bytes.
    fn decode(mut bytes: &[u8]) -> Option<Machine> {
        fn take<'bytes>(rest: &mut &'bytes [u8], length: usize) -> Option<&'bytes [u8]> {
            let (taken, left) = rest.split_at_checked(length)?;
            *rest = left;
            Some(taken)
        }
        fn length(rest: &mut &[u8]) -> Option<usize> {
            usize::try_from(u32::from_le_bytes(take(rest, 4)?.try_into().ok()?)).ok()
        }
        fn number(rest: &mut &[u8]) -> Option<u64> {
            Some(u64::from_le_bytes(take(rest, 8)?.try_into().ok()?))
        }
        let rest = &mut bytes;
        let applied = Slot(number(rest)?);
        let ops_digest = number(rest)?;
        let mut data = BTreeMap::new();
        for _ in 0..length(rest)? {
            let key = length(rest)?;
            let key = Bytes(take(rest, key)?.to_vec());
            let value = length(rest)?;
            data.insert(key, Bytes(take(rest, value)?.to_vec()));
        }
        let mut ops = BTreeSet::new();
        for _ in 0..length(rest)? {
            ops.insert(number(rest)?);
        }
        rest.is_empty().then_some(Machine { data, applied, ops, ops_digest })
    }
}

/// One client command as carried in a batch.
#[derive(Clone, Debug, PartialEq, Eq)]
struct EncodedOp {
    op: u64,
    input: KvInput,
}

const TAG_GET: u8 = 1;
const TAG_SET: u8 = 2;
const TAG_DEL: u8 = 3;
const TAG_SETNX: u8 = 4;
const TAG_INCR: u8 = 5;
const TAG_CAS: u8 = 6;
const TAG_NONE: u8 = 0;
const TAG_SOME: u8 = 1;

fn push_bytes(out: &mut Vec<u8>, bytes: &Bytes) {
    out.push(u8::try_from(bytes.0.len()).expect("short keys and values"));
    out.extend_from_slice(&bytes.0);
}

fn push_option(out: &mut Vec<u8>, bytes: Option<&Bytes>) {
    match bytes {
        None => out.push(TAG_NONE),
        Some(bytes) => {
            out.push(TAG_SOME);
            push_bytes(out, bytes);
        }
    }
}

fn encode(op: &EncodedOp) -> Vec<u8> {
    let mut out = op.op.to_le_bytes().to_vec();
    push_bytes(&mut out, &op.input.key);
    match &op.input.command {
        KvCommand::Get => out.push(TAG_GET),
        KvCommand::Set(value) => {
            out.push(TAG_SET);
            push_bytes(&mut out, value);
        }
        KvCommand::Del => out.push(TAG_DEL),
        KvCommand::SetNx(value) => {
            out.push(TAG_SETNX);
            push_bytes(&mut out, value);
        }
        KvCommand::Incr => out.push(TAG_INCR),
        KvCommand::Cas { expected, new } => {
            out.push(TAG_CAS);
            push_option(&mut out, expected.as_ref());
            push_option(&mut out, new.as_ref());
        }
    }
    out
}

/// Reads a batch written by [`encode`].
struct Decoder<'bytes> {
    rest: &'bytes [u8],
}

impl Decoder<'_> {
    fn byte(&mut self) -> u8 {
        let (first, rest) = self.rest.split_first().expect("a well-formed batch");
        self.rest = rest;
        *first
    }

    fn bytes(&mut self) -> Bytes {
        let len = usize::from(self.byte());
        let (bytes, rest) = self.rest.split_at(len);
        self.rest = rest;
        Bytes(bytes.to_vec())
    }

    fn option(&mut self) -> Option<Bytes> {
        (self.byte() == TAG_SOME).then(|| self.bytes())
    }
}

fn decode(batch: &[u8]) -> EncodedOp {
    let (op, rest) = batch.split_at(size_of::<u64>());
    let op = u64::from_le_bytes(op.try_into().expect("eight bytes"));
    let mut decoder = Decoder { rest };
    let key = decoder.bytes();
    let command = match decoder.byte() {
        TAG_GET => KvCommand::Get,
        TAG_SET => KvCommand::Set(decoder.bytes()),
        TAG_DEL => KvCommand::Del,
        TAG_SETNX => KvCommand::SetNx(decoder.bytes()),
        TAG_INCR => KvCommand::Incr,
        TAG_CAS => KvCommand::Cas { expected: decoder.option(), new: decoder.option() },
        tag => panic!("unknown command tag {tag}"),
    };
    EncodedOp { op, input: KvInput { key, command } }
}

/// One node: per group a replica and a state machine; one disk and the storage over it.
#[derive(Debug)]
struct Node {
    id: NodeId,
    up: bool,
    paused: bool,
    /// When a down node restarts or a paused node resumes.
    back_ns: u64,
    drift_ppm: i64,
    next_tick_ns: u64,
    replicas: Vec<Replica>,
    machines: Vec<Machine>,
    /// The node's disk: survives crashes, as the media would.
    disk: SimDisk,
    /// The storage over the disk's log: none while down or opening.
    storage: Option<Storage>,
    /// Opening the log after a restart, and the attempts made.
    opener: Option<Opener>,
    open_attempts: u32,
    /// When the disk is polled next (its requests in flight complete).
    disk_due_ns: Option<u64>,
    /// A power loss waits for the next disk poll, to meet requests in flight.
    crash_at_disk_poll: bool,
    /// Why the node stays down for the rest of the run: its log is damaged.
    retired: Option<String>,
    /// Per group: the snapshot being written, and the newest durable one.
    snapshot_writing: Vec<Option<SnapshotCopy>>,
    snapshot_durable: Vec<Option<SnapshotCopy>>,
    /// Snapshots on their way from the node that offered them.
    fetches: Vec<Fetch>,
    /// The highest ballot each group's replica announced in a Promise or an Accepted.
    announced: Vec<Ballot>,
}

impl Node {
    /// Whether the process runs but is still opening or recovering its log.
    fn is_booting(&self) -> bool {
        self.opener.is_some() || self.storage.as_ref().is_some_and(Storage::is_recovering)
    }

    fn tick_period_ns(&self) -> u64 {
        let period = i64::try_from(TICK_NS).expect("a tick fits in i64");
        let million = i64::from(PARTS_PER_MILLION);
        u64::try_from(period + period * self.drift_ppm / million).expect("a positive period")
    }
}

/// A request a client waits on.
#[derive(Clone, Debug)]
struct Pending {
    op: EncodedOp,
    call_ns: u64,
    /// The node the proposal (or read) went to, once one accepted it.
    node: Option<usize>,
    next_try_ns: u64,
    /// A GET served by the master's read path (`Replica::read`: lease or read-index) instead
    /// of through the log; answered from the node's state machine at `ReadReady`.
    read: bool,
}

/// One client of one group.
#[derive(Debug)]
struct Client {
    id: u64,
    group: usize,
    pending: Option<Pending>,
    next_ns: u64,
    master_hint: Option<usize>,
    /// Only reads, all through the master's read path: it keeps its master hint while the
    /// master answers, so a master cut off from the quorum keeps being asked (stale reads).
    reader: bool,
}

/// The simulated cluster and its checkers.
pub struct Cluster {
    now_ns: u64,
    prng: Prng,
    faults: SimFaults,
    membership: Membership,
    nodes: Vec<Node>,
    network: SimNetwork<(usize, Message)>,
    nemesis: NetworkNemesis,
    next_process_fault_ns: Option<u64>,
    next_control_ns: Option<u64>,
    clients: Vec<Client>,
    histories: Vec<Vec<KvOperation>>,
    next_op: u64,
    issuing: bool,
    heal_ns: Option<u64>,
    chosen: BTreeMap<(usize, Slot), Value>,
    hashes: BTreeMap<(usize, Slot), u64>,
    acknowledged: Vec<(usize, u64)>,
    report: RunReport,
    trace: Option<Vec<String>>,
    plant: Option<Plant>,
    core_plant: Option<CorePlant>,
    /// Per `(node, group, slot)`: the highest ballot announced in an `Accepted`.
    accepts_announced: BTreeMap<(usize, usize, Slot), Ballot>,
    isolation: Option<MasterIsolation>,
    /// The one node whose disk corruption faults hit, if any.
    corrupt_node: Option<usize>,
}

impl Cluster {
    /// A cluster for `seed` with swarm-drawn faults; `trace` records a readable event trace.
    #[must_use]
    pub fn new(seed: u64, trace: bool) -> Cluster {
        let mut prng = Prng::new(seed);
        let faults = SimFaults::swarm(&mut prng);
        Cluster::with_faults(seed, faults, trace)
    }

    /// A cluster for `seed` with the given faults.
    ///
    /// # Panics
    /// Never: the membership is a valid majority.
    #[must_use]
    pub fn with_faults(seed: u64, faults: SimFaults, trace: bool) -> Cluster {
        let mut prng = Prng::new(seed).fork_stream(1);
        let ids: Vec<NodeId> =
            (1..=faults.nodes).map(|id| NodeId::new(id).expect("nonzero")).collect();
        let membership = Membership::majority(1, ids.iter().copied().collect(), BTreeSet::new())
            .expect("a valid majority");
        let groups = usize::try_from(GROUP_COUNT).expect("fits");
        let corruption = faults.misdirected_write || faults.bit_rot;
        let corrupt_node = corruption.then(|| prng.below_usize(ids.len()));
        let mut nodes = Vec::new();
        for (index, &id) in ids.iter().enumerate() {
            let drift_bound = i64::try_from(DRIFT_PPM_MAX).expect("fits");
            let drift_ppm = if faults.drift {
                i64::try_from(prng.below(DRIFT_PPM_MAX * 2 + 1)).expect("fits") - drift_bound
            } else {
                0
            };
            let replicas = (0..GROUP_COUNT)
                .map(|group| {
                    Replica::new(replica_options(id, group, prng.next_u64(), 0), membership.clone())
                })
                .collect();
            let options = SimDiskOptions {
                read_error_ppm: if faults.read_error { DISK_READ_ERROR_PPM } else { 0 },
                misdirect_ppm: if corrupt_node == Some(index) && faults.misdirected_write {
                    DISK_MISDIRECT_PPM
                } else {
                    0
                },
                ..SimDiskOptions::default()
            };
            let (disk, storage) = format_disk(id, SimDisk::new(prng.next_u64(), options));
            nodes.push(Node {
                id,
                up: true,
                paused: false,
                back_ns: 0,
                drift_ppm,
                next_tick_ns: prng.below(TICK_NS),
                replicas,
                machines: vec![Machine::new(); groups],
                disk,
                storage: Some(storage),
                opener: None,
                open_attempts: 0,
                disk_due_ns: None,
                crash_at_disk_poll: false,
                retired: None,
                snapshot_writing: vec![None; groups],
                snapshot_durable: vec![None; groups],
                fetches: Vec::new(),
                announced: vec![Ballot::ZERO; groups],
            });
        }
        let network = SimNetwork::new(&ids, faults.network.clone(), prng.fork());
        let nemesis = NetworkNemesis::new(&faults.network, 0, prng.fork());
        let clients = new_clients(groups, &mut prng);
        let next_process_fault_ns =
            (faults.crash || faults.pause).then(|| prng.range(1..=NEMESIS_PROCESS_NS_MAX));
        let next_control_ns =
            (faults.transfer || faults.membership).then(|| prng.range(1..=CONTROL_NS_MAX));
        let isolation = prng
            .chance(PARTS_PER_MILLION / 2)
            .then(|| MasterIsolation { next_ns: prng.range(1..=SECOND_NS), partition: None });
        let report = RunReport { nodes: faults.nodes, ..RunReport::default() };
        let mut cluster = Cluster {
            now_ns: 0,
            prng,
            faults,
            membership,
            nodes,
            network,
            nemesis,
            next_process_fault_ns,
            next_control_ns,
            clients,
            histories: vec![Vec::new(); groups],
            next_op: 1,
            issuing: true,
            heal_ns: None,
            chosen: BTreeMap::new(),
            hashes: BTreeMap::new(),
            acknowledged: Vec::new(),
            report,
            trace: trace.then(Vec::new),
            plant: None,
            core_plant: None,
            accepts_announced: BTreeMap::new(),
            isolation,
            corrupt_node,
        };
        cluster.report.fault_kinds = cluster.fault_kinds();
        cluster
    }

    /// The enabled fault kinds, the master isolation included.
    fn fault_kinds(&self) -> Vec<&'static str> {
        let mut kinds = self.faults.kinds();
        if self.isolation.is_some() {
            kinds.push("partition-master");
        }
        kinds
    }

    /// The master-isolation fault, when due: cuts a serving master off, or ends its cut.
    fn isolation_due(&mut self) {
        let now_ns = self.now_ns;
        if self.heal_ns.is_some() {
            self.isolation = None; // The heal ended any cut.
            return;
        }
        let Some(isolation) = &mut self.isolation else { return };
        if isolation.next_ns > now_ns {
            // The cut holds on top of whatever the swarm's nemesis partitions or heals.
            if let Some(cut) = &isolation.partition
                && cut.blocked_links().any(|(a, b)| !self.network.partition().is_blocked(a, b))
            {
                let mut partition = self.network.partition().clone();
                cut.blocked_links().for_each(|(a, b)| partition.block(a, b));
                self.network.set_partition(partition);
            }
            return;
        }
        if let Some(cut) = isolation.partition.take() {
            let mut partition = Partition::none();
            for (a, b) in self.network.partition().blocked_links() {
                if !cut.is_blocked(a, b) {
                    partition.block(a, b);
                }
            }
            self.network.set_partition(partition);
            self.log(|| "network master isolation healed".to_string());
            let gap_ns = self.prng.range(NEMESIS_PHASE_NS_MIN..=ISOLATE_MASTER_GAP_NS_MAX);
            self.isolation.as_mut().expect("isolation").next_ns = now_ns + gap_ns;
            return;
        }
        let group = self.prng.below_usize(self.histories.len());
        let master = self
            .nodes
            .iter()
            .find(|node| node.up && !node.paused && node.replicas[group].is_serving());
        let Some(master) = master else {
            isolation.next_ns = now_ns + NEMESIS_PHASE_NS_MIN;
            return;
        };
        let id = master.id;
        let ids: Vec<NodeId> = self.nodes.iter().map(|node| node.id).collect();
        let cut = Partition::isolate(id, &ids);
        let mut partition = self.network.partition().clone();
        cut.blocked_links().for_each(|(a, b)| partition.block(a, b));
        self.network.set_partition(partition);
        let partition = cut;
        let until_ns = now_ns + self.prng.range(ISOLATE_MASTER_NS_MIN..=ISOLATE_MASTER_NS_MAX);
        let isolation = self.isolation.as_mut().expect("isolation");
        isolation.partition = Some(partition);
        isolation.next_ns = until_ns;
        self.log(|| format!("network master isolation: {id} (master of g{group}) cut off"));
    }

    /// Plants `plant` (and enables crashes, which expose it).
    #[must_use]
    pub fn with_plant(mut self, plant: Plant) -> Cluster {
        self.plant = Some(plant);
        self.faults.crash = true;
        if self.next_process_fault_ns.is_none() {
            self.next_process_fault_ns = Some(self.prng.range(1..=NEMESIS_PROCESS_NS_MAX));
        }
        self.report.fault_kinds = self.fault_kinds();
        self
    }

    /// Plants `plant` in the core of every replica (and of every restarted one), with the
    /// faults that expose it.
    #[must_use]
    pub fn with_core_plant(mut self, plant: CorePlant) -> Cluster {
        self.core_plant = Some(plant);
        match plant {
            CorePlant::ReplyBeforePersist | CorePlant::PromiseNotPersisted => {
                self.faults.crash = true;
            }
            CorePlant::LeaseReadWithoutCheckQuorum => {
                if self.isolation.is_none() {
                    let next_ns = self.prng.range(1..=SECOND_NS);
                    self.isolation = Some(MasterIsolation { next_ns, partition: None });
                }
            }
            CorePlant::AcceptUnderUnpreparedBallot | CorePlant::ApplyOutOfOrder => {}
        }
        if (self.faults.crash || self.faults.pause) && self.next_process_fault_ns.is_none() {
            self.next_process_fault_ns = Some(self.prng.range(1..=NEMESIS_PROCESS_NS_MAX));
        }
        self.report.fault_kinds = self.fault_kinds();
        self
    }

    /// The replica of `group` on node `index`, with the core plant in place (a restarted
    /// replica starts without it).
    fn replica_mut(&mut self, index: usize, group: usize) -> &mut Replica {
        let replica = &mut self.nodes[index].replicas[group];
        if replica.plant() != self.core_plant {
            replica.set_plant(self.core_plant);
        }
        replica
    }

    /// The trace lines recorded so far (empty without tracing).
    #[must_use]
    pub fn trace(&self) -> &[String] {
        self.trace.as_deref().unwrap_or(&[])
    }

    fn log(&mut self, line: impl FnOnce() -> String) {
        let now_ns = self.now_ns;
        if let Some(trace) = &mut self.trace {
            trace.push(format!(
                "{:>8}.{:06}ms {}",
                now_ns / MILLISECOND_NS,
                now_ns % 1_000_000,
                line()
            ));
        }
    }

    fn violation(&mut self, what: String) {
        self.log(|| format!("VIOLATION {what}"));
        self.report.violations.push(what);
    }

    /// Runs the faulty phase, heals, runs the liveness phase and the final checks.
    ///
    /// # Panics
    /// If the run exceeds `EVENTS_MAX` events (virtual time stopped advancing).
    #[must_use]
    pub fn run(mut self) -> (RunReport, Vec<String>) {
        self.run_in_place();
        let trace = self.trace.take().unwrap_or_default();
        (self.report, trace)
    }

    /// [`Cluster::run`] without consuming the cluster, so a panic leaves its trace behind.
    fn run_in_place(&mut self) {
        let mut events = 0u64;
        let end_ns = FAULT_PHASE_NS + LIVENESS_NS_MAX + LIVENESS_WINDOW_NS;
        while self.now_ns < end_ns && self.report.violations.is_empty() {
            if self.heal_ns.is_none() && self.now_ns >= FAULT_PHASE_NS {
                self.heal();
            }
            if self.now_ns
                >= FAULT_PHASE_NS + LIVENESS_NS_MAX + LIVENESS_WINDOW_NS - CLIENT_TIMEOUT_NS
            {
                self.issuing = false;
            }
            self.step();
            events += 1;
            assert!(events < EVENTS_MAX, "the run exceeded {EVENTS_MAX} events");
        }
        self.finish();
    }

    /// Advances to the next event and handles everything due then.
    fn step(&mut self) {
        let mut next = u64::MAX;
        let mut consider = |time: Option<u64>| {
            if let Some(time) = time {
                next = next.min(time);
            }
        };
        consider(self.network.next_event_time());
        consider(self.nemesis.next_event_time());
        consider(self.next_process_fault_ns);
        consider(self.next_control_ns);
        consider(self.isolation.as_ref().map(|isolation| isolation.next_ns));
        for node in &self.nodes {
            if node.retired.is_some() {
                continue;
            }
            if node.up && !node.paused {
                consider(Some(node.next_tick_ns));
                consider(node.fetches.iter().map(|fetch| fetch.due_ns).min());
            } else if node.paused || !node.is_booting() {
                consider(Some(node.back_ns));
            }
            if !node.paused {
                consider(node.disk_due_ns);
            }
        }
        for client in &self.clients {
            match &client.pending {
                Some(pending) => {
                    if pending.node.is_none() {
                        consider(Some(pending.next_try_ns));
                    }
                    consider(Some(pending.call_ns + CLIENT_TIMEOUT_NS));
                }
                None if self.issuing => consider(Some(client.next_ns)),
                None => {}
            }
        }
        let end_ns = FAULT_PHASE_NS + LIVENESS_NS_MAX + LIVENESS_WINDOW_NS;
        consider(Some(if self.heal_ns.is_none() { FAULT_PHASE_NS } else { end_ns }));
        self.now_ns = self.now_ns.max(next);
        self.fire_due();
    }

    fn fire_due(&mut self) {
        let now_ns = self.now_ns;
        for change in self.nemesis.step(now_ns, &mut self.network) {
            self.log(|| format!("network {change:?}"));
        }
        if self.next_process_fault_ns.is_some_and(|time| time <= now_ns) {
            self.process_fault();
        }
        if self.next_control_ns.is_some_and(|time| time <= now_ns) {
            self.control();
        }
        self.isolation_due();
        while let Some(delivery) = self.network.pop_due(now_ns) {
            let to = index_of(delivery.to);
            let (group, message) = delivery.message;
            if !self.nodes[to].up {
                continue;
            }
            // Every delivery crosses the production wire format: encode, check, convert.
            let wire_group = GroupId(u32::try_from(group).expect("few groups"));
            let message = crate::wire::through_the_wire(wire_group, &message)
                .expect("the wire carries every message the core sends");
            let from = delivery.from;
            self.log(|| format!("{from}->{} g{group} {message:?}", delivery.to));
            self.input(to, group, |replica, effects| replica.on_message(from, message, effects));
        }
        for node in 0..self.nodes.len() {
            let down = !self.nodes[node].up;
            self.node_due(node);
            if down && self.nodes[node].up {
                self.check_accepts_survived(node);
            }
        }
        for client in 0..self.clients.len() {
            self.client_due(client);
        }
    }

    fn node_due(&mut self, index: usize) {
        let now_ns = self.now_ns;
        let node = &self.nodes[index];
        if node.retired.is_some() {
            return;
        }
        if !node.up && !node.paused && !node.is_booting() && node.back_ns <= now_ns {
            self.restart(index);
            return;
        }
        if node.paused && node.back_ns <= now_ns {
            self.nodes[index].paused = false;
            let id = self.nodes[index].id;
            self.network.resume(now_ns, id);
            self.log(|| format!("resume {id}"));
        }
        if self.nodes[index].paused {
            return;
        }
        if self.nodes[index].disk_due_ns.is_some_and(|due| due <= now_ns) {
            self.disk_due(index);
        }
        if !self.nodes[index].up {
            return;
        }
        while let Some(position) =
            self.nodes[index].fetches.iter().position(|fetch| fetch.due_ns <= now_ns)
        {
            let fetch = self.nodes[index].fetches.remove(position);
            self.fetch_arrived(index, &fetch);
        }
        // A pause stops the process, not its clock: every tick that came due meanwhile is
        // delivered on resume, as a runtime counting ticks from a monotonic clock does. (A
        // pause that swallowed them would stretch the master's lease and check-quorum by the
        // pause: seed 337 served stale lease reads that way.)
        while self.nodes[index].up && self.nodes[index].next_tick_ns <= now_ns {
            let period = self.nodes[index].tick_period_ns();
            self.nodes[index].next_tick_ns += period;
            for group in 0..self.nodes[index].replicas.len() {
                self.input(index, group, Replica::on_tick);
            }
        }
    }

    /// The disk's requests in flight complete: the opener or the storage handles them, then
    /// the storage's events reach the replicas.
    fn disk_due(&mut self, index: usize) {
        self.nodes[index].disk_due_ns = None;
        if std::mem::take(&mut self.nodes[index].crash_at_disk_poll) {
            self.crash(index, true);
            self.after_power_loss(index);
            self.nodes[index].back_ns = self.now_ns + self.prng.range(1..=DOWN_NS_MAX);
            return;
        }
        let mut completions = Vec::new();
        self.nodes[index].disk.poll(&mut completions);
        for mut completion in completions {
            self.inject_disk_error(&mut completion);
            let node = &mut self.nodes[index];
            if let Some(opener) = &mut node.opener {
                if let Some(result) = opener.on_completion(&completion) {
                    self.opened(index, result);
                }
            } else if let Some(storage) = &mut node.storage
                && let Err(error) = storage.on_completion(&completion)
            {
                self.fail_stop(index, &error.to_string());
                return;
            }
        }
        self.storage_events(index);
        self.kick_disk(index);
    }

    /// Turns a successful write or sync into an error, as the write-error and sync-error
    /// faults ask (whether the bytes reached the media is then unknown, as on a real disk).
    fn inject_disk_error(&mut self, completion: &mut Completion) {
        let (enabled, what) = match completion.result {
            Ok(Response::Written) => (self.faults.write_error, "write"),
            Ok(Response::Synced) => (self.faults.sync_error, "sync"),
            _ => return,
        };
        let ppm = if what == "write" { DISK_WRITE_ERROR_PPM } else { DISK_SYNC_ERROR_PPM };
        if enabled && self.prng.chance(ppm) {
            completion.result = Err(DiskError::Io(format!("injected {what} error")));
        }
    }

    /// Hands the disk what the opener or the storage asks for, and schedules its completion.
    fn kick_disk(&mut self, index: usize) {
        loop {
            let node = &mut self.nodes[index];
            let requests = if let Some(opener) = &mut node.opener {
                if let Some(result) = opener.poll_ready() {
                    self.opened(index, result);
                    continue;
                }
                opener.pump()
            } else if let Some(storage) = &mut node.storage {
                storage.pump()
            } else {
                return;
            };
            for (op, request) in requests {
                node.disk.submit(op, request);
            }
            break;
        }
        let recovered = self.nodes[index].storage.as_mut().and_then(Storage::take_recovered);
        if let Some(groups) = recovered {
            self.recovered(index, groups);
        }
        let node = &self.nodes[index];
        let events = node.storage.as_ref().is_some_and(Storage::has_events);
        if node.disk_due_ns.is_none() && (events || node.disk.in_flight_count() > 0) {
            let latency = if events { 0 } else { self.disk_latency_ns() };
            self.nodes[index].disk_due_ns = Some(self.now_ns + latency);
        }
    }

    fn disk_latency_ns(&mut self) -> u64 {
        let max = if self.faults.disk_slow && self.prng.chance(PARTS_PER_MILLION / 10) {
            DISK_SLOW_NS_MAX
        } else {
            DISK_LATENCY_NS_MAX
        };
        self.prng.range(DISK_LATENCY_NS_MIN..=max)
    }

    /// What the storage reported reaches the replicas.
    fn storage_events(&mut self, index: usize) {
        let Some(storage) = self.nodes[index].storage.as_mut() else { return };
        for event in storage.take_events() {
            if !self.nodes[index].up {
                return;
            }
            match event {
                StorageEvent::Persisted { group, id } => {
                    let group = group_index(group);
                    self.input(index, group, |replica, effects| replica.on_persisted(id, effects));
                }
                StorageEvent::SnapshotTaken { group, slot } => {
                    let group = group_index(group);
                    let id = self.nodes[index].id;
                    self.log(|| format!("{id} g{group}: snapshot taken at {slot}"));
                    let node = &mut self.nodes[index];
                    node.snapshot_durable[group] = node.snapshot_writing[group].take();
                    node.replicas[group].on_snapshot_taken(slot);
                    node.replicas[group].check_invariants();
                }
                StorageEvent::SnapshotInstalled { group, meta } => {
                    self.snapshot_installed(index, group_index(group), meta);
                }
                StorageEvent::SnapshotAborted { group, installing, reason } => {
                    let group = group_index(group);
                    let id = self.nodes[index].id;
                    self.log(|| format!("{id} g{group}: snapshot aborted: {reason}"));
                    let node = &mut self.nodes[index];
                    node.snapshot_writing[group] = None;
                    if installing {
                        node.replicas[group].on_snapshot_aborted();
                    }
                }
            }
        }
    }

    /// A snapshot from a peer is durable: the state machine loads it, then the replica.
    fn snapshot_installed(&mut self, index: usize, group: usize, meta: SnapshotMeta) {
        let node = &mut self.nodes[index];
        let copy = node.snapshot_writing[group].take().expect("a snapshot was being installed");
        if meta.slot > node.replicas[group].applied() {
            match Machine::decode(&copy.1) {
                Some(machine) if machine.applied == meta.slot => node.machines[group] = machine,
                _ => {
                    let id = node.id;
                    self.violation(format!("{id} g{group}: snapshot {} does not load", meta.slot));
                    return;
                }
            }
        }
        let id = self.nodes[index].id;
        self.log(|| format!("{id} g{group}: snapshot installed at {}", meta.slot));
        self.nodes[index].snapshot_durable[group] = Some(copy);
        self.input(index, group, |replica, effects| replica.on_snapshot_installed(meta, effects));
    }

    /// A snapshot asked for by `SnapshotWanted` arrives, or the fetch fails.
    fn fetch_arrived(&mut self, index: usize, fetch: &Fetch) {
        let to = self.nodes[index].id;
        let from = &self.nodes[index_of(fetch.from)];
        let partition = self.network.partition();
        let reachable = from.up
            && !from.paused
            && !partition.is_blocked(fetch.from, to)
            && !partition.is_blocked(to, fetch.from);
        let group = fetch.group;
        let offered = from.snapshot_durable[group].clone();
        let applied = self.nodes[index].replicas[group].applied();
        let copy = offered.filter(|(meta, _)| reachable && meta.slot >= fetch.slot);
        let started = copy.filter(|(meta, _)| meta.slot > applied).is_some_and(|copy| {
            let node = &mut self.nodes[index];
            let storage = node.storage.as_mut().expect("an up node has its storage");
            let result = storage.install_snapshot(GroupId(to_u32(group)), &copy.0, &copy.1);
            result.is_ok() && node.snapshot_writing[group].replace(copy).is_none()
        });
        let from = fetch.from;
        self.log(|| format!("{to} g{group}: snapshot from {from} started={started}"));
        if started {
            self.kick_disk(index);
        } else {
            self.nodes[index].replicas[group].on_snapshot_aborted();
        }
    }

    /// Crashes or pauses a node (if that fault is enabled and every node that may run runs).
    fn process_fault(&mut self) {
        let now_ns = self.now_ns;
        self.next_process_fault_ns = Some(now_ns + self.prng.range(1..=NEMESIS_PROCESS_NS_MAX));
        let live: Vec<usize> =
            (0..self.nodes.len()).filter(|index| self.nodes[*index].retired.is_none()).collect();
        let all_running = live.iter().all(|index| {
            let node = &self.nodes[*index];
            node.up && !node.paused
        });
        if !all_running {
            return;
        }
        let index = live[self.prng.below_usize(live.len())];
        let back_ns = now_ns + self.prng.range(1..=DOWN_NS_MAX);
        let crash = match (self.faults.crash, self.faults.pause) {
            (true, true) => self.prng.chance(PARTS_PER_MILLION / 2),
            (crash, _) => crash,
        };
        let id = self.nodes[index].id;
        if crash && self.faults.torn_write && self.prng.chance(PARTS_PER_MILLION / 2) {
            // The power fails while the disk is busy: at the node's next disk poll.
            self.nodes[index].crash_at_disk_poll = true;
            self.log(|| format!("power loss of {id} at its next disk poll"));
            return;
        } else if crash {
            self.crash(index, self.faults.torn_write);
            self.after_power_loss(index);
        } else {
            self.nodes[index].paused = true;
            self.network.pause(id);
            self.log(|| format!("pause {id}"));
        }
        self.nodes[index].back_ns = back_ns;
    }

    /// A control action on one group's serving master: a leader transfer to a random voter,
    /// or the next step of the membership cycle (remove a voter; add it back as a learner;
    /// promote it). Refusals (a change or transfer in progress) are simply retried later.
    fn control(&mut self) {
        let now_ns = self.now_ns;
        self.next_control_ns = Some(now_ns + self.prng.range(1..=CONTROL_NS_MAX));
        let group = self.prng.below_usize(self.nodes[0].replicas.len());
        let Some(index) = (0..self.nodes.len()).find(|&index| {
            let node = &self.nodes[index];
            node.up && !node.paused && node.replicas[group].is_serving()
        }) else {
            return;
        };
        let membership = match (self.faults.transfer, self.faults.membership) {
            (true, true) => self.prng.chance(PARTS_PER_MILLION / 2),
            (_, membership) => membership,
        };
        let replica = &self.nodes[index].replicas[group];
        let own = replica.node();
        let current = replica.configuration(Slot(u64::MAX)).clone();
        let voters: Vec<NodeId> =
            current.voters().iter().copied().filter(|voter| *voter != own).collect();
        let master = self.nodes[index].id;
        if !membership {
            if voters.is_empty() {
                return;
            }
            let target = voters[self.prng.below_usize(voters.len())];
            self.log(|| format!("control g{group}: transfer {master} -> {target}"));
            self.input(index, group, |replica, effects| {
                let _refused = replica.transfer(target, effects);
            });
            return;
        }
        let Some(next) = self.next_membership(&current, &voters) else { return };
        self.log(|| format!("control g{group}: {master} proposes {next:?}"));
        self.input(index, group, |replica, effects| {
            let _refused = replica.propose_membership(next, effects);
        });
    }

    /// The next step of the membership cycle from `current` (`others`: the voters other than
    /// the master): remove a node whose log is damaged (it stays down; an operator removes
    /// it), else promote a learner, else add back a node that is no member, else remove a
    /// voter other than the master (never below two voters, or three while a node may lose
    /// its log, so one damaged node never leaves a group without a live majority).
    fn next_membership(&mut self, current: &Membership, others: &[NodeId]) -> Option<Membership> {
        let epoch = current.epoch + 1;
        let mut voters = current.voters().clone();
        let mut learners = current.learners().clone();
        let retired: BTreeSet<NodeId> =
            self.nodes.iter().filter(|node| node.retired.is_some()).map(|node| node.id).collect();
        let floor = if self.corrupt_node.is_some() { 3 } else { 2 };
        if let Some(dead) = current.members().intersection(&retired).next().copied() {
            voters.remove(&dead);
            learners.remove(&dead);
        } else if let Some(learner) = learners.pop_first() {
            voters.insert(learner);
        } else if let Some(outsider) = self
            .nodes
            .iter()
            .map(|node| node.id)
            .find(|id| !current.members().contains(id) && !retired.contains(id))
        {
            learners.insert(outsider);
        } else if others.len() >= floor {
            voters.remove(&others[self.prng.below_usize(others.len())]);
        } else {
            return None;
        }
        Membership::majority(epoch, voters, learners).ok()
    }

    /// A crash: the node's memory is lost. A power loss (`torn-write`) also loses or tears
    /// the writes not yet synced; a process crash leaves them to the page cache.
    fn crash(&mut self, index: usize, power_loss: bool) {
        self.report.crashes += 1;
        let seed = self.prng.next_u64();
        let node = &mut self.nodes[index];
        node.storage = None;
        node.opener = None;
        node.disk_due_ns = None;
        node.crash_at_disk_poll = false;
        node.fetches.clear();
        node.snapshot_writing.iter_mut().for_each(|writing| *writing = None);
        let in_flight = node.disk.in_flight_count();
        let writes = node.disk.stats.writes;
        if power_loss {
            node.disk = node.disk.crash(seed);
        } else {
            // The kernel finishes what was submitted; nobody hears about it.
            let mut completions = Vec::new();
            while node.disk.in_flight_count() > 0 {
                node.disk.poll(&mut completions);
            }
        }
        node.up = false;
        let id = node.id;
        self.network.discard_node(id);
        let how = if power_loss { "power loss" } else { "process crash" };
        self.log(|| {
            format!("crash {id} ({how}, {in_flight} disk requests in flight, {writes} written)")
        });
    }

    /// What a crashed node's media suffers while it is down: bit rot, on the corrupted node.
    fn after_power_loss(&mut self, index: usize) {
        if self.faults.bit_rot && self.corrupt_node == Some(index) {
            self.rot_a_bit(index);
        }
    }

    /// Bit rot in the corrupted node's files while it is down.
    fn rot_a_bit(&mut self, index: usize) {
        let files: Vec<_> =
            self.nodes[index].disk.list().into_iter().filter(|(_, size)| *size > 0).collect();
        let Some(&(file, size)) = self.prng.choose(&files) else { return };
        let offset = usize::try_from(self.prng.below(size)).expect("fits");
        let bit = u8::try_from(self.prng.below(8)).expect("below 8");
        self.nodes[index].disk.flip_bit(file, offset, bit);
        let id = self.nodes[index].id;
        self.log(|| format!("bit rot on {id}: {file} byte {offset} bit {bit}"));
    }

    /// A write or sync failed: the node stops (the process would exit with
    /// `EXIT_CODE_STORAGE_FAILURE`) and restarts later.
    fn fail_stop(&mut self, index: usize, why: &str) {
        let id = self.nodes[index].id;
        self.log(|| format!("fail-stop {id}: {why} (exit code {EXIT_CODE_STORAGE_FAILURE})"));
        self.crash(index, false);
        let down_ns = if self.heal_ns.is_some() { 0 } else { self.prng.range(1..=DOWN_NS_MAX) };
        self.nodes[index].back_ns = self.now_ns + down_ns;
    }

    /// The node's log is damaged: it stays down for the rest of the run.
    fn retire(&mut self, index: usize, why: String) {
        let id = self.nodes[index].id;
        self.log(|| format!("{id} stays down: {why}"));
        if self.corrupt_node != Some(index) {
            self.violation(format!("{id}: log damaged without injected corruption: {why}"));
        }
        let node = &mut self.nodes[index];
        node.storage = None;
        node.opener = None;
        node.disk_due_ns = None;
        node.up = false;
        node.retired = Some(why);
    }

    /// The process starts again: it opens its log (the production opener over its disk).
    fn restart(&mut self, index: usize) {
        let id = self.nodes[index].id;
        self.log(|| format!("restart {id}: opening the log"));
        let node = &mut self.nodes[index];
        node.open_attempts = 1;
        node.opener = Some(Opener::new(SIM_WRITER_OPTIONS, identity(id), node.disk.list()));
        self.kick_disk(index);
    }

    /// Opening finished: recover every group, open again after a read error, or stay down.
    fn opened(&mut self, index: usize, result: Result<Opened, OpenError>) {
        let node = &mut self.nodes[index];
        node.opener = None;
        match result {
            Ok(opened) => {
                let groups: Vec<GroupId> = (0..GROUP_COUNT).map(GroupId).collect();
                let initial = initial_meta(&self.membership);
                node.storage = Some(Storage::recover(opened, &groups, &initial));
            }
            Err(OpenError::Disk { file, error }) if node.open_attempts < OPEN_ATTEMPTS_MAX => {
                node.open_attempts += 1;
                node.opener =
                    Some(Opener::new(SIM_WRITER_OPTIONS, identity(node.id), node.disk.list()));
                let id = node.id;
                self.log(|| format!("{id}: opening failed on {file} ({error}); again"));
            }
            Err(error) => self.retire(index, format!("cannot open its log: {error}")),
        }
    }

    /// Every group is recovered: restart the replicas and their state machines, or stay
    /// down if any group's log is damaged.
    fn recovered(
        &mut self,
        index: usize,
        groups: BTreeMap<GroupId, Result<RecoveredGroup, String>>,
    ) {
        let damage = groups.iter().find_map(|(group, result)| {
            result.as_ref().err().map(|damage| format!("{group}: {damage}"))
        });
        if let Some(damage) = damage {
            self.retire(index, format!("recovery found damage: {damage}"));
            return;
        }
        let now_ns = self.now_ns;
        let id = self.nodes[index].id;
        for (group_id, result) in groups {
            let recovered = result.expect("no damage");
            let group = group_index(group_id);
            let meta = recovered.durable.snapshot.clone();
            let machine = match &recovered.state {
                None => Some(Machine::new()),
                Some(state) => {
                    Machine::decode(state).filter(|machine| machine.applied == meta.slot)
                }
            };
            let Some(machine) = machine else {
                self.violation(format!("{id} g{group}: snapshot {} does not load", meta.slot));
                return;
            };
            let options = replica_options(id, group_id.0, self.prng.next_u64(), now_ns);
            let replica = Replica::restart(options, recovered.durable);
            let announced = self.nodes[index].announced[group];
            if replica.promised() < announced {
                let promised = replica.promised();
                self.violation(format!(
                    "{id} g{group}: promised {promised} after restart, below {announced} announced"
                ));
            }
            let node = &mut self.nodes[index];
            node.replicas[group] = replica;
            node.machines[group] = machine;
            node.snapshot_durable[group] = recovered.state.map(|state| (meta, Arc::from(state)));
        }
        self.log(|| format!("{id} recovered"));
        let node = &mut self.nodes[index];
        node.up = true;
        node.next_tick_ns = now_ns + node.tick_period_ns();
    }

    /// Heals every fault: the network, paused and crashed nodes, slow disks.
    fn heal(&mut self) {
        self.heal_ns = Some(self.now_ns);
        self.log(|| "heal".to_string());
        for change in self.nemesis.stop(&mut self.network) {
            self.log(|| format!("network {change:?}"));
        }
        self.network.set_faults(NetworkFaults::none());
        self.next_process_fault_ns = None;
        self.next_control_ns = None;
        self.faults.disk_slow = false;
        self.faults.write_error = false;
        self.faults.sync_error = false;
        let now_ns = self.now_ns;
        for node in &mut self.nodes {
            node.back_ns = node.back_ns.min(now_ns);
            node.crash_at_disk_poll = false;
        }
    }

    /// Runs `f` on one replica, checks it and carries out its effects.
    fn input(
        &mut self,
        index: usize,
        group: usize,
        f: impl FnOnce(&mut Replica, &mut Vec<Effect>),
    ) {
        let mut effects = Vec::new();
        let replica = self.replica_mut(index, group);
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            f(replica, &mut effects);
            replica.check_invariants();
        }));
        if let Err(panic) = outcome {
            // An assertion of the core: a violation of this seed; the trace so far is kept.
            let id = self.nodes[index].id;
            self.violation(format!("{id} g{group} panicked: {}", panic_message(&*panic)));
            return;
        }
        self.note_accepts(index, group, &effects);
        self.effects(index, group, effects);
    }

    /// Notes the acceptances a replica announces (only `input` carries acceptor effects).
    fn note_accepts(&mut self, index: usize, group: usize, effects: &[Effect]) {
        for effect in effects {
            if let Effect::Send { message: Message::Accepted(accepted), .. } = effect {
                let noted = self
                    .accepts_announced
                    .entry((index, group, accepted.slot()))
                    .or_insert(accepted.ballot());
                *noted = (*noted).max(accepted.ballot());
            }
        }
    }

    /// Checker: a restarted acceptor still holds every acceptance it announced (under that
    /// ballot or a later one), unless it knows the slot chosen or truncated it.
    fn check_accepts_survived(&mut self, index: usize) {
        let mut lost = Vec::new();
        let this_node = (index, 0, Slot(0))..(index + 1, 0, Slot(0));
        for (&(_, group, slot), ballot) in self.accepts_announced.range(this_node) {
            let replica = &self.nodes[index].replicas[group];
            let held = replica.accepted(slot);
            let kept = slot < replica.truncation()
                || replica.chosen(slot).is_some()
                || held.is_some_and(|(at, _)| at >= *ballot);
            if !kept {
                lost.push((group, slot, *ballot, held.map(|(at, _)| at)));
            }
        }
        let id = self.nodes[index].id;
        if let Some((group, slot, ballot, held)) = lost.first() {
            self.violation(format!(
                "{id} g{group}: after restart holds {slot} under {held:?}, announced accepted \
                 under {ballot} ({} such)",
                lost.len()
            ));
        }
    }

    fn effects(&mut self, index: usize, group: usize, effects: Vec<Effect>) {
        let id = self.nodes[index].id;
        let mut storage_used = false;
        for effect in effects {
            match effect {
                Effect::Send { to, message } => {
                    let announced = match &message {
                        Message::Promise(promise) => Some(promise.ballot()),
                        Message::Accepted(accepted) => Some(accepted.ballot()),
                        _ => None,
                    };
                    if let Some(ballot) = announced {
                        let slot = &mut self.nodes[index].announced[group];
                        *slot = (*slot).max(ballot);
                    }
                    self.network.send(self.now_ns, id, to, (group, message));
                }
                Effect::Persist { id: persist, promised, records, chosen } => {
                    let (promised, records) = match self.plant {
                        Some(Plant::PromiseNotPersisted) => (None, records),
                        Some(Plant::AcceptNotPersisted) => (promised, Vec::new()),
                        None => (promised, records),
                    };
                    let Some(storage) = self.nodes[index].storage.as_mut() else { continue };
                    let group_id = GroupId(to_u32(group));
                    if let Err(error) =
                        storage.persist(group_id, persist, promised, &records, &chosen)
                    {
                        self.violation(format!("{id} g{group}: persist refused: {error}"));
                    }
                    storage_used = true;
                }
                Effect::Apply { slot, value } => self.apply(index, group, slot, &value),
                Effect::ReadReady { id } => self.read_ready(index, group, id),
                Effect::ReadAborted { id } => self.read_aborted(index, group, id),
                Effect::TakeSnapshot { meta } => {
                    self.take_snapshot(index, group, meta);
                    storage_used = true;
                }
                Effect::SnapshotWanted { from, slot } => {
                    let due_ns =
                        self.now_ns + self.prng.range(MILLISECOND_NS..=SNAPSHOT_FETCH_NS_MAX);
                    self.nodes[index].fetches.push(Fetch { due_ns, group, from, slot });
                }
            }
        }
        if storage_used {
            self.kick_disk(index);
        }
    }

    /// Writes a snapshot of the state machine, which is exactly at `meta.slot` (the replica
    /// asks right after applying up to it).
    fn take_snapshot(&mut self, index: usize, group: usize, meta: SnapshotMeta) {
        let id = self.nodes[index].id;
        let node = &mut self.nodes[index];
        let machine = &node.machines[group];
        if machine.applied != meta.slot {
            let applied = machine.applied;
            self.violation(format!(
                "{id} g{group}: snapshot at {} of a machine at {applied}",
                meta.slot
            ));
            return;
        }
        let state: Arc<[u8]> = Arc::from(machine.encode());
        let Some(storage) = node.storage.as_mut() else { return };
        match storage.take_snapshot(GroupId(to_u32(group)), &meta, &state) {
            Ok(()) => node.snapshot_writing[group] = Some((meta, state)),
            // The replica is not told: it keeps its log and asks again after a restart.
            Err(error) => self.log(|| format!("{id} g{group}: no snapshot: {error}")),
        }
    }

    fn apply(&mut self, index: usize, group: usize, slot: Slot, value: &Value) {
        let id = self.nodes[index].id;
        match self.chosen.get(&(group, slot)) {
            Some(first) if first != value => {
                let what = format!("g{group} slot {slot}: {id} applied {value:?}, else {first:?}");
                self.violation(what);
            }
            Some(_) => {}
            None => {
                self.chosen.insert((group, slot), value.clone());
            }
        }
        let machine = &mut self.nodes[index].machines[group];
        if machine.applied != slot {
            let next = machine.applied;
            self.violation(format!("{id} g{group}: applied {slot}, expected {next}"));
        }
        let machine = &mut self.nodes[index].machines[group];
        machine.applied = Slot(slot.0 + 1);
        let output = match &value.kind {
            ValueKind::Batch(batch) => {
                let op = decode(batch);
                machine.apply(&op).map(|output| (op.op, output))
            }
            _ => None,
        };
        let hash = machine.hash();
        match self.hashes.get(&(group, slot)) {
            Some(&first) if first != hash => {
                self.violation(format!("g{group} slot {slot}: {id} state hash differs"));
            }
            Some(_) => {}
            None => {
                self.hashes.insert((group, slot), hash);
            }
        }
        if let Some((op, output)) = output {
            self.complete(index, group, slot, op, output);
        }
    }

    /// The client of `group` waiting on `op` at node `index`, through the log or (`read`) the
    /// master's read path.
    fn waiting_client(&self, index: usize, group: usize, op: u64, read: bool) -> Option<usize> {
        self.clients.iter().position(|client| {
            client.group == group
                && client.pending.as_ref().is_some_and(|pending| {
                    pending.op.op == op && pending.node == Some(index) && pending.read == read
                })
        })
    }

    /// The client waiting on `op` at node `index` learns `output`.
    fn complete(&mut self, index: usize, group: usize, slot: Slot, op: u64, output: KvOutput) {
        let Some(client) = self.waiting_client(index, group, op, false) else {
            return;
        };
        let what = format!("slot {slot}");
        self.returned(client, output, &what);
    }

    /// A read at node `index` may run: the client learns the value its state machine holds
    /// now (every slot the read must see is applied: `Apply` effects come first).
    fn read_ready(&mut self, index: usize, group: usize, id: ReadId) {
        let Some(client) = self.waiting_client(index, group, id.0, true) else {
            return;
        };
        let pending = self.clients[client].pending.as_ref().expect("pending");
        let machine = &self.nodes[index].machines[group];
        let output = KvOutput::Value(machine.data.get(&pending.op.input.key).cloned());
        let what = format!("read at {} applied {}", self.nodes[index].id, machine.applied);
        self.returned(client, output, &what);
    }

    /// A read at node `index` was aborted (its master stepped down): nothing happened, the
    /// client retries elsewhere.
    fn read_aborted(&mut self, index: usize, group: usize, id: ReadId) {
        let Some(client) = self.waiting_client(index, group, id.0, true) else {
            return;
        };
        let now_ns = self.now_ns;
        let client = &mut self.clients[client];
        client.master_hint = None;
        let pending = client.pending.as_mut().expect("pending");
        pending.node = None;
        pending.next_try_ns = now_ns + CLIENT_RETRY_NS;
        let client_id = client.id;
        self.log(|| format!("client {client_id} op {} read aborted", id.0));
    }

    /// Client number `index` learns `output` for its pending op.
    fn returned(&mut self, index: usize, output: KvOutput, what: &str) {
        let now_ns = self.now_ns;
        let client = &mut self.clients[index];
        let pending = client.pending.take().expect("pending");
        client.next_ns = now_ns + self.prng.below(CLIENT_THINK_NS_MAX);
        let (client_id, group, op) = (client.id, client.group, pending.op.op);
        self.log(|| format!("client {client_id} op {op} returned {output:?} ({what})"));
        self.report.returned += 1;
        if !matches!(pending.op.input.command, KvCommand::Get) {
            self.acknowledged.push((group, op));
        }
        self.histories[group].push(linearizability::Operation::returned(
            client_id,
            pending.op.input,
            pending.call_ns,
            now_ns,
            output,
        ));
    }

    fn client_due(&mut self, index: usize) {
        let now_ns = self.now_ns;
        let client = &self.clients[index];
        match &client.pending {
            None if self.issuing && client.next_ns <= now_ns => {
                let reader = client.reader;
                let input = self.draw_input(reader);
                let read = matches!(input.command, KvCommand::Get)
                    && (reader || self.prng.chance(CLIENT_READ_PATH_PPM));
                let op = self.next_op;
                self.next_op += 1;
                self.report.ops += 1;
                let client = &mut self.clients[index];
                client.pending = Some(Pending {
                    op: EncodedOp { op, input },
                    call_ns: now_ns,
                    node: None,
                    next_try_ns: now_ns,
                    read,
                });
                self.try_propose(index);
            }
            Some(pending) if pending.call_ns + CLIENT_TIMEOUT_NS <= now_ns => {
                let pending = self.clients[index].pending.take().expect("pending");
                let client = &mut self.clients[index];
                client.next_ns = now_ns;
                client.master_hint = None;
                let client_id = client.id;
                let group = client.group;
                if self.heal_ns.is_some_and(|heal| pending.call_ns >= heal + LIVENESS_NS_MAX) {
                    self.violation(format!(
                        "liveness: client {client_id} op {} called {}ns after the heal timed out",
                        pending.op.op,
                        pending.call_ns - self.heal_ns.unwrap_or(0),
                    ));
                }
                self.log(|| format!("client {client_id} op {} timed out", pending.op.op));
                self.histories[group].push(linearizability::Operation::unknown(
                    client_id,
                    pending.op.input,
                    pending.call_ns,
                ));
            }
            Some(pending) if pending.node.is_none() && pending.next_try_ns <= now_ns => {
                self.try_propose(index);
            }
            _ => {}
        }
    }

    /// A random command on a random key; a reader's are GETs.
    fn draw_input(&mut self, reader: bool) -> KvInput {
        let key = Bytes::from(format!("k{}", self.prng.below(KEY_COUNT)).as_str());
        let value = Bytes::from(format!("v{}", self.prng.below(KEY_COUNT)).as_str());
        let command = match if reader { 0 } else { self.prng.below(6) } {
            0 | 1 => KvCommand::Get,
            2 => KvCommand::Set(value),
            3 => KvCommand::Incr,
            4 => KvCommand::Del,
            _ => {
                let expected = Bytes::from(format!("v{}", self.prng.below(KEY_COUNT)).as_str());
                KvCommand::Cas { expected: Some(expected), new: Some(value) }
            }
        };
        KvInput { key, command }
    }

    /// Proposes the client's pending op at its master hint (or a random node).
    fn try_propose(&mut self, index: usize) {
        let now_ns = self.now_ns;
        let client = &self.clients[index];
        let group = client.group;
        let node = match client.master_hint {
            Some(node) => node,
            None => self.prng.below_usize(self.nodes.len()),
        };
        let pending = self.clients[index].pending.clone().expect("pending");
        if !self.nodes[node].up || self.nodes[node].paused {
            let client = &mut self.clients[index];
            client.master_hint = None;
            client.pending.as_mut().expect("pending").next_try_ns = now_ns + CLIENT_RETRY_NS;
            return;
        }
        let mut effects = Vec::new();
        let replica = self.replica_mut(node, group);
        let result = if pending.read {
            let path = replica.read(ReadId(pending.op.op), &mut effects);
            path.map(|path| format!("read ({path:?})"))
        } else {
            let batch: Arc<[u8]> = Arc::from(encode(&pending.op));
            replica.propose(batch, &mut effects).map(|slot| format!("proposed {slot}"))
        };
        replica.check_invariants();
        let client = &mut self.clients[index];
        match result {
            Ok(what) => {
                client.master_hint = Some(node);
                client.pending.as_mut().expect("pending").node = Some(node);
                let client_id = client.id;
                let op = pending.op.op;
                let node_id = self.nodes[node].id;
                self.log(|| format!("client {client_id} op {op} {what} at {node_id}"));
            }
            Err(error) => {
                client.master_hint = match error {
                    ProposeError::NotMaster { master: Some(master) } => Some(index_of(master)),
                    _ => None,
                };
                client.pending.as_mut().expect("pending").next_try_ns = now_ns + CLIENT_RETRY_NS;
            }
        }
        self.effects(node, group, effects);
    }

    /// End of run: pending requests become unknown; durability and linearizability checks.
    fn finish(&mut self) {
        for index in 0..self.clients.len() {
            if let Some(pending) = self.clients[index].pending.take() {
                let client = &self.clients[index];
                self.histories[client.group].push(linearizability::Operation::unknown(
                    client.id,
                    pending.op.input,
                    pending.call_ns,
                ));
            }
        }
        if !self.report.violations.is_empty() {
            return;
        }
        // Every acknowledged write is in the state of every replica that caught up.
        for group in 0..self.histories.len() {
            let top = self.nodes.iter().map(|node| node.machines[group].applied).max();
            for node in &self.nodes {
                let machine = &node.machines[group];
                if Some(machine.applied) != top {
                    continue;
                }
                for &(_, op) in self.acknowledged.iter().filter(|(g, _)| *g == group) {
                    if !machine.ops.contains(&op) {
                        let what = format!("{} g{group}: acknowledged op {op} lost", node.id);
                        self.report.violations.push(what);
                    }
                }
            }
        }
        // At least one request per group returned after the liveness bound.
        for group in 0..self.histories.len() {
            let heal = self.heal_ns.unwrap_or(0);
            let late = self.histories[group].iter().any(|operation| {
                operation.call_time >= heal + LIVENESS_NS_MAX && operation.return_time().is_some()
            });
            if !late {
                self.report
                    .violations
                    .push(format!("liveness: g{group} completed nothing after the heal"));
            }
        }
        for (group, history) in self.histories.iter().enumerate() {
            let report = linearizability::check(&KvModel, history);
            match report.verdict {
                linearizability::Verdict::NotLinearizable(counterexample) => {
                    let what =
                        format!("g{group} not linearizable: {}", counterexample.describe(history));
                    self.report.violations.push(what);
                }
                linearizability::Verdict::Unknown { .. } => {
                    self.report.linearizability_unknown += 1;
                }
                linearizability::Verdict::Linearizable => {}
            }
        }
    }
}

fn replica_options(node: NodeId, group: u32, seed: u64, now_ns: u64) -> Options {
    Options {
        node,
        group: GroupId(group),
        seed,
        clock_origin_millis: now_ns / MILLISECOND_NS,
        snapshot_interval_slots: SIM_SNAPSHOT_INTERVAL_SLOTS,
    }
}

/// The message of a caught panic.
fn panic_message(panic: &(dyn std::any::Any + Send)) -> &str {
    panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("a panic without a message")
}

/// `CLIENTS_PER_GROUP` clients per group, the first of each a reader.
fn new_clients(groups: usize, prng: &mut Prng) -> Vec<Client> {
    let mut clients = Vec::new();
    for group in 0..groups {
        for index in 0..CLIENTS_PER_GROUP {
            let id = u64::try_from(group).expect("fits") * CLIENTS_PER_GROUP + index;
            let next_ns = prng.below(CLIENT_THINK_NS_MAX);
            let reader = index == 0;
            let master_hint = None;
            clients.push(Client { id, group, pending: None, next_ns, master_hint, reader });
        }
    }
    clients
}

fn index_of(node: NodeId) -> usize {
    usize::try_from(node.get() - 1).expect("fits")
}

fn group_index(group: GroupId) -> usize {
    usize::try_from(group.0).expect("fits")
}

fn to_u32(group: usize) -> u32 {
    u32::try_from(group).expect("few groups")
}

/// The superblock identity of a node's (one core's) log.
fn identity(node: NodeId) -> Superblock {
    Superblock::new(1, node, CoreIndex(0))
}

/// What a group without a snapshot starts from.
fn initial_meta(membership: &Membership) -> SnapshotMeta {
    SnapshotMeta {
        slot: Slot(0),
        configurations: vec![(Slot(0), membership.clone())],
        stamp_millis: 0,
    }
}

/// A new node's disk with its log opened and formatted (before the run starts, so no fault
/// meets it), and the storage over it.
fn format_disk(node: NodeId, mut disk: SimDisk) -> (SimDisk, Storage) {
    let mut opener = Opener::new(SIM_WRITER_OPTIONS, identity(node), disk.list());
    let mut completions = Vec::new();
    let opened = loop {
        if let Some(result) = opener.poll_ready() {
            break result.expect("an empty disk opens");
        }
        for (op, request) in opener.pump() {
            disk.submit(op, request);
        }
        disk.poll(&mut completions);
        if let Some(result) = completions.drain(..).find_map(|c| opener.on_completion(&c)) {
            break result.expect("an empty disk opens");
        }
    };
    let mut storage = Storage::new(opened.log);
    while !storage.is_formatted() {
        for (op, request) in storage.pump() {
            disk.submit(op, request);
        }
        disk.poll(&mut completions);
        for completion in completions.drain(..) {
            storage.on_completion(&completion).expect("formatting an empty disk");
        }
    }
    (disk, storage)
}

/// Runs one seed, with `plant` planted if given; the report and the trace (empty without
/// `trace`).
///
/// A panic during the run (an assertion of the core or of the harness) becomes a violation.
#[must_use]
pub fn run_seed(seed: u64, trace: bool, plant: Option<Planted>) -> (RunReport, Vec<String>) {
    let cluster = Cluster::new(seed, trace);
    let mut cluster = match plant {
        Some(Planted::Disk(plant)) => cluster.with_plant(plant),
        Some(Planted::Core(plant)) => cluster.with_core_plant(plant),
        None => cluster,
    };
    // An assertion of the core (or of the harness) is a violation of this seed, not the end
    // of the whole run; the trace up to the panic is kept for the replay.
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| cluster.run_in_place()));
    if let Err(panic) = outcome {
        let what = format!("panic: {}", panic_message(&*panic));
        cluster.log(|| format!("VIOLATION {what}"));
        cluster.report.violations.push(what);
    }
    let trace = cluster.trace.take().unwrap_or_default();
    (cluster.report, trace)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consensus::DurableState;

    #[test]
    fn an_op_round_trips_through_its_encoding() {
        let ops = [
            KvCommand::Get,
            KvCommand::Set(Bytes::from("v")),
            KvCommand::Del,
            KvCommand::SetNx(Bytes::from("x")),
            KvCommand::Incr,
            KvCommand::Cas { expected: None, new: Some(Bytes::from("n")) },
        ];
        for (op, command) in ops.into_iter().enumerate() {
            let op = EncodedOp {
                op: u64::try_from(op).unwrap(),
                input: KvInput { key: Bytes::from("key"), command },
            };
            assert_eq!(decode(&encode(&op)), op);
        }
    }

    #[test]
    fn twenty_seeds_run_clean() {
        for seed in 0..20 {
            let (report, _) = run_seed(seed, false, None);
            assert!(report.violations.is_empty(), "seed {seed}: {report:?}");
            assert!(report.returned > 0, "seed {seed}: nothing returned");
        }
    }

    /// Seeds each plant must be caught within (each is caught within the first six today).
    const PLANT_SEEDS_MAX: u64 = 16;

    /// The checker expected to catch `plant`: words of its violation (any one suffices).
    fn expected_checker(plant: Planted) -> &'static [&'static str] {
        match plant {
            // Acceptances announced before their write: lost by a crash, seen at the restart,
            // or, when a quorum counted on the lost acceptance first, as two values chosen.
            Planted::Core(CorePlant::ReplyBeforePersist)
            | Planted::Disk(Plant::AcceptNotPersisted) => {
                &["after restart holds", "applied Value", "chosen twice", "proposed another value"]
            }
            // The promise never regresses across a restart.
            Planted::Core(CorePlant::PromiseNotPersisted)
            | Planted::Disk(Plant::PromiseNotPersisted) => &["after restart, below"],
            // One value per slot: the harness's check at apply, or the core's own assertion;
            // or, when acceptors that know the slot chosen ignore the usurper's other value
            // (an Accept below the choosing ballot), the usurper's clients never complete.
            Planted::Core(CorePlant::AcceptUnderUnpreparedBallot) => {
                &["applied Value", "chosen twice", "proposed another value", "liveness"]
            }
            Planted::Core(CorePlant::ApplyOutOfOrder) => &[", expected s"],
            Planted::Core(CorePlant::LeaseReadWithoutCheckQuorum) => &["not linearizable"],
        }
    }

    /// Every disk fault at once, on a few seeds: corruption keeps its node down, fail-stops
    /// restart, and the checkers still pass.
    #[test]
    fn every_disk_fault_runs_clean() {
        let mut retired = 0;
        for seed in 0..4 {
            let mut faults = SimFaults::swarm(&mut Prng::new(seed));
            faults.crash = true;
            faults.torn_write = true;
            faults.read_error = true;
            faults.misdirected_write = true;
            faults.bit_rot = true;
            faults.write_error = true;
            faults.sync_error = true;
            let (report, trace) = Cluster::with_faults(seed, faults, true).run();
            assert!(report.violations.is_empty(), "seed {seed}: {report:?}");
            assert!(report.fault_kinds.contains(&"torn-write"));
            assert!(trace.iter().any(|line| line.contains("recovered")), "seed {seed}");
            retired += usize::from(trace.iter().any(|line| line.contains("stays down")));
        }
        assert!(retired > 0, "corruption was never detected");
    }

    /// The snapshot paths of the harness, forced (the core asks for a snapshot only every
    /// `SNAPSHOT_INTERVAL_SLOTS`, near the end of a run): node 1 snapshots group 0, node 3
    /// loses its log but not its promise, fetches node 1's snapshot, installs it, restores its
    /// state machine from it and applies on from there, and every checker agrees.
    #[test]
    fn a_snapshot_taken_on_one_node_installs_on_another() {
        let faults = SimFaults {
            nodes: NODE_COUNT_SMALL,
            network: NetworkFaults::none(),
            crash: false,
            pause: false,
            drift: false,
            disk_slow: false,
            torn_write: false,
            read_error: false,
            misdirected_write: false,
            bit_rot: false,
            write_error: false,
            sync_error: false,
            transfer: false,
            membership: false,
        };
        let mut cluster = Cluster::with_faults(3, faults, true);
        while cluster.now_ns < 2 * SECOND_NS {
            cluster.step();
        }
        let slot = cluster.nodes[0].machines[0].applied;
        assert!(slot > Slot(10), "the workload applied something");
        cluster.take_snapshot(0, 0, initial_meta(&cluster.membership));
        assert!(!cluster.report.violations.is_empty(), "a snapshot off the applied slot");
        cluster.report.violations.clear();
        let meta = SnapshotMeta { slot, ..initial_meta(&cluster.membership) };
        cluster.take_snapshot(0, 0, meta.clone());
        cluster.kick_disk(0);
        while cluster.nodes[0].snapshot_durable[0].is_none() {
            cluster.step();
        }
        assert!(cluster.nodes[0].replicas[0].truncation() > Slot(0));
        // Node 3 keeps its promise and nothing else.
        let promised = cluster.nodes[2].replicas[0].promised();
        let durable =
            DurableState { promised, snapshot: initial_meta(&cluster.membership), records: vec![] };
        let options = replica_options(cluster.nodes[2].id, 0, 5, cluster.now_ns);
        cluster.nodes[2].replicas[0] = Replica::restart(options, durable);
        cluster.nodes[2].machines[0] = Machine::new();
        let from = cluster.nodes[0].id;
        let due_ns = cluster.now_ns;
        cluster.nodes[2].fetches.push(Fetch { due_ns, group: 0, from, slot: Slot(1) });
        let end_ns = cluster.now_ns + 3 * SECOND_NS;
        while cluster.now_ns < end_ns && cluster.report.violations.is_empty() {
            cluster.step();
        }
        assert!(cluster.report.violations.is_empty(), "{:?}", cluster.report.violations);
        assert!(cluster.trace().iter().any(|line| line.contains("3 g0: snapshot installed")));
        assert!(cluster.nodes[2].machines[0].applied > slot, "applied on from the snapshot");
        assert_eq!(
            cluster.nodes[2].snapshot_durable[0].as_ref().map(|copy| copy.0.slot),
            Some(slot)
        );
    }

    #[test]
    fn every_plant_is_caught_by_its_checker() {
        for plant in Planted::all() {
            let found = (0..PLANT_SEEDS_MAX).find_map(|seed| {
                let (report, _) = run_seed(seed, false, Some(plant));
                report.violations.first().map(|violation| (seed, violation.clone()))
            });
            let Some((seed, violation)) = found else {
                panic!("{} went unnoticed for {PLANT_SEEDS_MAX} seeds", plant.name());
            };
            let expected = expected_checker(plant);
            assert!(
                expected.iter().any(|words| violation.contains(words)),
                "{} (seed {seed}) was caught by another checker: {violation}",
                plant.name()
            );
        }
    }

    #[test]
    fn plant_names_are_unique_and_round_trip() {
        let all = Planted::all();
        for plant in &all {
            assert_eq!(Planted::from_name(plant.name()), Some(*plant));
        }
        let names: BTreeSet<&str> = all.iter().map(|plant| plant.name()).collect();
        assert_eq!(names.len(), all.len());
    }

    #[test]
    fn a_seed_replays_identically() {
        let (first, _) = run_seed(7, false, None);
        let (second, _) = run_seed(7, false, None);
        assert_eq!((first.ops, first.returned), (second.ops, second.returned));
    }
}
