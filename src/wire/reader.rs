//! [`FrameReader`]: frames out of one peer connection's TCP byte stream, in bounded memory.
//!
//! Pure (no sockets): the runtime reads from its socket into [`FrameReader::spare`], reports
//! the count with [`FrameReader::filled`], then takes frames with [`FrameReader::next_frame`]
//! until it returns `None`. TCP cuts the stream anywhere; the reader keeps the bytes in a
//! 16-byte aligned buffer in which every frame starts at a 16-aligned offset (frame sizes are
//! multiples of 16, and leftovers move to offset 0), so every payload is read in place.
//!
//! ```text
//!   buffer: [ consumed | frame | frame | partial frame | spare .............. ]
//!           0          start                           end                  len
//! ```
//!
//! Memory: the buffer grows to the largest frame seen plus one read, at most
//! `WIRE_FRAME_SIZE_BYTES_MAX + WIRE_READ_SIZE_BYTES`; a header announcing more is refused
//! before its payload is buffered. Once empty, a buffer above `READER_BUFFER_BYTES_KEPT` is
//! given back. The reader checks the connection's rules too: frame 0 is a
//! handshake, later frames are not, sequence numbers count up from 0, and every frame after
//! the handshake comes from the node that introduced itself.
//!
//! Errors are final: after one, close the connection (`WireError` says how to log it).

use rkyv::util::AlignedVec;

use super::error::WireError;
use super::frame::{CheckedFrame, Frame};
use super::header::{FRAME_ALIGNMENT_BYTES, FrameKind, HEADER_SIZE_BYTES, peek_frame_size};
use crate::constants::{
    WIRE_FRAME_PAYLOAD_TARGET_BYTES, WIRE_FRAME_SIZE_BYTES_MAX, WIRE_READ_SIZE_BYTES,
};

/// Most bytes a reader's buffer holds.
pub const READER_BUFFER_BYTES_MAX: usize = WIRE_FRAME_SIZE_BYTES_MAX + WIRE_READ_SIZE_BYTES;

/// Most bytes a reader keeps while it holds nothing: a buffer grown for a large frame is given
/// back once empty, so one large frame does not pin its memory for the connection's life.
pub const READER_BUFFER_BYTES_KEPT: usize =
    2 * WIRE_FRAME_PAYLOAD_TARGET_BYTES + WIRE_READ_SIZE_BYTES;

/// A new reader's buffer.
const READER_BUFFER_BYTES_INITIAL: usize = 2 * WIRE_READ_SIZE_BYTES;

const _: () = assert!(READER_BUFFER_BYTES_INITIAL <= READER_BUFFER_BYTES_KEPT);
const _: () = assert!(READER_BUFFER_BYTES_KEPT <= READER_BUFFER_BYTES_MAX);

/// The incoming side of one peer connection.
#[derive(Debug)]
pub struct FrameReader {
    /// Received bytes live in `start..end`; `end..len` is spare room.
    buffer: AlignedVec<FRAME_ALIGNMENT_BYTES>,
    start: usize,
    end: usize,
    /// The next frame's sequence number.
    sequence: u64,
    /// The sender the handshake named.
    peer: Option<u64>,
}

impl Default for FrameReader {
    fn default() -> FrameReader {
        FrameReader::new()
    }
}

impl FrameReader {
    /// A reader for a new connection: its first frame must be a handshake.
    #[must_use]
    pub fn new() -> FrameReader {
        let mut buffer = AlignedVec::with_capacity(READER_BUFFER_BYTES_INITIAL);
        buffer.resize(READER_BUFFER_BYTES_INITIAL, 0);
        FrameReader { buffer, start: 0, end: 0, sequence: 0, peer: None }
    }

    /// Bytes received and not yet taken as frames.
    #[must_use]
    pub fn buffered_bytes(&self) -> usize {
        self.end - self.start
    }

    /// The buffer's size: what the reader holds in memory.
    #[must_use]
    pub fn capacity_bytes(&self) -> usize {
        self.buffer.len()
    }

    /// Room for the next read from the socket: at least `WIRE_READ_SIZE_BYTES`.
    ///
    /// # Panics
    /// If called while a whole frame waits (take frames until `next_frame` says `None` first):
    /// then the bytes buffered are less than one frame and the room always exists.
    pub fn spare(&mut self) -> &mut [u8] {
        assert!(self.buffered_bytes() < WIRE_FRAME_SIZE_BYTES_MAX, "frames were taken");
        if self.end == 0 && self.buffer.len() > READER_BUFFER_BYTES_KEPT {
            self.buffer.resize(READER_BUFFER_BYTES_INITIAL, 0);
            self.buffer.shrink_to_fit();
        }
        if self.buffer.len() - self.end < WIRE_READ_SIZE_BYTES {
            self.compact();
        }
        if self.buffer.len() - self.end < WIRE_READ_SIZE_BYTES {
            let wanted = (2 * self.buffer.len()).max(self.end + WIRE_READ_SIZE_BYTES);
            self.buffer.resize(wanted.min(READER_BUFFER_BYTES_MAX), 0);
        }
        let end = self.end;
        self.buffer.as_mut_slice().get_mut(end..).unwrap_or_default()
    }

    /// Records that the last read put `count` bytes at the start of [`FrameReader::spare`].
    ///
    /// # Panics
    /// If `count` is more than the spare room: a caller bug.
    pub fn filled(&mut self, count: usize) {
        assert!(count <= self.buffer.len() - self.end, "a read fills at most the spare room");
        self.end += count;
    }

    /// Copies `bytes` in (for callers without their own read, and tests).
    pub fn push_bytes(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            let spare = self.spare();
            let count = spare.len().min(bytes.len());
            let (now, later) = bytes.split_at(count);
            spare.get_mut(..count).unwrap_or_default().copy_from_slice(now);
            self.filled(count);
            bytes = later;
        }
    }

    /// The next whole frame, checked, or `None` until more bytes arrive.
    ///
    /// # Errors
    /// Any [`WireError`] but `Truncated`: the connection must be closed.
    pub fn next_frame(&mut self) -> Result<Option<CheckedFrame<'_>>, WireError> {
        let available = self.end - self.start;
        if available < HEADER_SIZE_BYTES {
            return Ok(None);
        }
        let bytes = self.buffer.as_slice().get(self.start..self.end).unwrap_or_default();
        let size = peek_frame_size(bytes)?;
        if available < size {
            return Ok(None);
        }
        let frame = Frame::check(bytes)?;
        let header = frame.header();
        if header.sequence != self.sequence {
            return Err(WireError::OutOfSequence {
                expected: self.sequence,
                found: header.sequence,
            });
        }
        match (header.kind, self.peer) {
            (FrameKind::Handshake, None) => self.peer = Some(header.sender),
            (FrameKind::Handshake, Some(_)) => {
                return Err(WireError::HandshakeOutOfPlace("a second handshake"));
            }
            (FrameKind::Messages | FrameKind::Snapshot | FrameKind::Forward, None) => {
                return Err(WireError::HandshakeOutOfPlace("messages before the handshake"));
            }
            (FrameKind::Messages | FrameKind::Snapshot | FrameKind::Forward, Some(peer))
                if peer != header.sender =>
            {
                return Err(WireError::WrongNode { expected: peer, found: header.sender });
            }
            (FrameKind::Messages | FrameKind::Snapshot | FrameKind::Forward, Some(_)) => {}
        }
        self.sequence += 1;
        self.start += size;
        if self.start == self.end {
            // Nothing left: the next read starts at offset 0 again. The frame's bytes stay in
            // place until then (the returned frame borrows the buffer, so no read can happen).
            self.start = 0;
            self.end = 0;
        }
        Ok(Some(frame))
    }

    /// Moves the partial frame at `start..end` to offset 0 (16-aligned, like every start).
    fn compact(&mut self) {
        if self.start == 0 {
            return;
        }
        let (start, end) = (self.start, self.end);
        self.buffer.as_mut_slice().copy_within(start..end, 0);
        self.start = 0;
        self.end = end - start;
    }
}
