//! The replicated data: what applying a chosen command does.
//!
//! Owns: the KV map, cache accounting (memory bound, LRU), TTL deadlines, locks, registry and
//! configuration entries, client-session deduplication (client id, sequence) and snapshots of
//! all of it. Applying the same commands in the same order gives the same state and the same
//! replies on every replica and on every replay.
//!
//! Must never: read a clock (time is the master's timestamp carried in each batch), draw
//! randomness, perform I/O, iterate a hash map where order reaches a reply or a snapshot, or
//! depend on any layer but `types` and `constants`. `tests/tidy.rs` enforces this.
//!
//! Empty until the issue "Redis-compatible server for KV and cache".
