//! Every limit of the state machine, named, with compile-time relations.
//!
//! Kept here rather than in `crate::constants` because nothing outside the state machine reads
//! them; the limits the runtime must know (`RESP_BULK_SIZE_BYTES_MAX`) stay in `constants`.
//! This module must never depend on anything but `crate::constants`.

/// Largest string value a command may build (`SETRANGE`, `APPEND`), in bytes: Redis's
/// `proto-max-bulk-len` default, with its error text.
pub const STRING_SIZE_BYTES_MAX: u64 = 512 * 1024 * 1024;

/// Bytes accounted for every key on top of its key and value bytes: the map node, the entry's
/// metadata and the allocator's rounding (Redis's `dictEntry` + `robj` is about 56 bytes).
pub const KEY_OVERHEAD_BYTES: u64 = 64;

/// Bytes accounted for a key with a deadline on top of [`KEY_OVERHEAD_BYTES`]: its node in the
/// deadline index, which also holds a copy of the key (added separately).
pub const DEADLINE_OVERHEAD_BYTES: u64 = 32;

/// Bytes accounted for every element of a hash, list, set or sorted set on top of its bytes.
pub const ELEMENT_OVERHEAD_BYTES: u64 = 16;

/// Most client sessions the deduplication table remembers; beyond it the session used least
/// recently (by master stamp, then client id) is forgotten.
pub const SESSIONS_COUNT_MAX: usize = 16 * 1024;

/// Most replies one session retains (its newest sequence numbers): the most requests one
/// client may have outstanding and still be retried exactly once.
pub const SESSION_REPLIES_COUNT_MAX: usize = 256;

/// Most bytes of encoded replies one session retains; the oldest are dropped beyond it.
pub const SESSION_REPLY_BYTES_MAX: usize = 16 * 1024;

/// Largest single reply retained for a retry, in encoded bytes; a larger reply is replaced by
/// an error telling the retrying client its reply was not retained.
pub const RETAINED_REPLY_BYTES_MAX: usize = 4 * 1024;

/// Keys `housekeeping` samples per eviction victim (Redis: `maxmemory-samples`, 5).
pub const EVICTION_SAMPLES_COUNT: usize = 8;

/// Most keys `housekeeping` walks to find the samples of one victim (volatile policies skip
/// keys without a deadline), so one call is bounded even when few keys qualify.
pub const EVICTION_WALK_STEPS_MAX: usize = 256;

/// Under an evicting policy, writes are still accepted up to this many percent over
/// `maxmemory` (victims are replicated deletes, so they trail the writes by a few slots); past
/// it writes get the OOM error, as under `noeviction`.
pub const EVICTION_OVERSHOOT_PERCENT: u64 = 10;

/// Milliseconds per step of the LFU counter's decay (Redis: `lfu-decay-time`, one minute).
pub const LFU_DECAY_MILLIS: u64 = 60_000;

/// The LFU counter a new key starts with (Redis: `LFU_INIT_VAL`).
pub const LFU_INITIAL_COUNT: u8 = 5;

/// Most elements a hash or set keeps in strict insertion order on removal (Redis's listpack
/// encoding, `hash-max-listpack-entries`); larger ones fill the gap with their last element.
pub const ORDERED_REMOVAL_ELEMENTS_MAX: usize = 128;

/// Most keys one `SCAN` call returns beyond `COUNT` (to finish the keys sharing its last hash)
/// and the largest `COUNT` honoured.
pub const SCAN_COUNT_MAX: u64 = 64 * 1024;

/// Most keys `RANDOMKEY` walks past (expired ones) before it answers null.
pub const RANDOM_KEY_WALK_STEPS_MAX: usize = 1024;

/// Most members one `SRANDMEMBER key count` returns (a negative count repeats members, so
/// without a bound one request could build an unbounded reply).
pub const RANDOM_MEMBERS_COUNT_MAX: u64 = 1 << 20;

const _: () = assert!(RETAINED_REPLY_BYTES_MAX <= SESSION_REPLY_BYTES_MAX);
const _: () = assert!(EVICTION_SAMPLES_COUNT <= EVICTION_WALK_STEPS_MAX);
const _: () = assert!(SESSION_REPLIES_COUNT_MAX >= 1);
const _: () = assert!(STRING_SIZE_BYTES_MAX >= crate::constants::RESP_BULK_SIZE_BYTES_MAX as u64);
