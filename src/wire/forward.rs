//! The archived (rkyv) form of request forwarding: frames of kind 4 (`FrameKind::Forward`,
//! wire version 3), one [`WireForward`] each, on the same connections as consensus messages.
//!
//! ```text
//!   follower core (same core index on both)        master core
//!   Request { group, id, kind, batch } ----------->  decodes the batch; writes join its queue,
//!                                                   reads take its read path
//!                                 <-------------  Replies { group, id, replies }
//!                                 <-------------  or Refused { group, id, reason, master }
//! ```
//!
//! The batch is the state machine's batch encoding (`(client, sequence, command)` entries),
//! so a write forwarded twice (a resend after a timeout, to the same or a new master) is
//! deduplicated where it applies; the replies are the state machine's reply encoding. Both
//! stay opaque bytes here: the wire checks bounds, the shard decodes them (a batch that does
//! not decode is refused, never proposed).
//!
//! Must never: panic on any input.

use rkyv::{Archive, Serialize};

use super::error::WireError;
use crate::constants::FORWARD_PAYLOAD_BYTES_MAX;
use crate::types::{GroupId, NodeId};

/// What a forwarded request asks the master to do.
#[derive(Archive, Serialize, Clone, Copy, Debug, PartialEq, Eq)]
#[rkyv(derive(Debug))]
#[repr(u8)]
pub enum WireForwardKind {
    /// Writes (and reads ordered behind them): through the master's log.
    Write,
    /// Linearizable reads: the master's read path.
    Linearizable,
    /// Reads under the master's lease.
    Lease,
}

/// One forwarding message. The declaration order of variants and fields is the format.
#[derive(Archive, Serialize, Clone, Debug, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub enum WireForward {
    /// Run the entries of `batch` in `group`; answer with `id`.
    Request {
        /// The group.
        group: u32,
        /// The sender's id of this request (unique per sending core).
        id: u64,
        /// Writes or reads.
        kind: WireForwardKind,
        /// The entries, in the state machine's batch encoding.
        batch: Vec<u8>,
    },
    /// The replies to request `id`, one per entry, in order (the state machine's encoding).
    Replies {
        /// The group.
        group: u32,
        /// The request's id.
        id: u64,
        /// The encoded replies.
        replies: Vec<u8>,
    },
    /// Request `id` was not run, or not entirely: the sender may send it again (writes are
    /// deduplicated by client and sequence).
    Refused {
        /// The group.
        group: u32,
        /// The request's id.
        id: u64,
        /// Why: [`ForwardRefusal`] as a byte.
        reason: u8,
        /// The master the refusing node knows of (0: none).
        master: u64,
    },
}

/// Why a forwarded request was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ForwardRefusal {
    /// The receiver is not the group's serving master (or lost the slot).
    NotMaster,
    /// The receiver's queues are full.
    Overloaded,
    /// The batch did not decode, or the group is not hosted there.
    Invalid,
}

impl ForwardRefusal {
    fn to_byte(self) -> u8 {
        match self {
            ForwardRefusal::NotMaster => 1,
            ForwardRefusal::Overloaded => 2,
            ForwardRefusal::Invalid => 3,
        }
    }

    fn from_byte(byte: u8) -> Option<ForwardRefusal> {
        match byte {
            1 => Some(ForwardRefusal::NotMaster),
            2 => Some(ForwardRefusal::Overloaded),
            3 => Some(ForwardRefusal::Invalid),
            _ => None,
        }
    }
}

/// A forwarding message converted for the runtime.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ForwardMessage {
    /// See [`WireForward::Request`].
    Request {
        /// The group.
        group: GroupId,
        /// The sender's request id.
        id: u64,
        /// Writes or reads.
        kind: WireForwardKind,
        /// The encoded entries (a copy out of the receive buffer).
        batch: Vec<u8>,
    },
    /// See [`WireForward::Replies`].
    Replies {
        /// The group.
        group: GroupId,
        /// The request's id.
        id: u64,
        /// The encoded replies.
        replies: Vec<u8>,
    },
    /// See [`WireForward::Refused`].
    Refused {
        /// The group.
        group: GroupId,
        /// The request's id.
        id: u64,
        /// Why.
        reason: ForwardRefusal,
        /// The master the refusing node knows of.
        master: Option<NodeId>,
    },
}

impl From<&ForwardMessage> for WireForward {
    fn from(message: &ForwardMessage) -> WireForward {
        match message {
            ForwardMessage::Request { group, id, kind, batch } => {
                WireForward::Request { group: group.0, id: *id, kind: *kind, batch: batch.clone() }
            }
            ForwardMessage::Replies { group, id, replies } => {
                WireForward::Replies { group: group.0, id: *id, replies: replies.clone() }
            }
            ForwardMessage::Refused { group, id, reason, master } => WireForward::Refused {
                group: group.0,
                id: *id,
                reason: reason.to_byte(),
                master: master.map_or(0, NodeId::get),
            },
        }
    }
}

impl ArchivedWireForward {
    /// The message, checked: payloads within [`FORWARD_PAYLOAD_BYTES_MAX`], a known refusal
    /// reason, a real node id or none.
    ///
    /// # Errors
    /// [`WireError::InvalidMessage`].
    pub fn to_forward_message(&self) -> Result<ForwardMessage, WireError> {
        let too_large = || WireError::InvalidMessage("forwarded payload out of bounds".into());
        Ok(match self {
            ArchivedWireForward::Request { group, id, kind, batch } => {
                if batch.len() > FORWARD_PAYLOAD_BYTES_MAX {
                    return Err(too_large());
                }
                let kind = match kind {
                    ArchivedWireForwardKind::Write => WireForwardKind::Write,
                    ArchivedWireForwardKind::Linearizable => WireForwardKind::Linearizable,
                    ArchivedWireForwardKind::Lease => WireForwardKind::Lease,
                };
                ForwardMessage::Request {
                    group: GroupId(group.to_native()),
                    id: id.to_native(),
                    kind,
                    batch: batch.as_slice().to_vec(),
                }
            }
            ArchivedWireForward::Replies { group, id, replies } => {
                if replies.len() > FORWARD_PAYLOAD_BYTES_MAX {
                    return Err(too_large());
                }
                ForwardMessage::Replies {
                    group: GroupId(group.to_native()),
                    id: id.to_native(),
                    replies: replies.as_slice().to_vec(),
                }
            }
            ArchivedWireForward::Refused { group, id, reason, master } => {
                let reason = ForwardRefusal::from_byte(*reason)
                    .ok_or_else(|| WireError::InvalidMessage("unknown refusal reason".into()))?;
                let master = match master.to_native() {
                    0 => None,
                    raw => Some(
                        NodeId::new(raw)
                            .ok_or_else(|| WireError::InvalidMessage("bad master id".into()))?,
                    ),
                };
                ForwardMessage::Refused {
                    group: GroupId(group.to_native()),
                    id: id.to_native(),
                    reason,
                    master,
                }
            }
        })
    }
}
