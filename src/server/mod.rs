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
pub mod resp;
pub mod session;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::config::Config;
use crate::runtime::{self, Connection, ConnectionHandler, RuntimeError};
use session::Session;

/// Runs a node serving the Redis protocol until SIGINT or SIGTERM.
///
/// # Errors
/// Anything that prevents the node from starting (see [`RuntimeError`]).
pub fn run(config: &Config) -> Result<(), RuntimeError> {
    let handler: Arc<dyn ConnectionHandler> = Arc::new(RespHandler);
    runtime::run(config, &handler)
}

/// Serves each accepted RESP connection with [`connection::serve`].
struct RespHandler;

impl ConnectionHandler for RespHandler {
    fn serve(&self, connection: Connection, client_id: u64) -> Pin<Box<dyn Future<Output = ()>>> {
        Box::pin(async move {
            let peer = connection.peer_address();
            let closed = connection::serve(connection, Session::new(client_id)).await;
            tracing::debug!(client_id, ?peer, ?closed, "connection closed");
        })
    }
}
