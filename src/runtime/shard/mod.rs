//! The shard: what one core does for the Paxos groups it hosts, minus the executor.
//!
//! Owns the adapters between the pure consensus core (`consensus::Replica`) and the core's
//! durable log (`log::log::Log`): [`storage::Storage`] turns a replica's persists and
//! snapshots into log records, superblock changes and snapshot files and reports when each is
//! durable, and recovers every group's durable state after a restart; [`codec`] is the byte
//! encoding of values and snapshot metadata it stores.
//!
//! Must never: name glommio, read a clock, draw randomness, or perform I/O other than through
//! the log's completion-driven requests. The simulator (`src/sim/`) runs this code over the
//! simulated disk; the real runtime (issue 5) will run it over the `io_uring` disk.

pub mod codec;
pub mod host;
pub mod storage;

#[cfg(test)]
mod host_tests;
#[cfg(test)]
mod tests;

pub use host::{
    Consistency, Fatal, Machine, Request, Shard, ShardError, ShardOptions, ShardStats, Token,
};
pub use storage::{RecoveredGroup, Storage, StorageError, StorageEvent};
