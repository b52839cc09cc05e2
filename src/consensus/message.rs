//! The messages replicas of one group exchange.
//!
//! [`Promise`] and [`Accepted`] announce something durable, so a replica builds them only from
//! a [`Persisted`] proof that covers them (`durable.rs`); their fields are private. A decoder
//! of received bytes (`wire/`) rebuilds them with `received`, which is for received messages
//! only: the core never calls it.
//!
//! Must never: carry anything but plain data (no handles, no clocks).

use super::durable::Persisted;
use super::value::Value;
use crate::types::{Ballot, Slot};

/// One slot an acceptor reports in a [`Promise`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PromiseEntry {
    /// The slot.
    pub slot: Slot,
    /// The ballot the acceptor accepted it under.
    pub ballot: Ballot,
    /// The value.
    pub value: Value,
    /// Whether the acceptor knows the slot chosen.
    pub chosen: bool,
}

/// An acceptor's durable vow to ignore ballots below `ballot`, with what it accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Promise {
    ballot: Ballot,
    from: Slot,
    entries: Vec<PromiseEntry>,
    more: bool,
    behind: Option<Slot>,
}

impl Promise {
    /// A promise of `ballot` answering a `Prepare` from slot `from`, reporting `entries`
    /// (`more` when the acceptor holds accepted slots beyond the reported window), or, with
    /// `behind`, the acceptor's commit frontier when the candidate must catch up first. Needs
    /// the proof of its persist.
    ///
    /// # Panics
    /// If `proof` does not cover a promise of `ballot`: the durability rule.
    #[must_use]
    pub fn new(
        proof: &Persisted,
        (ballot, from): (Ballot, Slot),
        (entries, more): (Vec<PromiseEntry>, bool),
        behind: Option<Slot>,
    ) -> Promise {
        assert!(proof.covers_promise(ballot), "promise of {ballot} before its persist");
        Promise { ballot, from, entries, more, behind }
    }

    /// A promise decoded from a peer's bytes. Never called by the core.
    #[must_use]
    pub fn received(
        (ballot, from): (Ballot, Slot),
        (entries, more): (Vec<PromiseEntry>, bool),
        behind: Option<Slot>,
    ) -> Promise {
        Promise { ballot, from, entries, more, behind }
    }

    /// The ballot promised.
    #[must_use]
    pub fn ballot(&self) -> Ballot {
        self.ballot
    }

    /// The slot the `Prepare` asked from (a master prepares window after window under one
    /// ballot, so this tells a late promise from a current one).
    #[must_use]
    pub fn from(&self) -> Slot {
        self.from
    }

    /// The accepted slots reported.
    #[must_use]
    pub fn entries(&self) -> &[PromiseEntry] {
        &self.entries
    }

    /// Whether the acceptor holds accepted slots beyond the window this promise reports: the
    /// new master must run phase 1 again for the next window once this one is chosen.
    #[must_use]
    pub fn more(&self) -> bool {
        self.more
    }

    /// `Some(acceptor's commit frontier)` when the candidate must catch up first.
    #[must_use]
    pub fn behind(&self) -> Option<Slot> {
        self.behind
    }
}

/// An acceptor's durable acceptance of `slot` under `ballot`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Accepted {
    ballot: Ballot,
    slot: Slot,
}

impl Accepted {
    /// Announces the acceptance `proof` made durable.
    ///
    /// # Panics
    /// If `proof` does not cover `(slot, ballot)`: the durability rule.
    #[must_use]
    pub fn new(proof: &Persisted, ballot: Ballot, slot: Slot) -> Accepted {
        assert!(proof.covers_accept(slot, ballot), "accepted {slot} before its persist");
        Accepted { ballot, slot }
    }

    /// An acceptance decoded from a peer's bytes. Never called by the core.
    #[must_use]
    pub fn received(ballot: Ballot, slot: Slot) -> Accepted {
        Accepted { ballot, slot }
    }

    /// The ballot.
    #[must_use]
    pub fn ballot(&self) -> Ballot {
        self.ballot
    }

    /// The slot.
    #[must_use]
    pub fn slot(&self) -> Slot {
        self.slot
    }
}

/// A message between two replicas of one group (the wire adds group, node and cluster ids).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    /// Phase 1a: promise `ballot`, report what you accepted from `from` on.
    Prepare {
        /// The candidate's ballot.
        ballot: Ballot,
        /// The candidate's commit frontier.
        from: Slot,
        /// Sent on the master's `TimeoutNow`: acceptors ignore stickiness.
        transfer: bool,
    },
    /// Phase 1b.
    Promise(Promise),
    /// Phase 2a: accept `value` in `slot`; `frontier` is the master's commit frontier.
    Accept {
        /// The master's ballot.
        ballot: Ballot,
        /// The slot.
        slot: Slot,
        /// The value.
        value: Value,
        /// Every slot below it is chosen (commit notification).
        frontier: Slot,
    },
    /// Phase 2b.
    Accepted(Accepted),
    /// A refusal of `ballot`, which is below (or at) what the acceptor `promised`, or which a
    /// live master makes it refuse (stickiness).
    Reject {
        /// The ballot refused.
        ballot: Ballot,
        /// The acceptor's promise.
        promised: Ballot,
    },
    /// The master is alive: commit notification, truncation point and lease round.
    Heartbeat {
        /// The master's ballot.
        ballot: Ballot,
        /// The master's commit frontier.
        frontier: Slot,
        /// The master's truncation point.
        truncation: Slot,
        /// The lease round this heartbeat starts.
        round: u64,
    },
    /// A follower acknowledges a heartbeat round.
    HeartbeatAck {
        /// The master's ballot.
        ballot: Ballot,
        /// The round acknowledged.
        round: u64,
        /// The follower's applied frontier.
        applied: Slot,
    },
    /// Send me the chosen values from `from` on.
    CatchUpRequest {
        /// The first slot the requester misses.
        from: Slot,
    },
    /// Chosen values, ascending and contiguous from the request's `from`.
    CatchUp {
        /// `(slot, value)` pairs, all chosen.
        entries: Vec<(Slot, Value)>,
        /// The sender's commit frontier.
        frontier: Slot,
    },
    /// The slots asked for are truncated: fetch the snapshot covering everything below `slot`.
    SnapshotOffer {
        /// The snapshot's truncation point.
        slot: Slot,
    },
    /// Leader transfer: campaign now, with the transfer flag.
    TimeoutNow {
        /// The master's ballot.
        ballot: Ballot,
    },
}
