//! [`PeerCodec`]: everything one peer connection does with bytes, without the socket.
//!
//! The transport owns a socket and one `PeerCodec`; the codec owns the handshake exchange,
//! the encoder and the stream reader, so the transport's loop is only:
//!
//! ```text
//!   new(ours)           -> outgoing() holds our handshake
//!   loop turn:
//!     send(group, m)*      gather every message for this peer (refused until established)
//!     outgoing() -> bytes  one write; written() once it is on the socket
//!     spare() <- read      received(n); poll(deliver) handles every complete frame:
//!                            the peer's handshake (accept or refuse), then each message,
//!                            handed to `deliver` in place (group, archived message)
//!   on Err(e): close; e.is_incompatible_peer() ? warn once + long back-off : reconnect
//! ```
//!
//! Pure: no sockets, clocks or tasks. A handshake that never comes is the transport's timeout.
//! Errors are final: once one is returned, every later call returns it again.

use super::encoder::Encoder;
use super::error::WireError;
use super::frame::CheckedBody;
use super::handshake::Handshake;
use super::header::{WIRE_VERSION, WIRE_VERSION_MIN};
use super::message::ArchivedWireMessage;
use super::reader::FrameReader;
use crate::consensus::Message;
use crate::types::GroupId;

/// Where a connection is.
#[derive(Clone, Debug, PartialEq, Eq)]
enum State {
    /// Our handshake is queued or sent; theirs has not arrived.
    Handshaking,
    /// Both handshakes agree: messages flow in `version`.
    Established {
        /// The peer's handshake.
        peer: Handshake,
        /// The wire version both read.
        version: u16,
    },
    /// Refused or broken: the connection must close.
    Failed(WireError),
}

/// One peer connection's frames, both directions.
#[derive(Debug)]
pub struct PeerCodec {
    ours: Handshake,
    encoder: Encoder,
    reader: FrameReader,
    state: State,
}

impl PeerCodec {
    /// A new connection of the node `ours` introduces; its handshake is queued to send.
    ///
    /// # Panics
    /// If `ours` does not announce this build's versions (make it with `Handshake::ours`).
    #[must_use]
    pub fn new(ours: Handshake) -> PeerCodec {
        assert_eq!(ours.versions, (WIRE_VERSION_MIN, WIRE_VERSION), "this build's versions");
        let mut encoder = Encoder::new(ours.node);
        encoder.handshake(&ours);
        PeerCodec { ours, encoder, reader: FrameReader::new(), state: State::Handshaking }
    }

    /// The peer's handshake, once both agreed.
    #[must_use]
    pub fn peer(&self) -> Option<&Handshake> {
        match &self.state {
            State::Established { peer, .. } => Some(peer),
            _ => None,
        }
    }

    /// The wire version both sides use, once both agreed.
    #[must_use]
    pub fn version(&self) -> Option<u16> {
        match &self.state {
            State::Established { version, .. } => Some(*version),
            _ => None,
        }
    }

    /// Whether messages can be sent.
    #[must_use]
    pub fn is_established(&self) -> bool {
        matches!(self.state, State::Established { .. })
    }

    fn failed(&self) -> Result<(), WireError> {
        match &self.state {
            State::Failed(error) => Err(error.clone()),
            _ => Ok(()),
        }
    }

    /// Gathers `message` for `group` into this turn's frames.
    ///
    /// # Errors
    /// [`WireError::NotEstablished`] before the handshakes agreed (the message is dropped:
    /// Paxos retransmits), the connection's error after a failure, or
    /// [`WireError::MessageTooLarge`].
    pub fn send(&mut self, group: GroupId, message: &Message) -> Result<(), WireError> {
        self.failed()?;
        if !self.is_established() {
            return Err(WireError::NotEstablished);
        }
        self.encoder.push(group, message)
    }

    /// The bytes to write now (one write): our handshake first, then every frame gathered.
    /// Call [`PeerCodec::written`] once they are all on the socket.
    pub fn outgoing(&mut self) -> &[u8] {
        self.encoder.finish()
    }

    /// The bytes of [`PeerCodec::outgoing`] are written.
    pub fn written(&mut self) {
        self.encoder.clear();
    }

    /// Room for the next socket read (see `FrameReader::spare`).
    pub fn spare(&mut self) -> &mut [u8] {
        self.reader.spare()
    }

    /// The last read put `count` bytes at the start of [`PeerCodec::spare`].
    pub fn received(&mut self, count: usize) {
        self.reader.filled(count);
    }

    /// Handles every complete frame received: the peer's handshake, then messages, each
    /// handed to `deliver` with its group, read in place. Returns the messages delivered.
    ///
    /// # Errors
    /// Any frame or handshake refusal (final: close the connection; see `WireError` for how
    /// to log it).
    pub fn poll(
        &mut self,
        mut deliver: impl FnMut(GroupId, &ArchivedWireMessage),
    ) -> Result<usize, WireError> {
        self.failed()?;
        let mut outcome = self.poll_frames(&mut deliver);
        if let Err(WireError::BadMagic { found }) = outcome
            && self.is_established()
        {
            // The peer proved compatible: a bad magic now means a broken stream, which the
            // transport must not take for an incompatible peer (no long back-off).
            outcome = Err(WireError::LostFraming { found });
        }
        if let Err(error) = &outcome {
            self.state = State::Failed(error.clone());
        }
        outcome
    }

    fn poll_frames(
        &mut self,
        deliver: &mut impl FnMut(GroupId, &ArchivedWireMessage),
    ) -> Result<usize, WireError> {
        let mut delivered = 0;
        while let Some(frame) = self.reader.next_frame()? {
            match frame.body() {
                CheckedBody::Handshake(handshake) => {
                    // The reader lets through only one handshake, as frame 0.
                    let peer = handshake.to_handshake()?;
                    let version = self.ours.accept(&peer)?;
                    self.encoder.set_version(version);
                    self.state = State::Established { peer, version };
                }
                // Snapshot transfer and forwarding run on the transport's own paths
                // (`runtime/transport.rs`).
                CheckedBody::Snapshot(_) | CheckedBody::Forward(_) => {}
                CheckedBody::Messages(body) => {
                    for envelope in body.messages.iter() {
                        deliver(envelope.group(), envelope.message());
                        delivered += 1;
                    }
                }
            }
        }
        Ok(delivered)
    }
}
