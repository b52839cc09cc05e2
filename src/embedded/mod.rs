//! The embedded API: `klein::Node` started in-process and a `Send + Sync` handle with get,
//! set, delete and compare-and-set (async and blocking), with a consistency choice per call.
//!
//! It is the one API: the RESP server is a client of it, so semantics live in one place.
//!
//! Must never: expose a glommio type, block a runtime core, or queue without a bound (a full
//! queue is an explicit overload error).
//!
//! Empty until the issue "Replicated node".
