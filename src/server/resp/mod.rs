//! The Redis serialization protocol (RESP2 and RESP3): request parsing and reply encoding.
//!
//! Self-contained on purpose (Dragonfly's `facade/` idea): no consensus, no runtime, no
//! sockets, no state. It parses untrusted bytes, so it must never panic on any input, never
//! index without a bound check it can prove, and never allocate by a length the client claims.

pub mod parser;
pub mod writer;

pub use parser::{Argument, Parsed, ProtocolError, parse_request};
pub use writer::{Protocol, ReplyWriter};
