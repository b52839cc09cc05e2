//! The node-to-node wire format: rkyv frames, read in place.
//!
//! Owns: the fixed frame header (magic, version, kind, length, CRC32C), the archived forms of
//! consensus messages, checked access (checksum first, then rkyv validation) and versioning
//! (`docs/design/wire.md` once written).
//!
//! Must never: use a received byte before its checksum and validation passed, deserialize a
//! frame into fresh allocations on the hot path, or depend on anything above `consensus`.
//!
//! Empty until the issue "Replicated node".
