//! Server-wide client counters for `INFO` (`connected_clients`, `total_connections_received`,
//! `total_commands_processed`): process-wide atomics, updated once per connection and once
//! per pass of a connection's loop (never per command), so the cores rarely touch the same
//! cache line.

use std::sync::atomic::{AtomicU64, Ordering};

static CONNECTIONS_RECEIVED: AtomicU64 = AtomicU64::new(0);
static CONNECTIONS_CLOSED: AtomicU64 = AtomicU64::new(0);
static COMMANDS_PROCESSED: AtomicU64 = AtomicU64::new(0);

/// A connection was accepted.
pub fn connection_opened() {
    CONNECTIONS_RECEIVED.fetch_add(1, Ordering::Relaxed);
}

/// A connection ended.
pub fn connection_closed() {
    CONNECTIONS_CLOSED.fetch_add(1, Ordering::Relaxed);
}

/// A pass of a connection's loop ran `count` requests.
pub fn commands_processed(count: usize) {
    if count > 0 {
        COMMANDS_PROCESSED.fetch_add(count as u64, Ordering::Relaxed);
    }
}

/// (connected clients, connections received, commands processed) so far.
#[must_use]
pub fn snapshot() -> (u64, u64, u64) {
    let received = CONNECTIONS_RECEIVED.load(Ordering::Relaxed);
    let closed = CONNECTIONS_CLOSED.load(Ordering::Relaxed);
    (received.saturating_sub(closed), received, COMMANDS_PROCESSED.load(Ordering::Relaxed))
}
