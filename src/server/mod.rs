//! The Redis-compatible front end: RESP2/RESP3 over TCP.
//!
//! Owns: the RESP codec (`resp/`, self-contained and fuzzed), per-connection sessions, the
//! command families (`commands/`) and the connection loop. It is a *client* of the layers
//! below: today the connection commands answer from the session alone; data commands will go
//! through the embedded API (`crate::embedded`), the one API shared with in-process users.
//!
//! Must never: name glommio (the runtime hands it plain byte streams), reach into consensus,
//! the log or the state machine directly, or buffer without a bound.

pub mod access;
pub mod commands;
pub mod connection;
pub mod reply;
pub mod resp;
pub mod session;
pub mod stats;
pub mod transaction;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::config::Config;
use crate::embedded::{self, Handle, Limits};
use crate::runtime::{Connection, ConnectionHandler, RuntimeError};
use access::ServerSettings;
use session::Session;

/// Runs a node serving the Redis protocol until SIGINT or SIGTERM.
///
/// # Errors
/// Anything that prevents the node from starting (see [`RuntimeError`]).
pub fn run(config: &Config) -> Result<(), RuntimeError> {
    let settings = Arc::new(ServerSettings::from_config(config));
    let make = move |handle: Handle| handler_with(handle, Arc::clone(&settings));
    embedded::serve(config, Limits::default(), &make)
}

/// The RESP server over a node's handle, without passwords or an idle timeout (for
/// in-process use with `embedded::Node::start_with`).
#[must_use]
pub fn handler(handle: Handle) -> Arc<dyn ConnectionHandler> {
    handler_with(handle, Arc::new(ServerSettings::default()))
}

/// The RESP server over a node's handle with the node's access settings (what [`run`]
/// serves).
#[must_use]
pub fn handler_with(handle: Handle, settings: Arc<ServerSettings>) -> Arc<dyn ConnectionHandler> {
    Arc::new(RespHandler { handle, settings })
}

impl connection::ClientStream for Connection {
    fn set_read_timeout(&mut self, timeout: Option<std::time::Duration>) {
        Connection::set_read_timeout(self, timeout);
    }
    async fn write_all_within(
        &mut self,
        bytes: &[u8],
        limit: std::time::Duration,
    ) -> std::io::Result<()> {
        Connection::write_all_within(self, bytes, limit).await
    }
}

/// Serves each accepted RESP connection with [`connection::serve`].
struct RespHandler {
    handle: Handle,
    settings: Arc<ServerSettings>,
}

impl ConnectionHandler for RespHandler {
    fn serve(&self, connection: Connection, client_id: u64) -> Pin<Box<dyn Future<Output = ()>>> {
        // Each connection is its own client of the node (its own deduplication id).
        let session = Session::with_handle(client_id, self.handle.clone())
            .with_settings(Arc::clone(&self.settings));
        Box::pin(async move {
            let peer = connection.peer_address();
            stats::connection_opened();
            let closed = connection::serve(connection, session).await;
            stats::connection_closed();
            tracing::debug!(client_id, ?peer, ?closed, "connection closed");
        })
    }
}
