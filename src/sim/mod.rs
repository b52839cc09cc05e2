//! The deterministic simulator (compiled for tests and with the `sim` feature).
//!
//! Runs N replicas x M groups in one thread from a seed: the production consensus core, log
//! logic and shard logic over a simulated disk, network and clocks, with faults, checkers and
//! replayable traces (`docs/design/simulation.md`).
//!
//! Must never: use the real runtime's executor, sockets, files or clocks; anything it cannot
//! reproduce from the seed is a bug.
//!
//! Built so far: `prng`, the seeded generator every random decision comes from;
//! `network`, the simulated network with its faults (drop, delay, reorder, duplicate,
//! partitions of every shape, slow and paused nodes), swarm configurations and a nemesis that
//! schedules partitions; and [`linearizability`], the checker of client histories (per-key
//! Wing & Gong search with a memo and a budget of steps, and the models of Klein's commands).
//! [`cluster`] is the cluster simulator (`klein-sim`): production replicas of several groups
//! per node persisting through the shard's `Storage` over the production log on a `SimDisk`,
//! clients (writes through the log, reads through the master's read paths), drifting clocks,
//! crashes with power loss, pauses, disk faults, snapshots, leader-transfer storms and
//! membership changes, with checkers after every event and at the end, and planted bugs.

pub mod cluster;
pub mod linearizability;
pub mod network;
pub mod prng;
