//! The replicated data: what applying a chosen command does.
//!
//! Owns: the keyspace (strings, hashes, lists, sets, sorted sets), TTL deadlines, memory
//! accounting and eviction choices, client-session deduplication (client id, sequence),
//! parsing of Redis argv into typed commands, their log encoding, and snapshots of all of it.
//! Applying the same batches in the same order at the same master stamps gives the same
//! state and the same replies on every replica and on every replay. Design:
//! `docs/design/state-machine.md`.
//!
//! Must never: read a clock (time is the master's timestamp carried in each batch, or the
//! caller's `now` on the read path), draw randomness, perform I/O, iterate a hash map where
//! order reaches a reply or a snapshot, or depend on any layer but `types` and `constants`.
//! `tests/tidy.rs` enforces this.
//!
//! Files: `parse/` (argv to [`Command`]), `command.rs` and `info.rs` (the commands, their
//! encoding, access and keys), `codec.rs` (bytes, batches), `apply/` (running commands),
//! `keyspace.rs` and `value.rs` (the data), `sessions.rs` (dedup), `machine.rs`
//! ([`StateMachine`]), `housekeeping.rs` (expiry and eviction proposals), `introspect.rs`
//! (`OBJECT`, `MEMORY USAGE`), `snapshot.rs`, `glob.rs` (`KEYS`/`SCAN` patterns), `hash.rs`
//! (fixed hashes), `limits.rs`, `reply.rs`.

mod apply;
mod codec;
mod command;
pub mod glob;
pub mod hash;
mod housekeeping;
mod info;
mod introspect;
mod keyspace;
pub mod limits;
mod machine;
mod parse;
pub mod reply;
mod sessions;
mod snapshot;
mod value;

#[cfg(test)]
mod tests;

pub use codec::{
    BATCH_FORMAT_VERSION, BatchBuilder, BatchEntry, COMMAND_FORMAT_VERSION, DecodeError,
    decode_batch, decode_replies, encode_replies,
};
pub use command::{
    Access, Command, Condition, ExpireCondition, ExpireKind, ScoreBound, SetOperation, SetOrigin,
    Ttl, ZAddFlags, ZRangeBy,
};
pub use machine::{EvictionPolicy, Limits, StateMachine};
pub use parse::{parse, parse_f64, parse_i64, unknown_command, unknown_command_text};
pub use reply::Reply;
pub use snapshot::SNAPSHOT_FORMAT_VERSION;
