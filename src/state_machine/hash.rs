//! Fixed hash functions: the key order of the keyspace, the hasher of every collection, and
//! the deterministic "random" choices (`SPOP`, `RANDOMKEY`, eviction samples).
//!
//! These functions are part of the replicated contract: `SCAN` cursors and `SPOP` choices
//! depend on them, so they must never change for a given format version, and they take no
//! seed. Must never: use `std`'s `RandomState` or any per-process seed.
//!
//! A fixed hash can be attacked with chosen collisions; the keyspace tolerates them (it is a
//! B-tree ordered by hash then key bytes, so collisions cost comparisons, not chains), and the
//! collections use a 64-bit mixer over every byte, so collisions must be searched for offline.

use std::hash::{BuildHasherDefault, Hasher};

/// FNV-1a offset basis.
const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
/// FNV-1a prime.
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// The finalizer of `SplitMix64`: spreads every input bit over every output bit.
#[must_use]
pub fn mix64(mut value: u64) -> u64 {
    value = value.wrapping_add(0x9e37_79b9_7f4a_7c15);
    value = (value ^ (value >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    value = (value ^ (value >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    value ^ (value >> 31)
}

/// The stable 64-bit hash of a key: the keyspace's order and `SCAN`'s cursor space.
#[must_use]
pub fn key_hash(bytes: &[u8]) -> u64 {
    let mut hasher = FixedHasher::default();
    hasher.write(bytes);
    hasher.finish()
}

/// A seedless hasher: FNV-1a over eight bytes at a time, finished by [`mix64`].
#[derive(Clone, Copy, Debug)]
pub struct FixedHasher {
    state: u64,
}

impl Default for FixedHasher {
    fn default() -> FixedHasher {
        FixedHasher { state: FNV_OFFSET }
    }
}

impl Hasher for FixedHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0; 8];
            word.copy_from_slice(chunk);
            self.state = (self.state ^ u64::from_le_bytes(word)).wrapping_mul(FNV_PRIME);
            self.state ^= self.state >> 29;
        }
        for &byte in chunks.remainder() {
            self.state = (self.state ^ u64::from(byte)).wrapping_mul(FNV_PRIME);
        }
        // The length, so that "a" and "a\0" differ after padding-free chunking.
        self.state = (self.state ^ bytes.len() as u64).wrapping_mul(FNV_PRIME);
    }

    fn finish(&self) -> u64 {
        mix64(self.state)
    }
}

/// The hasher builder of every collection in the state machine.
pub type FixedState = BuildHasherDefault<FixedHasher>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_hash_is_stable_across_builds() {
        // Part of the replicated contract: a change here changes SCAN cursors and SPOP.
        assert_eq!(key_hash(b""), key_hash(b""));
        assert_ne!(key_hash(b"a"), key_hash(b"a\0"));
        assert_ne!(key_hash(b"key:1"), key_hash(b"key:2"));
        assert_eq!(key_hash(b"klein"), 13_751_174_310_080_470_754);
    }
}
