//! The node-to-node wire format: rkyv frames, checked, then read in place.
//!
//! Owns: the fixed 32-byte frame header (magic, checksum, version, kind, flags, payload length,
//! sender, sequence; `header.rs`), the archived forms of consensus messages (`message.rs`),
//! the handshake and the decision to refuse an incompatible peer (`handshake.rs`), checked
//! access (checksum first, then rkyv validation; `frame.rs`), the encoder that puts every
//! message of a loop turn for one peer into one write (`encoder.rs`), and the stream reader
//! that cuts a TCP byte stream into frames in bounded memory (`reader.rs`), and the codec of
//! one peer connection that the transport drives (`peer_codec.rs`: handshake, then messages
//! both ways). The format, its validation order and versioning: `docs/design/wire.md`.
//!
//! ```text
//!   sender shard                                   receiver shard
//!   Effect::Send{to, m} --push(group, m)--> Encoder            FrameReader <-- socket read
//!                       finish() -> bytes -> one write   next_frame() -> CheckedFrame
//!                                                        messages(): group, archived msg
//!                                                        to_message() -> Replica::on_message
//! ```
//!
//! Must never: read a received byte before its checksum and validation passed, panic on any
//! input, use `unsafe`, or depend on anything above `consensus` (no sockets: the runtime feeds
//! the reader and writes the encoder's bytes).

#![cfg_attr(not(test), deny(clippy::indexing_slicing, clippy::unwrap_used))]

mod encoder;
mod error;
mod forward;
mod frame;
mod handshake;
mod header;
mod message;
mod peer_codec;
mod reader;
mod snapshot;

#[cfg(test)]
mod tests;

pub use encoder::{ENCODER_OUTPUT_BYTES_KEPT, Encoder, through_the_wire};
pub use error::WireError;
pub use forward::{
    ArchivedWireForward, ArchivedWireForwardKind, ForwardMessage, ForwardRefusal, WireForward,
    WireForwardKind,
};
pub use frame::{CheckedBody, CheckedFrame, Frame};
pub use handshake::{ArchivedWireHandshake, Handshake, WireHandshake};
pub use header::{
    FRAME_ALIGNMENT_BYTES, FrameHeader, FrameKind, HEADER_SIZE_BYTES, PAYLOAD_SIZE_BYTES_MAX,
    WIRE_MAGIC, WIRE_VERSION, WIRE_VERSION_MIN, frame_size_bytes, peek_frame_size,
};
pub use message::{
    ArchivedWireBallot, ArchivedWireBody, ArchivedWireCatchUpEntry, ArchivedWireEnvelope,
    ArchivedWireMembership, ArchivedWireMessage, ArchivedWirePromiseEntry, ArchivedWireValue,
    ArchivedWireValueKind, SharedBytes, WireBallot, WireBody, WireCatchUpEntry, WireEnvelope,
    WireMembership, WireMessage, WirePromiseEntry, WireValue, WireValueKind,
};
pub use peer_codec::PeerCodec;
pub use reader::{FrameReader, READER_BUFFER_BYTES_KEPT, READER_BUFFER_BYTES_MAX};
pub use snapshot::{
    ArchivedWireSnapshot, ArchivedWireSnapshotMeta, SNAPSHOT_META_CONFIGURATIONS_MAX,
    SnapshotMessage, WireConfiguration, WireSnapshot, WireSnapshotMeta,
};
