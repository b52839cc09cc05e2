//! Byte encoding of commands, batches, replies and snapshots: little-endian integers,
//! `u32`-length-prefixed byte strings, one tag byte per enum.
//!
//! Owns the [`Field`] trait every encoded type implements, the [`Reader`] that decodes
//! untrusted bytes, and the batch format one Paxos slot carries ([`BatchBuilder`],
//! [`decode_batch`]). Must never: panic on any input, or allocate by a length the input claims
//! before checking that many bytes are present.

use super::command::Command;
use super::reply::Reply;

/// The first byte of every encoded command: its format version.
pub const COMMAND_FORMAT_VERSION: u8 = 1;

/// The first byte of every batch: its format version.
pub const BATCH_FORMAT_VERSION: u8 = 1;

/// Bytes of a batch's header: version and entry count.
const BATCH_HEADER_BYTES: usize = 5;

/// Why bytes did not decode. Every variant means the bytes were not written by this format
/// (corruption or a newer version), never a bad client request.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The bytes end before the value does.
    #[error("truncated input")]
    Truncated,
    /// A format version this build does not know.
    #[error("unknown format version {0}")]
    UnknownVersion(u8),
    /// An enum tag this build does not know.
    #[error("unknown tag {0}")]
    UnknownTag(u8),
    /// The checksum does not match the bytes.
    #[error("checksum mismatch")]
    Checksum,
    /// Bytes left over after the value, or a value that breaks an invariant.
    #[error("malformed input: {0}")]
    Malformed(&'static str),
}

/// Reads values from untrusted bytes.
#[derive(Debug)]
pub struct Reader<'a> {
    bytes: &'a [u8],
    position: usize,
}

impl<'a> Reader<'a> {
    /// A reader at the start of `bytes`.
    #[must_use]
    pub fn new(bytes: &'a [u8]) -> Reader<'a> {
        Reader { bytes, position: 0 }
    }

    /// Bytes read so far.
    #[must_use]
    pub fn position(&self) -> usize {
        self.position
    }

    /// Bytes not read yet.
    #[must_use]
    pub fn remaining(&self) -> usize {
        self.bytes.len() - self.position
    }

    /// The next `count` bytes.
    ///
    /// # Errors
    /// [`DecodeError::Truncated`] when fewer remain.
    pub fn take(&mut self, count: usize) -> Result<&'a [u8], DecodeError> {
        if count > self.remaining() {
            return Err(DecodeError::Truncated);
        }
        let slice = &self.bytes[self.position..self.position + count];
        self.position += count;
        Ok(slice)
    }

    /// The next byte, without reading it.
    ///
    /// # Errors
    /// [`DecodeError::Truncated`].
    pub fn peek(&self) -> Result<u8, DecodeError> {
        self.bytes.get(self.position).copied().ok_or(DecodeError::Truncated)
    }

    /// One byte.
    ///
    /// # Errors
    /// [`DecodeError::Truncated`].
    pub fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }

    /// A little-endian `u32`.
    ///
    /// # Errors
    /// [`DecodeError::Truncated`].
    pub fn u32(&mut self) -> Result<u32, DecodeError> {
        let mut word = [0; 4];
        word.copy_from_slice(self.take(4)?);
        Ok(u32::from_le_bytes(word))
    }

    /// A little-endian `u64`.
    ///
    /// # Errors
    /// [`DecodeError::Truncated`].
    pub fn u64(&mut self) -> Result<u64, DecodeError> {
        let mut word = [0; 8];
        word.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(word))
    }

    /// A count of elements that each take at least one byte: refused when more are claimed
    /// than bytes remain, so no allocation follows an impossible claim.
    ///
    /// # Errors
    /// [`DecodeError::Truncated`].
    pub fn count(&mut self) -> Result<usize, DecodeError> {
        let count = self.u32()? as usize;
        if count > self.remaining() {
            return Err(DecodeError::Truncated);
        }
        Ok(count)
    }

    /// A `u32`-length-prefixed byte string.
    ///
    /// # Errors
    /// [`DecodeError::Truncated`].
    pub fn bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        let length = self.u32()? as usize;
        self.take(length)
    }
}

/// Appends a little-endian `u32`.
pub fn put_u32(out: &mut Vec<u8>, value: u32) {
    out.extend_from_slice(&value.to_le_bytes());
}

/// Appends a little-endian `u64`.
pub fn put_u64(out: &mut Vec<u8>, value: u64) {
    out.extend_from_slice(&value.to_le_bytes());
}

/// Appends a length or count as a `u32`. Lengths are bounded far below 4 GiB by the request
/// limits (`constants::RESP_BULK_SIZE_BYTES_MAX`) and `limits::STRING_SIZE_BYTES_MAX`.
pub fn put_length(out: &mut Vec<u8>, length: usize) {
    let length = u32::try_from(length).expect("lengths are bounded below 4 GiB");
    put_u32(out, length);
}

/// Appends a `u32`-length-prefixed byte string.
pub fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    put_length(out, bytes.len());
    out.extend_from_slice(bytes);
}

/// A value with a byte encoding.
pub trait Field: Sized {
    /// Appends the encoding of `self`.
    fn put(&self, out: &mut Vec<u8>);
    /// Decodes one value.
    ///
    /// # Errors
    /// Any [`DecodeError`] of malformed bytes.
    fn get(reader: &mut Reader<'_>) -> Result<Self, DecodeError>;
}

impl Field for bool {
    fn put(&self, out: &mut Vec<u8>) {
        out.push(u8::from(*self));
    }
    fn get(reader: &mut Reader<'_>) -> Result<bool, DecodeError> {
        match reader.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(DecodeError::Malformed("bool")),
        }
    }
}

impl Field for u64 {
    fn put(&self, out: &mut Vec<u8>) {
        put_u64(out, *self);
    }
    fn get(reader: &mut Reader<'_>) -> Result<u64, DecodeError> {
        reader.u64()
    }
}

impl Field for i64 {
    fn put(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes());
    }
    fn get(reader: &mut Reader<'_>) -> Result<i64, DecodeError> {
        Ok(reader.u64()?.cast_signed())
    }
}

impl Field for f64 {
    fn put(&self, out: &mut Vec<u8>) {
        put_u64(out, self.to_bits());
    }
    fn get(reader: &mut Reader<'_>) -> Result<f64, DecodeError> {
        Ok(f64::from_bits(reader.u64()?))
    }
}

impl Field for Vec<u8> {
    fn put(&self, out: &mut Vec<u8>) {
        put_bytes(out, self);
    }
    fn get(reader: &mut Reader<'_>) -> Result<Vec<u8>, DecodeError> {
        Ok(reader.bytes()?.to_vec())
    }
}

impl<T: Field> Field for Option<T> {
    fn put(&self, out: &mut Vec<u8>) {
        match self {
            None => out.push(0),
            Some(value) => {
                out.push(1);
                value.put(out);
            }
        }
    }
    fn get(reader: &mut Reader<'_>) -> Result<Option<T>, DecodeError> {
        match reader.u8()? {
            0 => Ok(None),
            1 => Ok(Some(T::get(reader)?)),
            tag => Err(DecodeError::UnknownTag(tag)),
        }
    }
}

impl<A: Field, B: Field> Field for (A, B) {
    fn put(&self, out: &mut Vec<u8>) {
        self.0.put(out);
        self.1.put(out);
    }
    fn get(reader: &mut Reader<'_>) -> Result<(A, B), DecodeError> {
        Ok((A::get(reader)?, B::get(reader)?))
    }
}

/// `Field` for vectors of an element type (not `u8`: byte strings have their own encoding).
macro_rules! vector_field {
    ($($element:ty),* $(,)?) => {$(
        impl Field for Vec<$element> {
            fn put(&self, out: &mut Vec<u8>) {
                put_length(out, self.len());
                for element in self {
                    element.put(out);
                }
            }
            fn get(reader: &mut Reader<'_>) -> Result<Vec<$element>, DecodeError> {
                let count = reader.count()?;
                let mut elements = Vec::new();
                for _ in 0..count {
                    elements.push(<$element>::get(reader)?);
                }
                Ok(elements)
            }
        }
    )*};
}

vector_field!(Vec<u8>, (Vec<u8>, Vec<u8>), (f64, Vec<u8>), (Vec<u8>, f64), Command, Reply);
vector_field!((Reply, Reply), (Vec<u8>, u64));

impl Field for Reply {
    fn put(&self, out: &mut Vec<u8>) {
        match self {
            Reply::Ok => out.push(0),
            Reply::Simple(text) => {
                out.push(1);
                put_bytes(out, text.as_bytes());
            }
            Reply::Error(text) => {
                out.push(2);
                put_bytes(out, text.as_bytes());
            }
            Reply::Integer(value) => {
                out.push(3);
                value.put(out);
            }
            Reply::Bulk(bytes) => {
                out.push(4);
                bytes.put(out);
            }
            Reply::Null => out.push(5),
            Reply::NullArray => out.push(6),
            Reply::Array(items) => {
                out.push(7);
                items.put(out);
            }
            Reply::Map(pairs) => {
                out.push(8);
                pairs.put(out);
            }
            Reply::Set(items) => {
                out.push(9);
                items.put(out);
            }
            Reply::Double(value) => {
                out.push(10);
                value.put(out);
            }
            Reply::Boolean(value) => {
                out.push(11);
                value.put(out);
            }
            Reply::ScoredMembers(pairs) => {
                out.push(12);
                pairs.put(out);
            }
        }
    }

    fn get(reader: &mut Reader<'_>) -> Result<Reply, DecodeError> {
        let text = |reader: &mut Reader<'_>| {
            String::from_utf8(reader.bytes()?.to_vec()).map_err(|_| DecodeError::Malformed("text"))
        };
        Ok(match reader.u8()? {
            0 => Reply::Ok,
            1 => Reply::Simple(text(reader)?),
            2 => Reply::Error(text(reader)?),
            3 => Reply::Integer(i64::get(reader)?),
            4 => Reply::Bulk(Vec::get(reader)?),
            5 => Reply::Null,
            6 => Reply::NullArray,
            7 => Reply::Array(Vec::get(reader)?),
            8 => Reply::Map(Vec::get(reader)?),
            9 => Reply::Set(Vec::get(reader)?),
            10 => Reply::Double(f64::get(reader)?),
            11 => Reply::Boolean(bool::get(reader)?),
            12 => Reply::ScoredMembers(Vec::get(reader)?),
            tag => return Err(DecodeError::UnknownTag(tag)),
        })
    }
}

/// Builds the bytes of one batch: the commands one Paxos slot carries, each with the client
/// id and sequence number that make its retries exactly-once (sequence 0: no deduplication).
///
/// Format: version `u8`, entry count `u32`, then per entry client `u64`, sequence `u64`, and
/// the command's encoding prefixed by its length `u32`.
#[derive(Debug)]
pub struct BatchBuilder {
    bytes: Vec<u8>,
    count: u32,
}

impl Default for BatchBuilder {
    fn default() -> BatchBuilder {
        BatchBuilder::new()
    }
}

impl BatchBuilder {
    /// An empty batch.
    #[must_use]
    pub fn new() -> BatchBuilder {
        let mut bytes = Vec::with_capacity(256);
        bytes.push(BATCH_FORMAT_VERSION);
        put_u32(&mut bytes, 0);
        BatchBuilder { bytes, count: 0 }
    }

    /// Appends one entry.
    ///
    /// # Panics
    /// If the command's encoding reaches 4 GiB (requests are bounded far below).
    pub fn push(&mut self, client: u64, sequence: u64, command: &Command) {
        put_u64(&mut self.bytes, client);
        put_u64(&mut self.bytes, sequence);
        let at = self.bytes.len();
        put_u32(&mut self.bytes, 0);
        command.encode(&mut self.bytes);
        let length = self.bytes.len() - at - 4;
        let length = u32::try_from(length).expect("a command is bounded below 4 GiB");
        self.bytes[at..at + 4].copy_from_slice(&length.to_le_bytes());
        self.count += 1;
    }

    /// Entries pushed so far.
    #[must_use]
    pub fn len(&self) -> usize {
        self.count as usize
    }

    /// Whether no entry was pushed.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Bytes of the batch so far (what `finish` returns).
    #[must_use]
    pub fn byte_len(&self) -> usize {
        self.bytes.len()
    }

    /// The batch's bytes.
    #[must_use]
    pub fn finish(mut self) -> Vec<u8> {
        self.bytes[1..BATCH_HEADER_BYTES].copy_from_slice(&self.count.to_le_bytes());
        self.bytes
    }
}

/// One decoded entry of a batch.
#[derive(Clone, Debug, PartialEq)]
pub struct BatchEntry {
    /// The client session that sent the command.
    pub client: u64,
    /// The client's sequence number for it; 0 means "not deduplicated".
    pub sequence: u64,
    /// The command.
    pub command: Command,
}

/// Decodes a whole batch: all of it or nothing, so a corrupt batch applies no entry.
///
/// # Errors
/// Any [`DecodeError`]: a version this build does not know, truncation, unknown tags, or
/// bytes left over.
pub fn decode_batch(bytes: &[u8]) -> Result<Vec<BatchEntry>, DecodeError> {
    let mut reader = Reader::new(bytes);
    let version = reader.u8()?;
    if version != BATCH_FORMAT_VERSION {
        return Err(DecodeError::UnknownVersion(version));
    }
    let count = reader.count()?;
    let mut entries = Vec::new();
    for _ in 0..count {
        let client = reader.u64()?;
        let sequence = reader.u64()?;
        let encoded = reader.bytes()?;
        let (command, used) = Command::decode(encoded)?;
        if used != encoded.len() {
            return Err(DecodeError::Malformed("bytes after a command"));
        }
        entries.push(BatchEntry { client, sequence, command });
    }
    if reader.remaining() != 0 {
        return Err(DecodeError::Malformed("bytes after the last entry"));
    }
    Ok(entries)
}

/// Encodes replies as one list (forwarded requests' answers between nodes).
#[must_use]
pub fn encode_replies(replies: &[Reply]) -> Vec<u8> {
    let mut out = Vec::new();
    put_length(&mut out, replies.len());
    for reply in replies {
        reply.put(&mut out);
    }
    out
}

/// Decodes what [`encode_replies`] made.
///
/// # Errors
/// Malformed bytes, or bytes after the last reply.
pub fn decode_replies(bytes: &[u8]) -> Result<Vec<Reply>, DecodeError> {
    let mut reader = Reader::new(bytes);
    let replies = Vec::<Reply>::get(&mut reader)?;
    if reader.remaining() != 0 {
        return Err(DecodeError::Malformed("bytes after the last reply"));
    }
    Ok(replies)
}
