//! Per-connection state: the protocol spoken, the client's id and name.
//!
//! A `Session` belongs to one connection on one core and is never shared; commands read and
//! change it through [`crate::server::commands::dispatch`].

use std::sync::Arc;

use super::access::{DEFAULT_USER, ServerSettings};
use super::resp::Protocol;
use super::transaction::Transaction;
use crate::embedded::{Consistency, Handle};

/// What the connection loop does after a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    /// Keep serving the connection.
    Continue,
    /// Send the replies written so far, then close (`QUIT`).
    Close,
}

/// The state of one client connection.
pub struct Session {
    client_id: u64,
    protocol: Protocol,
    name: Option<Vec<u8>>,
    /// The node's API, as this connection's own client (`None`: connection commands only).
    handle: Option<Handle>,
    consistency: Consistency,
    /// The open `MULTI`, if any.
    transaction: Option<Transaction>,
    /// `WATCH`ed keys with the modification versions read then.
    watched: Vec<(Vec<u8>, u64)>,
    /// A `WATCH` failed to read its versions: the next `EXEC` aborts.
    watch_broken: bool,
    /// The node's access settings (shared by every connection).
    settings: Arc<ServerSettings>,
    /// Whether the connection may run commands (always, when there is no password).
    authenticated: bool,
    /// The user the connection authenticated as.
    user: Vec<u8>,
}

impl Session {
    /// A new connection speaking RESP2, as every Redis connection starts.
    #[must_use]
    pub fn new(client_id: u64) -> Session {
        Session {
            client_id,
            protocol: Protocol::Resp2,
            name: None,
            handle: None,
            consistency: Consistency::default(),
            transaction: None,
            watched: Vec::new(),
            watch_broken: false,
            settings: Arc::new(ServerSettings::default()),
            authenticated: true,
            user: DEFAULT_USER.to_vec(),
        }
    }

    /// The session `RESET` leaves: the same connection and client, everything else new.
    #[must_use]
    pub fn reset(&self) -> Session {
        // As Redis's RESET: back to the default user, authenticated only if it needs no
        // password.
        Session { handle: self.handle.clone(), ..Session::new(self.client_id) }
            .with_settings(Arc::clone(&self.settings))
    }

    /// This session under the node's access settings: unauthenticated when the default user
    /// has a password.
    #[must_use]
    pub fn with_settings(self, settings: Arc<ServerSettings>) -> Session {
        let authenticated = !settings.requires_auth();
        Session { settings, authenticated, user: DEFAULT_USER.to_vec(), ..self }
    }

    /// The node's access settings.
    #[must_use]
    pub fn settings(&self) -> &ServerSettings {
        &self.settings
    }

    /// Whether the connection may run commands.
    #[must_use]
    pub fn is_authenticated(&self) -> bool {
        self.authenticated
    }

    /// The user the connection is (`CLIENT LIST`'s `user`).
    #[must_use]
    pub fn user(&self) -> &[u8] {
        &self.user
    }

    /// `AUTH [user] password`: on success the connection is `user` from now on; on failure
    /// nothing changes.
    ///
    /// # Errors
    /// Redis's error text (see `ServerSettings::authenticate`).
    pub fn authenticate(
        &mut self,
        user: Option<&[u8]>,
        password: &[u8],
    ) -> Result<(), &'static str> {
        self.settings.authenticate(user, password)?;
        self.authenticated = true;
        self.user = user.unwrap_or(DEFAULT_USER).to_vec();
        Ok(())
    }

    /// A session whose data commands go to the node through `handle`.
    #[must_use]
    pub fn with_handle(client_id: u64, handle: Handle) -> Session {
        Session { handle: Some(handle), ..Session::new(client_id) }
    }

    /// The node's API for this connection.
    #[must_use]
    pub fn handle(&self) -> Option<&Handle> {
        self.handle.as_ref()
    }

    /// How this connection's reads are served (`CLIENT CONSISTENCY`).
    #[must_use]
    pub fn consistency(&self) -> Consistency {
        self.consistency
    }

    /// Sets how this connection's reads are served.
    pub fn set_consistency(&mut self, consistency: Consistency) {
        self.consistency = consistency;
    }

    /// The node-unique id of this connection (`CLIENT ID`, `HELLO`'s `id`).
    #[must_use]
    pub fn client_id(&self) -> u64 {
        self.client_id
    }

    /// The protocol replies are written in.
    #[must_use]
    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    /// Switches the protocol (`HELLO 2|3`).
    pub fn set_protocol(&mut self, protocol: Protocol) {
        self.protocol = protocol;
    }

    /// The open `MULTI`, if any.
    #[must_use]
    pub fn transaction(&self) -> Option<&Transaction> {
        self.transaction.as_ref()
    }

    /// The open `MULTI`, to queue into.
    pub fn transaction_mut(&mut self) -> Option<&mut Transaction> {
        self.transaction.as_mut()
    }

    /// Opens (`Some`) or closes (`None`) a `MULTI`; returns the one that was open.
    pub fn set_transaction(&mut self, transaction: Option<Transaction>) -> Option<Transaction> {
        std::mem::replace(&mut self.transaction, transaction)
    }

    /// Whether `key` is watched.
    #[must_use]
    pub fn is_watched(&self, key: &[u8]) -> bool {
        self.watched.iter().any(|(watched, _)| watched == key)
    }

    /// Keys watched.
    #[must_use]
    pub fn watched_count(&self) -> usize {
        self.watched.len()
    }

    /// Watches `key` at `version` (a key watched already keeps its first version, as Redis).
    pub fn watch(&mut self, key: Vec<u8>, version: u64) {
        if !self.is_watched(&key) {
            self.watched.push((key, version));
        }
    }

    /// Marks the watch as unreliable: the next `EXEC` aborts.
    pub fn break_watch(&mut self) {
        self.watch_broken = true;
    }

    /// Forgets every watched key (`UNWATCH`, `EXEC`, `DISCARD`); returns them with their
    /// versions, and whether a watch had failed.
    pub fn unwatch(&mut self) -> (Vec<(Vec<u8>, u64)>, bool) {
        let broken = std::mem::replace(&mut self.watch_broken, false);
        (std::mem::take(&mut self.watched), broken)
    }

    /// The name set by `HELLO ... SETNAME` (or, later, `CLIENT SETNAME`); none when empty.
    #[must_use]
    pub fn name(&self) -> Option<&[u8]> {
        self.name.as_deref()
    }

    /// Sets the client name; an empty name clears it, as in Redis.
    pub fn set_name(&mut self, name: &[u8]) {
        self.name = if name.is_empty() { None } else { Some(name.to_vec()) };
    }
}
