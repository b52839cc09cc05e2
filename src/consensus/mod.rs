//! Multi-Paxos for one group, sans I/O.
//!
//! Owns: ballots, the acceptor's promised ballot and accepted slots, the master's phase 1
//! (Prepare/Promise, once per master) and phase 2 pipeline (Accept/Accepted for up to W slots),
//! the chosen/committed/applied frontiers, catch-up, membership and the master lease. Inputs go
//! in (`on_message`, `on_tick`, `on_persisted`, `propose`), effects come out (Send, Persist,
//! Apply, Reply); an effect that depends on durability can only be emitted after its persist
//! completes. The protocol is written down in `docs/design/protocol.md`.
//!
//! Must never: perform I/O, read a clock (time arrives as ticks and master-stamped batch
//! times), draw randomness it was not given, iterate a hash map where order matters, or depend
//! on any layer but `types` and `constants`. `tests/tidy.rs` enforces this.
//!
//! Built so far:
//! - `quorum`: majority, flexible and joint quorums, with the intersection property checked
//!   exhaustively.
//! - `value`: what a slot holds (no-op, opaque batch, membership change, master claim), each
//!   stamped with the master's time; `Membership` (voters, learners, phase sizes).
//! - `message`: the messages; `Promise` and `Accepted` only from a persist's proof.
//! - `durable`: the durability rule as a type (`Persisted`, created only by completing a
//!   persist the replica started), the records it persists, the state it restarts from.
//! - `replica`: `Replica`, its inputs, effects and invariants; acceptor, learner, catch-up,
//!   snapshots. `master`: phase 1, the pipelined phase 2, leases, check-quorum, reads
//!   (lease and read-index), leader transfer, membership changes.
//! - `jitter`: the seeded election timeout jitter.
//! - `plant`: bugs the simulator plants on purpose (tests and the `sim` feature only).
//!
//! Tests: `tests/` here, one file per protocol rule, each feeding inputs and asserting exact
//! effects, plus a small deterministic cluster driver. The full simulator (`klein-sim`, faults,
//! checkers) is the other half of the issue.

pub mod durable;
mod jitter;
mod master;
pub mod message;
pub mod plant;
pub mod quorum;
pub mod replica;
pub mod value;

#[cfg(test)]
mod tests;

pub use durable::{DurableState, PersistId, Persisted, Record, SnapshotMeta};
pub use message::{Accepted, Message, Promise, PromiseEntry};
pub use plant::Plant;
pub use replica::{Effect, Options, ProposeError, ReadId, ReadPath, Replica, Role};
pub use value::{Membership, Value, ValueKind};
