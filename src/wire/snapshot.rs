//! The archived (rkyv) form of snapshot transfer: frames of kind 3 (`FrameKind::Snapshot`,
//! wire version 2), one [`WireSnapshot`] each, on the same connections as consensus messages.
//!
//! ```text
//!   fetching core                                   serving core (the same core of `from`)
//!   Request { group, slot, offset } ------------->  its latest durable snapshot of `group`
//!                                  <-------------  Chunk { group, meta, total, offset, bytes }
//!                                                  (up to SNAPSHOT_CHUNKS_PER_REQUEST of them)
//!                                  <-------------  or Refused { group, slot }: none at `slot`
//! ```
//!
//! A chunk carries the snapshot's meta, so the fetcher can tell a resumed transfer of the same
//! snapshot (same meta: continue at the bytes it holds) from a newer one (start over). Chunk
//! sizes are bounded by `SNAPSHOT_CHUNK_BYTES`, far under a frame.
//!
//! Must never: panic on any input, or hand out a meta the consensus types refuse.

use rkyv::{Archive, Serialize};

use super::error::WireError;
use super::message::WireMembership;
use crate::consensus::SnapshotMeta;
use crate::constants::SNAPSHOT_CHUNK_BYTES;
use crate::types::{GroupId, Slot};

/// Most configurations a snapshot meta carries on the wire (the core keeps a handful).
pub const SNAPSHOT_META_CONFIGURATIONS_MAX: usize = 64;

/// One configuration of a snapshot meta: from `slot` on, `membership`.
#[derive(Archive, Serialize, Clone, Debug, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub struct WireConfiguration {
    /// The slot the membership applies from.
    pub slot: u64,
    /// The membership.
    pub membership: WireMembership,
}

/// A `SnapshotMeta` on the wire.
#[derive(Archive, Serialize, Clone, Debug, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub struct WireSnapshotMeta {
    /// `SnapshotMeta::slot`: the first slot the snapshot does not cover.
    pub slot: u64,
    /// `SnapshotMeta::stamp_millis`.
    pub stamp_millis: u64,
    /// `SnapshotMeta::configurations`, in order.
    pub configurations: Vec<WireConfiguration>,
}

/// One snapshot-transfer message. The declaration order of variants and fields is the format.
#[derive(Archive, Serialize, Clone, Debug, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub enum WireSnapshot {
    /// Send the snapshot of `group` covering at least up to `slot`, from byte `offset` of its
    /// state.
    Request {
        /// The group.
        group: u32,
        /// The slot the fetching replica needs covered.
        slot: u64,
        /// The first byte of the state wanted.
        offset: u64,
    },
    /// Bytes `offset..offset + bytes.len()` of the state of the snapshot `meta` (of `total`).
    Chunk {
        /// The group.
        group: u32,
        /// The snapshot's meta.
        meta: WireSnapshotMeta,
        /// The state's length in bytes.
        total: u64,
        /// Where `bytes` start in the state.
        offset: u64,
        /// The bytes.
        bytes: Vec<u8>,
    },
    /// The sender has no snapshot of `group` covering `slot`.
    Refused {
        /// The group.
        group: u32,
        /// The slot asked for.
        slot: u64,
    },
}

impl From<&SnapshotMeta> for WireSnapshotMeta {
    fn from(meta: &SnapshotMeta) -> WireSnapshotMeta {
        WireSnapshotMeta {
            slot: meta.slot.0,
            stamp_millis: meta.stamp_millis,
            configurations: meta
                .configurations
                .iter()
                .map(|(slot, membership)| WireConfiguration {
                    slot: slot.0,
                    membership: membership.into(),
                })
                .collect(),
        }
    }
}

impl ArchivedWireSnapshotMeta {
    /// The meta, checked against the consensus types' rules.
    ///
    /// # Errors
    /// [`WireError::InvalidMessage`]: slot 0, too many configurations, or a membership the core
    /// refuses.
    pub fn to_meta(&self) -> Result<SnapshotMeta, WireError> {
        let slot = self.slot.to_native();
        if slot == 0 || self.configurations.len() > SNAPSHOT_META_CONFIGURATIONS_MAX {
            return Err(WireError::InvalidMessage("snapshot meta out of bounds".into()));
        }
        let mut configurations = Vec::with_capacity(self.configurations.len());
        for configuration in self.configurations.iter() {
            let membership = configuration.membership.to_membership()?;
            configurations.push((Slot(configuration.slot.to_native()), membership));
        }
        Ok(SnapshotMeta {
            slot: Slot(slot),
            configurations,
            stamp_millis: self.stamp_millis.to_native(),
        })
    }
}

/// A snapshot message converted for the runtime.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SnapshotMessage {
    /// See [`WireSnapshot::Request`].
    Request {
        /// The group.
        group: GroupId,
        /// The slot needed.
        slot: Slot,
        /// The first byte wanted.
        offset: u64,
    },
    /// See [`WireSnapshot::Chunk`].
    Chunk {
        /// The group.
        group: GroupId,
        /// The snapshot's meta.
        meta: SnapshotMeta,
        /// The state's length.
        total: u64,
        /// Where `bytes` start.
        offset: u64,
        /// The bytes (a copy out of the receive buffer).
        bytes: Vec<u8>,
    },
    /// See [`WireSnapshot::Refused`].
    Refused {
        /// The group.
        group: GroupId,
        /// The slot asked for.
        slot: Slot,
    },
}

impl From<&SnapshotMessage> for WireSnapshot {
    fn from(message: &SnapshotMessage) -> WireSnapshot {
        match message {
            SnapshotMessage::Request { group, slot, offset } => {
                WireSnapshot::Request { group: group.0, slot: slot.0, offset: *offset }
            }
            SnapshotMessage::Chunk { group, meta, total, offset, bytes } => WireSnapshot::Chunk {
                group: group.0,
                meta: meta.into(),
                total: *total,
                offset: *offset,
                bytes: bytes.clone(),
            },
            SnapshotMessage::Refused { group, slot } => {
                WireSnapshot::Refused { group: group.0, slot: slot.0 }
            }
        }
    }
}

impl ArchivedWireSnapshot {
    /// The message, checked: a chunk's bytes fit [`SNAPSHOT_CHUNK_BYTES`] and lie inside
    /// `total`; its meta passes [`ArchivedWireSnapshotMeta::to_meta`].
    ///
    /// # Errors
    /// [`WireError::InvalidMessage`].
    pub fn to_snapshot_message(&self) -> Result<SnapshotMessage, WireError> {
        Ok(match self {
            ArchivedWireSnapshot::Request { group, slot, offset } => SnapshotMessage::Request {
                group: GroupId(group.to_native()),
                slot: Slot(slot.to_native()),
                offset: offset.to_native(),
            },
            ArchivedWireSnapshot::Chunk { group, meta, total, offset, bytes } => {
                let (total, offset) = (total.to_native(), offset.to_native());
                let end = offset.checked_add(bytes.len() as u64);
                if bytes.len() > SNAPSHOT_CHUNK_BYTES || end.is_none_or(|end| end > total) {
                    return Err(WireError::InvalidMessage("snapshot chunk out of bounds".into()));
                }
                SnapshotMessage::Chunk {
                    group: GroupId(group.to_native()),
                    meta: meta.to_meta()?,
                    total,
                    offset,
                    bytes: bytes.as_slice().to_vec(),
                }
            }
            ArchivedWireSnapshot::Refused { group, slot } => SnapshotMessage::Refused {
                group: GroupId(group.to_native()),
                slot: Slot(slot.to_native()),
            },
        })
    }
}
