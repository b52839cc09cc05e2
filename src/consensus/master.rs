//! The proposer side of a replica: phase 1 as a candidate, then, as master, the phase-2
//! pipeline of up to `W` slots, heartbeats and lease rounds, check-quorum, reads (lease and
//! read-index), leader transfer and membership changes.
//!
//! Must never: propose a slot at or beyond `F + W`, serve before its master claim is applied,
//! serve a lease read past its lease or during a transfer, or count a learner.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use super::durable::Record;
use super::message::{Accepted, Message, Promise, PromiseEntry};
use super::plant::Plant;
use super::quorum::Phase;
use super::replica::{
    AfterPersist, Effect, ProposeError, ReadId, ReadPath, Replica, RoleState, send,
};
use super::value::{Membership, Value, ValueKind};
use crate::constants::{
    ELECTION_TIMEOUT_TICKS_MIN, HEARTBEAT_INTERVAL_TICKS, LEASE_ROUNDS_MAX, LEASE_TICKS,
    PERSISTS_IN_FLIGHT_MAX, PIPELINE_WINDOW_SLOTS, PROMISE_ENTRIES_MAX, READS_PENDING_MAX,
    TRANSFER_TICKS_MAX,
};
use crate::types::{Ballot, NodeId, Slot};

/// A phase 1 from `from` on: a candidate's, or a master's for its next window.
#[derive(Debug)]
pub(super) struct Candidate {
    pub(super) ballot: Ballot,
    pub(super) from: Slot,
    pub(super) transfer: bool,
    pub(super) asked: BTreeSet<NodeId>,
    /// Per acceptor: the entries of the window and whether it holds slots beyond.
    pub(super) promises: BTreeMap<NodeId, (Vec<PromiseEntry>, bool)>,
}

impl Candidate {
    fn new(ballot: Ballot, from: Slot, transfer: bool) -> Candidate {
        Candidate { ballot, from, transfer, asked: BTreeSet::new(), promises: BTreeMap::new() }
    }
}

/// Where the master's claim is: it serves once the claim is applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Claim {
    Pending,
    Proposed(Slot),
    Applied,
}

/// One heartbeat round: when it started and who acknowledged it.
#[derive(Debug)]
pub(super) struct LeaseRound {
    round: u64,
    start_tick: u64,
    acks: BTreeSet<NodeId>,
    confirmed: bool,
}

/// A read waiting for its round to be confirmed (read-index) and for `A >= frontier`.
#[derive(Debug)]
pub(super) struct PendingRead {
    id: ReadId,
    frontier: Slot,
    round: Option<u64>,
}

/// A leader transfer in progress.
#[derive(Debug)]
pub(super) struct Transfer {
    target: NodeId,
    deadline_tick: u64,
    sent: bool,
}

/// A master's state.
#[derive(Debug)]
pub(super) struct Master {
    pub(super) ballot: Ballot,
    pub(super) next_slot: Slot,
    /// Proposed, not yet chosen, with the voters that durably accepted.
    pub(super) in_flight: BTreeMap<Slot, BTreeSet<NodeId>>,
    pub(super) claim: Claim,
    pub(super) reads: VecDeque<PendingRead>,
    heartbeat_due_tick: u64,
    round: u64,
    rounds: VecDeque<LeaseRound>,
    confirmed_round: u64,
    lease_until_tick: u64,
    /// Set once this master sent `TimeoutNow`: the target's transfer-flagged Prepare is
    /// honoured despite stickiness, so no lease of this ballot is safe any more, even if the
    /// transfer then times out and the master serves on (reads go read-index).
    lease_forfeited: bool,
    quorum_tick: u64,
    transfer: Option<Transfer>,
    peer_applied: BTreeMap<NodeId, Slot>,
    change_slot: Option<Slot>,
    /// Phase 1 covers only the slots below this one: an acceptor reported accepted slots
    /// beyond the window, so nothing is proposed here or beyond until the next window is
    /// prepared (`next_window`), which starts once every slot below is chosen.
    pub(super) horizon: Option<Slot>,
    pub(super) next_window: Option<Candidate>,
}

impl Replica {
    // ----- Phase 1. -----

    /// Becomes a candidate with a ballot above any seen; `transfer` on the master's request.
    pub(super) fn start_candidacy(&mut self, transfer: bool, effects: &mut Vec<Effect>) {
        self.step_down(effects);
        let round = self.promised.round.max(self.round_seen) + 1;
        let ballot = Ballot { round, node: self.options.node.get() };
        self.round_seen = round;
        self.promised = ballot;
        self.master_seen = None;
        self.heard_master_tick = None;
        self.reset_election_deadline();
        let from = self.frontier;
        self.role = RoleState::Candidate(Candidate::new(ballot, from, transfer));
        let after = AfterPersist::Promise { to: self.options.node, ballot, from };
        self.persist(Some(ballot), vec![], after, effects);
        self.ask_for_promises(effects);
    }

    /// A master whose phase 1 stopped at its horizon prepares the next window, under the same
    /// ballot, once every slot below the horizon is chosen.
    fn start_next_window(&mut self, effects: &mut Vec<Effect>) {
        let (frontier, node) = (self.frontier, self.options.node);
        let room = self.persists.len() + 2 <= PERSISTS_IN_FLIGHT_MAX;
        let master = self.master_mut();
        if !room || master.next_window.is_some() || master.horizon.is_none_or(|h| frontier < h) {
            return;
        }
        let ballot = master.ballot;
        master.next_window = Some(Candidate::new(ballot, frontier, false));
        let after = AfterPersist::Promise { to: node, ballot, from: frontier };
        self.persist(Some(ballot), vec![], after, effects);
        self.ask_for_promises(effects);
    }

    /// The phase 1 in progress, if any.
    fn phase1(&self) -> Option<&Candidate> {
        match &self.role {
            RoleState::Candidate(candidate) => Some(candidate),
            RoleState::Master(master) => master.next_window.as_ref(),
            RoleState::Follower => None,
        }
    }

    fn phase1_mut(&mut self) -> Option<&mut Candidate> {
        match &mut self.role {
            RoleState::Candidate(candidate) => Some(candidate),
            RoleState::Master(master) => master.next_window.as_mut(),
            RoleState::Follower => None,
        }
    }

    /// Every configuration a phase-1 quorum must reach: the one governing `from`, every later
    /// one known, and every membership change the promises report (a joint quorum).
    fn phase1_configurations(&self, candidate: &Candidate) -> Vec<Membership> {
        // A snapshot taken during the candidacy may have truncated past `from`: what governs
        // there is then the configuration at the truncation point.
        let from = candidate.from.max(self.truncation);
        let governing = *self.configurations.range(..=from).next_back().expect("cfg").0;
        let mut configurations: Vec<Membership> =
            self.configurations.range(governing..).map(|(_, m)| m.clone()).collect();
        for (entries, _) in candidate.promises.values() {
            for entry in entries {
                if let ValueKind::MembershipChange(membership) = &entry.value.kind
                    && !configurations.contains(membership)
                {
                    configurations.push(membership.clone());
                }
            }
        }
        configurations
    }

    /// Sends `Prepare` to every voter of the phase-1 configurations not asked yet.
    fn ask_for_promises(&mut self, effects: &mut Vec<Effect>) {
        let Some(candidate) = self.phase1() else { return };
        let mut voters = BTreeSet::new();
        for membership in self.phase1_configurations(candidate) {
            voters.extend(membership.voters().iter().copied());
        }
        voters.remove(&self.options.node);
        let Some(candidate) = self.phase1_mut() else { return };
        let (ballot, from, transfer) = (candidate.ballot, candidate.from, candidate.transfer);
        for to in voters {
            if candidate.asked.insert(to) {
                send(effects, to, Message::Prepare { ballot, from, transfer });
            }
        }
    }

    /// With a heartbeat: a master's next-window phase 1 asks the silent voters again (a lost
    /// `Prepare` or `Promise` must not stall it), or starts over from a frontier that moved.
    fn resend_prepares(&mut self, effects: &mut Vec<Effect>) {
        let frontier = self.frontier;
        let RoleState::Master(master) = &mut self.role else { return };
        let Some(window) = &mut master.next_window else { return };
        if frontier > window.from {
            master.next_window = None;
            self.start_next_window(effects);
            return;
        }
        let answered: BTreeSet<NodeId> = window.promises.keys().copied().collect();
        window.asked.retain(|node| answered.contains(node));
        self.ask_for_promises(effects);
    }

    pub(super) fn on_promise(
        &mut self,
        from: NodeId,
        promise: &Promise,
        effects: &mut Vec<Effect>,
    ) {
        self.round_seen = self.round_seen.max(promise.ballot().round);
        let (frontier, node) = (self.frontier, self.options.node);
        let Some(candidate) = self.phase1_mut() else { return };
        if promise.ballot() != candidate.ballot || promise.from() != candidate.from {
            return; // Another ballot's, or a window's already done.
        }
        if let Some(their_frontier) = promise.behind() {
            if their_frontier > frontier && from != node {
                self.known_frontier = self.known_frontier.max(their_frontier);
                self.request_catch_up(from, effects);
            }
            return;
        }
        candidate.promises.insert(from, (promise.entries().to_vec(), promise.more()));
        self.ask_for_promises(effects);
        self.try_complete_phase1(effects);
    }

    /// With promises from a phase-1 quorum of every configuration: re-propose the
    /// highest-ballot value of each reported slot, fill holes with no-ops; a candidate becomes
    /// master (its claim follows once no window is left to prepare).
    fn try_complete_phase1(&mut self, effects: &mut Vec<Effect>) {
        let Some(candidate) = self.phase1() else { return };
        let acks: BTreeSet<NodeId> = candidate.promises.keys().copied().collect();
        let configurations = self.phase1_configurations(candidate);
        // PLANTED: the first promise (its own) is taken for a quorum: the master then proposes
        // under a ballot no quorum prepared.
        let unprepared = self.planted(Plant::AcceptUnderUnpreparedBallot);
        if !unprepared && !configurations.iter().all(|m| m.quorums().is_quorum(Phase::One, &acks)) {
            return;
        }
        let mut merged: BTreeMap<Slot, PromiseEntry> = BTreeMap::new();
        let mut more = false;
        for (entries, beyond) in candidate.promises.values() {
            more |= *beyond;
            for entry in entries {
                let replace = merged.get(&entry.slot).is_none_or(|held| {
                    !held.chosen && (entry.chosen || entry.ballot > held.ballot)
                });
                if replace {
                    merged.insert(entry.slot, entry.clone());
                }
            }
        }
        let (ballot, from) = (candidate.ballot, candidate.from);
        let end = if more {
            Slot(from.0 + PROMISE_ENTRIES_MAX)
        } else {
            merged.keys().next_back().map_or(from, |last| Slot(last.0 + 1)).max(from)
        };
        if let RoleState::Master(master) = &mut self.role {
            master.next_window = None;
        } else {
            self.role = RoleState::Master(Box::new(Master::new(ballot, from, self.now)));
            self.send_heartbeats(effects); // Stickiness at once; round 1 of the lease.
        }
        self.master_mut().horizon = more.then_some(end);
        for slot in (from.0..end.0).map(Slot) {
            match merged.remove(&slot) {
                Some(entry) if entry.chosen => {
                    self.learn_chosen(slot, Some(entry.ballot), entry.value);
                }
                _ if self.chosen(slot).is_some() => {}
                Some(entry) => self.propose_at(slot, entry.value, effects),
                None => {
                    let noop = Value { stamp_millis: self.stamp(), kind: ValueKind::Noop };
                    self.propose_at(slot, noop, effects);
                }
            }
        }
        let master = self.master_mut();
        master.next_slot = master.next_slot.max(end);
    }

    // ----- Phase 2. -----

    /// Proposes a batch of client commands (opaque bytes) in the next slot.
    ///
    /// # Errors
    /// [`ProposeError`]: not the serving master, window full (back-pressure), transferring.
    pub fn propose(
        &mut self,
        batch: std::sync::Arc<[u8]>,
        effects: &mut Vec<Effect>,
    ) -> Result<Slot, ProposeError> {
        self.check_may_propose()?;
        let value = Value { stamp_millis: self.stamp(), kind: ValueKind::Batch(batch) };
        let slot = self.master_mut().next_slot;
        self.propose_at(slot, value, effects);
        self.finish(effects);
        Ok(slot)
    }

    /// Proposes the next membership (epoch one above the current one). One change at a time:
    /// refused until the previous one governs.
    ///
    /// # Errors
    /// [`ProposeError`]; [`ProposeError::MembershipChange`] for a change in progress or a
    /// wrong epoch.
    ///
    /// # Panics
    /// Never: a replica always knows a configuration.
    pub fn propose_membership(
        &mut self,
        membership: Membership,
        effects: &mut Vec<Effect>,
    ) -> Result<Slot, ProposeError> {
        self.check_may_propose()?;
        let (last, latest) = self.configurations.iter().next_back().expect("config");
        let (governs, epoch) = (*last, latest.epoch);
        let frontier = self.frontier;
        let master = self.master_mut();
        let pending = master.change_slot.is_some() || governs > frontier;
        if pending || membership.epoch != epoch + 1 {
            return Err(ProposeError::MembershipChange);
        }
        let slot = master.next_slot;
        let value =
            Value { stamp_millis: self.stamp(), kind: ValueKind::MembershipChange(membership) };
        self.propose_at(slot, value, effects);
        self.finish(effects);
        Ok(slot)
    }

    fn check_may_propose(&self) -> Result<(), ProposeError> {
        let RoleState::Master(master) = &self.role else {
            return Err(ProposeError::NotMaster { master: self.master() });
        };
        if master.claim != Claim::Applied {
            return Err(ProposeError::NotMaster { master: None });
        }
        if master.transfer.is_some() {
            return Err(ProposeError::Transferring);
        }
        // The window bounds unchosen slots; a slow own disk bounds persists too (slots chosen
        // by peers' acceptances may still wait for the master's own write).
        let window_full = master.next_slot.0 >= self.frontier.0 + PIPELINE_WINDOW_SLOTS;
        if window_full || self.persists.len() + 2 > PERSISTS_IN_FLIGHT_MAX {
            return Err(ProposeError::WindowFull);
        }
        Ok(())
    }

    /// Proposes `value` in `slot` under the master's ballot: own acceptance persisted, Accept
    /// sent to every voter and learner of the slot's configuration.
    fn propose_at(&mut self, slot: Slot, value: Value, effects: &mut Vec<Effect>) {
        let frontier = self.frontier;
        let node = self.options.node;
        let master = self.master_mut();
        let ballot = master.ballot;
        master.in_flight.insert(slot, BTreeSet::new());
        if matches!(value.kind, ValueKind::MembershipChange(_)) {
            master.change_slot = Some(slot);
        }
        master.next_slot = master.next_slot.max(Slot(slot.0 + 1));
        assert!(self.chosen(slot).is_none(), "re-proposing chosen {slot}");
        self.stamp_millis = self.stamp_millis.max(value.stamp_millis);
        let record = Record { slot, ballot, value: value.clone(), chosen: false };
        self.persist(
            None,
            vec![record],
            AfterPersist::Accepted { to: node, ballot, slot },
            effects,
        );
        let mut members = self.configuration(slot).members();
        members.remove(&node);
        for to in members {
            let message = Message::Accept { ballot, slot, value: value.clone(), frontier };
            send(effects, to, message);
        }
        self.log.insert(slot, super::replica::Entry { ballot, value, chosen: false });
    }

    pub(super) fn on_accepted(&mut self, from: NodeId, accepted: Accepted) {
        let slot = accepted.slot();
        let RoleState::Master(master) = &self.role else { return };
        // In flight first: a late Accepted may name a slot below the truncation point, whose
        // configuration is forgotten.
        if accepted.ballot() != master.ballot || !master.in_flight.contains_key(&slot) {
            return;
        }
        if !self.configuration(slot).is_voter(from) {
            return;
        }
        let Some(acks) = self.master_mut().in_flight.get_mut(&slot) else { return };
        acks.insert(from);
        self.check_chosen(slot);
    }

    fn check_chosen(&mut self, slot: Slot) {
        let RoleState::Master(master) = &self.role else { return };
        let Some(acks) = master.in_flight.get(&slot) else { return };
        if self.configuration(slot).quorums().is_quorum(Phase::Two, acks) {
            self.master_mut().in_flight.remove(&slot);
            self.mark_chosen(slot);
        }
    }

    // ----- Heartbeats, leases, check-quorum. -----

    pub(super) fn tick_master(&mut self, effects: &mut Vec<Effect>) {
        let now = self.now;
        // PLANTED (lease reads): no check-quorum, a cut-off master keeps believing it masters.
        let check_quorum = !self.planted(Plant::LeaseReadWithoutCheckQuorum);
        let master = self.master_mut();
        if check_quorum && now >= master.quorum_tick + ELECTION_TIMEOUT_TICKS_MIN {
            self.step_down(effects); // Check-quorum: no quorum heard for an election timeout.
            return;
        }
        if master.transfer.as_ref().is_some_and(|transfer| now >= transfer.deadline_tick) {
            master.transfer = None;
        }
        if now >= master.heartbeat_due_tick {
            self.send_heartbeats(effects);
        }
    }

    /// Starts a lease round: a heartbeat to every member, counting the master's own ack.
    fn send_heartbeats(&mut self, effects: &mut Vec<Effect>) {
        let (now, node, frontier, truncation) =
            (self.now, self.options.node, self.frontier, self.truncation);
        let members = self.members_from(frontier);
        let master = self.master_mut();
        master.round += 1;
        master.heartbeat_due_tick = now + HEARTBEAT_INTERVAL_TICKS;
        let round = master.round;
        let acks = BTreeSet::from([node]);
        master.rounds.push_back(LeaseRound { round, start_tick: now, acks, confirmed: false });
        if master.rounds.len() > LEASE_ROUNDS_MAX {
            master.rounds.pop_front();
        }
        let ballot = master.ballot;
        for to in members {
            send(effects, to, Message::Heartbeat { ballot, frontier, truncation, round });
        }
        self.check_round(round);
        self.resend_accepts(effects);
        self.resend_prepares(effects);
    }

    /// Re-sends each in-flight slot's Accept to the members that have not acknowledged it: a
    /// lost Accept or Accepted must not stall the window forever.
    fn resend_accepts(&mut self, effects: &mut Vec<Effect>) {
        let RoleState::Master(master) = &self.role else { return };
        let (ballot, frontier, node) = (master.ballot, self.frontier, self.options.node);
        for (slot, acks) in &master.in_flight {
            let value = &self.log[slot].value;
            for to in self.configuration(*slot).members() {
                if to != node && !acks.contains(&to) {
                    let message =
                        Message::Accept { ballot, slot: *slot, value: value.clone(), frontier };
                    send(effects, to, message);
                }
            }
        }
    }

    pub(super) fn on_heartbeat_ack(
        &mut self,
        from: NodeId,
        ballot: Ballot,
        round: u64,
        applied: Slot,
    ) {
        let RoleState::Master(master) = &mut self.role else { return };
        if ballot != master.ballot {
            return;
        }
        let seen = master.peer_applied.entry(from).or_insert(applied);
        *seen = (*seen).max(applied);
        if let Some(lease_round) = master.rounds.iter_mut().find(|r| r.round == round) {
            lease_round.acks.insert(from);
        }
        self.check_round(round);
    }

    /// A round acknowledged by a phase-2 quorum of every configuration in force renews the
    /// lease to `start + LEASE_TICKS` and the check-quorum clock to `start`.
    fn check_round(&mut self, round: u64) {
        let frontier = self.frontier;
        let governing = *self.configurations.range(..=frontier).next_back().expect("config").0;
        let configurations: Vec<Membership> =
            self.configurations.range(governing..).map(|(_, m)| m.clone()).collect();
        let master = self.master_mut();
        let Some(lease_round) = master.rounds.iter_mut().find(|r| r.round == round) else {
            return;
        };
        if lease_round.confirmed
            || !configurations.iter().all(|m| m.quorums().is_quorum(Phase::Two, &lease_round.acks))
        {
            return;
        }
        lease_round.confirmed = true;
        let start = lease_round.start_tick;
        if !master.lease_forfeited {
            master.lease_until_tick = master.lease_until_tick.max(start + LEASE_TICKS);
        }
        master.quorum_tick = master.quorum_tick.max(start);
        master.confirmed_round = master.confirmed_round.max(round);
    }

    /// Whether this replica is the serving master and holds a lease now.
    #[must_use]
    pub fn has_lease(&self) -> bool {
        match &self.role {
            RoleState::Master(master) => {
                master.claim == Claim::Applied
                    && master.transfer.is_none()
                    && self.now < master.lease_until_tick
            }
            _ => false,
        }
    }

    /// Whether this replica is the master and its claim is applied (it serves clients).
    #[must_use]
    pub fn is_serving(&self) -> bool {
        matches!(&self.role, RoleState::Master(master) if master.claim == Claim::Applied)
    }

    /// As master: the applied slot `node` last reported (heartbeat replies); `None` otherwise.
    #[must_use]
    pub fn peer_applied(&self, node: NodeId) -> Option<Slot> {
        match &self.role {
            RoleState::Master(master) => master.peer_applied.get(&node).copied(),
            _ => None,
        }
    }

    /// Whether a leader transfer is in progress.
    #[must_use]
    pub fn is_transferring(&self) -> bool {
        matches!(&self.role, RoleState::Master(master) if master.transfer.is_some())
    }

    /// Proposals in flight (proposed, not yet chosen).
    #[must_use]
    pub fn in_flight(&self) -> usize {
        match &self.role {
            RoleState::Master(master) => master.in_flight.len(),
            _ => 0,
        }
    }

    // ----- Reads. -----

    /// A linearizable read: `ReadReady { id }` follows when it may run, under the lease at
    /// once, else after a heartbeat round confirms mastership (read-index).
    ///
    /// # Errors
    /// [`ProposeError::NotMaster`], [`ProposeError::Transferring`], or
    /// [`ProposeError::WindowFull`] when `READS_PENDING_MAX` reads wait.
    pub fn read(
        &mut self,
        id: ReadId,
        effects: &mut Vec<Effect>,
    ) -> Result<ReadPath, ProposeError> {
        let (now, frontier) = (self.now, self.frontier);
        // PLANTED: the lease is taken for granted, whether a quorum confirmed a round or not.
        let lease_assumed = self.planted(Plant::LeaseReadWithoutCheckQuorum);
        let RoleState::Master(master) = &mut self.role else {
            return Err(ProposeError::NotMaster { master: self.master() });
        };
        if master.claim != Claim::Applied {
            return Err(ProposeError::NotMaster { master: None });
        }
        if master.transfer.is_some() {
            return Err(ProposeError::Transferring);
        }
        if master.reads.len() >= READS_PENDING_MAX {
            return Err(ProposeError::WindowFull);
        }
        let path = if lease_assumed || now < master.lease_until_tick {
            master.reads.push_back(PendingRead { id, frontier, round: None });
            ReadPath::Lease
        } else {
            let round = master.round + 1;
            master.reads.push_back(PendingRead { id, frontier, round: Some(round) });
            self.send_heartbeats(effects);
            ReadPath::ReadIndex
        };
        self.finish(effects);
        Ok(path)
    }

    fn serve_reads(&mut self, effects: &mut Vec<Effect>) {
        let applied = self.applied;
        let master = self.master_mut();
        while let Some(read) = master.reads.front() {
            let confirmed = read.round.is_none_or(|round| round <= master.confirmed_round);
            if !confirmed || applied < read.frontier {
                break;
            }
            effects.push(Effect::ReadReady { id: read.id });
            master.reads.pop_front();
        }
    }

    // ----- Leader transfer. -----

    /// Hands mastership to the voter `target`: stop proposing and serving lease reads, wait
    /// until `target` applied up to `F`, then send it `TimeoutNow`. Gives up after
    /// `TRANSFER_TICKS_MAX` ticks.
    ///
    /// # Errors
    /// [`ProposeError::NotMaster`]; [`ProposeError::Transferring`] when one is in progress or
    /// `target` is not another voter.
    pub fn transfer(
        &mut self,
        target: NodeId,
        effects: &mut Vec<Effect>,
    ) -> Result<(), ProposeError> {
        let valid =
            target != self.options.node && self.configuration(self.frontier).is_voter(target);
        let now = self.now;
        let RoleState::Master(master) = &mut self.role else {
            return Err(ProposeError::NotMaster { master: self.master() });
        };
        if master.claim != Claim::Applied {
            return Err(ProposeError::NotMaster { master: None });
        }
        if master.transfer.is_some() || !valid {
            return Err(ProposeError::Transferring);
        }
        let deadline_tick = now + TRANSFER_TICKS_MAX;
        master.transfer = Some(Transfer { target, deadline_tick, sent: false });
        self.send_heartbeats(effects); // Learns the target's applied frontier.
        self.finish(effects);
        Ok(())
    }

    pub(super) fn on_timeout_now(
        &mut self,
        from: NodeId,
        ballot: Ballot,
        effects: &mut Vec<Effect>,
    ) {
        let from_master = self.master_seen == Some((from, ballot));
        if from_master && self.configuration(self.frontier).is_voter(self.options.node) {
            self.start_candidacy(true, effects);
        }
    }

    fn check_transfer(&mut self, effects: &mut Vec<Effect>) {
        let frontier = self.frontier;
        let master = self.master_mut();
        let Some(transfer) = &mut master.transfer else { return };
        let caught_up = master.peer_applied.get(&transfer.target).is_some_and(|a| *a >= frontier);
        if !transfer.sent && caught_up && master.in_flight.is_empty() {
            transfer.sent = true;
            let ballot = master.ballot;
            master.lease_forfeited = true;
            master.lease_until_tick = 0;
            send(effects, transfer.target, Message::TimeoutNow { ballot });
        }
    }

    // ----- Common. -----

    /// What follows every input while master: claim, reads, transfer, removal.
    pub(super) fn after_master_input(&mut self, effects: &mut Vec<Effect>) {
        let (frontier, node) = (self.frontier, self.options.node);
        let master = self.master_mut();
        if master.change_slot.is_some_and(|slot| slot.0 + PIPELINE_WINDOW_SLOTS <= frontier.0) {
            master.change_slot = None;
        }
        let room = self.persists.len() + 2 <= PERSISTS_IN_FLIGHT_MAX;
        let master = self.master_mut();
        if master.claim == Claim::Pending
            && master.horizon.is_none()
            && master.next_slot.0 < frontier.0 + PIPELINE_WINDOW_SLOTS
            && room
        {
            let slot = master.next_slot;
            master.claim = Claim::Proposed(slot);
            let ballot = master.ballot;
            let kind = ValueKind::MasterClaim { node, ballot };
            let value = Value { stamp_millis: self.stamp(), kind };
            self.propose_at(slot, value, effects);
        }
        self.start_next_window(effects);
        self.serve_reads(effects);
        self.check_transfer(effects);
        if !self.configuration(frontier).is_voter(node) {
            self.step_down(effects); // Removed by a change that now governs.
        }
    }

    /// Back to follower; a master's waiting reads are aborted.
    pub(super) fn step_down(&mut self, effects: &mut Vec<Effect>) {
        let previous = std::mem::replace(&mut self.role, RoleState::Follower);
        if let RoleState::Master(master) = previous {
            for read in master.reads {
                effects.push(Effect::ReadAborted { id: read.id });
            }
            self.reset_election_deadline();
        }
    }

    pub(super) fn master_mut(&mut self) -> &mut Master {
        match &mut self.role {
            RoleState::Master(master) => master,
            _ => unreachable!("master_mut outside the master role"),
        }
    }
}

impl Master {
    fn new(ballot: Ballot, from: Slot, now: u64) -> Master {
        Master {
            ballot,
            next_slot: from,
            in_flight: BTreeMap::new(),
            claim: Claim::Pending,
            reads: VecDeque::new(),
            heartbeat_due_tick: now,
            round: 0,
            rounds: VecDeque::new(),
            confirmed_round: 0,
            lease_until_tick: 0,
            lease_forfeited: false,
            quorum_tick: now,
            transfer: None,
            peer_applied: BTreeMap::new(),
            change_slot: None,
            horizon: None,
            next_window: None,
        }
    }
}
