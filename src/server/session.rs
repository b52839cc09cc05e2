//! Per-connection state: the protocol spoken, the client's id and name.
//!
//! A `Session` belongs to one connection on one core and is never shared; commands read and
//! change it through [`crate::server::commands::dispatch`].

use super::resp::Protocol;
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
        }
    }

    /// The session `RESET` leaves: the same connection and client, everything else new.
    #[must_use]
    pub fn reset(&self) -> Session {
        Session { handle: self.handle.clone(), ..Session::new(self.client_id) }
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
