//! Newtypes shared by every layer.
//!
//! A plain integer that means "a node" or "a group" is a bug waiting to happen; these wrappers
//! make the meaning part of the type. This module depends on nothing else in the crate.

use std::fmt;
use std::num::NonZeroU64;

/// Identifies one node (one `klein server` process or one embedded node) within a cluster.
///
/// Node ids start at 1 (etcd-style `--initial-cluster 1=...,2=...`); 0 is never a valid id, which
/// the type enforces:
///
/// ```
/// use klein::types::NodeId;
///
/// assert_eq!(NodeId::new(0), None);
/// assert_eq!(NodeId::new(3).map(NodeId::get), Some(3));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeId(NonZeroU64);

impl NodeId {
    /// The node id of a single-node cluster when none is configured.
    pub const DEFAULT: NodeId = NodeId(NonZeroU64::MIN);

    /// Returns the id, or `None` for 0.
    #[must_use]
    pub fn new(id: u64) -> Option<NodeId> {
        NonZeroU64::new(id).map(NodeId)
    }

    /// The id as an integer (always at least 1).
    #[must_use]
    pub fn get(self) -> u64 {
        self.0.get()
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Index of a core (one pinned executor) within a node, from 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CoreIndex(pub u16);

impl fmt::Display for CoreIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Identifies one Multi-Paxos group (a shard of the key space) within a cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GroupId(pub u32);

impl fmt::Display for GroupId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "g{}", self.0)
    }
}

/// A position in one group's log: the index of a Paxos instance, from 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Slot(pub u64);

impl fmt::Display for Slot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "s{}", self.0)
    }
}

/// A proposal number: globally unique and totally ordered, compared by `round` first and the
/// proposing node's id second, so two nodes never issue the same ballot.
///
/// [`Ballot::ZERO`] is below every real ballot and means "no ballot yet" (nothing promised,
/// nothing accepted); a real ballot has `round >= 1` and `node >= 1`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ballot {
    /// The round; a proposer that needs a higher ballot increments it.
    pub round: u64,
    /// The id of the node that owns the ballot (`NodeId::get`), breaking ties.
    pub node: u64,
}

impl Ballot {
    /// Below every real ballot: nothing promised or accepted yet.
    pub const ZERO: Ballot = Ballot { round: 0, node: 0 };

    /// Whether this is a real ballot (not [`Ballot::ZERO`]).
    #[must_use]
    pub fn is_real(self) -> bool {
        self.round >= 1 && self.node >= 1
    }
}

impl fmt::Display for Ballot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "b{}.{}", self.round, self.node)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ballots_order_by_round_then_node() {
        let low = Ballot { round: 1, node: 3 };
        let high = Ballot { round: 2, node: 1 };
        assert!(Ballot::ZERO < low);
        assert!(low < high);
        assert!(Ballot { round: 2, node: 2 } > high);
        assert!(!Ballot::ZERO.is_real());
        assert!(low.is_real());
    }

    #[test]
    fn node_id_zero_is_not_an_id() {
        assert_eq!(NodeId::new(0), None);
        assert_eq!(NodeId::new(3).map(NodeId::get), Some(3));
    }
}
