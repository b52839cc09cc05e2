//! The embedded API: [`Node`] started in-process and a `Send + Sync` [`Handle`] with get, set,
//! delete and compare-and-set (async and blocking) and any Redis command, with a consistency
//! choice per call.
//!
//! It is the one API: the RESP server is a client of it ([`Handle::prepare`] and
//! [`Handle::submit`] are what a connection uses for a pipeline), so semantics live in one
//! place.
//!
//! ```text
//!  caller thread / tokio task / RESP connection
//!     Handle::execute(argv) --prepare--> Prepared { ops, combine }   (parse, route by key)
//!                           --submit---> Router (one envelope per core) --> shard tasks
//!                           <--Ticket--- replies, combined (MGET across groups, DBSIZE, ...)
//! ```
//!
//! Routing: a command's keys decide its group (`runtime::node::group_of`, hash tags honoured).
//! A few multi-key commands whose parts are independent per key (`MGET`, `MSET`, `DEL`,
//! `UNLINK`, `EXISTS`, `TOUCH`) are split per group and their replies combined; like Redis
//! Cluster, anything else whose keys span groups (`MSETNX`, `RENAME`, `COPY`, transactions) is
//! refused with `CROSSSLOT` (put related keys under one hash tag). Keyless commands over the
//! whole keyspace (`DBSIZE`, `KEYS`, `SCAN`, `FLUSHALL`, `FLUSHDB`, `RANDOMKEY`) run on every
//! group and combine; `SCAN`'s cursor carries the group in its high bits.
//!
//! Exactly-once: every write carries (client id, sequence); a [`Handle`] is one client and
//! numbers its writes, and the state machine answers a retried (client, sequence) with its
//! first reply.
//!
//! Must never: expose a glommio type, block a runtime core (the blocking forms are for threads
//! outside the runtime), or queue without a bound (a full queue is an explicit overload error).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;

use crate::config::Config;
use crate::constants::{CLIENT_ID_COUNTER_BITS, EMBEDDED_CLIENT_ID_BASE, GROUPS_PER_CORE};
use crate::runtime::node::Router;
use crate::runtime::shard::Machine;
use crate::runtime::{self, ConnectionHandler, RuntimeError, Services};
use crate::types::GroupId;

pub use crate::runtime::node::{Op, Ticket};
pub use crate::runtime::shard::{Consistency, ShardError};
pub use crate::state_machine::{
    Access, Command, EvictionPolicy, Limits, Reply, unknown_command_text,
};
pub use route::{CROSSSLOT, combine};

/// The state machine as a shard drives it.
impl Machine for crate::state_machine::StateMachine {
    type Command = Command;
    type Reply = Reply;

    fn encode_batch(&self, entries: &[(u64, u64, &Command)]) -> Vec<u8> {
        let mut builder = crate::state_machine::BatchBuilder::new();
        for (client, sequence, command) in entries {
            builder.push(*client, *sequence, command);
        }
        builder.finish()
    }

    fn decode_batch(&self, batch: &[u8]) -> Result<Vec<(u64, u64, Command)>, String> {
        let entries = crate::state_machine::decode_batch(batch).map_err(|e| e.to_string())?;
        Ok(entries.into_iter().map(|entry| (entry.client, entry.sequence, entry.command)).collect())
    }

    fn apply_batch(
        &mut self,
        stamp_millis: u64,
        batch: &[u8],
        replies: &mut Vec<Reply>,
    ) -> Result<(), String> {
        crate::state_machine::StateMachine::apply_batch(self, stamp_millis, batch, replies)
            .map_err(|error| error.to_string())
    }

    fn sizes(&self) -> (u64, u64, u64) {
        (self.key_count() as u64, self.expires_count() as u64, self.used_memory())
    }

    fn encode_replies(&self, replies: &[Reply]) -> Vec<u8> {
        crate::state_machine::encode_replies(replies)
    }

    fn decode_replies(&self, bytes: &[u8]) -> Result<Vec<Reply>, String> {
        crate::state_machine::decode_replies(bytes).map_err(|error| error.to_string())
    }

    fn read(&mut self, now_millis: u64, command: &Command) -> Reply {
        crate::state_machine::StateMachine::read(self, now_millis, command)
    }

    fn housekeeping(&self, now_millis: u64, max: usize) -> Vec<Command> {
        crate::state_machine::StateMachine::housekeeping(self, now_millis, max)
    }

    fn snapshot(&self) -> Vec<u8> {
        crate::state_machine::StateMachine::snapshot(self)
    }

    fn restore(&mut self, bytes: &[u8]) -> Result<(), String> {
        let limits = self.limits();
        *self = crate::state_machine::StateMachine::restore(bytes, limits)
            .map_err(|error| error.to_string())?;
        Ok(())
    }
}

/// Why a call failed (a command's own error, like `WRONGTYPE`, is a [`Reply::Error`]).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A queue on the way is full: retry later.
    #[error("overloaded: retry later")]
    Overloaded,
    /// The group's master is elsewhere (or being elected).
    #[error("not the master of the key's group{}", master_text(*master))]
    NotMaster {
        /// The master's node id, if known.
        master: Option<u64>,
    },
    /// The node is recovering, stopping, or cannot serve the group.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// The command was refused before it ran (syntax, arity, cross-group keys).
    #[error("{0}")]
    Refused(String),
}

fn master_text(master: Option<u64>) -> String {
    master.map_or_else(String::new, |node| format!("; master is node {node}"))
}

impl From<ShardError> for Error {
    fn from(error: ShardError) -> Error {
        match error {
            ShardError::Overloaded => Error::Overloaded,
            ShardError::NotMaster { master } => {
                Error::NotMaster { master: master.map(crate::types::NodeId::get) }
            }
            ShardError::Unavailable(reason) => Error::Unavailable(reason),
        }
    }
}

/// How the replies of a prepared command's operations become its one reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Combine {
    /// One operation; its reply.
    Single,
    /// Integers summed (`DEL`, `EXISTS`, `DBSIZE`, ...).
    Sum,
    /// `OK` if every part said `OK` (`MSET`, `FLUSHALL`).
    AllOk,
    /// Arrays concatenated (`KEYS`).
    Concat,
    /// `MGET` across groups: part `p` answered for the original positions `positions[p]`.
    Scatter {
        /// Original key positions per part.
        positions: Vec<Vec<usize>>,
    },
    /// The first non-null reply (`RANDOMKEY`).
    FirstNonNull,
    /// `SCAN` on one group: the cursor's high bits name the group to continue with.
    Scan {
        /// The group scanned.
        group: u32,
        /// Groups in all.
        groups: u32,
    },
}

/// A command ready to submit: its operations and how to combine their replies.
#[derive(Debug)]
pub struct Prepared {
    /// The operations (their group and kind).
    pub ops: Vec<Op<Command>>,
    /// How their replies become one.
    pub combine: Combine,
}

/// A started node: stop it with [`Node::stop`] (dropping it stops it too).
pub struct Node {
    handle: Handle,
    thread: Option<JoinHandle<Result<(), RuntimeError>>>,
    address: Option<SocketAddr>,
}

impl Node {
    /// Starts a node in this process from `config`, without a RESP listener and without
    /// touching the process's signal handlers; returns once every core serves.
    ///
    /// # Errors
    /// The node could not start ([`RuntimeError`]).
    pub fn start(config: &Config, limits: Limits) -> Result<Node, RuntimeError> {
        Node::start_with(config, limits, None)
    }

    /// Like [`Node::start`], also serving connections with the handler `make_handler` builds
    /// from the node's handle (the RESP server in-process, for tests and embedding hosts).
    ///
    /// # Errors
    /// The node could not start ([`RuntimeError`]).
    pub fn start_with(
        config: &Config,
        limits: Limits,
        make_handler: Option<&dyn Fn(Handle) -> Arc<dyn ConnectionHandler>>,
    ) -> Result<Node, RuntimeError> {
        let (handle, services) = services(config, limits, make_handler);
        let (ready, ready_receiver) = mpsc::channel();
        let services = Services { ready: Some(ready), signals: false, ..services };
        let config = config.clone();
        let thread = std::thread::Builder::new()
            .name("klein-node".to_string())
            .spawn(move || runtime::run(&config, services))
            .map_err(|error| RuntimeError::Executor {
                core: crate::types::CoreIndex(0),
                reason: error.to_string(),
            })?;
        match ready_receiver.recv() {
            Ok(address) => Ok(Node { handle, thread: Some(thread), address }),
            Err(_) => Err(thread.join().map_or_else(
                |_| RuntimeError::Executor {
                    core: crate::types::CoreIndex(0),
                    reason: "the node thread panicked".to_string(),
                },
                |result| {
                    result.err().unwrap_or(RuntimeError::Executor {
                        core: crate::types::CoreIndex(0),
                        reason: "stopped before serving".to_string(),
                    })
                },
            )),
        }
    }

    /// A handle for calls (cheap to clone; each clone is a new client for deduplication).
    #[must_use]
    pub fn handle(&self) -> Handle {
        self.handle.clone()
    }

    /// The RESP address, when started with a handler.
    #[must_use]
    pub fn address(&self) -> Option<SocketAddr> {
        self.address
    }

    /// Stops the node: requests in flight are answered `Unavailable`, the logs close.
    ///
    /// # Errors
    /// The runtime stopped abnormally.
    pub fn stop(mut self) -> Result<(), RuntimeError> {
        self.stop_inner()
    }

    fn stop_inner(&mut self) -> Result<(), RuntimeError> {
        self.handle.router.stop();
        match self.thread.take() {
            Some(thread) => thread.join().unwrap_or_else(|_| {
                Err(RuntimeError::Executor {
                    core: crate::types::CoreIndex(0),
                    reason: "the node thread panicked".to_string(),
                })
            }),
            None => Ok(()),
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.stop_inner();
    }
}

/// Runs a node serving connections with the handler built from its handle, until SIGINT or
/// SIGTERM (the `klein server` process).
///
/// # Errors
/// The node could not start or stopped abnormally.
pub fn serve(
    config: &Config,
    limits: Limits,
    make_handler: &dyn Fn(Handle) -> Arc<dyn ConnectionHandler>,
) -> Result<(), RuntimeError> {
    let (_, services) = services(config, limits, Some(make_handler));
    runtime::run(config, services)
}

fn services(
    config: &Config,
    limits: Limits,
    make_handler: Option<&dyn Fn(Handle) -> Arc<dyn ConnectionHandler>>,
) -> (Handle, Services<crate::state_machine::StateMachine>) {
    let groups = u32::try_from(config.cores * GROUPS_PER_CORE).expect("cores are bounded");
    let router = Arc::new(Router::new(config.node_id, config.cores, groups));
    let handle = Handle::new(Arc::clone(&router));
    let handler = make_handler.map(|make| make(handle.clone()));
    let make_machine = Arc::new(move || crate::state_machine::StateMachine::new(limits));
    let services = Services { handler, router, make_machine, signals: true, ready: None };
    (handle, services)
}

/// Handles made by this process so far (the low bits of their client ids).
static NEXT_CLIENT: AtomicU64 = AtomicU64::new(0);

/// This process's client-id prefix: random, drawn once. Client ids must be unique across the
/// cluster and across restarts, because the state machine deduplicates writes by (client id,
/// sequence) and keeps those windows in its snapshots: a per-process counter alone made a
/// client of node 3 look like a retry of node 1's client with the same number, and its writes
/// were answered from the other client's window without being applied (found by
/// `tests/cluster.rs`).
fn client_prefix() -> u64 {
    static PREFIX: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *PREFIX.get_or_init(|| {
        use std::hash::{BuildHasher, Hasher};
        // `RandomState` is seeded from the OS's randomness once per process.
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |since| since.as_nanos()),
        );
        hasher.write_u32(std::process::id());
        hasher.finish() << CLIENT_ID_COUNTER_BITS
    })
}

/// Calls into a node: `Send + Sync`, from any thread or async runtime. See the module docs.
pub struct Handle {
    router: Arc<Router<Command, Reply>>,
    client: u64,
    sequence: AtomicU64,
}

impl Clone for Handle {
    fn clone(&self) -> Handle {
        Handle::new(Arc::clone(&self.router))
    }
}

impl Handle {
    /// What the node's cores report (replication state, counters).
    #[must_use]
    pub fn status(&self) -> &crate::runtime::status::NodeStatus {
        self.router.status()
    }

    fn new(router: Arc<Router<Command, Reply>>) -> Handle {
        let counter = NEXT_CLIENT.fetch_add(1, Ordering::Relaxed) + EMBEDDED_CLIENT_ID_BASE;
        let client = client_prefix() | (counter & ((1 << CLIENT_ID_COUNTER_BITS) - 1));
        Handle { router, client, sequence: AtomicU64::new(0) }
    }

    /// The client id deduplication uses for this handle's writes.
    #[must_use]
    pub fn client_id(&self) -> u64 {
        self.client
    }

    /// The number of groups.
    #[must_use]
    pub fn groups(&self) -> u32 {
        self.router.groups()
    }

    /// Parses and routes one command (`args[0]` is its name) into operations.
    ///
    /// # Errors
    /// The error reply for a command that does not parse or whose keys span groups.
    pub fn prepare(&self, args: &[&[u8]], consistency: Consistency) -> Result<Prepared, Reply> {
        prepare(self, args, consistency)
    }

    /// Parses one command queued by `MULTI` (`args[0]` is its name) without routing it.
    ///
    /// # Errors
    /// The error reply for a command that does not parse, or that runs over the whole
    /// keyspace (`KEYS`, `SCAN`, `DBSIZE`, `RANDOMKEY`, `FLUSHALL`): a transaction runs in
    /// one group, where those would see only part of the data.
    pub fn parse_queued(&self, args: &[&[u8]]) -> Result<Command, Reply> {
        route::parse_queued(args)
    }

    /// `WATCH`: reads each key's modification version, linearizably, whatever the caller's
    /// consistency (one read per group; the combined reply is an array of integers in key
    /// order, 0 for a missing key).
    #[must_use]
    pub fn prepare_watch(&self, keys: &[&[u8]]) -> Prepared {
        route::prepare_watch(self, keys)
    }

    /// `EXEC`: the queued commands as one command to the one group that owns every key of
    /// theirs and of the `guards` (`WATCH`ed keys with the versions read then). With guards it
    /// is a `WatchedExec` through the log, answering a null array when a guard's key changed;
    /// without, an `Exec` (a read when every command is). `None` when there is nothing to
    /// send (no commands, no guards).
    ///
    /// # Errors
    /// [`CROSSSLOT`] when the keys span groups.
    pub fn prepare_exec(
        &self,
        commands: Vec<Command>,
        guards: Vec<(Vec<u8>, u64)>,
        consistency: Consistency,
    ) -> Result<Option<Prepared>, Reply> {
        route::prepare_exec(self, commands, guards, consistency)
    }

    /// Hands operations to the node (one envelope per core); the ticket completes with one
    /// reply per operation, in order. Reads that follow a write to the same group in `ops`
    /// go through the log after it (so a pipeline reads its own writes).
    #[must_use]
    pub fn submit(&self, mut ops: Vec<Op<Command>>) -> Ticket<Reply> {
        let mut written: Vec<GroupId> = Vec::new();
        for op in &mut ops {
            match op {
                Op::Write { group, .. } => written.push(*group),
                Op::Read { group, behind_writes, .. } => *behind_writes |= written.contains(group),
            }
        }
        self.router.submit(ops)
    }

    /// The next sequence number of this client's writes.
    fn next_sequence(&self) -> u64 {
        self.sequence.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Runs any supported Redis command.
    ///
    /// # Errors
    /// [`Error`]; a command's own error is `Ok(Reply::Error(..))`.
    pub async fn execute(&self, args: &[&[u8]], consistency: Consistency) -> Result<Reply, Error> {
        let prepared = match self.prepare(args, consistency) {
            Ok(prepared) => prepared,
            Err(Reply::Error(text)) => return Err(Error::Refused(text)),
            Err(reply) => return Ok(reply),
        };
        let replies = self.submit(prepared.ops).await;
        let replies: Result<Vec<Reply>, ShardError> = replies.into_iter().collect();
        Ok(combine(&prepared.combine, replies?))
    }

    /// [`Handle::execute`] for threads outside the node's runtime (blocks the calling thread).
    ///
    /// # Errors
    /// As [`Handle::execute`].
    pub fn execute_blocking(
        &self,
        args: &[&[u8]],
        consistency: Consistency,
    ) -> Result<Reply, Error> {
        futures_lite::future::block_on(self.execute(args, consistency))
    }

    /// The value of `key`.
    ///
    /// # Errors
    /// [`Error`], or `Refused` when the key holds another type.
    pub async fn get(
        &self,
        key: &[u8],
        consistency: Consistency,
    ) -> Result<Option<Vec<u8>>, Error> {
        match self.execute(&[b"GET", key], consistency).await? {
            Reply::Bulk(value) => Ok(Some(value)),
            Reply::Null => Ok(None),
            other => Err(unexpected(&other)),
        }
    }

    /// Sets `key` to `value`; durable on a quorum when this returns.
    ///
    /// # Errors
    /// [`Error`].
    pub async fn set(&self, key: &[u8], value: &[u8]) -> Result<(), Error> {
        match self.execute(&[b"SET", key, value], Consistency::Linearizable).await? {
            Reply::Ok => Ok(()),
            other => Err(unexpected(&other)),
        }
    }

    /// Deletes `key`; whether it existed.
    ///
    /// # Errors
    /// [`Error`].
    pub async fn delete(&self, key: &[u8]) -> Result<bool, Error> {
        match self.execute(&[b"DEL", key], Consistency::Linearizable).await? {
            Reply::Integer(count) => Ok(count > 0),
            other => Err(unexpected(&other)),
        }
    }

    /// Sets `key` to `value` only if it holds `expected` (`None`: only if it is absent);
    /// whether it was set. One replicated command (`SET NX`, or `SET IFEQ expected`): atomic on
    /// every replica. A key holding a non-string never equals `expected`: `false`.
    ///
    /// # Errors
    /// [`Error`].
    pub async fn compare_and_set(
        &self,
        key: &[u8],
        expected: Option<&[u8]>,
        value: &[u8],
    ) -> Result<bool, Error> {
        let reply = match expected {
            None => self.execute(&[b"SET", key, value, b"NX"], Consistency::Linearizable).await?,
            Some(expected) => {
                let argv = [&b"SET"[..], key, value, b"IFEQ", expected];
                self.execute(&argv, Consistency::Linearizable).await?
            }
        };
        match reply {
            Reply::Ok => Ok(true),
            Reply::Null => Ok(false),
            other => Err(unexpected(&other)),
        }
    }

    /// Blocking forms of the typed calls.
    ///
    /// # Errors
    /// As [`Handle::get`].
    pub fn get_blocking(
        &self,
        key: &[u8],
        consistency: Consistency,
    ) -> Result<Option<Vec<u8>>, Error> {
        futures_lite::future::block_on(self.get(key, consistency))
    }

    /// See [`Handle::set`].
    ///
    /// # Errors
    /// As [`Handle::set`].
    pub fn set_blocking(&self, key: &[u8], value: &[u8]) -> Result<(), Error> {
        futures_lite::future::block_on(self.set(key, value))
    }

    /// See [`Handle::delete`].
    ///
    /// # Errors
    /// As [`Handle::delete`].
    pub fn delete_blocking(&self, key: &[u8]) -> Result<bool, Error> {
        futures_lite::future::block_on(self.delete(key))
    }

    /// See [`Handle::compare_and_set`].
    ///
    /// # Errors
    /// As [`Handle::compare_and_set`].
    pub fn compare_and_set_blocking(
        &self,
        key: &[u8],
        expected: Option<&[u8]>,
        value: &[u8],
    ) -> Result<bool, Error> {
        futures_lite::future::block_on(self.compare_and_set(key, expected, value))
    }
}

fn unexpected(reply: &Reply) -> Error {
    match reply {
        Reply::Error(text) => Error::Refused(text.clone()),
        other => Error::Refused(format!("unexpected reply {other:?}")),
    }
}

mod route;
use route::prepare;
