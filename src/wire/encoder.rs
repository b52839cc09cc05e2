//! [`Encoder`]: one peer connection's outgoing frames, built in one reusable buffer.
//!
//! The shard pushes every `(group, message)` it sends to one peer during a loop turn, then
//! calls [`Encoder::finish`] and writes the bytes it returns with one write (the batching rule
//! of `docs/ARCHITECTURE.md`: one write per peer per loop turn). Messages gather in one
//! messages frame until its estimated payload reaches `WIRE_FRAME_PAYLOAD_TARGET_BYTES`; then
//! the next frame starts in the same buffer, so a busy turn yields a few frames, still one
//! write.
//!
//! ```text
//!   push(g, m) ... push(g', m')   finish() -> [frame n][frame n+1]   write   clear()
//!   (envelopes share batches)      (rkyv serializes, pads, seals)
//! ```
//!
//! Batches are not copied when pushed (the envelope shares the `Arc<[u8]>`); serializing copies
//! each once, into the frame. In steady state nothing is allocated: the output buffer and the
//! envelope list keep their capacity, and rkyv's scratch space is a reused arena.

use rkyv::rancor;
use rkyv::util::AlignedVec;

use super::error::WireError;
use super::forward::WireForward;
use super::frame::Frame;
use super::handshake::{Handshake, WireHandshake};
use super::header::{
    FRAME_ALIGNMENT_BYTES, FrameHeader, FrameKind, HEADER_SIZE_BYTES, PAYLOAD_SIZE_BYTES_MAX,
    WIRE_VERSION, WIRE_VERSION_MIN, seal,
};
use super::message::{BODY_OVERHEAD_BYTES, WireBody, WireEnvelope, archived_size_bound};
use super::snapshot::WireSnapshot;
use crate::consensus::Message;
use crate::constants::WIRE_FRAME_PAYLOAD_TARGET_BYTES;
use crate::types::{GroupId, NodeId};

/// Output capacity an encoder keeps across turns: a busy turn's few frames. A buffer grown
/// past it (a turn with a very large message) is given back when cleared.
pub const ENCODER_OUTPUT_BYTES_KEPT: usize = 4 * WIRE_FRAME_PAYLOAD_TARGET_BYTES;

/// The outgoing side of one peer connection.
#[derive(Debug)]
pub struct Encoder {
    sender: NodeId,
    version: u16,
    /// The next frame's sequence number.
    sequence: u64,
    /// Sealed frames not yet cleared: a multiple of 16 bytes long.
    output: AlignedVec<FRAME_ALIGNMENT_BYTES>,
    /// Messages of the frame being gathered.
    body: WireBody,
    /// Upper bound of that frame's payload.
    pending_bytes: usize,
}

impl Encoder {
    /// The encoder of a new connection of node `sender`; frame 0 must be its handshake.
    #[must_use]
    pub fn new(sender: NodeId) -> Encoder {
        Encoder {
            sender,
            version: WIRE_VERSION,
            sequence: 0,
            output: AlignedVec::new(),
            body: WireBody::default(),
            pending_bytes: BODY_OVERHEAD_BYTES,
        }
    }

    /// Writes messages frames in `version` from now on: the one `Handshake::accept` chose.
    ///
    /// # Panics
    /// If this build does not write `version`: only versions it reads are ever chosen, and
    /// this build writes only [`WIRE_VERSION`] so far.
    pub fn set_version(&mut self, version: u16) {
        assert!((WIRE_VERSION_MIN..=WIRE_VERSION).contains(&version), "version {version}");
        assert_eq!(version, WIRE_VERSION, "this build writes one version");
        self.version = version;
    }

    /// Appends the handshake frame (frame 0).
    ///
    /// # Panics
    /// If any frame was encoded before: the handshake opens the connection.
    pub fn handshake(&mut self, handshake: &Handshake) {
        assert_eq!(self.sequence, 0, "the handshake is a connection's first frame");
        assert!(self.body.messages.is_empty(), "nothing is gathered before the handshake");
        let start = self.begin_frame();
        let wire = WireHandshake::from(handshake);
        rkyv::api::high::to_bytes_in::<_, rancor::Error>(&wire, &mut self.output)
            .expect("archiving into memory cannot fail");
        self.end_frame(start, FrameKind::Handshake, WIRE_VERSION);
    }

    /// Adds `message` for `group` to the frame being gathered, first sealing that frame if the
    /// message would take it past the payload target.
    ///
    /// # Errors
    /// [`WireError::MessageTooLarge`] for a message that does not fit one frame (it is not
    /// added).
    pub fn push(&mut self, group: GroupId, message: &Message) -> Result<(), WireError> {
        let envelope = WireEnvelope { group: group.0, message: message.into() };
        let bound = archived_size_bound(&envelope);
        if BODY_OVERHEAD_BYTES + bound > PAYLOAD_SIZE_BYTES_MAX {
            return Err(WireError::MessageTooLarge { estimate_bytes: bound });
        }
        if !self.body.messages.is_empty()
            && self.pending_bytes + bound > WIRE_FRAME_PAYLOAD_TARGET_BYTES
        {
            self.seal_messages();
        }
        self.pending_bytes += bound;
        self.body.messages.push(envelope);
        Ok(())
    }

    /// Adds a snapshot frame holding `message` after the frames sealed so far (consensus
    /// messages gathered before it are sealed first, so frames keep their order).
    ///
    /// # Panics
    /// Never: archiving into memory cannot fail.
    pub fn push_snapshot(&mut self, message: &WireSnapshot) {
        if !self.body.messages.is_empty() {
            self.seal_messages();
        }
        let start = self.begin_frame();
        rkyv::api::high::to_bytes_in::<_, rancor::Error>(message, &mut self.output)
            .expect("archiving into memory cannot fail");
        self.end_frame(start, FrameKind::Snapshot, self.version);
    }

    /// Adds a forwarding frame holding `message` after the frames sealed so far (consensus
    /// messages gathered before it are sealed first, so frames keep their order).
    ///
    /// # Panics
    /// Never: archiving into memory cannot fail.
    pub fn push_forward(&mut self, message: &WireForward) {
        if !self.body.messages.is_empty() {
            self.seal_messages();
        }
        let start = self.begin_frame();
        rkyv::api::high::to_bytes_in::<_, rancor::Error>(message, &mut self.output)
            .expect("archiving into memory cannot fail");
        self.end_frame(start, FrameKind::Forward, self.version);
    }

    /// Messages gathered and not yet in a sealed frame.
    #[must_use]
    pub fn pending_count(&self) -> usize {
        self.body.messages.len()
    }

    /// Seals the frame being gathered (if it holds a message) and returns every sealed frame
    /// not yet cleared: the bytes of one write. Call [`Encoder::clear`] once they are written.
    pub fn finish(&mut self) -> &[u8] {
        if !self.body.messages.is_empty() {
            self.seal_messages();
        }
        self.output.as_slice()
    }

    /// Forgets the sealed frames (they were written); keeps the buffer's capacity up to
    /// [`ENCODER_OUTPUT_BYTES_KEPT`].
    pub fn clear(&mut self) {
        if self.output.capacity() > ENCODER_OUTPUT_BYTES_KEPT {
            self.output = AlignedVec::new();
        }
        self.output.clear();
    }

    /// Bytes the output buffer holds in memory (for metrics).
    #[must_use]
    pub fn capacity_bytes(&self) -> usize {
        self.output.capacity()
    }

    fn seal_messages(&mut self) {
        let start = self.begin_frame();
        rkyv::api::high::to_bytes_in::<_, rancor::Error>(&self.body, &mut self.output)
            .expect("archiving into memory cannot fail");
        let payload_length = self.output.len() - start - HEADER_SIZE_BYTES;
        assert!(payload_length <= self.pending_bytes, "the size bound holds");
        self.end_frame(start, FrameKind::Messages, self.version);
        self.body.messages.clear();
        self.pending_bytes = BODY_OVERHEAD_BYTES;
    }

    /// Reserves a header at the end of the output; returns where the frame starts.
    fn begin_frame(&mut self) -> usize {
        let start = self.output.len();
        assert!(start.is_multiple_of(FRAME_ALIGNMENT_BYTES), "frames are 16-aligned");
        self.output.resize(start + HEADER_SIZE_BYTES, 0);
        start
    }

    /// Pads the frame that starts at `start` and seals it.
    fn end_frame(&mut self, start: usize, kind: FrameKind, version: u16) {
        let payload_length = self.output.len() - start - HEADER_SIZE_BYTES;
        assert!(payload_length <= PAYLOAD_SIZE_BYTES_MAX, "the encoder keeps frames in bounds");
        let header = FrameHeader {
            version,
            kind,
            payload_length: u32::try_from(payload_length).expect("bounded by the frame limit"),
            sender: self.sender.get(),
            sequence: self.sequence,
        };
        self.output.resize(start + header.frame_size_bytes(), 0);
        let frame = self.output.as_mut_slice().get_mut(start..).expect("the frame was written");
        seal(frame, &header);
        self.sequence += 1;
    }
}

/// What a receiver gets for `message` sent to `group`: one messages frame encoded, checked and
/// converted, as between two nodes. The simulator passes every delivery through it, so every
/// message the production core sends crosses the production wire format.
///
/// # Errors
/// What the encoder, the checks or the conversion refuse.
///
/// # Panics
/// If the frame does not hold exactly the one message for `group`: an encoder bug.
pub fn through_the_wire(group: GroupId, message: &Message) -> Result<Message, WireError> {
    let mut encoder = Encoder::new(NodeId::DEFAULT);
    encoder.push(group, message)?;
    let frame = Frame::check(encoder.finish())?;
    let mut envelopes = frame.messages();
    let envelope = envelopes.next().ok_or(WireError::InvalidMessage("no message".into()))?;
    assert_eq!(envelope.group(), group, "the group crosses the wire");
    assert!(envelopes.next().is_none(), "one message in, one out");
    envelope.message().to_message()
}
