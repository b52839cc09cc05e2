//! Jepsen-style history checkers: the verdicts of Klein's verification harness (issue 7).
//!
//! Owns the history model ([`history`]: Jepsen's `:invoke`/`:ok`/`:fail`/`:info` ops and the
//! register, list-append, counter and set workloads), Jepsen's EDN form of histories
//! ([`edn`]), and the checkers: [`linearizability`] (Wing & Gong / Porcupine search, per key,
//! budgeted), [`list_append`] (Elle-style: version orders, dependency cycles, lost, duplicated
//! and garbage elements), [`counter`] (bounds on every read) and [`set`] (lost, stale and
//! unexpected elements). Design, references and limits: `docs/design/jepsen.md`.
//!
//! ```text
//!   recorder / EDN file --> History --> pairs --> workload decode --> checker --> report
//! ```
//!
//! Must never: do I/O other than reading and writing history files, or name any other layer
//! than `constants`: the checkers judge Klein from the outside, through what clients saw.

pub mod counter;
pub mod edn;
pub mod history;
pub mod linearizability;
pub mod list_append;
pub mod set;
