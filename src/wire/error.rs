//! [`WireError`]: why received bytes were refused, sorted into what the transport does next.
//!
//! Three classes (`docs/design/wire.md`, "Refusal"): an *incompatible peer* (another
//! protocol, another cluster, no common version: log once, close, reconnect only after a long
//! back-off), *corruption or a broken peer* (bad checksum, bad archive, bad sequence: close the
//! connection, reconnect normally), and *not yet* ([`WireError::Truncated`]: wait for bytes).

/// Why a frame, or a message in it, was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// The bytes hold less than a whole frame (a stream reader waits for more).
    #[error("truncated frame: {needed} bytes needed, {available} available")]
    Truncated {
        /// Bytes the frame needs (the header's, until the header is complete).
        needed: usize,
        /// Bytes there are.
        available: usize,
    },
    /// The first four bytes are not Klein's wire magic: the peer speaks another protocol.
    #[error("bad magic {found:#010x}: the peer does not speak the Klein wire protocol")]
    BadMagic {
        /// The magic found, little-endian.
        found: u32,
    },
    /// A frame after an agreed handshake does not start with the magic: the stream lost its
    /// framing (corruption the TCP checksum missed, or a sender bug), not an incompatible peer.
    #[error("bad magic {found:#010x} after the handshake: the stream lost its framing")]
    LostFraming {
        /// The magic found, little-endian.
        found: u32,
    },
    /// The header announces a frame over `WIRE_FRAME_SIZE_BYTES_MAX`.
    #[error("frame of {size_bytes} bytes is over the limit of {limit_bytes}")]
    FrameTooLarge {
        /// The frame size the header announces.
        size_bytes: u64,
        /// The limit.
        limit_bytes: usize,
    },
    /// The frame does not start at a 16-byte aligned address (a bug of the caller's buffer).
    #[error("frame buffer is not 16-byte aligned")]
    Misaligned,
    /// The CRC32C does not match: corruption in transit or a broken sender.
    #[error("checksum mismatch: header says {expected:#010x}, bytes give {computed:#010x}")]
    Checksum {
        /// The checksum in the header.
        expected: u32,
        /// The checksum of the bytes.
        computed: u32,
    },
    /// An authentic frame of a wire version this build cannot read.
    #[error("wire version {version} is outside the versions {min}..={max} this node reads")]
    UnsupportedVersion {
        /// The frame's version.
        version: u16,
        /// Oldest version this build reads.
        min: u16,
        /// Newest version this build reads (and writes).
        max: u16,
    },
    /// An authentic frame of a kind this version does not define.
    #[error("unknown frame kind {0}")]
    UnknownKind(u8),
    /// An authentic frame with flags this version does not define.
    #[error("unknown frame flags {0:#04x}")]
    UnknownFlags(u8),
    /// The bytes between the payload and the next 16-byte boundary are not zero.
    #[error("nonzero padding after the payload")]
    BadPadding,
    /// The payload is not a valid archive of the frame's kind (rkyv validation failed).
    #[error("invalid payload: {0}")]
    InvalidPayload(String),
    /// A message in a valid archive breaks a rule of its type (node id 0, bad quorum sizes).
    #[error("invalid message: {0}")]
    InvalidMessage(String),
    /// A frame out of order on one connection: a transport bug or a misbehaving peer.
    #[error("frame sequence {found}, expected {expected}")]
    OutOfSequence {
        /// The sequence the reader expected.
        expected: u64,
        /// The frame's.
        found: u64,
    },
    /// A connection's first frame is not a handshake, or a later one is.
    #[error("handshake out of place: {0}")]
    HandshakeOutOfPlace(&'static str),
    /// The peer belongs to another cluster.
    #[error("peer is in cluster {found:#x}, this node in {expected:#x}")]
    WrongCluster {
        /// This node's cluster id.
        expected: u64,
        /// The peer's.
        found: u64,
    },
    /// The peer is not the node this connection is for.
    #[error("peer is node {found}, expected {expected}")]
    WrongNode {
        /// The node expected.
        expected: u64,
        /// The node the peer says it is (or, for a target mismatch, the node it wanted).
        found: u64,
    },
    /// The peer is this node itself (a misconfigured address).
    #[error("connected to itself (node {node})")]
    ConnectedToSelf {
        /// This node.
        node: u64,
    },
    /// The two nodes' version ranges do not overlap.
    #[error("no common wire version: this node reads {ours:?}, the peer {theirs:?}")]
    NoCommonVersion {
        /// This node's `(min, max)`.
        ours: (u16, u16),
        /// The peer's `(min, max)`.
        theirs: (u16, u16),
    },
    /// A message to send before the handshakes agreed (it is dropped).
    #[error("the connection is not established yet")]
    NotEstablished,
    /// A message estimated above what one frame can carry (the encoder refuses it).
    #[error("message of about {estimate_bytes} bytes does not fit one frame")]
    MessageTooLarge {
        /// The encoder's upper-bound estimate of its archived size.
        estimate_bytes: usize,
    },
}

impl WireError {
    /// Whether the peer is incompatible (another protocol or cluster, the wrong node, no
    /// common version): the transport logs it once at `warn`, closes the connection and waits
    /// a long back-off before reconnecting, because retrying at once cannot succeed.
    #[must_use]
    pub fn is_incompatible_peer(&self) -> bool {
        matches!(
            self,
            WireError::BadMagic { .. }
                | WireError::UnsupportedVersion { .. }
                | WireError::WrongCluster { .. }
                | WireError::WrongNode { .. }
                | WireError::ConnectedToSelf { .. }
                | WireError::NoCommonVersion { .. }
        )
    }

    /// Whether more bytes may complete the frame (the only error a stream reader waits on).
    #[must_use]
    pub fn is_truncated(&self) -> bool {
        matches!(self, WireError::Truncated { .. })
    }
}
