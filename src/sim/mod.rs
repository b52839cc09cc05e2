//! The deterministic simulator (compiled for tests and with the `sim` feature).
//!
//! Runs N replicas x M groups in one thread from a seed: the production consensus core, log
//! logic and shard logic over a simulated disk, network and clocks, with faults, checkers and
//! replayable traces (`docs/design/simulation.md` once written).
//!
//! Must never: use the real runtime's executor, sockets, files or clocks; anything it cannot
//! reproduce from the seed is a bug.
//!
//! Built so far: [`linearizability`], the checker of client histories (per-key Wing & Gong
//! search with a memo and a budget of steps, and the models of Klein's commands). The cluster
//! itself arrives with the issue "Multi-Paxos core (sans-IO) and the deterministic cluster
//! simulator".

pub mod linearizability;
