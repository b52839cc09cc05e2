//! The handshake: the first frame each side of a peer connection sends, and the decision to
//! talk or to refuse.
//!
//! Each side sends its [`Handshake`] as frame 0 and reads the other's; [`Handshake::accept`]
//! then either names the wire version both speak from frame 1 on, or says why the peer is
//! incompatible (`WireError::is_incompatible_peer`): another cluster, not the node this
//! connection is for, or no common version. The transport logs that once, closes, and waits a
//! long back-off before it tries again (`docs/design/wire.md`, "Refusal").
//!
//! The handshake's archive layout is frozen for every wire version (new fields would go into
//! a new frame kind), so a node of any version can read it and answer with a clear refusal.

use rkyv::{Archive, Serialize};

use super::error::WireError;
use super::header::{WIRE_VERSION, WIRE_VERSION_MIN};
use crate::types::{CoreIndex, NodeId};

/// The handshake's archive. Frozen: never change its fields.
#[derive(Archive, Serialize, Clone, Copy, Debug, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub struct WireHandshake {
    /// The sender's cluster id (the superblock's `cluster_id`).
    pub cluster: u64,
    /// The sender's node id.
    pub node: u64,
    /// The node the sender means to reach (0: whoever answers).
    pub target: u64,
    /// The sender's core: connections run core to core.
    pub core: u16,
    /// Oldest wire version the sender reads.
    pub version_min: u16,
    /// Newest wire version the sender reads and writes.
    pub version_max: u16,
}

/// One side's introduction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Handshake {
    /// The cluster id.
    pub cluster: u64,
    /// Who is speaking.
    pub node: NodeId,
    /// The node the speaker means to reach, when it dialled a configured address.
    pub target: Option<NodeId>,
    /// The speaker's core.
    pub core: CoreIndex,
    /// `(oldest, newest)` wire version the speaker reads.
    pub versions: (u16, u16),
}

impl Handshake {
    /// This build's introduction: the versions it reads, `WIRE_VERSION_MIN..=WIRE_VERSION`.
    #[must_use]
    pub fn ours(cluster: u64, node: NodeId, target: Option<NodeId>, core: CoreIndex) -> Handshake {
        Handshake { cluster, node, target, core, versions: (WIRE_VERSION_MIN, WIRE_VERSION) }
    }

    /// Whether to talk to the peer that sent `theirs`, and in which wire version: the newest
    /// both read.
    ///
    /// # Errors
    /// [`WireError::WrongCluster`], [`WireError::ConnectedToSelf`], [`WireError::WrongNode`] (the
    /// peer is not the node dialled, or dialled another node), [`WireError::NoCommonVersion`].
    pub fn accept(&self, theirs: &Handshake) -> Result<u16, WireError> {
        if theirs.cluster != self.cluster {
            return Err(WireError::WrongCluster { expected: self.cluster, found: theirs.cluster });
        }
        if theirs.node == self.node {
            return Err(WireError::ConnectedToSelf { node: self.node.get() });
        }
        if let Some(target) = self.target.filter(|target| *target != theirs.node) {
            let found = theirs.node.get();
            return Err(WireError::WrongNode { expected: target.get(), found });
        }
        if let Some(target) = theirs.target.filter(|target| *target != self.node) {
            let expected = self.node.get();
            return Err(WireError::WrongNode { expected, found: target.get() });
        }
        let newest = self.versions.1.min(theirs.versions.1);
        let oldest = self.versions.0.max(theirs.versions.0);
        if newest < oldest {
            return Err(WireError::NoCommonVersion {
                ours: self.versions,
                theirs: theirs.versions,
            });
        }
        Ok(newest)
    }
}

impl From<&Handshake> for WireHandshake {
    fn from(handshake: &Handshake) -> WireHandshake {
        WireHandshake {
            cluster: handshake.cluster,
            node: handshake.node.get(),
            target: handshake.target.map_or(0, NodeId::get),
            core: handshake.core.0,
            version_min: handshake.versions.0,
            version_max: handshake.versions.1,
        }
    }
}

impl ArchivedWireHandshake {
    /// The handshake, read from the archive.
    ///
    /// # Errors
    /// [`WireError::InvalidMessage`] for node id 0 or an empty version range.
    pub fn to_handshake(&self) -> Result<Handshake, WireError> {
        let node = NodeId::new(self.node.to_native())
            .ok_or_else(|| WireError::InvalidMessage("handshake from node 0".to_string()))?;
        let versions = (self.version_min.to_native(), self.version_max.to_native());
        if versions.0 > versions.1 {
            let reason = format!("handshake version range {versions:?} is empty");
            return Err(WireError::InvalidMessage(reason));
        }
        Ok(Handshake {
            cluster: self.cluster.to_native(),
            node,
            target: NodeId::new(self.target.to_native()),
            core: CoreIndex(self.core.to_native()),
            versions,
        })
    }
}
