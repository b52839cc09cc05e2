//! The durability rule, in the type system: what may be announced only after it is on disk.
//!
//! A [`Persisted`] proof has no public constructor: the only way to obtain one is
//! [`Persists::complete`], called from `Replica::on_persisted` with the [`PersistId`] of a
//! persist the replica started. `Promise` and `Accepted` messages can only be built from a
//! proof that covers them (`message.rs`), so the core cannot announce a promise or an
//! acceptance before the persist it depends on completes (`docs/design/protocol.md`,
//! "Effects and the durability rule").
//!
//! Also here: what a replica persists ([`Record`]), what it restarts from ([`DurableState`])
//! and what a snapshot carries besides the state machine's bytes ([`SnapshotMeta`]).
//!
//! Must never: hand out a proof for a persist that was not started, or twice.

use std::collections::BTreeMap;

use super::value::{Membership, Value};
use crate::types::{Ballot, Slot};

/// Names one persist a replica asked for; the runtime hands it back to `on_persisted`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PersistId(pub u64);

/// One accepted record to write: "slot holds value under ballot", possibly known chosen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// The slot.
    pub slot: Slot,
    /// The ballot it was accepted under (informational once chosen).
    pub ballot: Ballot,
    /// The value.
    pub value: Value,
    /// Whether the slot is known chosen.
    pub chosen: bool,
}

/// Proof that one persist completed: the promise and the acceptances it made durable.
///
/// Nothing outside this module can make one; only [`Persists::complete`] hands it out:
///
/// ```compile_fail
/// use klein::consensus::{PersistId, Persisted};
/// let forged = Persisted { id: PersistId(1), promised: None, accepted: Vec::new() };
/// ```
#[derive(Debug)]
pub struct Persisted {
    id: PersistId,
    promised: Option<Ballot>,
    accepted: Vec<(Slot, Ballot)>,
}

impl Persisted {
    /// The persist this proof is for.
    #[must_use]
    pub fn id(&self) -> PersistId {
        self.id
    }

    /// Whether this persist made a promise of at least `ballot` durable.
    #[must_use]
    pub fn covers_promise(&self, ballot: Ballot) -> bool {
        self.promised.is_some_and(|promised| promised >= ballot)
    }

    /// Whether this persist made "`slot` accepted under `ballot`" durable.
    #[must_use]
    pub fn covers_accept(&self, slot: Slot, ballot: Ballot) -> bool {
        self.accepted.contains(&(slot, ballot))
    }
}

/// The persists a replica started and has not seen complete, each with what to do after.
#[derive(Debug)]
pub struct Persists<T> {
    next: u64,
    waiting: BTreeMap<PersistId, Waiting<T>>,
}

/// One persist in progress: its promise, its acceptances, its follow-up.
type Waiting<T> = (Option<Ballot>, Vec<(Slot, Ballot)>, T);

impl<T> Persists<T> {
    /// No persists yet.
    #[must_use]
    pub fn new() -> Persists<T> {
        Persists { next: 1, waiting: BTreeMap::new() }
    }

    /// Persists waiting for completion.
    #[must_use]
    pub fn len(&self) -> usize {
        self.waiting.len()
    }

    /// Whether none is waiting.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.waiting.is_empty()
    }

    /// Starts tracking a persist of `promised` and the `(slot, ballot)` acceptances; `after` is
    /// handed back with the proof.
    pub fn start(
        &mut self,
        promised: Option<Ballot>,
        accepted: Vec<(Slot, Ballot)>,
        after: T,
    ) -> PersistId {
        let id = PersistId(self.next);
        self.next += 1;
        self.waiting.insert(id, (promised, accepted, after));
        id
    }

    /// The proof for `id` and its follow-up, once; `None` for an id not waiting.
    pub fn complete(&mut self, id: PersistId) -> Option<(Persisted, T)> {
        let (promised, accepted, after) = self.waiting.remove(&id)?;
        Some((Persisted { id, promised, accepted }, after))
    }
}

impl<T> Default for Persists<T> {
    fn default() -> Persists<T> {
        Persists::new()
    }
}

/// What a snapshot carries besides the state machine's bytes: the slot it covers up to and the
/// configurations that govern slots from there on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotMeta {
    /// The snapshot holds every slot below this one: the new truncation point.
    pub slot: Slot,
    /// `(first slot governed, membership)`, ascending; the first governs `slot` itself.
    pub configurations: Vec<(Slot, Membership)>,
    /// The highest value time stamp applied before `slot`: later masters never stamp below.
    pub stamp_millis: u64,
}

/// Everything a replica's disk kept: what it restarts from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DurableState {
    /// The durable promise (from the superblock).
    pub promised: Ballot,
    /// The snapshot's metadata: truncation point and configurations (for a new group, slot 0
    /// and the initial membership).
    pub snapshot: SnapshotMeta,
    /// Accepted records at or above the truncation point, any order, the latest per slot.
    pub records: Vec<Record>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_proof_exists_only_for_a_started_persist_and_only_once() {
        let mut persists: Persists<&str> = Persists::new();
        assert!(persists.complete(PersistId(1)).is_none());
        let ballot = Ballot { round: 2, node: 1 };
        let id = persists.start(Some(ballot), vec![(Slot(4), ballot)], "reply");
        let (proof, after) = persists.complete(id).unwrap();
        assert_eq!(after, "reply");
        assert!(proof.covers_promise(ballot));
        assert!(!proof.covers_promise(Ballot { round: 3, node: 1 }));
        assert!(proof.covers_accept(Slot(4), ballot));
        assert!(!proof.covers_accept(Slot(5), ballot));
        assert!(persists.complete(id).is_none());
    }
}
