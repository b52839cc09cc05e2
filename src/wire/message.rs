//! The archived (rkyv) forms of consensus messages, and conversions both ways.
//!
//! `Wire*` types mirror `consensus::Message` field by field with plain integers; rkyv derives
//! their archived forms (`ArchivedWire*`), which a receiver reads in place inside the receive
//! buffer after the frame's checksum and rkyv validation passed (`frame.rs`). A batch is
//! archived as its bytes and read in place ([`ArchivedWireValue::batch`]); the encoder's
//! `Wire*` side shares the sender's `Arc<[u8]>` instead of copying it.
//!
//! Handing a message to `Replica::on_message` needs a `consensus::Message`
//! ([`ArchivedWireMessage::to_message`]): that copies each batch into a new `Arc<[u8]>`,
//! because the core owns the values it accepts (it keeps them until chosen and applied, after
//! the receive buffer is reused). Everything else the runtime needs - group, kind, ballot,
//! slot - is read in place.
//!
//! The declaration order of fields and variants is the wire format (`docs/design/wire.md`):
//! change it only with a new wire version.
//!
//! Must never: panic on a validated archive (conversion checks every rule a consensus type
//! needs and returns [`WireError::InvalidMessage`]).

use std::collections::BTreeSet;
use std::mem::size_of;
use std::sync::Arc;

use rkyv::rancor::Fallible;
use rkyv::ser::{Allocator, Writer};
use rkyv::vec::{ArchivedVec, VecResolver};
use rkyv::with::{ArchiveWith, SerializeWith};
use rkyv::{Archive, Place, Serialize};

use super::error::WireError;
use crate::consensus::quorum::Phase;
use crate::consensus::{Accepted, Membership, Message, Promise, PromiseEntry, Value, ValueKind};
use crate::constants::{
    CATCH_UP_ENTRIES_MAX, PROMISE_ENTRIES_MAX, SUPERBLOCK_GROUP_LEARNERS_COUNT_MAX,
    SUPERBLOCK_GROUP_MEMBERS_COUNT_MAX, WIRE_BATCH_SIZE_BYTES_MAX,
};
use crate::types::{Ballot, GroupId, NodeId, Slot};

/// rkyv `with` wrapper: an `Arc<[u8]>` archived as `ArchivedVec<u8>`, so the encoder shares
/// the sender's batch (no copy until the frame itself) and the receiver reads it in place.
#[derive(Debug)]
pub struct SharedBytes;

impl ArchiveWith<Arc<[u8]>> for SharedBytes {
    type Archived = ArchivedVec<u8>;
    type Resolver = VecResolver;

    fn resolve_with(field: &Arc<[u8]>, resolver: VecResolver, out: Place<ArchivedVec<u8>>) {
        ArchivedVec::resolve_from_len(field.len(), resolver, out);
    }
}

impl<S: Fallible + Allocator + Writer + ?Sized> SerializeWith<Arc<[u8]>, S> for SharedBytes {
    fn serialize_with(field: &Arc<[u8]>, serializer: &mut S) -> Result<VecResolver, S::Error> {
        ArchivedVec::<u8>::serialize_from_slice(field, serializer)
    }
}

/// A ballot on the wire.
#[derive(Archive, Serialize, Clone, Copy, Debug, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub struct WireBallot {
    /// `Ballot::round`.
    pub round: u64,
    /// `Ballot::node`.
    pub node: u64,
}

impl From<Ballot> for WireBallot {
    fn from(ballot: Ballot) -> WireBallot {
        WireBallot { round: ballot.round, node: ballot.node }
    }
}

impl ArchivedWireBallot {
    /// The ballot, read in place.
    #[must_use]
    pub fn get(&self) -> Ballot {
        Ballot { round: self.round.to_native(), node: self.node.to_native() }
    }
}

/// A membership on the wire: epoch, both quorum sizes, voters and learners in id order.
#[derive(Archive, Serialize, Clone, Debug, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub struct WireMembership {
    /// `Membership::epoch`.
    pub epoch: u64,
    /// Phase-1 quorum size.
    pub phase1: u32,
    /// Phase-2 quorum size.
    pub phase2: u32,
    /// Voter ids, ascending.
    pub voters: Vec<u64>,
    /// Learner ids, ascending.
    pub learners: Vec<u64>,
}

fn quorum_size_u32(membership: &Membership, phase: Phase) -> u32 {
    u32::try_from(membership.quorums().size(phase)).expect("a quorum size is at most the voters")
}

impl From<&Membership> for WireMembership {
    fn from(membership: &Membership) -> WireMembership {
        WireMembership {
            epoch: membership.epoch,
            phase1: quorum_size_u32(membership, Phase::One),
            phase2: quorum_size_u32(membership, Phase::Two),
            voters: membership.voters().iter().map(|node| node.get()).collect(),
            learners: membership.learners().iter().map(|node| node.get()).collect(),
        }
    }
}

fn invalid(reason: impl Into<String>) -> WireError {
    WireError::InvalidMessage(reason.into())
}

fn node_id(id: u64) -> Result<NodeId, WireError> {
    NodeId::new(id).ok_or_else(|| invalid("node id 0"))
}

/// The ids of `archived` as a set, refusing 0, duplicates and disorder (the encoder writes a
/// set in order, so anything else did not come from it).
fn node_set(archived: &ArchivedVec<rkyv::rend::u64_le>) -> Result<BTreeSet<NodeId>, WireError> {
    let mut set = BTreeSet::new();
    for id in archived.iter() {
        let node = node_id(id.to_native())?;
        if set.last().is_some_and(|last| *last >= node) {
            return Err(invalid("node ids not ascending"));
        }
        set.insert(node);
    }
    Ok(set)
}

impl ArchivedWireMembership {
    /// The membership; refuses node id 0, unordered ids, quorum sizes the core refuses and
    /// more voters or learners than a superblock stores.
    ///
    /// # Errors
    /// [`WireError::InvalidMessage`].
    pub fn to_membership(&self) -> Result<Membership, WireError> {
        // More members than a superblock stores could not be persisted.
        if self.voters.len() > SUPERBLOCK_GROUP_MEMBERS_COUNT_MAX
            || self.learners.len() > SUPERBLOCK_GROUP_LEARNERS_COUNT_MAX
        {
            return Err(invalid("more members than a node stores"));
        }
        let voters = node_set(&self.voters)?;
        let learners = node_set(&self.learners)?;
        let phase1 = self.phase1.to_native() as usize;
        let phase2 = self.phase2.to_native() as usize;
        Membership::flexible(self.epoch.to_native(), voters, learners, phase1, phase2)
            .map_err(|error| invalid(error.to_string()))
    }
}

/// What a value is, on the wire (`consensus::ValueKind`).
#[derive(Archive, Serialize, Clone, Debug, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub enum WireValueKind {
    /// `ValueKind::Noop`.
    Noop,
    /// `ValueKind::Batch`: the batch's bytes.
    Batch(#[rkyv(with = SharedBytes)] Arc<[u8]>),
    /// `ValueKind::MembershipChange`.
    MembershipChange(WireMembership),
    /// `ValueKind::MasterClaim`.
    MasterClaim {
        /// The master's node id.
        node: u64,
        /// Its ballot.
        ballot: WireBallot,
    },
}

/// A value on the wire (`consensus::Value`).
#[derive(Archive, Serialize, Clone, Debug, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub struct WireValue {
    /// `Value::stamp_millis`.
    pub stamp_millis: u64,
    /// `Value::kind`.
    pub kind: WireValueKind,
}

impl From<&Value> for WireValue {
    fn from(value: &Value) -> WireValue {
        let kind = match &value.kind {
            ValueKind::Noop => WireValueKind::Noop,
            ValueKind::Batch(bytes) => WireValueKind::Batch(Arc::clone(bytes)),
            ValueKind::MembershipChange(membership) => {
                WireValueKind::MembershipChange(membership.into())
            }
            ValueKind::MasterClaim { node, ballot } => {
                WireValueKind::MasterClaim { node: node.get(), ballot: (*ballot).into() }
            }
        };
        WireValue { stamp_millis: value.stamp_millis, kind }
    }
}

impl ArchivedWireValue {
    /// The batch's bytes, read in place; `None` for other kinds.
    #[must_use]
    pub fn batch(&self) -> Option<&[u8]> {
        match &self.kind {
            ArchivedWireValueKind::Batch(bytes) => Some(bytes.as_slice()),
            _ => None,
        }
    }

    /// The value, owned by the core: a batch is copied into a new `Arc<[u8]>`.
    ///
    /// # Errors
    /// [`WireError::InvalidMessage`] for a master claim by node 0, a bad membership, or a batch
    /// over `WIRE_BATCH_SIZE_BYTES_MAX` (the log could not hold it).
    pub fn to_value(&self) -> Result<Value, WireError> {
        let kind = match &self.kind {
            ArchivedWireValueKind::Noop => ValueKind::Noop,
            ArchivedWireValueKind::Batch(bytes) if bytes.len() > WIRE_BATCH_SIZE_BYTES_MAX => {
                return Err(invalid(format!("a batch of {} bytes", bytes.len())));
            }
            ArchivedWireValueKind::Batch(bytes) => ValueKind::Batch(Arc::from(bytes.as_slice())),
            ArchivedWireValueKind::MembershipChange(membership) => {
                ValueKind::MembershipChange(membership.to_membership()?)
            }
            ArchivedWireValueKind::MasterClaim { node, ballot } => {
                ValueKind::MasterClaim { node: node_id(node.to_native())?, ballot: ballot.get() }
            }
        };
        Ok(Value { stamp_millis: self.stamp_millis.to_native(), kind })
    }
}

/// One slot of a promise on the wire (`consensus::PromiseEntry`).
#[derive(Archive, Serialize, Clone, Debug, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub struct WirePromiseEntry {
    /// The slot.
    pub slot: u64,
    /// The ballot it was accepted under.
    pub ballot: WireBallot,
    /// The value.
    pub value: WireValue,
    /// Whether the acceptor knows it chosen.
    pub chosen: bool,
}

/// One chosen slot of a catch-up on the wire.
#[derive(Archive, Serialize, Clone, Debug, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub struct WireCatchUpEntry {
    /// The slot.
    pub slot: u64,
    /// Its chosen value.
    pub value: WireValue,
}

/// A consensus message on the wire: one variant per `consensus::Message` variant, same fields.
#[derive(Archive, Serialize, Clone, Debug, PartialEq, Eq)]
#[rkyv(derive(Debug))]
#[allow(missing_docs)] // The fields are those of `consensus::Message`, documented there.
pub enum WireMessage {
    /// `Message::Prepare`.
    Prepare { ballot: WireBallot, from: u64, transfer: bool },
    /// `Message::Promise`.
    Promise {
        ballot: WireBallot,
        from: u64,
        entries: Vec<WirePromiseEntry>,
        more: bool,
        behind: Option<u64>,
    },
    /// `Message::Accept`.
    Accept { ballot: WireBallot, slot: u64, value: WireValue, frontier: u64 },
    /// `Message::Accepted`.
    Accepted { ballot: WireBallot, slot: u64 },
    /// `Message::Reject`.
    Reject { ballot: WireBallot, promised: WireBallot },
    /// `Message::Heartbeat`.
    Heartbeat { ballot: WireBallot, frontier: u64, truncation: u64, round: u64 },
    /// `Message::HeartbeatAck`.
    HeartbeatAck { ballot: WireBallot, round: u64, applied: u64 },
    /// `Message::CatchUpRequest`.
    CatchUpRequest { from: u64 },
    /// `Message::CatchUp`.
    CatchUp { entries: Vec<WireCatchUpEntry>, frontier: u64 },
    /// `Message::SnapshotOffer`.
    SnapshotOffer { slot: u64 },
    /// `Message::TimeoutNow`.
    TimeoutNow { ballot: WireBallot },
}

fn promise_to_wire(promise: &Promise) -> WireMessage {
    let entries = promise
        .entries()
        .iter()
        .map(|entry| WirePromiseEntry {
            slot: entry.slot.0,
            ballot: entry.ballot.into(),
            value: (&entry.value).into(),
            chosen: entry.chosen,
        })
        .collect();
    WireMessage::Promise {
        ballot: promise.ballot().into(),
        from: promise.from().0,
        entries,
        more: promise.more(),
        behind: promise.behind().map(|slot| slot.0),
    }
}

impl From<&Message> for WireMessage {
    fn from(message: &Message) -> WireMessage {
        match message {
            Message::Prepare { ballot, from, transfer } => {
                WireMessage::Prepare { ballot: (*ballot).into(), from: from.0, transfer: *transfer }
            }
            Message::Promise(promise) => promise_to_wire(promise),
            Message::Accept { ballot, slot, value, frontier } => WireMessage::Accept {
                ballot: (*ballot).into(),
                slot: slot.0,
                value: value.into(),
                frontier: frontier.0,
            },
            Message::Accepted(accepted) => {
                WireMessage::Accepted { ballot: accepted.ballot().into(), slot: accepted.slot().0 }
            }
            Message::Reject { ballot, promised } => {
                WireMessage::Reject { ballot: (*ballot).into(), promised: (*promised).into() }
            }
            Message::Heartbeat { ballot, frontier, truncation, round } => WireMessage::Heartbeat {
                ballot: (*ballot).into(),
                frontier: frontier.0,
                truncation: truncation.0,
                round: *round,
            },
            Message::HeartbeatAck { ballot, round, applied } => WireMessage::HeartbeatAck {
                ballot: (*ballot).into(),
                round: *round,
                applied: applied.0,
            },
            Message::CatchUpRequest { from } => WireMessage::CatchUpRequest { from: from.0 },
            Message::CatchUp { entries, frontier } => WireMessage::CatchUp {
                entries: entries
                    .iter()
                    .map(|(slot, value)| WireCatchUpEntry { slot: slot.0, value: value.into() })
                    .collect(),
                frontier: frontier.0,
            },
            Message::SnapshotOffer { slot } => WireMessage::SnapshotOffer { slot: slot.0 },
            Message::TimeoutNow { ballot } => WireMessage::TimeoutNow { ballot: (*ballot).into() },
        }
    }
}

/// Refuses more than `max` entries: the core sends at most that many, and bounds its work on
/// the assumption.
fn check_entries(count: usize, max: u64, what: &str) -> Result<(), WireError> {
    if count as u64 > max {
        return Err(invalid(format!("{count} {what} entries, at most {max}")));
    }
    Ok(())
}

fn promise_from_wire(
    (ballot, from): (&ArchivedWireBallot, u64),
    entries: &ArchivedVec<ArchivedWirePromiseEntry>,
    more: bool,
    behind: Option<u64>,
) -> Result<Message, WireError> {
    check_entries(entries.len(), PROMISE_ENTRIES_MAX, "promise")?;
    let mut converted = Vec::with_capacity(entries.len());
    for entry in entries.iter() {
        converted.push(PromiseEntry {
            slot: Slot(entry.slot.to_native()),
            ballot: entry.ballot.get(),
            value: entry.value.to_value()?,
            chosen: entry.chosen,
        });
    }
    let promise =
        Promise::received((ballot.get(), Slot(from)), (converted, more), behind.map(Slot));
    Ok(Message::Promise(promise))
}

fn catch_up_from_wire(
    entries: &ArchivedVec<ArchivedWireCatchUpEntry>,
    frontier: u64,
) -> Result<Message, WireError> {
    check_entries(entries.len(), CATCH_UP_ENTRIES_MAX, "catch-up")?;
    let mut converted = Vec::with_capacity(entries.len());
    for entry in entries.iter() {
        converted.push((Slot(entry.slot.to_native()), entry.value.to_value()?));
    }
    Ok(Message::CatchUp { entries: converted, frontier: Slot(frontier) })
}

impl ArchivedWireMessage {
    /// The message for `Replica::on_message`. Copies batches (see the module docs).
    ///
    /// # Errors
    /// [`WireError::InvalidMessage`] for a value the core's types refuse, or more entries than
    /// the core ever sends.
    pub fn to_message(&self) -> Result<Message, WireError> {
        Ok(match self {
            ArchivedWireMessage::Prepare { ballot, from, transfer } => Message::Prepare {
                ballot: ballot.get(),
                from: Slot(from.to_native()),
                transfer: *transfer,
            },
            ArchivedWireMessage::Promise { ballot, from, entries, more, behind } => {
                let behind = behind.as_ref().map(|slot| slot.to_native());
                return promise_from_wire((ballot, from.to_native()), entries, *more, behind);
            }
            ArchivedWireMessage::Accept { ballot, slot, value, frontier } => Message::Accept {
                ballot: ballot.get(),
                slot: Slot(slot.to_native()),
                value: value.to_value()?,
                frontier: Slot(frontier.to_native()),
            },
            ArchivedWireMessage::Accepted { ballot, slot } => {
                Message::Accepted(Accepted::received(ballot.get(), Slot(slot.to_native())))
            }
            ArchivedWireMessage::Reject { ballot, promised } => {
                Message::Reject { ballot: ballot.get(), promised: promised.get() }
            }
            ArchivedWireMessage::Heartbeat { ballot, frontier, truncation, round } => {
                Message::Heartbeat {
                    ballot: ballot.get(),
                    frontier: Slot(frontier.to_native()),
                    truncation: Slot(truncation.to_native()),
                    round: round.to_native(),
                }
            }
            ArchivedWireMessage::HeartbeatAck { ballot, round, applied } => Message::HeartbeatAck {
                ballot: ballot.get(),
                round: round.to_native(),
                applied: Slot(applied.to_native()),
            },
            ArchivedWireMessage::CatchUpRequest { from } => {
                Message::CatchUpRequest { from: Slot(from.to_native()) }
            }
            ArchivedWireMessage::CatchUp { entries, frontier } => {
                return catch_up_from_wire(entries, frontier.to_native());
            }
            ArchivedWireMessage::SnapshotOffer { slot } => {
                Message::SnapshotOffer { slot: Slot(slot.to_native()) }
            }
            ArchivedWireMessage::TimeoutNow { ballot } => {
                Message::TimeoutNow { ballot: ballot.get() }
            }
        })
    }
}

/// One message for one group: the unit a messages frame carries many of.
#[derive(Archive, Serialize, Clone, Debug, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub struct WireEnvelope {
    /// `GroupId`.
    pub group: u32,
    /// The message.
    pub message: WireMessage,
}

impl ArchivedWireEnvelope {
    /// The group the message is for, read in place.
    #[must_use]
    pub fn group(&self) -> GroupId {
        GroupId(self.group.to_native())
    }

    /// The message, read in place.
    #[must_use]
    pub fn message(&self) -> &ArchivedWireMessage {
        &self.message
    }
}

/// The root archive of a messages frame.
#[derive(Archive, Serialize, Clone, Debug, Default, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub struct WireBody {
    /// The messages, in the order they were encoded.
    pub messages: Vec<WireEnvelope>,
}

/// Slack for one out-of-line object: rkyv aligns each to at most 16 bytes.
const ALIGNMENT_SLACK_BYTES: usize = 16;

fn value_bound(value: &WireValue) -> usize {
    match &value.kind {
        WireValueKind::Batch(bytes) => bytes.len() + ALIGNMENT_SLACK_BYTES,
        WireValueKind::MembershipChange(membership) => {
            8 * (membership.voters.len() + membership.learners.len()) + 2 * ALIGNMENT_SLACK_BYTES
        }
        WireValueKind::Noop | WireValueKind::MasterClaim { .. } => 0,
    }
}

/// An upper bound of the bytes `envelope` adds to a messages frame's archive: its inline part
/// plus every out-of-line object with alignment slack. The encoder starts a new frame on it.
#[must_use]
pub fn archived_size_bound(envelope: &WireEnvelope) -> usize {
    let inline = size_of::<ArchivedWireEnvelope>();
    let out_of_line = match &envelope.message {
        WireMessage::Promise { entries, .. } => {
            let values: usize = entries.iter().map(|entry| value_bound(&entry.value)).sum();
            entries.len() * size_of::<ArchivedWirePromiseEntry>() + ALIGNMENT_SLACK_BYTES + values
        }
        WireMessage::CatchUp { entries, .. } => {
            let values: usize = entries.iter().map(|entry| value_bound(&entry.value)).sum();
            entries.len() * size_of::<ArchivedWireCatchUpEntry>() + ALIGNMENT_SLACK_BYTES + values
        }
        WireMessage::Accept { value, .. } => value_bound(value),
        _ => 0,
    };
    inline + out_of_line
}

/// Bytes of a messages frame's archive besides its envelopes: the root and its alignment.
pub const BODY_OVERHEAD_BYTES: usize = size_of::<ArchivedWireBody>() + 2 * ALIGNMENT_SLACK_BYTES;
