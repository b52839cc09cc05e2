//! The deterministic simulator (compiled for tests and with the `sim` feature).
//!
//! Runs N replicas x M groups in one thread from a seed: the production consensus core, log
//! logic and shard logic over a simulated disk, network and clocks, with faults, checkers and
//! replayable traces (`docs/design/simulation.md` once written).
//!
//! Must never: use the real runtime's executor, sockets, files or clocks; anything it cannot
//! reproduce from the seed is a bug.
//!
//! Built so far: `prng`, the seeded generator every random decision comes from, and
//! `network`, the simulated network with its faults (drop, delay, reorder, duplicate,
//! partitions of every shape, slow and paused nodes), swarm configurations and a nemesis that
//! schedules partitions. The cluster, clocks, the disk wiring and the checkers arrive with the
//! issue "Multi-Paxos core (sans-IO) and the deterministic cluster simulator".

pub mod network;
pub mod prng;
