//! The simulated network: messages between nodes in virtual time, with seeded faults.
//!
//! [`SimNetwork`] carries messages of any type `M` between [`NodeId`]s. Time is a plain `u64`
//! of virtual nanoseconds that the simulator passes in; the network never reads a clock. It
//! is built for an event loop that jumps time forward: [`SimNetwork::next_event_time`] says
//! when the next message is due, [`SimNetwork::pop_due`] hands out due messages one at a time
//! in a fixed order (due time, then a seeded tiebreak, then the send sequence), so equal
//! times deliver in an order that varies with the seed but replays exactly.
//!
//! Faults, each enabled with its own rate by [`NetworkFaults`] (all rates in parts per
//! million): drop; delay (a latency tail on top of the base latency); reorder; duplicate;
//! partitions as a [`Partition`], a set of blocked directed links, with constructors for
//! every [`PartitionKind`] (one node isolated, majority/minority, majorities ring, bridge,
//! asymmetric); slow nodes (extra latency on every link of the node); paused nodes (their
//! messages are held, not lost, until resumed). [`NetworkFaults::swarm`] enables a random
//! subset of kinds with random rates (swarm testing), and [`NetworkNemesis`] starts and heals
//! partitions and slow nodes over time.
//!
//! Ordering: a link is FIFO like the TCP stream the real transport uses: base latency and
//! delay jitter never let a message overtake an earlier one on the same link (its due time is
//! raised to just after the previous message's). Only the reorder fault and duplicate copies
//! are exempt, so reordering happens exactly when it is asked for. Different links are
//! independent and reorder freely.
//!
//! Bounded: at most [`NETWORK_MESSAGES_IN_FLIGHT_MAX`] messages are in flight or held; a send
//! beyond that is dropped and counted. To Paxos a dropped message is just another network
//! loss, which it must survive anyway.
//!
//! Must never: read the real clock or OS randomness, or iterate a hash map; every decision
//! comes from the seeded [`Prng`] it was given, in the order of the calls made.

use std::cmp::{Ordering, Reverse};
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, VecDeque};
use std::fmt;

use super::prng::{PARTS_PER_MILLION, Prng};
use crate::types::NodeId;

/// One microsecond in the network's time unit (nanoseconds).
pub const MICROSECOND_NS: u64 = 1_000;

/// One millisecond in nanoseconds.
pub const MILLISECOND_NS: u64 = 1_000_000;

/// One second in nanoseconds.
pub const SECOND_NS: u64 = 1_000_000_000;

/// Most messages the network holds at once, in flight and held for paused nodes together.
/// 5 replicas x 4 groups exchange far fewer; reaching it means a runaway sender, and the
/// excess is dropped (a loss Paxos tolerates) instead of growing memory.
pub const NETWORK_MESSAGES_IN_FLIGHT_MAX: usize = 1 << 16;

/// Shortest one-way latency of [`NetworkFaults::none`]: a LAN round trip is ~100 us.
pub const LATENCY_NS_MIN_DEFAULT: u64 = 50 * MICROSECOND_NS;

/// Longest one-way base latency of [`NetworkFaults::none`].
pub const LATENCY_NS_MAX_DEFAULT: u64 = 200 * MICROSECOND_NS;

/// Shortest base latency allowed: every hop advances virtual time, so no exchange of
/// messages can loop forever at one instant.
pub const LATENCY_NS_FLOOR: u64 = MICROSECOND_NS;

/// Largest value any latency, delay or phase setting may have: keeps due times far from
/// overflow and a run's virtual time meaningful.
pub const NETWORK_DURATION_NS_CEILING: u64 = 60 * SECOND_NS;

/// Largest base latency [`NetworkFaults::swarm`] draws (a congested or distant network).
pub const SWARM_LATENCY_NS_MAX: u64 = 5 * MILLISECOND_NS;

/// Highest rate [`NetworkFaults::swarm`] draws for any per-message fault: 20 %. Above it
/// little but retries happens and runs stop exploring the protocol.
pub const SWARM_RATE_PPM_MAX: u32 = 200_000;

/// Lowest rate [`NetworkFaults::swarm`] draws for an enabled per-message fault: 0.1 %.
pub const SWARM_RATE_PPM_MIN: u32 = 1_000;

/// Probability that [`NetworkFaults::swarm`] enables any one fault kind: one half, so each
/// subset of kinds is equally likely.
pub const SWARM_ENABLE_PPM: u32 = PARTS_PER_MILLION / 2;

/// Longest latency tail [`NetworkFaults::swarm`] draws: beyond election timeouts.
pub const SWARM_DELAY_NS_MAX: u64 = SECOND_NS;

/// Longest extra delay of a reordered message [`NetworkFaults::swarm`] draws.
pub const SWARM_REORDER_NS_MAX: u64 = 50 * MILLISECOND_NS;

/// Longest extra latency of a slow node [`NetworkFaults::swarm`] draws.
pub const SWARM_SLOW_NODE_NS_MAX: u64 = 100 * MILLISECOND_NS;

/// Longest nemesis phase (partitioned or healed, slow or not) [`NetworkFaults::swarm`] draws.
pub const SWARM_PHASE_NS_MAX: u64 = 10 * SECOND_NS;

/// Shortest nemesis phase: a partition shorter than this tests nothing.
pub const NEMESIS_PHASE_NS_MIN: u64 = 100 * MILLISECOND_NS;

const _: () = assert!(LATENCY_NS_FLOOR <= LATENCY_NS_MIN_DEFAULT);
const _: () = assert!(LATENCY_NS_MIN_DEFAULT <= LATENCY_NS_MAX_DEFAULT);
const _: () = assert!(LATENCY_NS_MAX_DEFAULT <= SWARM_LATENCY_NS_MAX);
const _: () = assert!(SWARM_RATE_PPM_MIN <= SWARM_RATE_PPM_MAX);
const _: () = assert!(SWARM_RATE_PPM_MAX <= PARTS_PER_MILLION);
const _: () = assert!(NEMESIS_PHASE_NS_MIN <= SWARM_PHASE_NS_MAX);
const _: () = assert!(SWARM_DELAY_NS_MAX <= NETWORK_DURATION_NS_CEILING);
const _: () = assert!(SWARM_PHASE_NS_MAX <= NETWORK_DURATION_NS_CEILING);

/// The shapes of partition the simulator injects (Jepsen's nemesis names in brackets).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PartitionKind {
    /// One node cut off from all others, both ways (`one`).
    IsolateOne,
    /// A minority of `(n - 1) / 2` nodes cut off from the majority, both ways (`majority`).
    MajorityMinority,
    /// Nodes on a ring, each reaching only its nearest neighbours: every node sees a
    /// majority, no two nodes the same one (`majorities-ring`). See [`Partition::ring`].
    Ring,
    /// Two halves that reach each other only through one bridge node (`bridge`).
    Bridge,
    /// One node that can hear but not be heard, or be heard but not hear (one-way).
    Asymmetric,
}

impl PartitionKind {
    /// Every kind, in a fixed order.
    pub const ALL: [PartitionKind; 5] = [
        PartitionKind::IsolateOne,
        PartitionKind::MajorityMinority,
        PartitionKind::Ring,
        PartitionKind::Bridge,
        PartitionKind::Asymmetric,
    ];

    /// The fault kind's name in run summaries.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            PartitionKind::IsolateOne => "partition-one",
            PartitionKind::MajorityMinority => "partition-majority",
            PartitionKind::Ring => "partition-ring",
            PartitionKind::Bridge => "partition-bridge",
            PartitionKind::Asymmetric => "partition-asymmetric",
        }
    }
}

/// A partition: the set of directed links `(from, to)` that lose every message.
///
/// A link from a node to itself is never blocked. The empty partition is a healed network.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Partition {
    blocked: BTreeSet<(NodeId, NodeId)>,
}

impl Partition {
    /// No link blocked.
    #[must_use]
    pub fn none() -> Partition {
        Partition::default()
    }

    /// Blocks the one direction `from -> to`.
    ///
    /// # Panics
    /// If `from == to`: a node always reaches itself.
    pub fn block(&mut self, from: NodeId, to: NodeId) {
        assert_ne!(from, to, "a node always reaches itself");
        self.blocked.insert((from, to));
    }

    /// Whether messages from `from` to `to` are lost.
    #[must_use]
    pub fn is_blocked(&self, from: NodeId, to: NodeId) -> bool {
        self.blocked.contains(&(from, to))
    }

    /// Whether no link is blocked.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.blocked.is_empty()
    }

    /// The blocked directed links, in order.
    pub fn blocked_links(&self) -> impl Iterator<Item = (NodeId, NodeId)> + '_ {
        self.blocked.iter().copied()
    }

    /// Blocks every link from `from_side` to `to_side`, in that direction only (asymmetric).
    ///
    /// # Panics
    /// If a node is on both sides.
    #[must_use]
    pub fn one_way(from_side: &[NodeId], to_side: &[NodeId]) -> Partition {
        let mut partition = Partition::none();
        for &from in from_side {
            for &to in to_side {
                partition.block(from, to);
            }
        }
        partition
    }

    /// Blocks every link between `side_a` and `side_b`, both ways.
    ///
    /// # Panics
    /// If a node is on both sides.
    #[must_use]
    pub fn split(side_a: &[NodeId], side_b: &[NodeId]) -> Partition {
        let mut partition = Partition::one_way(side_a, side_b);
        partition.blocked.extend(Partition::one_way(side_b, side_a).blocked);
        partition
    }

    /// Cuts `node` off from every other node of `nodes`, both ways.
    #[must_use]
    pub fn isolate(node: NodeId, nodes: &[NodeId]) -> Partition {
        let others: Vec<NodeId> = nodes.iter().copied().filter(|&other| other != node).collect();
        Partition::split(&[node], &others)
    }

    /// `left` and `right` lose each other; `bridge`, on neither side, reaches both.
    ///
    /// # Panics
    /// If a node is on both sides or the bridge is on a side.
    #[must_use]
    pub fn bridge(left: &[NodeId], bridge: NodeId, right: &[NodeId]) -> Partition {
        assert!(!left.contains(&bridge), "the bridge belongs to neither side");
        assert!(!right.contains(&bridge), "the bridge belongs to neither side");
        Partition::split(left, right)
    }

    /// The majorities ring: `order` is a ring, and each node reaches only the nodes within
    /// the smallest ring distance that lets it see a majority (itself included). Both
    /// directions of a link are treated alike.
    ///
    /// With 5 nodes each node reaches exactly its two neighbours; with 3 nodes the
    /// neighbours are everyone and nothing is blocked; with 7 nodes each reaches two on each
    /// side. Every node sees a majority, but no two nodes see the same one, so a leader
    /// elected by one majority is unknown to part of the next.
    #[must_use]
    pub fn ring(order: &[NodeId]) -> Partition {
        let count = order.len();
        let majority = count / 2 + 1;
        let radius = majority / 2; // 2 * radius + 1 >= majority, smallest such radius.
        let mut partition = Partition::none();
        for (index_a, &a) in order.iter().enumerate() {
            for (index_b, &b) in order.iter().enumerate() {
                let gap = index_a.abs_diff(index_b);
                let distance = gap.min(count - gap);
                if distance > radius {
                    partition.block(a, b);
                }
            }
        }
        partition
    }

    /// A random partition of `kind` over `nodes`, drawn from `prng`.
    ///
    /// The result depends on the set of nodes, not the order they are given in. With too
    /// few nodes for a shape (a ring of 3, a majority split of 2) fewer or no links are
    /// blocked.
    ///
    /// # Panics
    /// If `nodes` has duplicates.
    #[must_use]
    pub fn random(kind: PartitionKind, nodes: &[NodeId], prng: &mut Prng) -> Partition {
        let mut shuffled = nodes.to_vec();
        shuffled.sort_unstable();
        shuffled.dedup();
        assert_eq!(shuffled.len(), nodes.len(), "duplicate nodes in {nodes:?}");
        prng.shuffle(&mut shuffled);
        let Some((&first, rest)) = shuffled.split_first() else {
            return Partition::none();
        };
        match kind {
            PartitionKind::IsolateOne => Partition::isolate(first, &shuffled),
            PartitionKind::MajorityMinority => {
                let (minority, majority) = shuffled.split_at((shuffled.len() - 1) / 2);
                Partition::split(minority, majority)
            }
            PartitionKind::Ring => Partition::ring(&shuffled),
            PartitionKind::Bridge => {
                let (left, right) = rest.split_at(rest.len() / 2);
                Partition::bridge(left, first, right)
            }
            PartitionKind::Asymmetric => {
                if prng.chance(PARTS_PER_MILLION / 2) {
                    Partition::one_way(&[first], rest)
                } else {
                    Partition::one_way(rest, &[first])
                }
            }
        }
    }
}

/// Which network faults are on, and how often. Rates are per message, in parts per million.
///
/// [`NetworkFaults::none`] is a quiet LAN: base latency only, every message delivered once,
/// in order per link.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetworkFaults {
    /// Shortest base one-way latency, ns.
    pub latency_ns_min: u64,
    /// Longest base one-way latency, ns; each message draws uniformly in between.
    pub latency_ns_max: u64,
    /// Delay: a message gets an extra latency in `0..=delay_ns_max` (the latency tail).
    pub delay_ppm: u32,
    /// Longest extra latency of a delayed message, ns.
    pub delay_ns_max: u64,
    /// Drop: a message is lost.
    pub drop_ppm: u32,
    /// Duplicate: a message is delivered twice (the copy with its own latency, unordered).
    pub duplicate_ppm: u32,
    /// Reorder: a message leaves its link's FIFO order with an extra delay in
    /// `0..=reorder_ns_max`, so later messages may overtake it and it may overtake them.
    pub reorder_ppm: u32,
    /// Longest extra delay of a reordered message, ns.
    pub reorder_ns_max: u64,
    /// Partition shapes [`NetworkNemesis`] injects; empty: no partitions.
    pub partition_kinds: BTreeSet<PartitionKind>,
    /// Longest partitioned or healed phase of [`NetworkNemesis`], ns.
    pub partition_phase_ns_max: u64,
    /// Longest extra latency [`NetworkNemesis`] gives a slow node, ns; 0: no slow nodes.
    pub slow_node_ns_max: u64,
    /// Longest slow or normal phase of [`NetworkNemesis`], ns.
    pub slow_node_phase_ns_max: u64,
}

impl NetworkFaults {
    /// No faults: latency between the defaults, nothing lost, duplicated or reordered.
    #[must_use]
    pub fn none() -> NetworkFaults {
        NetworkFaults {
            latency_ns_min: LATENCY_NS_MIN_DEFAULT,
            latency_ns_max: LATENCY_NS_MAX_DEFAULT,
            delay_ppm: 0,
            delay_ns_max: 0,
            drop_ppm: 0,
            duplicate_ppm: 0,
            reorder_ppm: 0,
            reorder_ns_max: 0,
            partition_kinds: BTreeSet::new(),
            partition_phase_ns_max: NEMESIS_PHASE_NS_MIN,
            slow_node_ns_max: 0,
            slow_node_phase_ns_max: NEMESIS_PHASE_NS_MIN,
        }
    }

    /// Swarm testing: a random subset of the fault kinds, each with a random rate and size,
    /// and a random base latency. Each kind is on with probability one half.
    #[must_use]
    pub fn swarm(prng: &mut Prng) -> NetworkFaults {
        let mut faults = NetworkFaults::none();
        faults.latency_ns_min = prng.range(LATENCY_NS_FLOOR..=LATENCY_NS_MAX_DEFAULT);
        faults.latency_ns_max = prng.range(faults.latency_ns_min..=SWARM_LATENCY_NS_MAX);
        if prng.chance(SWARM_ENABLE_PPM) {
            faults.drop_ppm = swarm_rate_ppm(prng);
        }
        if prng.chance(SWARM_ENABLE_PPM) {
            faults.delay_ppm = swarm_rate_ppm(prng);
            faults.delay_ns_max = prng.range(MILLISECOND_NS..=SWARM_DELAY_NS_MAX);
        }
        if prng.chance(SWARM_ENABLE_PPM) {
            faults.duplicate_ppm = swarm_rate_ppm(prng);
        }
        if prng.chance(SWARM_ENABLE_PPM) {
            faults.reorder_ppm = swarm_rate_ppm(prng);
            faults.reorder_ns_max = prng.range(MILLISECOND_NS..=SWARM_REORDER_NS_MAX);
        }
        for kind in PartitionKind::ALL {
            if prng.chance(SWARM_ENABLE_PPM) {
                faults.partition_kinds.insert(kind);
            }
        }
        faults.partition_phase_ns_max = prng.range(NEMESIS_PHASE_NS_MIN..=SWARM_PHASE_NS_MAX);
        if prng.chance(SWARM_ENABLE_PPM) {
            faults.slow_node_ns_max = prng.range(MILLISECOND_NS..=SWARM_SLOW_NODE_NS_MAX);
        }
        faults.slow_node_phase_ns_max = prng.range(NEMESIS_PHASE_NS_MIN..=SWARM_PHASE_NS_MAX);
        faults
    }

    /// The names of the enabled fault kinds, in a fixed order (for the simulator's
    /// `faults=K` count and its run summary).
    #[must_use]
    pub fn fault_kinds_enabled(&self) -> Vec<&'static str> {
        let mut kinds = Vec::new();
        if self.drop_ppm > 0 {
            kinds.push("drop");
        }
        if self.delay_ppm > 0 && self.delay_ns_max > 0 {
            kinds.push("delay");
        }
        if self.duplicate_ppm > 0 {
            kinds.push("duplicate");
        }
        if self.reorder_ppm > 0 {
            kinds.push("reorder");
        }
        kinds.extend(self.partition_kinds.iter().map(|kind| kind.name()));
        if self.slow_node_ns_max > 0 {
            kinds.push("slow-node");
        }
        kinds
    }

    /// Checks the settings are coherent.
    ///
    /// # Panics
    /// If the latency is below [`LATENCY_NS_FLOOR`], a minimum exceeds its maximum, a rate
    /// exceeds [`PARTS_PER_MILLION`] or a duration exceeds [`NETWORK_DURATION_NS_CEILING`].
    pub fn assert_valid(&self) {
        assert!(self.latency_ns_min >= LATENCY_NS_FLOOR, "latency below the floor: {self:?}");
        assert!(self.latency_ns_min <= self.latency_ns_max, "latency min above max: {self:?}");
        for ppm in [self.delay_ppm, self.drop_ppm, self.duplicate_ppm, self.reorder_ppm] {
            assert!(ppm <= PARTS_PER_MILLION, "a rate above 1: {self:?}");
        }
        for duration_ns in [
            self.latency_ns_max,
            self.delay_ns_max,
            self.reorder_ns_max,
            self.partition_phase_ns_max,
            self.slow_node_ns_max,
            self.slow_node_phase_ns_max,
        ] {
            assert!(duration_ns <= NETWORK_DURATION_NS_CEILING, "too long: {self:?}");
        }
        assert!(self.partition_phase_ns_max >= NEMESIS_PHASE_NS_MIN, "phase: {self:?}");
        assert!(self.slow_node_phase_ns_max >= NEMESIS_PHASE_NS_MIN, "phase: {self:?}");
    }
}

/// A swarm rate, log-uniform across decades: a decade of 0.1 %, 1 % or 10 % first, then a
/// rate within it, so low rates are as common as high ones.
fn swarm_rate_ppm(prng: &mut Prng) -> u32 {
    let decades = [SWARM_RATE_PPM_MIN, SWARM_RATE_PPM_MIN * 10, SWARM_RATE_PPM_MIN * 100];
    let decade = *prng.choose(&decades).expect("three decades");
    let top = (decade * 10).min(SWARM_RATE_PPM_MAX);
    let rate = prng.range(u64::from(decade)..=u64::from(top));
    u32::try_from(rate).expect("at most SWARM_RATE_PPM_MAX")
}

/// What the network did, for the end-of-run summary. Conservation:
/// `sent + duplicated == delivered + dropped + blocked_by_partition + dropped_overload +
/// discarded + in flight + held`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetworkCounters {
    /// Messages handed to [`SimNetwork::send`].
    pub sent: u64,
    /// Messages handed out by [`SimNetwork::pop_due`].
    pub delivered: u64,
    /// Messages lost to the drop fault.
    pub dropped: u64,
    /// Extra copies made by the duplicate fault.
    pub duplicated: u64,
    /// Messages given a latency tail by the delay fault.
    pub delayed: u64,
    /// Messages taken out of their link's order by the reorder fault.
    pub reordered: u64,
    /// Messages lost to a partition, when sent or when due.
    pub blocked_by_partition: u64,
    /// Messages lost because [`NETWORK_MESSAGES_IN_FLIGHT_MAX`] were already in flight.
    pub dropped_overload: u64,
    /// Times a message was held because its sender or receiver was paused.
    pub held_by_pause: u64,
    /// Messages thrown away by [`SimNetwork::discard_node`] (a crashed node's traffic).
    pub discarded: u64,
}

impl fmt::Display for NetworkCounters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "sent={} delivered={} dropped={} duplicated={} delayed={} reordered={} \
             partitioned={} overload={} held={} discarded={}",
            self.sent,
            self.delivered,
            self.dropped,
            self.duplicated,
            self.delayed,
            self.reordered,
            self.blocked_by_partition,
            self.dropped_overload,
            self.held_by_pause,
            self.discarded,
        )
    }
}

/// A message handed to its receiver.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery<M> {
    /// The sender.
    pub from: NodeId,
    /// The receiver.
    pub to: NodeId,
    /// The message.
    pub message: M,
}

/// A message in flight, ordered by when it is due; ties broken by a seeded draw, then by
/// the send sequence (unique, so the order is total and never depends on `M`).
#[derive(Debug)]
struct Envelope<M> {
    due_ns: u64,
    tiebreak: u64,
    sequence: u64,
    from: NodeId,
    to: NodeId,
    message: M,
}

impl<M> Envelope<M> {
    fn key(&self) -> (u64, u64, u64) {
        (self.due_ns, self.tiebreak, self.sequence)
    }
}

impl<M> PartialEq for Envelope<M> {
    fn eq(&self, other: &Envelope<M>) -> bool {
        self.key() == other.key()
    }
}

impl<M> Eq for Envelope<M> {}

impl<M> PartialOrd for Envelope<M> {
    fn partial_cmp(&self, other: &Envelope<M>) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<M> Ord for Envelope<M> {
    fn cmp(&self, other: &Envelope<M>) -> Ordering {
        self.key().cmp(&other.key())
    }
}

/// The simulated network of one cluster. `M: Clone` because the duplicate fault copies.
#[derive(Debug)]
pub struct SimNetwork<M> {
    nodes: BTreeSet<NodeId>,
    faults: NetworkFaults,
    prng: Prng,
    /// The latest time any call passed in: time never goes backwards.
    now_ns: u64,
    in_flight: BinaryHeap<Reverse<Envelope<M>>>,
    /// Messages that came due while their receiver was paused, per receiver, in order.
    held_for: BTreeMap<NodeId, VecDeque<Envelope<M>>>,
    /// Messages a paused node sent, per sender, in order: `(to, message)`.
    held_from: BTreeMap<NodeId, VecDeque<(NodeId, M)>>,
    held_count: usize,
    paused: BTreeSet<NodeId>,
    /// Extra latency of each slow node's links, ns.
    slow_ns: BTreeMap<NodeId, u64>,
    partition: Partition,
    /// Due time of the last FIFO message per link, which the next one may not precede.
    link_due_ns_last: BTreeMap<(NodeId, NodeId), u64>,
    sequence_next: u64,
    counters: NetworkCounters,
}

impl<M: Clone> SimNetwork<M> {
    /// A network between `nodes` at time 0, drawing every decision from `prng` (give it its
    /// own stream, see [`Prng::fork`]).
    ///
    /// # Panics
    /// If `faults` is not valid ([`NetworkFaults::assert_valid`]).
    #[must_use]
    pub fn new(nodes: &[NodeId], faults: NetworkFaults, prng: Prng) -> SimNetwork<M> {
        faults.assert_valid();
        SimNetwork {
            nodes: nodes.iter().copied().collect(),
            faults,
            prng,
            now_ns: 0,
            in_flight: BinaryHeap::new(),
            held_for: BTreeMap::new(),
            held_from: BTreeMap::new(),
            held_count: 0,
            paused: BTreeSet::new(),
            slow_ns: BTreeMap::new(),
            partition: Partition::none(),
            link_due_ns_last: BTreeMap::new(),
            sequence_next: 0,
            counters: NetworkCounters::default(),
        }
    }

    /// The nodes, in order.
    #[must_use]
    pub fn nodes(&self) -> Vec<NodeId> {
        self.nodes.iter().copied().collect()
    }

    /// Adds a node (a replica joining the cluster).
    pub fn add_node(&mut self, node: NodeId) {
        self.nodes.insert(node);
    }

    /// The fault settings in force.
    #[must_use]
    pub fn faults(&self) -> &NetworkFaults {
        &self.faults
    }

    /// Replaces the fault settings, e.g. with [`NetworkFaults::none`] for the liveness phase
    /// once faults heal. Messages already in flight keep their due times.
    ///
    /// # Panics
    /// If `faults` is not valid.
    pub fn set_faults(&mut self, faults: NetworkFaults) {
        faults.assert_valid();
        self.faults = faults;
    }

    /// What happened so far.
    #[must_use]
    pub fn counters(&self) -> NetworkCounters {
        self.counters
    }

    /// Messages in flight or held for paused nodes.
    #[must_use]
    pub fn in_flight_count(&self) -> usize {
        self.in_flight.len() + self.held_count
    }

    /// The partition in force.
    #[must_use]
    pub fn partition(&self) -> &Partition {
        &self.partition
    }

    /// Replaces the partition. Messages in flight on a newly blocked link are lost when due.
    pub fn set_partition(&mut self, partition: Partition) {
        self.partition = partition;
    }

    /// Unblocks every link.
    pub fn heal(&mut self) {
        self.partition = Partition::none();
    }

    /// Adds `extra_ns` to the latency of every message from or to `node`; 0 makes it normal.
    ///
    /// # Panics
    /// If `node` is unknown or `extra_ns` exceeds [`NETWORK_DURATION_NS_CEILING`].
    pub fn set_slow(&mut self, node: NodeId, extra_ns: u64) {
        self.assert_known(node);
        assert!(extra_ns <= NETWORK_DURATION_NS_CEILING, "slow by {extra_ns} ns");
        if extra_ns == 0 {
            self.slow_ns.remove(&node);
        } else {
            self.slow_ns.insert(node, extra_ns);
        }
    }

    /// The extra latency of `node`'s links, ns (0: not slow).
    #[must_use]
    pub fn slow_ns(&self, node: NodeId) -> u64 {
        self.slow_ns.get(&node).copied().unwrap_or(0)
    }

    /// Pauses `node` (a stopped process): messages it sends and messages that come due for
    /// it are held, not lost, until [`SimNetwork::resume`]. Pausing a paused node does
    /// nothing.
    ///
    /// # Panics
    /// If `node` is unknown.
    pub fn pause(&mut self, node: NodeId) {
        self.assert_known(node);
        self.paused.insert(node);
    }

    /// Whether `node` is paused.
    #[must_use]
    pub fn is_paused(&self, node: NodeId) -> bool {
        self.paused.contains(&node)
    }

    /// Resumes `node` at `now_ns`: the messages held for it are due now, in the order they
    /// came due, and the messages it sent while paused leave now, as if sent at `now_ns`.
    /// Resuming a running node does nothing.
    ///
    /// # Panics
    /// If `node` is unknown or time went backwards.
    pub fn resume(&mut self, now_ns: u64, node: NodeId) {
        self.assert_known(node);
        self.advance(now_ns);
        if !self.paused.remove(&node) {
            return;
        }
        // Held messages came due before anything still in flight to the node, so they go
        // first: due now, tiebreak 0, in send order (which is link order).
        for mut envelope in self.held_for.remove(&node).unwrap_or_default() {
            self.held_count -= 1;
            envelope.due_ns = now_ns;
            envelope.tiebreak = 0;
            self.in_flight.push(Reverse(envelope));
        }
        for (to, message) in self.held_from.remove(&node).unwrap_or_default() {
            self.held_count -= 1;
            self.transmit(now_ns, node, to, message);
        }
    }

    /// Throws away every message from or to `node` in flight or held (its connections
    /// died with it: a crash), counted as `discarded`.
    ///
    /// # Panics
    /// If `node` is unknown.
    pub fn discard_node(&mut self, node: NodeId) {
        self.assert_known(node);
        let before = self.in_flight.len();
        self.in_flight.retain(|Reverse(envelope)| envelope.from != node && envelope.to != node);
        let mut discarded = before - self.in_flight.len();
        let held_for = self.held_for.remove(&node).unwrap_or_default();
        let held_from = self.held_from.remove(&node).unwrap_or_default();
        discarded += held_for.len() + held_from.len();
        self.held_count -= held_for.len() + held_from.len();
        for queue in self.held_for.values_mut() {
            let before = queue.len();
            queue.retain(|envelope| envelope.from != node);
            discarded += before - queue.len();
            self.held_count -= before - queue.len();
        }
        for queue in self.held_from.values_mut() {
            let before = queue.len();
            queue.retain(|(to, _)| *to != node);
            discarded += before - queue.len();
            self.held_count -= before - queue.len();
        }
        self.link_due_ns_last.retain(|&(from, to), _| from != node && to != node);
        self.counters.discarded += u64::try_from(discarded).expect("usize fits in u64");
    }

    /// Sends `message` from `from` to `to` at `now_ns`, applying the faults.
    ///
    /// # Panics
    /// If a node is unknown or time went backwards.
    pub fn send(&mut self, now_ns: u64, from: NodeId, to: NodeId, message: M) {
        self.assert_known(from);
        self.assert_known(to);
        self.advance(now_ns);
        self.counters.sent += 1;
        if self.paused.contains(&from) {
            if self.in_flight_count() >= NETWORK_MESSAGES_IN_FLIGHT_MAX {
                self.counters.dropped_overload += 1;
                return;
            }
            self.counters.held_by_pause += 1;
            self.held_count += 1;
            self.held_from.entry(from).or_default().push_back((to, message));
            return;
        }
        self.transmit(now_ns, from, to, message);
    }

    /// When the next message in flight is due, or `None` if none is (held messages wait for
    /// a resume, not for a time).
    #[must_use]
    pub fn next_event_time(&self) -> Option<u64> {
        self.in_flight.peek().map(|Reverse(envelope)| envelope.due_ns)
    }

    /// The next message due at or before `now_ns`, in due order; messages on a blocked link
    /// are lost and messages for a paused node are held on the way.
    ///
    /// # Panics
    /// If time went backwards.
    pub fn pop_due(&mut self, now_ns: u64) -> Option<Delivery<M>> {
        self.advance(now_ns);
        while self.next_event_time().is_some_and(|due_ns| due_ns <= now_ns) {
            let Reverse(envelope) = self.in_flight.pop().expect("peeked");
            if self.partition.is_blocked(envelope.from, envelope.to) {
                self.counters.blocked_by_partition += 1;
                continue;
            }
            if self.paused.contains(&envelope.to) {
                self.counters.held_by_pause += 1;
                self.held_count += 1;
                self.held_for.entry(envelope.to).or_default().push_back(envelope);
                continue;
            }
            self.counters.delivered += 1;
            return Some(Delivery {
                from: envelope.from,
                to: envelope.to,
                message: envelope.message,
            });
        }
        None
    }

    /// Every message due at or before `now_ns`, in due order (see [`SimNetwork::pop_due`]).
    ///
    /// # Panics
    /// If time went backwards.
    pub fn deliver_due(&mut self, now_ns: u64) -> Vec<Delivery<M>> {
        let mut deliveries = Vec::new();
        while let Some(delivery) = self.pop_due(now_ns) {
            deliveries.push(delivery);
        }
        deliveries
    }

    /// Puts a message on the wire: partition, drop and duplicate decisions, then scheduling.
    fn transmit(&mut self, now_ns: u64, from: NodeId, to: NodeId, message: M) {
        if self.partition.is_blocked(from, to) {
            self.counters.blocked_by_partition += 1;
            return;
        }
        if self.prng.chance(self.faults.drop_ppm) {
            self.counters.dropped += 1;
            return;
        }
        let is_duplicated = self.prng.chance(self.faults.duplicate_ppm);
        if is_duplicated {
            let copy = message.clone();
            self.schedule(now_ns, from, to, message, true);
            self.counters.duplicated += 1;
            self.schedule(now_ns, from, to, copy, false);
        } else {
            self.schedule(now_ns, from, to, message, true);
        }
    }

    /// Draws a latency and queues the message; `may_keep_order` is false for a copy, which
    /// travels on its own like a retransmission.
    fn schedule(
        &mut self,
        now_ns: u64,
        from: NodeId,
        to: NodeId,
        message: M,
        may_keep_order: bool,
    ) {
        if self.in_flight_count() >= NETWORK_MESSAGES_IN_FLIGHT_MAX {
            self.counters.dropped_overload += 1;
            return;
        }
        let faults = &self.faults;
        let mut latency_ns = self.prng.range(faults.latency_ns_min..=faults.latency_ns_max);
        latency_ns += self.slow_ns.get(&from).copied().unwrap_or(0);
        latency_ns += self.slow_ns.get(&to).copied().unwrap_or(0);
        if self.prng.chance(faults.delay_ppm) {
            latency_ns += self.prng.range(0..=faults.delay_ns_max);
            self.counters.delayed += 1;
        }
        let is_reordered = self.prng.chance(faults.reorder_ppm);
        let is_ordered = may_keep_order && !is_reordered;
        let mut due_ns = now_ns.saturating_add(latency_ns);
        if is_ordered {
            due_ns = self.fifo_due_ns(from, to, due_ns);
        } else if is_reordered {
            due_ns = due_ns.saturating_add(self.prng.range(0..=faults.reorder_ns_max));
            self.counters.reordered += u64::from(may_keep_order);
        }
        let envelope = Envelope {
            due_ns,
            tiebreak: self.prng.next_u64(),
            sequence: self.sequence_next,
            from,
            to,
            message,
        };
        self.sequence_next += 1;
        self.in_flight.push(Reverse(envelope));
    }

    /// The due time of an in-order message on `from -> to` that would be due at `due_ns`:
    /// never before the link's previous in-order message, strictly after it (a 1 ns step),
    /// so the seeded tiebreak never reorders a link.
    fn fifo_due_ns(&mut self, from: NodeId, to: NodeId, due_ns: u64) -> u64 {
        let link = (from, to);
        let due_ns = match self.link_due_ns_last.get(&link) {
            Some(&last_ns) => due_ns.max(last_ns + 1),
            None => due_ns,
        };
        self.link_due_ns_last.insert(link, due_ns);
        due_ns
    }

    fn advance(&mut self, now_ns: u64) {
        assert!(now_ns >= self.now_ns, "time went backwards: {now_ns} < {}", self.now_ns);
        self.now_ns = now_ns;
    }

    fn assert_known(&self, node: NodeId) {
        assert!(self.nodes.contains(&node), "node {node} is not in the network");
    }
}

/// A change [`NetworkNemesis`] made, for the simulator's trace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NetworkChange {
    /// A partition of this kind started (replacing any other).
    Partitioned(PartitionKind, Partition),
    /// Every link unblocked.
    Healed,
    /// A node became slow by this many ns per message.
    Slowed {
        /// The node.
        node: NodeId,
        /// Its extra latency per message, ns.
        extra_ns: u64,
    },
    /// A slow node became normal.
    Unslowed(NodeId),
}

/// Starts and heals the partitions and slow nodes that [`NetworkFaults`] enables, in
/// alternating phases of random length. Pauses are not here: a paused node must also stop
/// its clock and disk, so the simulator's process faults own them and call
/// [`SimNetwork::pause`].
#[derive(Clone, Debug)]
pub struct NetworkNemesis {
    prng: Prng,
    /// When the partition phase changes; `None` once stopped or with no partitions enabled.
    partition_change_ns: Option<u64>,
    /// When the slow-node phase changes; `None` once stopped or with slow nodes disabled.
    slow_change_ns: Option<u64>,
    slow_node: Option<NodeId>,
}

impl NetworkNemesis {
    /// A nemesis for `faults`, starting healed at `now_ns`, drawing from its own `prng`.
    #[must_use]
    pub fn new(faults: &NetworkFaults, now_ns: u64, mut prng: Prng) -> NetworkNemesis {
        let partition_change_ns = (!faults.partition_kinds.is_empty())
            .then(|| now_ns + phase_ns(&mut prng, faults.partition_phase_ns_max));
        let slow_change_ns = (faults.slow_node_ns_max > 0)
            .then(|| now_ns + phase_ns(&mut prng, faults.slow_node_phase_ns_max));
        NetworkNemesis { prng, partition_change_ns, slow_change_ns, slow_node: None }
    }

    /// When the nemesis next changes something, or `None` if never.
    #[must_use]
    pub fn next_event_time(&self) -> Option<u64> {
        match (self.partition_change_ns, self.slow_change_ns) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Makes the changes due at `now_ns` on `network`, using its current fault settings,
    /// and returns them.
    pub fn step<M: Clone>(
        &mut self,
        now_ns: u64,
        network: &mut SimNetwork<M>,
    ) -> Vec<NetworkChange> {
        let mut changes = Vec::new();
        let faults = network.faults().clone();
        if self.partition_change_ns.is_some_and(|change_ns| change_ns <= now_ns) {
            let kinds: Vec<PartitionKind> = faults.partition_kinds.iter().copied().collect();
            let kind = if network.partition().is_empty() {
                self.prng.choose(&kinds).copied()
            } else {
                None // Partitioned phases alternate with healed ones.
            };
            if let Some(kind) = kind {
                let partition = Partition::random(kind, &network.nodes(), &mut self.prng);
                network.set_partition(partition.clone());
                changes.push(NetworkChange::Partitioned(kind, partition));
            } else {
                network.heal();
                changes.push(NetworkChange::Healed);
            }
            let phase = phase_ns(&mut self.prng, faults.partition_phase_ns_max);
            self.partition_change_ns = (!kinds.is_empty()).then_some(now_ns + phase);
        }
        if self.slow_change_ns.is_some_and(|change_ns| change_ns <= now_ns) {
            if let Some(node) = self.slow_node.take() {
                network.set_slow(node, 0);
                changes.push(NetworkChange::Unslowed(node));
            } else if faults.slow_node_ns_max > 0
                && let Some(&node) = self.prng.choose(&network.nodes())
            {
                let extra_ns = self.prng.range(1..=faults.slow_node_ns_max);
                network.set_slow(node, extra_ns);
                self.slow_node = Some(node);
                changes.push(NetworkChange::Slowed { node, extra_ns });
            }
            let phase = phase_ns(&mut self.prng, faults.slow_node_phase_ns_max);
            self.slow_change_ns =
                (faults.slow_node_ns_max > 0 || self.slow_node.is_some()).then_some(now_ns + phase);
        }
        changes
    }

    /// Heals the partition, makes the slow node normal and makes no more changes (the
    /// liveness phase of a run).
    pub fn stop<M: Clone>(&mut self, network: &mut SimNetwork<M>) -> Vec<NetworkChange> {
        self.partition_change_ns = None;
        self.slow_change_ns = None;
        let mut changes = Vec::new();
        if !network.partition().is_empty() {
            network.heal();
            changes.push(NetworkChange::Healed);
        }
        if let Some(node) = self.slow_node.take() {
            network.set_slow(node, 0);
            changes.push(NetworkChange::Unslowed(node));
        }
        changes
    }
}

/// A nemesis phase length in `NEMESIS_PHASE_NS_MIN..=phase_ns_max`.
fn phase_ns(prng: &mut Prng, phase_ns_max: u64) -> u64 {
    prng.range(NEMESIS_PHASE_NS_MIN..=phase_ns_max.max(NEMESIS_PHASE_NS_MIN))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One delivery as the tests record it: `(time, from, to, message)`.
    type Trace = Vec<(u64, NodeId, NodeId, u64)>;

    fn node(id: u64) -> NodeId {
        NodeId::new(id).unwrap()
    }

    fn nodes(count: u64) -> Vec<NodeId> {
        (1..=count).map(node).collect()
    }

    /// Whether `from` reaches `to` (a node always reaches itself).
    fn reaches(partition: &Partition, from: NodeId, to: NodeId) -> bool {
        from == to || !partition.is_blocked(from, to)
    }

    /// Every fault on, at rates high enough to matter in a few thousand messages.
    fn busy_faults() -> NetworkFaults {
        NetworkFaults {
            latency_ns_min: 20 * MICROSECOND_NS,
            latency_ns_max: 500 * MICROSECOND_NS,
            delay_ppm: 50_000,
            delay_ns_max: 10 * MILLISECOND_NS,
            drop_ppm: 50_000,
            duplicate_ppm: 50_000,
            reorder_ppm: 50_000,
            reorder_ns_max: 5 * MILLISECOND_NS,
            partition_kinds: PartitionKind::ALL.into_iter().collect(),
            partition_phase_ns_max: 200 * MILLISECOND_NS,
            slow_node_ns_max: 10 * MILLISECOND_NS,
            slow_node_phase_ns_max: 300 * MILLISECOND_NS,
        }
    }

    /// Delivers everything due up to `until_ns`, in event order, stepping the nemesis too.
    fn run_until(
        until_ns: u64,
        network: &mut SimNetwork<u64>,
        nemesis: &mut NetworkNemesis,
        trace: &mut Trace,
    ) {
        loop {
            let next = [network.next_event_time(), nemesis.next_event_time()];
            let Some(now_ns) = next.into_iter().flatten().min().filter(|&t| t <= until_ns) else {
                return;
            };
            nemesis.step(now_ns, network);
            while let Some(delivery) = network.pop_due(now_ns) {
                trace.push((now_ns, delivery.from, delivery.to, delivery.message));
            }
        }
    }

    /// A seeded workload of 5,000 messages between 5 nodes, with a node paused now and then,
    /// run to the end; returns the deliveries and the counters.
    fn run_workload(seed: u64, faults: &NetworkFaults) -> (Trace, NetworkCounters) {
        let all = nodes(5);
        let root = Prng::new(seed);
        let mut network = SimNetwork::new(&all, faults.clone(), root.fork_stream(1));
        let mut nemesis = NetworkNemesis::new(faults, 0, root.fork_stream(2));
        let mut workload = root.fork_stream(3);
        let mut trace = Trace::new();
        let mut now_ns = 0;
        for message in 0..5_000_u64 {
            now_ns += workload.range(0..=100 * MICROSECOND_NS);
            run_until(now_ns, &mut network, &mut nemesis, &mut trace);
            match message % 1_000 {
                100 => network.pause(node(2)),
                600 => network.resume(now_ns, node(2)),
                _ => {}
            }
            let from = *workload.choose(&all).unwrap();
            let to = *workload.choose(&all).unwrap();
            network.send(now_ns, from, to, message);
        }
        nemesis.stop(&mut network);
        run_until(u64::MAX, &mut network, &mut nemesis, &mut trace);
        let counters = network.counters();
        let lost = counters.delivered
            + counters.dropped
            + counters.blocked_by_partition
            + counters.dropped_overload
            + counters.discarded;
        let in_flight = u64::try_from(network.in_flight_count()).unwrap();
        assert_eq!(counters.sent + counters.duplicated, lost + in_flight, "{counters}");
        (trace, counters)
    }

    /// Sends `count` messages, numbered from 0, on the links `1 -> 2`, `2 -> 1` and
    /// `1 -> 3` in turn, two at each microsecond, delivering as time goes, then the rest.
    fn run_three_links(count: u64, faults: NetworkFaults, seed: u64) -> (Trace, NetworkCounters) {
        let mut network = SimNetwork::new(&nodes(3), faults, Prng::new(seed));
        let links = [(node(1), node(2)), (node(2), node(1)), (node(1), node(3))];
        let mut trace = Trace::new();
        let mut deliver = |network: &mut SimNetwork<u64>, now_ns| {
            for delivery in network.deliver_due(now_ns) {
                trace.push((now_ns, delivery.from, delivery.to, delivery.message));
            }
        };
        for message in 0..count {
            let now_ns = message / 2 * MICROSECOND_NS;
            deliver(&mut network, now_ns);
            let (from, to) = links[usize::try_from(message % 3).unwrap()];
            network.send(now_ns, from, to, message);
        }
        deliver(&mut network, u64::MAX);
        assert_eq!(network.counters().dropped_overload, 0);
        (trace, network.counters())
    }

    /// Whether every link's messages arrived in send order.
    fn is_fifo_per_link(trace: &Trace) -> bool {
        let mut last = BTreeMap::new();
        trace.iter().all(|&(_, from, to, message)| {
            let previous = last.insert((from, to), message);
            previous.is_none_or(|previous| previous < message)
        })
    }

    #[test]
    fn same_seed_replays_the_same_delivery_trace() {
        for seed in 1..=3 {
            let (first, first_counters) = run_workload(seed, &busy_faults());
            let (second, second_counters) = run_workload(seed, &busy_faults());
            assert!(first.len() > 1_000, "too few deliveries: {}", first.len());
            assert_eq!(first, second);
            assert_eq!(first_counters, second_counters);
        }
        let faults = NetworkFaults::swarm(&mut Prng::new(4));
        assert_eq!(run_workload(4, &faults), run_workload(4, &faults));
    }

    #[test]
    fn different_seeds_deliver_differently() {
        let (first, _) = run_workload(1, &busy_faults());
        let (second, _) = run_workload(2, &busy_faults());
        assert_ne!(first, second);
        let (quiet_first, _) = run_workload(1, &NetworkFaults::none());
        let (quiet_second, _) = run_workload(2, &NetworkFaults::none());
        assert_ne!(quiet_first, quiet_second);
    }

    #[test]
    fn busy_workload_exercises_every_fault() {
        let (_, counters) = run_workload(5, &busy_faults());
        assert!(counters.dropped > 0, "{counters}");
        assert!(counters.duplicated > 0, "{counters}");
        assert!(counters.delayed > 0, "{counters}");
        assert!(counters.reordered > 0, "{counters}");
        assert!(counters.blocked_by_partition > 0, "{counters}");
        assert!(counters.held_by_pause > 0, "{counters}");
        assert_eq!(busy_faults().fault_kinds_enabled().len(), 10);
    }

    #[test]
    fn quiet_network_delivers_every_message_once_in_link_order() {
        let mut faults = NetworkFaults::none();
        faults.latency_ns_max = 10 * MILLISECOND_NS; // Jitter far above the send spacing.
        let (trace, counters) = run_three_links(30_000, faults.clone(), 1);
        let mut messages: Vec<u64> = trace.iter().map(|&(_, _, _, message)| message).collect();
        assert!(is_fifo_per_link(&trace));
        assert!(!messages.is_sorted(), "links are independent, so they interleave");
        messages.sort_unstable();
        assert_eq!(messages, (0..30_000).collect::<Vec<_>>());
        let expected = NetworkCounters { sent: 30_000, delivered: 30_000, ..Default::default() };
        assert_eq!(counters, expected);
        assert_eq!(faults.fault_kinds_enabled(), Vec::<&str>::new());
    }

    #[test]
    fn quiet_network_respects_the_latency_bounds() {
        let mut network = SimNetwork::new(&nodes(2), NetworkFaults::none(), Prng::new(2));
        for step in 0..1_000 {
            network.send(step * SECOND_NS, node(1), node(2), step);
            let due_ns = network.next_event_time().unwrap();
            let latency_ns = due_ns - step * SECOND_NS;
            assert!((LATENCY_NS_MIN_DEFAULT..=LATENCY_NS_MAX_DEFAULT).contains(&latency_ns));
            assert_eq!(network.pop_due(due_ns - 1), None, "not before it is due");
            assert_eq!(network.pop_due(due_ns).map(|delivery| delivery.message), Some(step));
        }
    }

    #[test]
    fn reorder_fault_breaks_link_order() {
        let mut faults = NetworkFaults::none();
        faults.reorder_ppm = 200_000;
        faults.reorder_ns_max = 5 * MILLISECOND_NS;
        let (trace, counters) = run_three_links(30_000, faults, 3);
        assert!(!is_fifo_per_link(&trace));
        assert_eq!(counters.delivered, 30_000);
        assert!((5_400..6_600).contains(&counters.reordered), "{counters}");
    }

    #[test]
    fn drop_rate_matches_the_configured_rate() {
        let mut faults = NetworkFaults::none();
        faults.drop_ppm = 100_000;
        let (trace, counters) = run_three_links(100_000, faults, 4);
        // 10 % of 100k is 10k, standard deviation ~95: +-600 is over 6 sigma.
        assert!((9_400..=10_600).contains(&counters.dropped), "{counters}");
        assert_eq!(counters.delivered + counters.dropped, 100_000);
        assert_eq!(u64::try_from(trace.len()).unwrap(), counters.delivered);
        assert!(is_fifo_per_link(&trace), "losses do not reorder");
    }

    #[test]
    fn duplicate_fault_delivers_copies() {
        let mut faults = NetworkFaults::none();
        faults.duplicate_ppm = PARTS_PER_MILLION;
        let (trace, counters) = run_three_links(1_000, faults.clone(), 5);
        let mut messages: Vec<u64> = trace.iter().map(|&(_, _, _, message)| message).collect();
        messages.sort_unstable();
        let twice: Vec<u64> = (0..1_000).flat_map(|message| [message, message]).collect();
        assert_eq!(messages, twice);
        assert_eq!(counters.duplicated, 1_000);

        faults.duplicate_ppm = 300_000;
        let (trace, counters) = run_three_links(10_000, faults, 6);
        assert!((2_700..3_300).contains(&counters.duplicated), "{counters}");
        assert_eq!(u64::try_from(trace.len()).unwrap(), 10_000 + counters.duplicated);
    }

    #[test]
    fn delay_fault_adds_a_latency_tail() {
        let mut faults = NetworkFaults::none();
        faults.delay_ppm = 100_000;
        faults.delay_ns_max = SECOND_NS;
        let mut network = SimNetwork::new(&nodes(2), faults, Prng::new(7));
        let mut latencies_ns = Vec::new();
        for step in 0..10_000 {
            // Far apart, so link order never adds to a latency.
            let sent_ns = step * 10 * SECOND_NS;
            network.send(sent_ns, node(1), node(2), step);
            latencies_ns.push(network.next_event_time().unwrap() - sent_ns);
            assert!(network.pop_due(sent_ns + 2 * SECOND_NS).is_some());
        }
        let tail = latencies_ns.iter().filter(|&&ns| ns > LATENCY_NS_MAX_DEFAULT).count();
        assert!((900..1_100).contains(&tail), "tail={tail}");
        assert!(latencies_ns.iter().any(|&ns| ns > SECOND_NS / 2));
        let delayed = usize::try_from(network.counters().delayed).unwrap();
        // A delayed message whose extra latency is tiny can stay under the base maximum.
        assert!((tail..=tail + 5).contains(&delayed), "delayed={delayed} tail={tail}");
    }

    /// Random partitions of `kind` over 3 and 5 nodes, for 50 seeds each.
    fn random_partitions(kind: PartitionKind) -> Vec<(Vec<NodeId>, Partition)> {
        let mut partitions = Vec::new();
        for count in [3, 5] {
            for seed in 0..50 {
                let all = nodes(count);
                let partition = Partition::random(kind, &all, &mut Prng::new(seed));
                partitions.push((all, partition));
            }
        }
        partitions
    }

    /// The nodes `node` reaches, itself included.
    fn view(partition: &Partition, all: &[NodeId], node: NodeId) -> Vec<NodeId> {
        all.iter().copied().filter(|&other| reaches(partition, node, other)).collect()
    }

    /// Every link is blocked exactly when `is_cut(from, to)` says.
    fn assert_matrix(
        partition: &Partition,
        all: &[NodeId],
        is_cut: impl Fn(NodeId, NodeId) -> bool,
    ) {
        for &from in all {
            for &to in all {
                let expected = from != to && is_cut(from, to);
                assert_eq!(partition.is_blocked(from, to), expected, "{from}->{to} {partition:?}");
            }
        }
    }

    #[test]
    fn isolate_one_cuts_exactly_one_node_both_ways() {
        for (all, partition) in random_partitions(PartitionKind::IsolateOne) {
            let isolated: Vec<NodeId> = all
                .iter()
                .copied()
                .filter(|&node| view(&partition, &all, node).len() == 1)
                .collect();
            assert_eq!(isolated.len(), 1, "{partition:?}");
            let victim = isolated[0];
            assert_matrix(&partition, &all, |from, to| from == victim || to == victim);
        }
    }

    #[test]
    fn majority_minority_keeps_each_side_connected_and_cuts_across() {
        for (all, partition) in random_partitions(PartitionKind::MajorityMinority) {
            let majority = all.len() / 2 + 1;
            let big: Vec<NodeId> = all
                .iter()
                .copied()
                .filter(|&node| view(&partition, &all, node).len() == majority)
                .collect();
            assert_eq!(big.len(), majority, "{partition:?}");
            let side = |node| big.contains(&node);
            assert_matrix(&partition, &all, |from, to| side(from) != side(to));
        }
    }

    #[test]
    fn ring_of_five_reaches_only_neighbours_and_ring_of_three_blocks_nothing() {
        for (all, partition) in random_partitions(PartitionKind::Ring) {
            if all.len() == 3 {
                assert!(partition.is_empty());
                continue;
            }
            let views: BTreeSet<Vec<NodeId>> =
                all.iter().map(|&node| view(&partition, &all, node)).collect();
            assert_eq!(views.len(), 5, "no two nodes share a view: {partition:?}");
            for &node in &all {
                assert_eq!(view(&partition, &all, node).len(), 3, "itself and two neighbours");
            }
            // Symmetric, and the reach graph is one cycle: walk it from node 1.
            assert_matrix(&partition, &all, |from, to| partition.is_blocked(to, from));
            let mut visited = vec![all[0]];
            while visited.len() < all.len() {
                let last = *visited.last().unwrap();
                let next = view(&partition, &all, last)
                    .into_iter()
                    .find(|node| !visited.contains(node))
                    .expect("a ring continues");
                visited.push(next);
            }
            assert!(reaches(&partition, visited[4], visited[0]), "the ring closes");
        }
    }

    #[test]
    fn ring_gives_every_node_a_majority_at_any_size() {
        for count in 1..=9 {
            let all = nodes(count);
            let partition = Partition::ring(&all);
            let majority = all.len() / 2 + 1;
            for &node in &all {
                let seen = view(&partition, &all, node).len();
                assert!(seen >= majority, "{count} nodes: {node} sees {seen}");
                assert!(seen <= majority + 1, "{count} nodes: {node} sees {seen}");
            }
        }
    }

    #[test]
    fn bridge_node_alone_reaches_both_sides() {
        for (all, partition) in random_partitions(PartitionKind::Bridge) {
            let bridges: Vec<NodeId> = all
                .iter()
                .copied()
                .filter(|&node| view(&partition, &all, node).len() == all.len())
                .collect();
            assert_eq!(bridges.len(), 1, "{partition:?}");
            let bridge = bridges[0];
            let left = view(&partition, &all, *all.iter().find(|&&n| n != bridge).unwrap());
            assert_eq!(left.len(), (all.len() - 1) / 2 + 1, "half the others and the bridge");
            let side = |node| left.contains(&node);
            assert_matrix(&partition, &all, |from, to| {
                from != bridge && to != bridge && side(from) != side(to)
            });
        }
    }

    #[test]
    fn asymmetric_blocks_one_direction_only() {
        let mut directions = BTreeSet::new();
        for (all, partition) in random_partitions(PartitionKind::Asymmetric) {
            let links: Vec<(NodeId, NodeId)> = partition.blocked_links().collect();
            assert_eq!(links.len(), all.len() - 1, "{partition:?}");
            for &(from, to) in &links {
                assert!(!partition.is_blocked(to, from), "{to}->{from} stays open");
            }
            let (from, to) = links[0];
            let is_mute = links.iter().all(|&(link_from, _)| link_from == from);
            let is_deaf = links.iter().all(|&(_, link_to)| link_to == to);
            assert!(is_mute || is_deaf, "one node on one side of every link: {partition:?}");
            directions.insert(is_mute);
        }
        assert_eq!(directions.len(), 2, "both directions occur");
    }

    #[test]
    fn random_partition_depends_on_the_node_set_not_its_order() {
        for kind in PartitionKind::ALL {
            let forward = nodes(5);
            let backward: Vec<NodeId> = forward.iter().rev().copied().collect();
            assert_eq!(
                Partition::random(kind, &forward, &mut Prng::new(8)),
                Partition::random(kind, &backward, &mut Prng::new(8)),
            );
            assert!(Partition::random(kind, &[], &mut Prng::new(8)).is_empty());
            assert!(Partition::random(kind, &nodes(1), &mut Prng::new(8)).is_empty());
        }
    }

    #[test]
    fn partition_loses_messages_when_sent_and_when_due_and_heal_restores() {
        let mut network = SimNetwork::new(&nodes(3), NetworkFaults::none(), Prng::new(9));
        network.send(0, node(1), node(2), 1); // In flight when the partition starts.
        network.set_partition(Partition::isolate(node(2), &nodes(3)));
        network.send(0, node(2), node(3), 2); // Blocked when sent.
        network.send(0, node(1), node(3), 3); // Not across the cut.
        let delivered = network.deliver_due(SECOND_NS);
        assert_eq!(delivered.iter().map(|delivery| delivery.message).collect::<Vec<_>>(), [3]);
        assert_eq!(network.counters().blocked_by_partition, 2);
        network.heal();
        network.send(SECOND_NS, node(2), node(3), 4);
        let delivered = network.deliver_due(2 * SECOND_NS);
        assert_eq!(delivered, [Delivery { from: node(2), to: node(3), message: 4 }]);
    }

    #[test]
    fn paused_node_messages_arrive_after_resume_not_before() {
        let mut network = SimNetwork::new(&nodes(3), NetworkFaults::none(), Prng::new(10));
        network.pause(node(2));
        for message in 0..5 {
            network.send(message, node(1), node(2), message); // To the paused node.
        }
        network.send(10, node(2), node(3), 100); // From the paused node.
        network.send(10, node(1), node(3), 200); // Unaffected.
        let before = network.deliver_due(SECOND_NS);
        assert_eq!(before, [Delivery { from: node(1), to: node(3), message: 200 }]);
        assert_eq!(network.in_flight_count(), 6, "held, not lost");
        assert_eq!(network.next_event_time(), None, "held messages wait for the resume");
        network.resume(2 * SECOND_NS, node(2));
        assert_eq!(network.next_event_time(), Some(2 * SECOND_NS));
        let after = network.deliver_due(3 * SECOND_NS);
        let messages: Vec<u64> = after.iter().map(|delivery| delivery.message).collect();
        assert_eq!(messages, [0, 1, 2, 3, 4, 100], "in link order, then what it sent");
        assert_eq!(network.counters().held_by_pause, 6);
        assert_eq!(network.counters().delivered, 7);
        assert_eq!(network.in_flight_count(), 0);
    }

    #[test]
    fn in_flight_bound_drops_with_a_counter() {
        let mut network = SimNetwork::new(&nodes(2), NetworkFaults::none(), Prng::new(11));
        let extra = 10;
        for message in 0..NETWORK_MESSAGES_IN_FLIGHT_MAX as u64 + extra {
            network.send(0, node(1), node(2), message);
        }
        assert_eq!(network.in_flight_count(), NETWORK_MESSAGES_IN_FLIGHT_MAX);
        assert_eq!(network.counters().dropped_overload, extra);
        let delivered = network.deliver_due(SECOND_NS);
        assert_eq!(delivered.len(), NETWORK_MESSAGES_IN_FLIGHT_MAX);
        assert_eq!(delivered.last().map(|delivery| delivery.message), Some(65_535));
        network.send(SECOND_NS, node(1), node(2), 7);
        assert_eq!(network.in_flight_count(), 1, "room again once delivered");
    }

    #[test]
    fn swarm_picks_varied_subsets_across_seeds() {
        let mut prng = Prng::new(12);
        let mut subsets = BTreeSet::new();
        let mut enabled_counts: BTreeMap<&str, u32> = BTreeMap::new();
        for _ in 0..200 {
            let faults = NetworkFaults::swarm(&mut prng);
            faults.assert_valid();
            for rate in [faults.drop_ppm, faults.delay_ppm, faults.duplicate_ppm] {
                assert!(rate == 0 || (SWARM_RATE_PPM_MIN..=SWARM_RATE_PPM_MAX).contains(&rate));
            }
            let kinds = faults.fault_kinds_enabled();
            for &kind in &kinds {
                *enabled_counts.entry(kind).or_default() += 1;
            }
            subsets.insert(kinds);
        }
        assert!(subsets.len() > 100, "only {} distinct subsets", subsets.len());
        assert_eq!(enabled_counts.len(), 10, "every kind is enabled by some seed");
        for (kind, count) in enabled_counts {
            assert!((60..140).contains(&count), "{kind} enabled {count} times in 200");
        }
    }

    #[test]
    fn slow_node_adds_latency_to_its_links_only() {
        let mut network = SimNetwork::new(&nodes(3), NetworkFaults::none(), Prng::new(13));
        network.set_slow(node(2), SECOND_NS);
        network.send(0, node(1), node(2), 1);
        network.send(0, node(1), node(3), 2);
        network.send(0, node(2), node(3), 3);
        assert_eq!(network.deliver_due(SECOND_NS - 1).len(), 1, "only 1 -> 3 is fast");
        assert_eq!(network.deliver_due(SECOND_NS + LATENCY_NS_MAX_DEFAULT).len(), 2);
        network.set_slow(node(2), 0);
        network.send(2 * SECOND_NS, node(1), node(2), 4);
        assert!(network.next_event_time().unwrap() <= 2 * SECOND_NS + LATENCY_NS_MAX_DEFAULT);
    }

    #[test]
    fn discard_node_forgets_a_crashed_nodes_traffic() {
        let mut network = SimNetwork::new(&nodes(3), NetworkFaults::none(), Prng::new(14));
        network.send(0, node(1), node(2), 1);
        network.send(0, node(2), node(3), 2);
        network.send(0, node(1), node(3), 3);
        network.pause(node(3));
        network.send(0, node(3), node(2), 4);
        network.discard_node(node(2));
        assert_eq!(network.counters().discarded, 3);
        network.resume(1, node(3));
        let delivered = network.deliver_due(SECOND_NS);
        assert_eq!(delivered, [Delivery { from: node(1), to: node(3), message: 3 }]);
    }

    #[test]
    fn nemesis_alternates_partitions_and_heals_and_stop_heals_everything() {
        let mut faults = busy_faults();
        faults.partition_kinds = [PartitionKind::Bridge].into_iter().collect();
        let mut network: SimNetwork<u64> =
            SimNetwork::new(&nodes(5), faults.clone(), Prng::new(15));
        let mut nemesis = NetworkNemesis::new(&faults, 0, Prng::new(16));
        let mut changes = Vec::new();
        while changes.len() < 20 {
            let now_ns = nemesis.next_event_time().unwrap();
            assert!(now_ns >= NEMESIS_PHASE_NS_MIN);
            changes.extend(nemesis.step(now_ns, &mut network));
        }
        let partitions: Vec<&NetworkChange> = changes
            .iter()
            .filter(|change| matches!(change, NetworkChange::Partitioned(..)))
            .collect();
        let heals = changes.iter().filter(|change| **change == NetworkChange::Healed).count();
        assert!(!partitions.is_empty() && heals > 0, "{changes:?}");
        assert!(partitions.iter().all(|change| {
            matches!(change, NetworkChange::Partitioned(PartitionKind::Bridge, _))
        }));
        assert!(changes.iter().any(|change| matches!(change, NetworkChange::Slowed { .. })));
        nemesis.stop(&mut network);
        assert!(network.partition().is_empty());
        assert_eq!(nemesis.next_event_time(), None);
        assert!(network.nodes().iter().all(|&node| network.slow_ns(node) == 0));
    }

    #[test]
    fn nemesis_without_partitions_or_slow_nodes_does_nothing() {
        let nemesis = NetworkNemesis::new(&NetworkFaults::none(), 0, Prng::new(17));
        assert_eq!(nemesis.next_event_time(), None);
    }

    #[test]
    #[should_panic(expected = "time went backwards")]
    fn time_going_backwards_is_a_bug() {
        let mut network = SimNetwork::new(&nodes(2), NetworkFaults::none(), Prng::new(18));
        network.send(10, node(1), node(2), 1);
        network.send(9, node(1), node(2), 2);
    }
}
