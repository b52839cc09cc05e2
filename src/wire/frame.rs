//! Checking a received frame: [`Frame::check`] turns bytes into a [`CheckedFrame`] whose
//! archive is read in place.
//!
//! Order (`docs/design/wire.md`, "Validation"): magic, length bound, completeness, alignment,
//! CRC32C, version, kind, flags, padding (`header.rs`), then rkyv's checked access
//! (bytecheck) of the payload as the kind's root type. Nothing of the payload is read before
//! the checksum passed, and nothing of the archive before validation passed. No `unsafe`:
//! `access_unchecked` would save the validation pass, and is left for a measured need.

use rkyv::rancor;

use super::error::WireError;
use super::forward::ArchivedWireForward;
use super::handshake::{ArchivedWireHandshake, Handshake};
use super::header::{FRAME_ALIGNMENT_BYTES, FrameHeader, FrameKind, check_header};
use super::message::{ArchivedWireBody, ArchivedWireEnvelope};
use super::snapshot::ArchivedWireSnapshot;

/// The frame format's entry points (a namespace: frames are plain bytes).
#[derive(Debug)]
pub struct Frame;

/// A frame that passed every check, borrowing the buffer it was checked in.
#[derive(Clone, Copy, Debug)]
pub struct CheckedFrame<'bytes> {
    header: FrameHeader,
    body: CheckedBody<'bytes>,
}

/// What a checked frame carries, read in place.
#[derive(Clone, Copy, Debug)]
pub enum CheckedBody<'bytes> {
    /// A handshake's archive.
    Handshake(&'bytes ArchivedWireHandshake),
    /// A messages frame's archive.
    Messages(&'bytes ArchivedWireBody),
    /// A snapshot frame's archive.
    Snapshot(&'bytes ArchivedWireSnapshot),
    /// A forwarding frame's archive.
    Forward(&'bytes ArchivedWireForward),
}

impl Frame {
    /// Checks the frame that starts `bytes` (bytes after it are ignored; see
    /// [`CheckedFrame::size_bytes`]). `bytes` must start at a 16-byte aligned address.
    ///
    /// # Errors
    /// The first failed check; [`WireError::Truncated`] when `bytes` ends before the frame.
    pub fn check(bytes: &[u8]) -> Result<CheckedFrame<'_>, WireError> {
        if !bytes.as_ptr().addr().is_multiple_of(FRAME_ALIGNMENT_BYTES) {
            return Err(WireError::Misaligned);
        }
        let (header, payload) = check_header(bytes)?;
        let invalid = |error: rancor::Error| WireError::InvalidPayload(error.to_string());
        let body = match header.kind {
            FrameKind::Handshake => CheckedBody::Handshake(
                rkyv::access::<ArchivedWireHandshake, rancor::Error>(payload).map_err(invalid)?,
            ),
            FrameKind::Messages => CheckedBody::Messages(
                rkyv::access::<ArchivedWireBody, rancor::Error>(payload).map_err(invalid)?,
            ),
            FrameKind::Snapshot => CheckedBody::Snapshot(
                rkyv::access::<ArchivedWireSnapshot, rancor::Error>(payload).map_err(invalid)?,
            ),
            FrameKind::Forward => CheckedBody::Forward(
                rkyv::access::<ArchivedWireForward, rancor::Error>(payload).map_err(invalid)?,
            ),
        };
        Ok(CheckedFrame { header, body })
    }
}

impl<'bytes> CheckedFrame<'bytes> {
    /// The header.
    #[must_use]
    pub fn header(&self) -> &FrameHeader {
        &self.header
    }

    /// Bytes the frame occupies (header, payload, padding): where the next frame starts.
    #[must_use]
    pub fn size_bytes(&self) -> usize {
        self.header.frame_size_bytes()
    }

    /// The payload, read in place.
    #[must_use]
    pub fn body(&self) -> CheckedBody<'bytes> {
        self.body
    }

    /// The handshake, if this is a handshake frame.
    ///
    /// # Errors
    /// [`WireError::HandshakeOutOfPlace`] for a messages frame, or the handshake's own
    /// conversion error.
    pub fn handshake(&self) -> Result<Handshake, WireError> {
        match self.body {
            CheckedBody::Handshake(handshake) => handshake.to_handshake(),
            CheckedBody::Messages(_) | CheckedBody::Snapshot(_) | CheckedBody::Forward(_) => {
                Err(WireError::HandshakeOutOfPlace("expected one"))
            }
        }
    }

    /// The messages, in encoding order, read in place (none for a handshake).
    #[must_use]
    pub fn messages(&self) -> impl ExactSizeIterator<Item = &'bytes ArchivedWireEnvelope> {
        let messages: &'bytes [ArchivedWireEnvelope] = match self.body {
            CheckedBody::Messages(body) => body.messages.as_slice(),
            CheckedBody::Handshake(_) | CheckedBody::Snapshot(_) | CheckedBody::Forward(_) => &[],
        };
        messages.iter()
    }
}
