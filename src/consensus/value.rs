//! What a slot chooses: a [`Value`], and the [`Membership`] a membership change carries.
//!
//! The core treats batches as opaque bytes; it reads only no-ops, membership changes and
//! master claims. Every value carries the master's time stamp (`docs/design/protocol.md`,
//! "Time"), so every replica decides time-based behaviour identically.

use std::collections::BTreeSet;
use std::sync::Arc;

use super::quorum::{QuorumError, Quorums};
use crate::types::{Ballot, NodeId};

/// One slot's value, stamped with the proposing master's time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Value {
    /// The master's time when it proposed the value, in milliseconds: monotonic across
    /// masters (never below a stamp already applied).
    pub stamp_millis: u64,
    /// What the value is.
    pub kind: ValueKind,
}

/// The kinds of values a slot may hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ValueKind {
    /// Nothing: fills a slot a new master found empty.
    Noop,
    /// A batch of client commands, opaque to the core (shared, never copied).
    Batch(Arc<[u8]>),
    /// The group's next membership; governs slots `PIPELINE_WINDOW_SLOTS` after its own.
    MembershipChange(Membership),
    /// A new master's claim: once chosen and applied, `node` serves with `ballot`.
    MasterClaim {
        /// The master.
        node: NodeId,
        /// Its ballot.
        ballot: Ballot,
    },
}

/// The voters and learners of a group, with the quorum size of each phase.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Membership {
    /// Grows by one at every change.
    pub epoch: u64,
    quorums: Quorums,
    learners: BTreeSet<NodeId>,
}

impl Membership {
    /// Majorities of `voters` in both phases.
    ///
    /// # Errors
    /// [`QuorumError::NoVoters`] for no voters.
    pub fn majority(
        epoch: u64,
        voters: BTreeSet<NodeId>,
        learners: BTreeSet<NodeId>,
    ) -> Result<Membership, QuorumError> {
        Ok(Membership { epoch, quorums: Quorums::majority(voters)?, learners })
    }

    /// Explicit phase sizes (Flexible Paxos), refused unless `phase1 + phase2 > voters`.
    ///
    /// # Errors
    /// See [`QuorumError`].
    pub fn flexible(
        epoch: u64,
        voters: BTreeSet<NodeId>,
        learners: BTreeSet<NodeId>,
        phase1: usize,
        phase2: usize,
    ) -> Result<Membership, QuorumError> {
        Ok(Membership { epoch, quorums: Quorums::flexible(voters, phase1, phase2)?, learners })
    }

    /// The quorum rules of the voters.
    #[must_use]
    pub fn quorums(&self) -> &Quorums {
        &self.quorums
    }

    /// The voters.
    #[must_use]
    pub fn voters(&self) -> &BTreeSet<NodeId> {
        self.quorums.voters()
    }

    /// The learners: they receive and apply everything and never count.
    #[must_use]
    pub fn learners(&self) -> &BTreeSet<NodeId> {
        &self.learners
    }

    /// Whether `node` is a voter.
    #[must_use]
    pub fn is_voter(&self, node: NodeId) -> bool {
        self.voters().contains(&node)
    }

    /// Voters and learners, in id order.
    #[must_use]
    pub fn members(&self) -> BTreeSet<NodeId> {
        self.voters().union(&self.learners).copied().collect()
    }
}
