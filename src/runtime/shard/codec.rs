//! The bytes the shard puts in log records and snapshot files: [`Value`]s and
//! [`SnapshotMeta`]s, in a small hand-written, versioned, little-endian binary encoding.
//!
//! Not rkyv: the consensus types keep their fields private (`Membership`'s quorum sizes) and
//! must not grow serialisation derives for the storage's sake, so the encoding is written out
//! here against their public API. Every encoding starts with a version byte; decoding checks
//! every length against the bytes left and returns a [`DecodeError`] on bad input, never
//! panics (the log's checksums already caught media corruption; this catches a wrong format).
//!
//! ```text
//!   value    := version:u8 stamp_millis:u64 tag:u8 body
//!   body     := (Noop) | len:u32 bytes (Batch) | membership (MembershipChange)
//!             | node:u64 round:u64 ballot_node:u64 (MasterClaim)
//!   membership := epoch:u64 phase1:u32 phase2:u32 voters:u32 node:u64* learners:u32 node:u64*
//!   meta     := version:u8 slot:u64 stamp_millis:u64 count:u32 (slot:u64 membership)*
//!   snapshot := meta_len:u32 meta state_bytes   (the payload of a snapshot file)
//! ```

use std::collections::BTreeSet;
use std::sync::Arc;

use crate::consensus::quorum::Phase;
use crate::consensus::{Membership, SnapshotMeta, Value, ValueKind};
use crate::types::{Ballot, NodeId, Slot};

/// The version byte of every encoding written by this build.
const FORMAT_VERSION: u8 = 1;

const TAG_NOOP: u8 = 0;
const TAG_BATCH: u8 = 1;
const TAG_MEMBERSHIP: u8 = 2;
const TAG_CLAIM: u8 = 3;

/// Bytes that do not decode: what is wrong, and where.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("undecodable storage bytes at offset {offset}: {reason}")]
pub struct DecodeError {
    /// Byte offset of the problem.
    pub offset: usize,
    /// What is wrong.
    pub reason: String,
}

fn put_u32(out: &mut Vec<u8>, value: usize) {
    let value = u32::try_from(value).expect("lengths the log can hold fit in 32 bits");
    out.extend_from_slice(&value.to_le_bytes());
}

fn put_u64(out: &mut Vec<u8>, value: u64) {
    out.extend_from_slice(&value.to_le_bytes());
}

/// The phase-`phase` quorum size of `membership`, found through its public quorum test.
fn quorum_size(membership: &Membership, phase: Phase) -> usize {
    let voters: Vec<NodeId> = membership.voters().iter().copied().collect();
    (1..=voters.len())
        .find(|size| {
            let acks: BTreeSet<NodeId> = voters[..*size].iter().copied().collect();
            membership.quorums().is_quorum(phase, &acks)
        })
        .unwrap_or(voters.len())
}

fn put_membership(out: &mut Vec<u8>, membership: &Membership) {
    put_u64(out, membership.epoch);
    put_u32(out, quorum_size(membership, Phase::One));
    put_u32(out, quorum_size(membership, Phase::Two));
    put_u32(out, membership.voters().len());
    for voter in membership.voters() {
        put_u64(out, voter.get());
    }
    put_u32(out, membership.learners().len());
    for learner in membership.learners() {
        put_u64(out, learner.get());
    }
}

/// The encoding of `value` (the payload of its log records).
#[must_use]
pub fn encode_value(value: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(32);
    out.push(FORMAT_VERSION);
    put_u64(&mut out, value.stamp_millis);
    match &value.kind {
        ValueKind::Noop => out.push(TAG_NOOP),
        ValueKind::Batch(batch) => {
            out.push(TAG_BATCH);
            put_u32(&mut out, batch.len());
            out.extend_from_slice(batch);
        }
        ValueKind::MembershipChange(membership) => {
            out.push(TAG_MEMBERSHIP);
            put_membership(&mut out, membership);
        }
        ValueKind::MasterClaim { node, ballot } => {
            out.push(TAG_CLAIM);
            put_u64(&mut out, node.get());
            put_u64(&mut out, ballot.round);
            put_u64(&mut out, ballot.node);
        }
    }
    out
}

/// The encoding of `meta`.
#[must_use]
pub fn encode_meta(meta: &SnapshotMeta) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    out.push(FORMAT_VERSION);
    put_u64(&mut out, meta.slot.0);
    put_u64(&mut out, meta.stamp_millis);
    put_u32(&mut out, meta.configurations.len());
    for (slot, membership) in &meta.configurations {
        put_u64(&mut out, slot.0);
        put_membership(&mut out, membership);
    }
    out
}

/// The payload of a snapshot file: `meta` and the state machine's `state`.
#[must_use]
pub fn encode_snapshot(meta: &SnapshotMeta, state: &[u8]) -> Vec<u8> {
    let meta = encode_meta(meta);
    let mut out = Vec::with_capacity(4 + meta.len() + state.len());
    put_u32(&mut out, meta.len());
    out.extend_from_slice(&meta);
    out.extend_from_slice(state);
    out
}

/// Reads what the encoders above wrote, checking every length.
struct Reader<'bytes> {
    bytes: &'bytes [u8],
    at: usize,
}

impl<'bytes> Reader<'bytes> {
    fn new(bytes: &'bytes [u8]) -> Reader<'bytes> {
        Reader { bytes, at: 0 }
    }

    fn error(&self, reason: impl Into<String>) -> DecodeError {
        DecodeError { offset: self.at, reason: reason.into() }
    }

    fn take(&mut self, length: usize) -> Result<&'bytes [u8], DecodeError> {
        let end = self.at.checked_add(length).filter(|end| *end <= self.bytes.len());
        let end = end.ok_or_else(|| self.error(format!("{length} bytes past the end")))?;
        let taken = &self.bytes[self.at..end];
        self.at = end;
        Ok(taken)
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> Result<usize, DecodeError> {
        let bytes: [u8; 4] = self.take(4)?.try_into().map_err(|_| self.error("u32"))?;
        usize::try_from(u32::from_le_bytes(bytes)).map_err(|_| self.error("length overflow"))
    }

    fn u64(&mut self) -> Result<u64, DecodeError> {
        let bytes: [u8; 8] = self.take(8)?.try_into().map_err(|_| self.error("u64"))?;
        Ok(u64::from_le_bytes(bytes))
    }

    fn node(&mut self) -> Result<NodeId, DecodeError> {
        let id = self.u64()?;
        NodeId::new(id).ok_or_else(|| self.error("node id 0"))
    }

    /// A count of items of at least `item_bytes` each, checked against the bytes left.
    fn count(&mut self, item_bytes: usize) -> Result<usize, DecodeError> {
        let count = self.u32()?;
        let left = self.bytes.len() - self.at;
        if count.saturating_mul(item_bytes) > left {
            return Err(self.error(format!("{count} items do not fit in {left} bytes")));
        }
        Ok(count)
    }

    fn version(&mut self) -> Result<(), DecodeError> {
        match self.u8()? {
            FORMAT_VERSION => Ok(()),
            other => Err(self.error(format!("unknown format version {other}"))),
        }
    }

    fn membership(&mut self) -> Result<Membership, DecodeError> {
        let epoch = self.u64()?;
        let phase1 = self.u32()?;
        let phase2 = self.u32()?;
        let mut voters = BTreeSet::new();
        for _ in 0..self.count(8)? {
            voters.insert(self.node()?);
        }
        let mut learners = BTreeSet::new();
        for _ in 0..self.count(8)? {
            learners.insert(self.node()?);
        }
        Membership::flexible(epoch, voters, learners, phase1, phase2)
            .map_err(|error| self.error(error.to_string()))
    }

    fn finish(&self) -> Result<(), DecodeError> {
        if self.at == self.bytes.len() {
            Ok(())
        } else {
            Err(self.error(format!("{} trailing bytes", self.bytes.len() - self.at)))
        }
    }
}

/// The value `bytes` encode.
///
/// # Errors
/// A [`DecodeError`] for bytes [`encode_value`] did not write.
pub fn decode_value(bytes: &[u8]) -> Result<Value, DecodeError> {
    let mut reader = Reader::new(bytes);
    reader.version()?;
    let stamp_millis = reader.u64()?;
    let kind = match reader.u8()? {
        TAG_NOOP => ValueKind::Noop,
        TAG_BATCH => {
            let length = reader.u32()?;
            ValueKind::Batch(Arc::from(reader.take(length)?))
        }
        TAG_MEMBERSHIP => ValueKind::MembershipChange(reader.membership()?),
        TAG_CLAIM => {
            let node = reader.node()?;
            let ballot = Ballot { round: reader.u64()?, node: reader.u64()? };
            ValueKind::MasterClaim { node, ballot }
        }
        tag => return Err(reader.error(format!("unknown value tag {tag}"))),
    };
    reader.finish()?;
    Ok(Value { stamp_millis, kind })
}

fn read_meta(reader: &mut Reader<'_>) -> Result<SnapshotMeta, DecodeError> {
    reader.version()?;
    let slot = Slot(reader.u64()?);
    let stamp_millis = reader.u64()?;
    let mut configurations = Vec::new();
    for _ in 0..reader.count(8)? {
        let first = Slot(reader.u64()?);
        configurations.push((first, reader.membership()?));
    }
    if configurations.first().is_none_or(|(first, _)| *first > slot) {
        return Err(reader.error("no configuration governs the snapshot's slot"));
    }
    Ok(SnapshotMeta { slot, configurations, stamp_millis })
}

/// The snapshot meta `bytes` encode.
///
/// # Errors
/// A [`DecodeError`] for bytes [`encode_meta`] did not write.
pub fn decode_meta(bytes: &[u8]) -> Result<SnapshotMeta, DecodeError> {
    let mut reader = Reader::new(bytes);
    let meta = read_meta(&mut reader)?;
    reader.finish()?;
    Ok(meta)
}

/// The meta and the state machine's bytes of a snapshot file's payload.
///
/// # Errors
/// A [`DecodeError`] for bytes [`encode_snapshot`] did not write.
pub fn decode_snapshot(bytes: &[u8]) -> Result<(SnapshotMeta, &[u8]), DecodeError> {
    let mut reader = Reader::new(bytes);
    let length = reader.u32()?;
    let meta = decode_meta(reader.take(length)?)?;
    Ok((meta, &bytes[reader.at..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: u64) -> NodeId {
        NodeId::new(id).unwrap()
    }

    fn membership() -> Membership {
        let voters = [1, 2, 3, 4].into_iter().map(node).collect();
        Membership::flexible(7, voters, [node(9)].into_iter().collect(), 3, 2).unwrap()
    }

    fn values() -> Vec<Value> {
        let claim = ValueKind::MasterClaim { node: node(2), ballot: Ballot { round: 5, node: 2 } };
        [
            ValueKind::Noop,
            ValueKind::Batch(Arc::from(&b"set k v"[..])),
            ValueKind::Batch(Arc::from(&b""[..])),
            ValueKind::MembershipChange(membership()),
            claim,
        ]
        .into_iter()
        .enumerate()
        .map(|(stamp, kind)| Value { stamp_millis: stamp as u64 * 1000, kind })
        .collect()
    }

    #[test]
    fn values_and_metas_round_trip() {
        for value in values() {
            assert_eq!(decode_value(&encode_value(&value)).unwrap(), value);
        }
        let meta = SnapshotMeta {
            slot: Slot(40),
            configurations: vec![(Slot(3), membership()), (Slot(50), membership())],
            stamp_millis: 77,
        };
        assert_eq!(decode_meta(&encode_meta(&meta)).unwrap(), meta);
        let payload = encode_snapshot(&meta, b"state");
        let (decoded, state) = decode_snapshot(&payload).unwrap();
        assert_eq!((decoded, state), (meta, &b"state"[..]));
    }

    /// Every truncation and every single-byte change of an encoding decodes to an error or
    /// to some value, never a panic.
    #[test]
    fn bad_bytes_are_errors_not_panics() {
        for value in values() {
            let bytes = encode_value(&value);
            for end in 0..bytes.len() {
                assert!(decode_value(&bytes[..end]).is_err(), "{value:?} cut at {end}");
            }
            for at in 0..bytes.len() {
                for flip in [0x01, 0x80, 0xff] {
                    let mut bad = bytes.clone();
                    bad[at] ^= flip;
                    let _ = decode_value(&bad);
                    let _ = decode_meta(&bad);
                    let _ = decode_snapshot(&bad);
                }
            }
        }
        assert!(decode_value(&[]).is_err());
        assert!(decode_value(&[2, 0, 0, 0, 0, 0, 0, 0, 0, 0]).is_err(), "unknown version");
    }
}
