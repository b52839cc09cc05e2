//! Klein: one replicated, durable log that gives services KV storage, a cache, distributed
//! locks, a service registry and a configuration center - as a standalone server that speaks
//! the Redis protocol, or as a library embedded in the host process, with one API.
//!
//! Start with `docs/ARCHITECTURE.md`. The crate is a stack of layers whose dependencies only
//! point down (checked by `tests/tidy.rs`):
//!
//! ```text
//!   server        Redis protocol front end            (client of embedded)
//!   embedded      the one API, in-process             (wraps runtime)
//!   runtime       thread-per-core glommio executors   (the only place that names glommio)
//!   wire          rkyv peer frames
//!   consensus     sans-IO Multi-Paxos, one group per replica object
//!   log           append-only segmented log (bytes, checksums, slots)
//!   state_machine the replicated data structures, deterministic
//!   config, constants, types   shared by all
//! ```
//! `loadgen` (the `klein-bench` load generator) is a client of the server over TCP and uses no
//! other layer.
//! `jepsen` (the Jepsen-style harness's history model, EDN form and checkers) judges Klein from
//! the outside, through what clients saw, and uses only `constants`.
//! `sim` (tests and the `sim` feature) drives consensus, log, state machine and the runtime's
//! shard logic in one deterministic thread.

pub mod admin;
pub mod config;
pub mod consensus;
pub mod constants;
pub mod embedded;
pub mod jepsen;
pub mod loadgen;
pub mod log;
pub mod runtime;
pub mod server;
#[cfg(any(test, feature = "sim"))]
pub mod sim;
pub mod state_machine;
pub mod types;
pub mod wire;

/// Klein's own version (the `version` Redis clients see is Redis-compatible; see
/// `server::commands::connection::REDIS_COMPATIBLE_VERSION`).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
