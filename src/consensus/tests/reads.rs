//! Tests: reads.
