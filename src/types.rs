//! Newtypes shared by every layer.
//!
//! A plain integer that means "a node" or "a group" is a bug waiting to happen; these wrappers
//! make the meaning part of the type. This module depends on nothing else in the crate.

use std::fmt;
use std::num::NonZeroU64;

/// Identifies one node (one `klein server` process or one embedded node) within a cluster.
///
/// Node ids start at 1 (etcd-style `--initial-cluster 1=…,2=…`); 0 is never a valid id, which
/// the type enforces.
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
