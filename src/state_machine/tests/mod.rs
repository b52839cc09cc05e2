//! Unit tests of the state machine: each command family against Redis 7's exact replies,
//! time through stamps, deduplication, snapshots, eviction, encoding and a no-panic run.

mod collections;
mod glob;
mod keys;
mod machine;
mod strings;
mod support;
mod watch;
mod zsets;
