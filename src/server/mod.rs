//! The Redis-compatible front end: RESP2/RESP3 over TCP.
//!
//! Owns: the RESP codec (`resp/`, self-contained and fuzzed), per-connection sessions, the
//! command families (`commands/`) and the connection loop. It is a *client* of the layers
//! below: today the connection commands answer from the session alone; data commands will go
//! through the embedded API (`crate::embedded`), the one API shared with in-process users.
//!
//! Must never: name glommio (the runtime hands it plain byte streams), reach into consensus,
//! the log or the state machine directly, or buffer without a bound.

pub mod commands;
pub mod connection;
pub mod reply;
pub mod resp;
pub mod session;
pub mod transaction;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::config::Config;
use crate::embedded::{self, Handle, Limits};
use crate::runtime::{Connection, ConnectionHandler, RuntimeError};
use session::Session;

/// Runs a node serving the Redis protocol until SIGINT or SIGTERM.
///
/// # Errors
/// Anything that prevents the node from starting (see [`RuntimeError`]).
pub fn run(config: &Config) -> Result<(), RuntimeError> {
    embedded::serve(config, Limits::default(), &handler)
}

/// The RESP server over a node's handle (what [`run`] serves; also for in-process use with
/// `embedded::Node::start_with`).
#[must_use]
pub fn handler(handle: Handle) -> Arc<dyn ConnectionHandler> {
    Arc::new(RespHandler { handle })
}

/// Serves each accepted RESP connection with [`connection::serve`].
struct RespHandler {
    handle: Handle,
}

impl ConnectionHandler for RespHandler {
    fn serve(&self, connection: Connection, client_id: u64) -> Pin<Box<dyn Future<Output = ()>>> {
        // Each connection is its own client of the node (its own deduplication id).
        let session = Session::with_handle(client_id, self.handle.clone());
        Box::pin(async move {
            let peer = connection.peer_address();
            let closed = connection::serve(connection, session).await;
            tracing::debug!(client_id, ?peer, ?closed, "connection closed");
        })
    }
}
