//! One group's replica on one node: the acceptor and learner, the inputs and effects, and the
//! invariants. The proposer side (phase 1, the phase-2 pipeline, leases, reads, transfer) is
//! `master.rs`.
//!
//! A replica is a pure state machine: every input (`on_message`, `on_tick`, `on_persisted`,
//! `propose`, `read`, `transfer`, the snapshot inputs) appends effects to a caller's buffer,
//! in the order the runtime must carry them out. `Apply` effects come strictly in slot order.
//!
//! Must never: announce a promise or an acceptance before its persist (`durable.rs`), apply a
//! slot before every slot below it, or hold an unbounded queue.

use std::collections::{BTreeMap, BTreeSet};

use super::durable::{DurableState, PersistId, Persists, Record, SnapshotMeta};
use super::jitter::Jitter;
use super::master::{Candidate, Claim, Master};
use super::message::{Accepted, Message, Promise, PromiseEntry};
use super::plant::Plant;
use super::value::{Membership, Value, ValueKind};
use crate::constants::{
    ACCEPT_AHEAD_SLOTS_MAX, CATCH_UP_ENTRIES_MAX, CATCH_UP_RETRY_TICKS, ELECTION_TIMEOUT_TICKS_MAX,
    ELECTION_TIMEOUT_TICKS_MIN, PERSISTS_IN_FLIGHT_MAX, PERSISTS_RESERVED_COUNT,
    PIPELINE_WINDOW_SLOTS, PROMISE_ENTRIES_MAX, TICK_MILLIS,
};
use crate::types::{Ballot, GroupId, NodeId, Slot};

/// Who a replica is and where its randomness and time start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Options {
    /// This node.
    pub node: NodeId,
    /// The group.
    pub group: GroupId,
    /// Seed of the election timeout jitter.
    pub seed: u64,
    /// The runtime's clock when the replica started, in milliseconds: the master's time stamp
    /// is this plus the ticks since, never below a stamp it has seen.
    pub clock_origin_millis: u64,
    /// Applied slots above the truncation point after which the replica asks for a snapshot
    /// (`TakeSnapshot`): `SNAPSHOT_INTERVAL_SLOTS` in production; the simulator uses fewer so
    /// snapshots and truncation happen within a run. Must exceed `ACCEPT_AHEAD_SLOTS_MAX`.
    pub snapshot_interval_slots: u64,
}

/// Names one read request, chosen by the caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ReadId(pub u64);

/// What a replica asks its runtime to do, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect {
    /// Send `message` to the replica of this group on `to`.
    Send {
        /// The destination.
        to: NodeId,
        /// The message.
        message: Message,
    },
    /// Make these durable, then call `on_persisted(id)`. Persists may complete in any order.
    Persist {
        /// Handed back on completion.
        id: PersistId,
        /// A new promise (superblock).
        promised: Option<Ballot>,
        /// Accepted records (log).
        records: Vec<Record>,
        /// Chosen marks for records already written (lazy: never waited for).
        chosen: Vec<Slot>,
    },
    /// Apply `value`, chosen in `slot`, to the state machine. Strictly in slot order.
    Apply {
        /// The slot.
        slot: Slot,
        /// The value.
        value: Value,
    },
    /// The read may run now against the state machine: it is linearizable.
    ReadReady {
        /// The read.
        id: ReadId,
    },
    /// The read cannot be served here (the master stepped down); retry at the master.
    ReadAborted {
        /// The read.
        id: ReadId,
    },
    /// Fetch the snapshot covering every slot below `slot` from `from`, then call
    /// `on_snapshot_installed` (or `on_snapshot_aborted`).
    SnapshotWanted {
        /// Who offered it.
        from: NodeId,
        /// Its truncation point.
        slot: Slot,
    },
    /// Snapshot the state machine as it is now (after every `Apply` before this effect), store
    /// it with `meta`, then call `on_snapshot_taken(meta.slot)`.
    TakeSnapshot {
        /// What to store with the snapshot.
        meta: SnapshotMeta,
    },
}

/// The role a replica plays now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Accepts, learns and applies.
    Follower,
    /// Running phase 1.
    Candidate,
    /// Completed phase 1; proposes.
    Master,
}

/// Why a proposal was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProposeError {
    /// Not the serving master; `master` is the one this replica follows, if any.
    #[error("not the master")]
    NotMaster {
        /// The master this replica knows of.
        master: Option<NodeId>,
    },
    /// `W` slots are in flight: back-pressure, retry after some are chosen.
    #[error("the pipeline window is full")]
    WindowFull,
    /// A leader transfer is in progress.
    #[error("a leader transfer is in progress")]
    Transferring,
    /// A membership change does not govern yet, or the new epoch is not the next one.
    #[error("a membership change is in progress or the epoch is wrong")]
    MembershipChange,
}

/// How a read will be served.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadPath {
    /// Locally under the lease.
    Lease,
    /// After a heartbeat round confirms mastership.
    ReadIndex,
}

/// After a persist completes: what to announce, and to whom (possibly this replica).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum AfterPersist {
    Nothing,
    Promise { to: NodeId, ballot: Ballot, from: Slot },
    Accepted { to: NodeId, ballot: Ballot, slot: Slot },
}

/// One slot of the in-memory log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Entry {
    pub(super) ballot: Ballot,
    pub(super) value: Value,
    pub(super) chosen: bool,
}

/// What the role-specific state holds.
#[derive(Debug)]
pub(super) enum RoleState {
    Follower,
    Candidate(Candidate),
    Master(Box<Master>),
}

/// One group's replica on one node. See the module docs and `docs/design/protocol.md`.
#[derive(Debug)]
pub struct Replica {
    pub(super) options: Options,
    pub(super) jitter: Jitter,
    pub(super) now: u64,
    pub(super) promised: Ballot,
    pub(super) round_seen: u64,
    pub(super) log: BTreeMap<Slot, Entry>,
    pub(super) truncation: Slot,
    pub(super) frontier: Slot,
    pub(super) applied: Slot,
    /// First slot governed -> membership; always holds an entry at or below `truncation`.
    pub(super) configurations: BTreeMap<Slot, Membership>,
    pub(super) persists: Persists<AfterPersist>,
    pub(super) lazy_records: Vec<Record>,
    pub(super) lazy_chosen: Vec<Slot>,
    pub(super) role: RoleState,
    pub(super) master_seen: Option<(NodeId, Ballot)>,
    pub(super) heard_master_tick: Option<u64>,
    pub(super) election_deadline: u64,
    pub(super) known_frontier: Slot,
    pub(super) catch_up_peer: Option<NodeId>,
    pub(super) catch_up_sent_tick: Option<u64>,
    pub(super) snapshot_fetch: Option<Slot>,
    pub(super) snapshot_requested: bool,
    pub(super) stamp_millis: u64,
    pub(super) promised_checked: Ballot,
    /// The bug planted here, if any (`plant.rs`).
    #[cfg(any(test, feature = "sim"))]
    pub(super) plant: Option<Plant>,
}

impl Replica {
    /// A replica of a new group whose first membership is `membership`.
    #[must_use]
    pub fn new(options: Options, membership: Membership) -> Replica {
        let snapshot = SnapshotMeta {
            slot: Slot(0),
            configurations: vec![(Slot(0), membership)],
            stamp_millis: options.clock_origin_millis,
        };
        Replica::restart(
            options,
            DurableState { promised: Ballot::ZERO, snapshot, records: vec![] },
        )
    }

    /// A replica restarted from what its disk kept. It starts as a follower that refuses every
    /// `Prepare` for `ELECTION_TIMEOUT_TICKS_MIN` ticks (it may have acknowledged a lease round
    /// it no longer remembers), and re-applies its chosen prefix from the snapshot on.
    ///
    /// # Panics
    /// If no configuration governs the truncation point, or the snapshot interval is not above
    /// `ACCEPT_AHEAD_SLOTS_MAX`.
    #[must_use]
    pub fn restart(options: Options, durable: DurableState) -> Replica {
        assert!(
            options.snapshot_interval_slots > ACCEPT_AHEAD_SLOTS_MAX,
            "snapshot interval {} within the accept-ahead range",
            options.snapshot_interval_slots
        );
        let truncation = durable.snapshot.slot;
        let configurations: BTreeMap<Slot, Membership> =
            durable.snapshot.configurations.into_iter().collect();
        assert!(configurations.range(..=truncation).next().is_some(), "no configuration");
        let mut replica = Replica {
            options,
            jitter: Jitter::new(options.seed),
            now: 0,
            promised: durable.promised,
            round_seen: durable.promised.round,
            log: BTreeMap::new(),
            truncation,
            frontier: truncation,
            applied: truncation,
            configurations,
            persists: Persists::new(),
            lazy_records: Vec::new(),
            lazy_chosen: Vec::new(),
            role: RoleState::Follower,
            master_seen: None,
            heard_master_tick: Some(0),
            election_deadline: 0,
            known_frontier: truncation,
            catch_up_peer: None,
            catch_up_sent_tick: None,
            snapshot_fetch: None,
            snapshot_requested: false,
            stamp_millis: durable.snapshot.stamp_millis.max(options.clock_origin_millis),
            promised_checked: durable.promised,
            #[cfg(any(test, feature = "sim"))]
            plant: None,
        };
        for record in durable.records {
            if record.slot < truncation {
                continue;
            }
            // An accept under `b` is a promise of `b`.
            replica.promised = replica.promised.max(record.ballot);
            replica.round_seen = replica.round_seen.max(record.ballot.round);
            replica.stamp_millis = replica.stamp_millis.max(record.value.stamp_millis);
            let entry = Entry { ballot: record.ballot, value: record.value, chosen: false };
            replica.log.insert(record.slot, entry);
            if record.chosen {
                replica.mark_chosen(record.slot);
            }
        }
        replica.lazy_chosen.clear();
        replica.promised_checked = replica.promised;
        replica.reset_election_deadline();
        replica.advance_frontier();
        replica
    }

    // ----- Queries. -----

    /// This node.
    #[must_use]
    pub fn node(&self) -> NodeId {
        self.options.node
    }

    /// The role now.
    #[must_use]
    pub fn role(&self) -> Role {
        match self.role {
            RoleState::Follower => Role::Follower,
            RoleState::Candidate(_) => Role::Candidate,
            RoleState::Master(_) => Role::Master,
        }
    }

    /// The highest ballot promised (in memory; durable once its persist completes).
    #[must_use]
    pub fn promised(&self) -> Ballot {
        self.promised
    }

    /// The commit frontier `F`: every slot below it is chosen and known here.
    #[must_use]
    pub fn frontier(&self) -> Slot {
        self.frontier
    }

    /// The applied frontier `A`: every slot below it was emitted as `Apply`.
    #[must_use]
    pub fn applied(&self) -> Slot {
        self.applied
    }

    /// The truncation point `T`: slots below it live only in the snapshot.
    #[must_use]
    pub fn truncation(&self) -> Slot {
        self.truncation
    }

    /// Ticks seen since start.
    #[must_use]
    pub fn now(&self) -> u64 {
        self.now
    }

    /// The master this replica follows (itself when master), if any.
    #[must_use]
    pub fn master(&self) -> Option<NodeId> {
        match &self.role {
            RoleState::Master(_) => Some(self.options.node),
            RoleState::Candidate(_) => None,
            RoleState::Follower => self.master_seen.map(|(node, _)| node),
        }
    }

    /// The value chosen in `slot`, if known here and not truncated.
    #[must_use]
    pub fn chosen(&self, slot: Slot) -> Option<&Value> {
        self.log.get(&slot).filter(|entry| entry.chosen).map(|entry| &entry.value)
    }

    /// The ballot `slot` is held under here (accepted, or learned chosen) and its value, if
    /// held and not truncated.
    #[must_use]
    pub fn accepted(&self, slot: Slot) -> Option<(Ballot, &Value)> {
        self.log.get(&slot).map(|entry| (entry.ballot, &entry.value))
    }

    /// The membership governing `slot`.
    ///
    /// # Panics
    /// If `slot` is below every known configuration (below the truncation point).
    #[must_use]
    pub fn configuration(&self, slot: Slot) -> &Membership {
        self.configurations.range(..=slot).next_back().map(|(_, config)| config).expect("config")
    }

    /// Persists waiting for completion.
    #[must_use]
    pub fn persists_waiting(&self) -> usize {
        self.persists.len()
    }

    // ----- Inputs. -----

    /// One tick of time passed.
    pub fn on_tick(&mut self, effects: &mut Vec<Effect>) {
        self.now += 1;
        if matches!(self.role, RoleState::Master(_)) {
            self.tick_master(effects);
        } else if self.now >= self.election_deadline {
            if self.may_campaign() {
                self.start_candidacy(false, effects);
            } else {
                self.reset_election_deadline();
            }
        }
        if self.frontier < self.known_frontier
            && let Some(peer) = self.catch_up_peer
        {
            self.request_catch_up(peer, effects);
        }
        self.finish(effects);
    }

    /// A message from the replica of this group on `from`.
    pub fn on_message(&mut self, from: NodeId, message: Message, effects: &mut Vec<Effect>) {
        if from == self.options.node {
            return; // Never addressed to itself; a misrouted frame.
        }
        match message {
            Message::Prepare { ballot, from: slot, transfer } => {
                self.on_prepare(from, ballot, slot, transfer, effects);
            }
            Message::Promise(promise) => self.on_promise(from, &promise, effects),
            Message::Accept { ballot, slot, value, frontier } => {
                self.on_accept(from, ballot, slot, value, frontier, effects);
            }
            Message::Accepted(accepted) => self.on_accepted(from, accepted),
            Message::Reject { ballot, promised } => self.on_reject(ballot, promised, effects),
            Message::Heartbeat { ballot, frontier, truncation, round } => {
                self.on_heartbeat(from, ballot, frontier, truncation, round, effects);
            }
            Message::HeartbeatAck { ballot, round, applied } => {
                self.on_heartbeat_ack(from, ballot, round, applied);
            }
            Message::CatchUpRequest { from: slot } => self.on_catch_up_request(from, slot, effects),
            Message::CatchUp { entries, frontier } => {
                self.on_catch_up(from, entries, frontier, effects);
            }
            Message::SnapshotOffer { slot } => self.on_snapshot_offer(from, slot, effects),
            Message::TimeoutNow { ballot } => self.on_timeout_now(from, ballot, effects),
        }
        self.finish(effects);
    }

    /// The persist `id` is durable. Announces what it covered, with its proof.
    ///
    /// # Panics
    /// For an id this replica is not waiting for (a runtime bug: completions of a crashed
    /// incarnation must not reach the restarted one).
    pub fn on_persisted(&mut self, id: PersistId, effects: &mut Vec<Effect>) {
        let (proof, after) = self.persists.complete(id).expect("on_persisted: unknown persist id");
        match after {
            AfterPersist::Nothing => {}
            AfterPersist::Promise { to, ballot, from } => {
                let (entries, behind) = self.promise_report(from);
                let promise = Promise::new(&proof, (ballot, from), entries, behind);
                if to == self.options.node {
                    self.on_promise(to, &promise, effects);
                } else {
                    send(effects, to, Message::Promise(promise));
                }
            }
            AfterPersist::Accepted { to, ballot, slot } => {
                let accepted = Accepted::new(&proof, ballot, slot);
                if to == self.options.node {
                    self.on_accepted(to, accepted);
                } else {
                    send(effects, to, Message::Accepted(accepted));
                }
            }
        }
        self.finish(effects);
    }

    /// The snapshot asked for by `SnapshotWanted` is installed in the state machine.
    ///
    /// # Panics
    /// If `meta` carries no configuration governing its slot.
    pub fn on_snapshot_installed(&mut self, meta: SnapshotMeta, effects: &mut Vec<Effect>) {
        self.snapshot_fetch = None;
        if meta.slot <= self.applied {
            return; // Stale: we applied past it meanwhile.
        }
        // A candidate or master so far behind that it needed a snapshot (a master learning
        // its next phase-1 window) steps down: its proposals and window lie below the
        // snapshot (klein-sim seed 2012457). It campaigns again from the new frontier.
        if !matches!(self.role, RoleState::Follower) {
            self.step_down(effects);
        }
        assert!(meta.configurations.first().is_some_and(|(slot, _)| *slot <= meta.slot));
        self.log = self.log.split_off(&meta.slot);
        self.truncation = meta.slot;
        self.frontier = self.frontier.max(meta.slot);
        self.applied = meta.slot;
        self.stamp_millis = self.stamp_millis.max(meta.stamp_millis);
        let later = self.configurations.split_off(&Slot(meta.slot.0 + 1));
        self.configurations = meta.configurations.into_iter().collect();
        self.configurations.extend(later);
        self.lazy_records.retain(|record| record.slot >= meta.slot);
        self.lazy_chosen.retain(|slot| *slot >= meta.slot);
        self.finish(effects);
    }

    /// The snapshot fetch failed; a later offer may start another.
    pub fn on_snapshot_aborted(&mut self) {
        self.snapshot_fetch = None;
    }

    /// The snapshot asked for by `TakeSnapshot` is durable: forget the slots below `slot`.
    ///
    /// # Panics
    /// If `slot` is above the applied frontier.
    pub fn on_snapshot_taken(&mut self, slot: Slot) {
        assert!(slot <= self.applied, "snapshot {slot} above applied {}", self.applied);
        self.snapshot_requested = false;
        if slot <= self.truncation {
            return;
        }
        self.log = self.log.split_off(&slot);
        self.truncation = slot;
        let governing = *self.configurations.range(..=slot).next_back().expect("config").0;
        self.configurations = self.configurations.split_off(&governing);
        self.lazy_records.retain(|record| record.slot >= slot);
        self.lazy_chosen.retain(|marked| *marked >= slot);
    }

    // ----- Acceptor. -----

    fn on_prepare(
        &mut self,
        from: NodeId,
        ballot: Ballot,
        slot: Slot,
        transfer: bool,
        effects: &mut Vec<Effect>,
    ) {
        self.round_seen = self.round_seen.max(ballot.round);
        // The master of `ballot` asking for the next window of its phase 1: either the vow
        // stands already (only the report is new), or this replica follows that master
        // without having promised its ballot (it missed the first window) and promises now.
        // Stickiness protects the followed master's lease; its own Prepare cannot harm it.
        let followed = self.master_seen == Some((from, ballot)) && ballot > self.promised;
        let next_window = ballot.node == from.get() && (ballot == self.promised || followed);
        if !next_window && (ballot <= self.promised || (!transfer && self.is_sticky())) {
            let promised = self.promised;
            send(effects, from, Message::Reject { ballot, promised });
            return;
        }
        if !self.has_acceptor_room() {
            return; // Overloaded: the candidate retries.
        }
        if next_window {
            self.promised = ballot;
        } else {
            self.step_down(effects);
            self.promised = ballot;
            self.master_seen = None;
            self.heard_master_tick = None;
            self.reset_election_deadline();
        }
        let after = AfterPersist::Promise { to: from, ballot, from: slot };
        if self.planted(Plant::PromiseNotPersisted) {
            // PLANTED: the proof covers the promise, the disk is never asked to write it.
            let id = self.persists.start(Some(ballot), vec![], after);
            effects.push(Effect::Persist { id, promised: None, records: vec![], chosen: vec![] });
            return;
        }
        self.persist(Some(ballot), vec![], after, effects);
    }

    /// What a promise reports from `from` on: the accepted slots of the window
    /// `[from, from + PROMISE_ENTRIES_MAX)` and whether any lies beyond it; or "behind" with
    /// the commit frontier when `from` is truncated here, or slots lie beyond the window and
    /// this replica knows more chosen slots than the candidate (it can catch up from here).
    pub(super) fn promise_report(&self, from: Slot) -> ((Vec<PromiseEntry>, bool), Option<Slot>) {
        let beyond = Slot(from.0 + PROMISE_ENTRIES_MAX);
        let more = self.log.range(beyond..).next().is_some();
        if from < self.truncation || (more && self.frontier > from) {
            return ((vec![], false), Some(self.frontier));
        }
        let entries = self
            .log
            .range(from..beyond)
            .map(|(slot, entry)| PromiseEntry {
                slot: *slot,
                ballot: entry.ballot,
                value: entry.value.clone(),
                chosen: entry.chosen,
            })
            .collect();
        ((entries, more), None)
    }

    fn on_accept(
        &mut self,
        from: NodeId,
        ballot: Ballot,
        slot: Slot,
        value: Value,
        frontier: Slot,
        effects: &mut Vec<Effect>,
    ) {
        if !self.admit(from, ballot, effects) {
            return;
        }
        let raised = (ballot > self.promised).then_some(ballot);
        self.promised = ballot;
        let ahead = Slot(self.frontier.0 + ACCEPT_AHEAD_SLOTS_MAX);
        // A slot known chosen here with another value: the Accept comes from a master whose
        // ballot is below the one that chose it (every higher ballot proposes the chosen
        // value), delayed, reaching a replica that learned the slot by catch-up and so never
        // promised that higher ballot. Its value can never be chosen; keep ours, answer nothing.
        let stale = self.log.get(&slot).is_some_and(|entry| entry.chosen && entry.value != value);
        if slot >= self.truncation && slot < ahead && !stale && self.has_acceptor_room() {
            self.stamp_millis = self.stamp_millis.max(value.stamp_millis);
            let chosen = self.log.get(&slot).is_some_and(|entry| entry.chosen);
            let record = Record { slot, ballot, value: value.clone(), chosen };
            self.log.insert(slot, Entry { ballot, value, chosen });
            if self.planted(Plant::ReplyBeforePersist) {
                // PLANTED: the acceptance is announced before the write is durable.
                self.persist(raised, vec![record], AfterPersist::Nothing, effects);
                let accepted = Accepted::received(ballot, slot);
                send(effects, from, Message::Accepted(accepted));
            } else {
                let after = AfterPersist::Accepted { to: from, ballot, slot };
                self.persist(raised, vec![record], after, effects);
            }
        } else if raised.is_some() && self.persists.len() < PERSISTS_IN_FLIGHT_MAX {
            self.persist(raised, vec![], AfterPersist::Nothing, effects);
        }
        self.learn_frontier(from, ballot, frontier, effects);
    }

    /// Notes a master's message under `ballot`: one below the promise is rejected (returns
    /// false); otherwise the sender is followed as the master of `ballot`.
    fn admit(&mut self, from: NodeId, ballot: Ballot, effects: &mut Vec<Effect>) -> bool {
        self.round_seen = self.round_seen.max(ballot.round);
        if ballot < self.promised {
            let promised = self.promised;
            send(effects, from, Message::Reject { ballot, promised });
            return false;
        }
        self.follow(from, ballot, effects);
        true
    }

    fn on_reject(&mut self, ballot: Ballot, promised: Ballot, effects: &mut Vec<Effect>) {
        self.round_seen = self.round_seen.max(promised.round);
        if self.own_ballot() == Some(ballot) && promised > ballot {
            self.step_down(effects);
        }
    }

    fn on_heartbeat(
        &mut self,
        from: NodeId,
        ballot: Ballot,
        frontier: Slot,
        truncation: Slot,
        round: u64,
        effects: &mut Vec<Effect>,
    ) {
        if !self.admit(from, ballot, effects) {
            return;
        }
        self.learn_frontier(from, ballot, frontier.max(truncation), effects);
        // Apply first, so the ack reports what the frontier just committed (transfer waits on
        // it).
        self.apply(effects);
        let applied = self.applied;
        send(effects, from, Message::HeartbeatAck { ballot, round, applied });
    }

    /// Hears from the master of `ballot` on `from`: it is alive (stickiness, election timer).
    fn follow(&mut self, from: NodeId, ballot: Ballot, effects: &mut Vec<Effect>) {
        if self.own_ballot().is_some_and(|own| own < ballot) {
            self.step_down(effects);
        }
        if matches!(self.role, RoleState::Follower) {
            if self.master_seen.is_none_or(|(_, seen)| seen <= ballot) {
                self.master_seen = Some((from, ballot));
            }
            self.heard_master_tick = Some(self.now);
            self.reset_election_deadline();
        }
    }

    // ----- Learner. -----

    /// Commit notification from the master of `ballot`: every slot below `frontier` is chosen.
    /// Marks those held under `ballot` (the master's value); fetches the others.
    fn learn_frontier(
        &mut self,
        master: NodeId,
        ballot: Ballot,
        frontier: Slot,
        effects: &mut Vec<Effect>,
    ) {
        if frontier <= self.frontier {
            return;
        }
        let matching: Vec<Slot> = self
            .log
            .range(self.frontier..frontier)
            .filter(|(_, entry)| !entry.chosen && entry.ballot == ballot)
            .map(|(slot, _)| *slot)
            .collect();
        for slot in matching {
            self.mark_chosen(slot);
        }
        self.advance_frontier();
        if frontier > self.known_frontier {
            self.known_frontier = frontier;
        }
        if self.frontier < frontier {
            self.request_catch_up(master, effects);
        }
    }

    pub(super) fn request_catch_up(&mut self, peer: NodeId, effects: &mut Vec<Effect>) {
        let recent = self.catch_up_sent_tick.is_some_and(|at| self.now < at + CATCH_UP_RETRY_TICKS);
        if recent && self.catch_up_peer == Some(peer) {
            return;
        }
        self.catch_up_peer = Some(peer);
        self.catch_up_sent_tick = Some(self.now);
        send(effects, peer, Message::CatchUpRequest { from: self.frontier });
    }

    fn on_catch_up_request(&mut self, from: NodeId, slot: Slot, effects: &mut Vec<Effect>) {
        if slot < self.truncation {
            let truncation = self.truncation;
            send(effects, from, Message::SnapshotOffer { slot: truncation });
            return;
        }
        let entries: Vec<(Slot, Value)> = self
            .log
            .range(slot..self.frontier.max(slot))
            .take(usize::try_from(CATCH_UP_ENTRIES_MAX).unwrap_or(usize::MAX))
            .map(|(slot, entry)| (*slot, entry.value.clone()))
            .collect();
        let frontier = self.frontier;
        send(effects, from, Message::CatchUp { entries, frontier });
    }

    fn on_catch_up(
        &mut self,
        from: NodeId,
        entries: Vec<(Slot, Value)>,
        frontier: Slot,
        effects: &mut Vec<Effect>,
    ) {
        let before = self.frontier;
        for (slot, value) in entries {
            self.learn_chosen(slot, None, value);
        }
        self.advance_frontier();
        self.known_frontier = self.known_frontier.max(frontier);
        if self.frontier > before {
            self.catch_up_sent_tick = None;
            if self.frontier < self.known_frontier {
                self.request_catch_up(from, effects);
            }
        }
    }

    fn on_snapshot_offer(&mut self, from: NodeId, slot: Slot, effects: &mut Vec<Effect>) {
        if slot > self.frontier && self.snapshot_fetch.is_none() {
            self.snapshot_fetch = Some(slot);
            effects.push(Effect::SnapshotWanted { from, slot });
        }
    }

    /// Learns that `value` is chosen in `slot` (from a catch-up or a promise reporting it
    /// chosen), keeping the record's ballot when it holds one.
    pub(super) fn learn_chosen(&mut self, slot: Slot, ballot: Option<Ballot>, value: Value) {
        if slot < self.truncation {
            return;
        }
        if let Some(entry) = self.log.get(&slot)
            && entry.chosen
        {
            assert_eq!(entry.value, value, "{slot} chosen twice");
            return;
        }
        if let RoleState::Master(master) = &self.role
            && master.in_flight.contains_key(&slot)
        {
            // A master's proposal must be the value chosen (its phase 1 saw any earlier one).
            assert_eq!(self.log[&slot].value, value, "{slot}: the master proposed another value");
            // Learned chosen another way (a catch-up): no longer in flight (klein-sim seed
            // 2012457 left it there below the advancing frontier).
            self.master_mut().in_flight.remove(&slot);
        }
        let kept = self.log.get(&slot).map(|entry| entry.ballot);
        let ballot = kept.or(ballot).unwrap_or(Ballot::ZERO);
        self.stamp_millis = self.stamp_millis.max(value.stamp_millis);
        self.lazy_records.push(Record { slot, ballot, value: value.clone(), chosen: true });
        self.log.insert(slot, Entry { ballot, value, chosen: false });
        self.mark_chosen(slot);
        self.lazy_chosen.pop(); // The record above carries the mark.
    }

    /// Marks `slot` (held in the log) chosen; a membership change starts to govern `W` later.
    pub(super) fn mark_chosen(&mut self, slot: Slot) {
        let entry = self.log.get_mut(&slot).expect("mark_chosen: slot not held");
        if entry.chosen {
            return;
        }
        entry.chosen = true;
        self.lazy_chosen.push(slot);
        if let RoleState::Master(master) = &mut self.role {
            // Chosen by any path (own quorum, a late catch-up): no longer in flight.
            master.in_flight.remove(&slot);
        }
        if let ValueKind::MembershipChange(membership) = &entry.value.kind {
            let governs = Slot(slot.0 + PIPELINE_WINDOW_SLOTS);
            self.configurations.insert(governs, membership.clone());
        }
    }

    pub(super) fn advance_frontier(&mut self) {
        while self.log.get(&self.frontier).is_some_and(|entry| entry.chosen) {
            self.frontier = Slot(self.frontier.0 + 1);
        }
    }

    /// Emits `Apply` for every chosen slot not applied yet, in order.
    fn apply(&mut self, effects: &mut Vec<Effect>) {
        if self.planted(Plant::ApplyOutOfOrder) {
            // PLANTED: slots chosen above a hole are applied at once, not after the hole.
            for (slot, entry) in self.log.range(self.frontier..) {
                if entry.chosen {
                    effects.push(Effect::Apply { slot: *slot, value: entry.value.clone() });
                }
            }
        }
        while self.applied < self.frontier {
            let slot = self.applied;
            let value = self.log[&slot].value.clone();
            self.stamp_millis = self.stamp_millis.max(value.stamp_millis);
            if let RoleState::Master(master) = &mut self.role
                && master.claim == Claim::Proposed(slot)
            {
                master.claim = Claim::Applied;
            }
            effects.push(Effect::Apply { slot, value });
            self.applied = Slot(slot.0 + 1);
        }
    }

    /// What every input ends with: frontier, applies, the master's follow-ups, lazy persists.
    pub(super) fn finish(&mut self, effects: &mut Vec<Effect>) {
        self.advance_frontier();
        self.apply(effects);
        if matches!(self.role, RoleState::Master(_)) {
            self.after_master_input(effects);
        }
        self.flush_lazy(effects);
        let interval = self.options.snapshot_interval_slots;
        if !self.snapshot_requested && self.applied.0 - self.truncation.0 >= interval {
            self.snapshot_requested = true;
            let meta = self.snapshot_meta(self.applied);
            effects.push(Effect::TakeSnapshot { meta });
        }
    }

    fn snapshot_meta(&self, slot: Slot) -> SnapshotMeta {
        let governing = *self.configurations.range(..=slot).next_back().expect("config").0;
        let configurations =
            self.configurations.range(governing..).map(|(s, m)| (*s, m.clone())).collect();
        SnapshotMeta { slot, configurations, stamp_millis: self.stamp_millis }
    }

    /// Writes chosen marks and caught-up values, never waited for; held while persists are
    /// saturated.
    fn flush_lazy(&mut self, effects: &mut Vec<Effect>) {
        if self.lazy_records.is_empty() && self.lazy_chosen.is_empty() {
            return;
        }
        if self.persists.len() >= PERSISTS_IN_FLIGHT_MAX - PERSISTS_RESERVED_COUNT {
            return;
        }
        let id = self.persists.start(None, vec![], AfterPersist::Nothing);
        let records = std::mem::take(&mut self.lazy_records);
        let chosen = std::mem::take(&mut self.lazy_chosen);
        effects.push(Effect::Persist { id, promised: None, records, chosen });
    }

    // ----- Helpers shared with `master.rs`. -----

    /// Starts a persist of a promise and records; `after` runs on completion.
    pub(super) fn persist(
        &mut self,
        promised: Option<Ballot>,
        records: Vec<Record>,
        after: AfterPersist,
        effects: &mut Vec<Effect>,
    ) {
        assert!(self.persists.len() < PERSISTS_IN_FLIGHT_MAX, "persists saturated");
        let accepted = records.iter().map(|record| (record.slot, record.ballot)).collect();
        let id = self.persists.start(promised, accepted, after);
        effects.push(Effect::Persist { id, promised, records, chosen: vec![] });
    }

    fn has_acceptor_room(&self) -> bool {
        self.persists.len() < PERSISTS_IN_FLIGHT_MAX - PERSISTS_RESERVED_COUNT
    }

    pub(super) fn own_ballot(&self) -> Option<Ballot> {
        match &self.role {
            RoleState::Follower => None,
            RoleState::Candidate(candidate) => Some(candidate.ballot),
            RoleState::Master(master) => Some(master.ballot),
        }
    }

    /// Whether a live master forbids promising (stickiness; a master counts itself live).
    fn is_sticky(&self) -> bool {
        matches!(self.role, RoleState::Master(_))
            || self.heard_master_tick.is_some_and(|at| self.now < at + ELECTION_TIMEOUT_TICKS_MIN)
    }

    pub(super) fn may_campaign(&self) -> bool {
        self.configuration(self.frontier).is_voter(self.options.node)
            && self.persists.len() + PERSISTS_RESERVED_COUNT <= PERSISTS_IN_FLIGHT_MAX
    }

    pub(super) fn reset_election_deadline(&mut self) {
        let timeout = self.jitter.between(ELECTION_TIMEOUT_TICKS_MIN, ELECTION_TIMEOUT_TICKS_MAX);
        self.election_deadline = self.now + timeout;
    }

    /// The master's time stamp for a new value: its clock, never below a stamp it has seen.
    pub(super) fn stamp(&mut self) -> u64 {
        let clock = self.options.clock_origin_millis + self.now * TICK_MILLIS;
        self.stamp_millis = self.stamp_millis.max(clock);
        self.stamp_millis
    }

    /// Voters and learners of every configuration governing `slot` or a later known slot.
    pub(super) fn members_from(&self, slot: Slot) -> BTreeSet<NodeId> {
        let governing = *self.configurations.range(..=slot).next_back().expect("config").0;
        let mut members = BTreeSet::new();
        for membership in self.configurations.range(governing..).map(|(_, m)| m) {
            members.extend(membership.members());
        }
        members.remove(&self.options.node);
        members
    }

    // ----- Invariants. -----

    /// Checks the replica's invariants; cheap enough to run after every simulated event.
    ///
    /// # Panics
    /// On a violated invariant: a bug.
    pub fn check_invariants(&mut self) {
        assert!(self.truncation <= self.applied, "T <= A");
        assert!(self.applied <= self.frontier, "A <= F");
        assert!(self.promised >= self.promised_checked, "promised decreased");
        self.promised_checked = self.promised;
        assert!(self.persists.len() <= PERSISTS_IN_FLIGHT_MAX, "persists bounded");
        assert!(self.configurations.range(..=self.truncation).next().is_some(), "config at T");
        assert!(self.log.keys().next().is_none_or(|first| *first >= self.truncation));
        if self.frontier > self.truncation {
            let last = Slot(self.frontier.0 - 1);
            assert!(self.log.get(&last).is_some_and(|entry| entry.chosen), "F-1 chosen");
        }
        assert!(self.log.get(&self.frontier).is_none_or(|entry| !entry.chosen), "F maximal");
        match &self.role {
            RoleState::Follower => {}
            RoleState::Candidate(candidate) => {
                assert_eq!(candidate.ballot, self.promised, "candidate only at its promise");
            }
            RoleState::Master(master) => self.check_master(master),
        }
    }

    fn check_master(&self, master: &Master) {
        assert_eq!(master.ballot, self.promised, "master only while its ballot is promised");
        let window = self.frontier.0 + PIPELINE_WINDOW_SLOTS;
        assert!(master.next_slot.0 <= window, "proposals stay below F + W");
        let in_flight = u64::try_from(master.in_flight.len()).unwrap_or(u64::MAX);
        assert!(in_flight <= PIPELINE_WINDOW_SLOTS, "in flight <= W");
        for slot in master.in_flight.keys() {
            assert!(*slot >= self.frontier && *slot < master.next_slot, "in flight in window");
        }
        assert!(master.reads.len() <= crate::constants::READS_PENDING_MAX, "reads bounded");
        if let Some(horizon) = master.horizon {
            assert!(master.next_slot <= horizon, "nothing proposed beyond the horizon");
            assert!(master.claim == Claim::Pending, "no claim before phase 1 is complete");
        }
        if let Some(window) = &master.next_window {
            assert!(master.horizon.is_some_and(|h| window.from >= h), "next window at horizon");
        }
        if self.has_lease() {
            assert!(master.claim == Claim::Applied, "lease only while serving");
        }
    }
}

pub(super) fn send(effects: &mut Vec<Effect>, to: NodeId, message: Message) {
    effects.push(Effect::Send { to, message });
}
