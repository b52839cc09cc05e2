//! Snapshots: the whole replicated state as deterministic, checksummed bytes, and back.
//!
//! Format (version [`SNAPSHOT_FORMAT_VERSION`]): magic `KLSM`, version `u8`, the sessions
//! (client order), the write count `u64`, the key count `u64`, then per key in keyspace order
//! (stable hash, then bytes): key, deadline (`Option<u64>`), modification version `u64`, a
//! type tag and the value (hash and set in their iteration order, list head to tail, sorted
//! set by score), and last a CRC32C of all that.
//!
//! Version 1 (before `WATCH`) had neither the write count nor the key versions; it still
//! restores, as write count 1 with every key at version 1 (present keys must have a nonzero
//! version: 0 means "absent" to `WATCH`).
//!
//! What is deliberately not in a snapshot: the limits (configuration, passed to `restore`)
//! and the access metadata (LRU clock, LFU counter), which reads update differently on each
//! replica; a restored key starts as accessed at its restore (clock 0, initial LFU count).
//! Equal replicated states therefore give equal bytes and equal digests.

use std::hash::Hasher;

use super::codec::{DecodeError, Field, Reader, put_bytes, put_length, put_u32, put_u64};
use super::hash::FixedHasher;
use super::keyspace::Keyspace;
use super::machine::{Limits, StateMachine};
use super::sessions::Sessions;
use super::value::{HashValue, ListValue, SetValue, Value, ZSetValue};

/// The snapshot format version this build writes and reads.
pub const SNAPSHOT_FORMAT_VERSION: u8 = 2;

/// The format before key versions, still restored.
const SNAPSHOT_FORMAT_VERSION_UNVERSIONED_KEYS: u8 = 1;

const MAGIC: &[u8; 4] = b"KLSM";

impl StateMachine {
    /// The replicated state as bytes: equal states give equal bytes.
    #[must_use]
    pub fn snapshot(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64 + usize::try_from(self.used_memory()).unwrap_or(0));
        out.extend_from_slice(MAGIC);
        out.push(SNAPSHOT_FORMAT_VERSION);
        self.sessions.encode(&mut out);
        put_u64(&mut out, self.writes);
        put_u64(&mut out, self.keyspace.len() as u64);
        for (key, entry) in self.keyspace.iter() {
            put_bytes(&mut out, key.bytes());
            entry.deadline().put(&mut out);
            put_u64(&mut out, entry.version());
            encode_value(&entry.value, &mut out);
        }
        let checksum = crc32c::crc32c(&out);
        put_u32(&mut out, checksum);
        out
    }

    /// The state machine a [`StateMachine::snapshot`] describes, with `limits`.
    ///
    /// # Errors
    /// [`DecodeError::Checksum`] on corrupt bytes; other variants on a foreign format.
    pub fn restore(bytes: &[u8], limits: Limits) -> Result<StateMachine, DecodeError> {
        let Some(body_length) = bytes.len().checked_sub(4) else {
            return Err(DecodeError::Truncated);
        };
        let (body, checksum) = bytes.split_at(body_length);
        let mut word = [0; 4];
        word.copy_from_slice(checksum);
        if crc32c::crc32c(body) != u32::from_le_bytes(word) {
            return Err(DecodeError::Checksum);
        }
        let mut reader = Reader::new(body);
        if reader.take(4)? != MAGIC {
            return Err(DecodeError::Malformed("snapshot magic"));
        }
        let format = reader.u8()?;
        let versioned = match format {
            SNAPSHOT_FORMAT_VERSION => true,
            SNAPSHOT_FORMAT_VERSION_UNVERSIONED_KEYS => false,
            other => return Err(DecodeError::UnknownVersion(other)),
        };
        let sessions = Sessions::decode(&mut reader)?;
        let writes = if versioned { reader.u64()? } else { 1 };
        let mut keyspace = Keyspace::default();
        let count = reader.u64()?;
        for _ in 0..count {
            let key = reader.bytes()?;
            let deadline = Option::<u64>::get(&mut reader)?;
            let version = if versioned { reader.u64()? } else { 1 };
            if version > writes {
                return Err(DecodeError::Malformed("key version"));
            }
            let value = decode_value(&mut reader)?;
            if value.is_empty_collection() || keyspace.get(key, 0).is_some() {
                return Err(DecodeError::Malformed("empty collection or duplicate key"));
            }
            keyspace.insert(key, value, deadline, 0);
            keyspace.set_version(key, version);
        }
        if reader.remaining() != 0 {
            return Err(DecodeError::Malformed("bytes after the last key"));
        }
        Ok(StateMachine { keyspace, sessions, limits, writes })
    }

    /// A 64-bit digest of the replicated state (the snapshot's bytes): equal states give
    /// equal digests on every replica.
    #[must_use]
    pub fn digest(&self) -> u64 {
        let mut hasher = FixedHasher::default();
        hasher.write(&self.snapshot());
        hasher.finish()
    }
}

fn encode_value(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::String(bytes) => {
            out.push(0);
            put_bytes(out, bytes);
        }
        Value::Hash(hash) => {
            out.push(1);
            put_length(out, hash.len());
            for (field, value) in hash.iter() {
                put_bytes(out, field);
                put_bytes(out, value);
            }
        }
        Value::List(list) => {
            out.push(2);
            put_length(out, list.len());
            for item in list.iter() {
                put_bytes(out, item);
            }
        }
        Value::Set(set) => {
            out.push(3);
            put_length(out, set.len());
            for member in set.iter() {
                put_bytes(out, member);
            }
        }
        Value::ZSet(zset) => {
            out.push(4);
            put_length(out, zset.len());
            for (member, score) in zset.iter() {
                put_bytes(out, member);
                score.put(out);
            }
        }
    }
}

fn decode_value(reader: &mut Reader<'_>) -> Result<Value, DecodeError> {
    Ok(match reader.u8()? {
        0 => Value::String(reader.bytes()?.to_vec()),
        1 => {
            let mut hash = HashValue::default();
            for _ in 0..reader.count()? {
                let field = reader.bytes()?;
                hash.insert(field, reader.bytes()?.to_vec());
            }
            Value::Hash(Box::new(hash))
        }
        2 => {
            let mut list = ListValue::default();
            for _ in 0..reader.count()? {
                list.push(reader.bytes()?.to_vec(), false);
            }
            Value::List(Box::new(list))
        }
        3 => {
            let mut set = SetValue::default();
            for _ in 0..reader.count()? {
                set.insert(reader.bytes()?);
            }
            Value::Set(Box::new(set))
        }
        4 => {
            let mut zset = ZSetValue::default();
            for _ in 0..reader.count()? {
                let member = reader.bytes()?;
                let score = f64::get(reader)?;
                if score.is_nan() {
                    return Err(DecodeError::Malformed("NaN score"));
                }
                zset.insert(member, score);
            }
            Value::ZSet(Box::new(zset))
        }
        tag => return Err(DecodeError::UnknownTag(tag)),
    })
}
