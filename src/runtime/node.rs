//! The node's data path on the executors: a [`Router`] any thread submits batches of operations
//! to, and one shard task per core that runs the pure [`Shard`] over the real disk.
//!
//! ```text
//!  any thread / connection task          core k (owns groups g with g % cores == k)
//!  ----------------------------          -----------------------------------------
//!  Router::submit(ops) --split by core--> inbox k (crossbeam ArrayQueue, bounded)
//!        |  one envelope per core,        | wake (AtomicWaker: one wake per drain)
//!        |  never one message per op      v
//!        |                               shard task: drain inbox -> Shard::submit
//!        |                                  Shard::flush (one batch per group per turn)
//!        |                                  disk: pump -> DmaDisk -> completions
//!        |                                  ticks every TICK_MILLIS
//!  Ticket (future) <---- replies ---------- fill the ticket's slots; the last one wakes it
//! ```
//!
//! Routing is a documented, stable function: a key's group is `crc32c(tag) % groups`, where
//! the tag is the part between the first `{` and the next `}` when that part is not empty
//! (Redis Cluster's hash tags, so `{user1}.a` and `{user1}.b` share a group), else the whole
//! key; group `g` lives on core `g % cores` of every node. Both numbers are fixed when a data
//! directory is created ([`Layout`]) and checked at every start.
//!
//! A full inbox refuses the operations of that envelope with `ShardError::Overloaded` at once
//! (`-BUSY` for Redis clients); nothing waits without a bound.
//!
//! Must never: block a core (the inbox is lock-free; a ticket's slots are a mutex that only
//! the one shard core filling them and the one waiter touch, never held across an await),
//! reply to a write the shard has not answered, or keep running after a fatal storage error
//! (the process exits with `EXIT_CODE_STORAGE_FAILURE`).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use atomic_waker::AtomicWaker;
use crossbeam::queue::ArrayQueue;
use hashbrown::HashMap;
use tracing::{debug, error, info};

use super::disk_dma::DmaDisk;
use super::shard::{Consistency, Fatal, Machine, Request, Shard, ShardError, ShardOptions, Token};
use super::snapshot_fetch::{Fetches, Outcome, serve};
use super::status::{CoreStatus, NodeStatus};
use super::transport::{Identity, Transport};
use crate::constants::{EXIT_CODE_STORAGE_FAILURE, NODE_INBOX_ENVELOPES_MAX, TICK_MILLIS};
use crate::log::disk::{Completion, Disk, Request as DiskRequest};
use crate::types::{CoreIndex, GroupId, NodeId};
use crate::wire::SnapshotMessage;

/// One operation of a batch handed to [`Router::submit`].
#[derive(Debug)]
pub enum Op<C> {
    /// A command through the log.
    Write {
        /// Its group ([`Router::group_of`] of its key).
        group: GroupId,
        /// The client, for deduplication (0: none).
        client: u64,
        /// The client's sequence number of this command.
        sequence: u64,
        /// The command.
        command: C,
        /// Its encoded size, for the shard's byte bounds.
        bytes: usize,
    },
    /// A read-only command.
    Read {
        /// Its group.
        group: GroupId,
        /// How it is served.
        consistency: Consistency,
        /// The command.
        command: C,
        /// An earlier write of the same batch went to the same group: read through the log.
        behind_writes: bool,
    },
}

impl<C> Op<C> {
    fn group(&self) -> GroupId {
        match self {
            Op::Write { group, .. } | Op::Read { group, .. } => *group,
        }
    }
}

/// The replies to one [`Router::submit`], filled by the cores that own the groups.
struct TicketState<R> {
    slots: Mutex<Vec<Option<Result<R, ShardError>>>>,
    remaining: AtomicUsize,
    waker: AtomicWaker,
}

impl<R> TicketState<R> {
    fn fill(&self, index: usize, reply: Result<R, ShardError>) {
        self.slots.lock().expect("a ticket's lock is never poisoned")[index] = Some(reply);
        if self.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.waker.wake();
        }
    }
}

/// Completes with one reply per submitted operation, in order.
pub struct Ticket<R> {
    state: Arc<TicketState<R>>,
}

impl<R> Future for Ticket<R> {
    type Output = Vec<Result<R, ShardError>>;

    fn poll(self: std::pin::Pin<&mut Self>, context: &mut Context<'_>) -> Poll<Self::Output> {
        self.state.waker.register(context.waker());
        if self.state.remaining.load(Ordering::Acquire) > 0 {
            return Poll::Pending;
        }
        let mut slots = self.state.slots.lock().expect("a ticket's lock is never poisoned");
        let replies = slots.drain(..).map(|slot| slot.expect("every slot is filled")).collect();
        Poll::Ready(replies)
    }
}

/// Operations for one core, and where their replies go.
struct Envelope<C, R> {
    ops: Vec<(usize, Op<C>)>,
    ticket: Arc<TicketState<R>>,
}

/// One core's inbox.
struct Inbox<C, R> {
    queue: ArrayQueue<Envelope<C, R>>,
    waker: AtomicWaker,
    /// The core's listener task, woken by [`Router::stop`].
    stop_waker: AtomicWaker,
}

/// Routes operations to the cores that own their groups. `Send + Sync`: shared by every
/// connection and every embedded caller.
pub struct Router<C, R> {
    inboxes: Vec<Inbox<C, R>>,
    groups: u32,
    stopping: AtomicBool,
    /// What each core reports (`runtime/status.rs`).
    status: NodeStatus,
}

impl<C, R> Router<C, R> {
    /// A router for `cores` cores and `groups` groups of node `node`.
    ///
    /// # Panics
    /// If `cores` is 0 or `groups` is below `cores`.
    #[must_use]
    pub fn new(node: NodeId, cores: usize, groups: u32) -> Router<C, R> {
        assert!(cores > 0 && groups as usize >= cores, "{groups} groups on {cores} cores");
        let inboxes = (0..cores)
            .map(|_| Inbox {
                queue: ArrayQueue::new(NODE_INBOX_ENVELOPES_MAX),
                waker: AtomicWaker::new(),
                stop_waker: AtomicWaker::new(),
            })
            .collect();
        let status = NodeStatus::new(node, cores);
        Router { inboxes, groups, stopping: AtomicBool::new(false), status }
    }

    /// What every core reports.
    #[must_use]
    pub fn status(&self) -> &NodeStatus {
        &self.status
    }

    /// The group of `key` (see the module documentation).
    #[must_use]
    pub fn group_of(&self, key: &[u8]) -> GroupId {
        group_of(key, self.groups)
    }

    /// The number of groups.
    #[must_use]
    pub fn groups(&self) -> u32 {
        self.groups
    }

    /// The core that owns `group`.
    #[must_use]
    pub fn core_of(&self, group: GroupId) -> usize {
        group.0 as usize % self.inboxes.len()
    }

    /// Hands `ops` to the cores that own their groups: one envelope per core.
    pub fn submit(&self, ops: Vec<Op<C>>) -> Ticket<R> {
        let count = ops.len();
        let state = Arc::new(TicketState {
            slots: Mutex::new((0..count).map(|_| None).collect()),
            remaining: AtomicUsize::new(count),
            waker: AtomicWaker::new(),
        });
        let mut per_core: Vec<Vec<(usize, Op<C>)>> =
            (0..self.inboxes.len()).map(|_| Vec::new()).collect();
        for (index, op) in ops.into_iter().enumerate() {
            per_core[self.core_of(op.group())].push((index, op));
        }
        for (core, ops) in per_core.into_iter().enumerate() {
            if ops.is_empty() {
                continue;
            }
            let inbox = &self.inboxes[core];
            let envelope = Envelope { ops, ticket: Arc::clone(&state) };
            if self.stopping.load(Ordering::Acquire) {
                refuse(envelope, &ShardError::Unavailable("the node is stopping".to_string()));
                continue;
            }
            match inbox.queue.push(envelope) {
                Ok(()) => inbox.waker.wake(),
                Err(envelope) => refuse(envelope, &ShardError::Overloaded),
            }
        }
        Ticket { state }
    }

    /// Asks every shard task to stop (after the disk requests in flight complete).
    pub fn stop(&self) {
        self.stopping.store(true, Ordering::Release);
        for inbox in &self.inboxes {
            inbox.waker.wake();
            inbox.stop_waker.wake();
        }
    }

    /// Completes once [`Router::stop`] is called (awaited by `core`'s listener task).
    pub async fn stopped(&self, core: CoreIndex) {
        let inbox = &self.inboxes[usize::from(core.0)];
        futures_lite::future::poll_fn(|context| {
            inbox.stop_waker.register(context.waker());
            if self.is_stopping() { Poll::Ready(()) } else { Poll::Pending }
        })
        .await;
    }

    /// Whether [`Router::stop`] was called.
    #[must_use]
    pub fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::Acquire)
    }
}

fn refuse<C, R>(envelope: Envelope<C, R>, error: &ShardError) {
    for (index, _) in envelope.ops {
        envelope.ticket.fill(index, Err(error.clone()));
    }
}

/// The group of `key` among `groups`: `crc32c` of its hash tag (or of the whole key).
#[must_use]
pub fn group_of(key: &[u8], groups: u32) -> GroupId {
    let tag = key
        .iter()
        .position(|&byte| byte == b'{')
        .and_then(|open| {
            let rest = &key[open + 1..];
            rest.iter().position(|&byte| byte == b'}').map(|close| &rest[..close])
        })
        .filter(|tag| !tag.is_empty())
        .unwrap_or(key);
    GroupId(crc32c::crc32c(tag) % groups)
}

/// The shape of a data directory, fixed at its creation: how many cores and groups it was
/// laid out for. Written once as `LAYOUT` (text, one `key=value` per line).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    /// Cores (one log directory each).
    pub cores: usize,
    /// Groups.
    pub groups: u32,
}

/// The file holding the [`Layout`].
const LAYOUT_FILE: &str = "LAYOUT";

impl Layout {
    /// Reads the directory's layout, or writes `wanted` if it has none; refuses a mismatch.
    ///
    /// # Errors
    /// The file cannot be read or written, does not parse, or differs from `wanted`.
    pub fn check_or_create(data_dir: &Path, wanted: Layout) -> Result<Layout, String> {
        let path = data_dir.join(LAYOUT_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                let text = format!("cores={}\ngroups={}\n", wanted.cores, wanted.groups);
                let temporary = data_dir.join("LAYOUT.tmp");
                std::fs::write(&temporary, &text)
                    .and_then(|()| std::fs::File::open(&temporary)?.sync_all())
                    .and_then(|()| std::fs::rename(&temporary, &path))
                    .and_then(|()| std::fs::File::open(data_dir)?.sync_all())
                    .map_err(|error| format!("cannot write {}: {error}", path.display()))?;
                return Ok(wanted);
            }
            Err(error) => return Err(format!("cannot read {}: {error}", path.display())),
        };
        let value = |key: &str| {
            text.lines()
                .find_map(|line| line.strip_prefix(key)?.strip_prefix('='))
                .and_then(|value| value.trim().parse::<u64>().ok())
                .ok_or_else(|| format!("{} has no valid `{key}=`", path.display()))
        };
        let found = Layout {
            cores: usize::try_from(value("cores")?).map_err(|error| error.to_string())?,
            groups: u32::try_from(value("groups")?).map_err(|error| error.to_string())?,
        };
        if found != wanted {
            return Err(format!(
                "{} was created for {} cores and {} groups; this node is configured for {} \
                 cores and {} groups (start it with --cores {})",
                data_dir.display(),
                found.cores,
                found.groups,
                wanted.cores,
                wanted.groups,
                found.cores
            ));
        }
        Ok(found)
    }
}

/// The directory of core `core`'s log.
#[must_use]
pub fn core_dir(data_dir: &Path, core: CoreIndex) -> PathBuf {
    data_dir.join(format!("core-{}", core.0))
}

/// The wall clock in milliseconds since the Unix epoch.
fn wall_millis() -> u64 {
    let since = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
}

/// Where a shard's reply goes: a ticket and the operation's place in it.
type Waiting<R> = (Arc<TicketState<R>>, usize);

/// Everything a core's shard task needs.
pub struct ShardTask<M: Machine> {
    /// This core.
    pub core: CoreIndex,
    /// The core's log directory (created if missing).
    pub dir: PathBuf,
    /// How the shard opens.
    pub options: ShardOptions,
    /// Makes a fresh state machine.
    pub make_machine: Arc<dyn Fn() -> M + Send + Sync>,
    /// The router whose inbox for this core the task drains.
    pub router: Arc<Router<M::Command, M::Reply>>,
    /// The peer transport's settings: this node's peer address and every member's (`None`
    /// for a single-node cluster).
    pub peers: Option<Peers>,
}

/// Tells a core's other tasks that its shard serves (set once, awaited by the listener).
#[derive(Clone, Default)]
pub struct Serving(std::rc::Rc<std::cell::RefCell<(bool, Vec<std::task::Waker>)>>);

impl Serving {
    fn set(&self) {
        let mut state = self.0.borrow_mut();
        state.0 = true;
        for waker in state.1.drain(..) {
            waker.wake();
        }
    }

    /// Completes once the shard serves.
    pub async fn wait(&self) {
        futures_lite::future::poll_fn(|context| {
            let mut state = self.0.borrow_mut();
            if state.0 {
                Poll::Ready(())
            } else {
                state.1.push(context.waker().clone());
                Poll::Pending
            }
        })
        .await;
    }
}

/// Where a core talks to its peers.
#[derive(Clone, Debug)]
pub struct Peers {
    /// The cluster id of handshakes.
    pub cluster: u64,
    /// This node's base peer address (core `k` listens on its port plus `k`).
    pub listen: SocketAddr,
    /// Every member's base peer address.
    pub members: BTreeMap<NodeId, SocketAddr>,
}

/// Runs a core's shard until the router stops, setting `serving` once it serves; exits the
/// process on a fatal error.
pub async fn run_shard<M>(task: ShardTask<M>, serving: Serving)
where
    M: Machine + 'static,
{
    let core = task.core;
    if let Err(fatal) = serve_shard(task, serving).await {
        error!(%core, %fatal, "storage failure: stopping the node");
        eprintln!("klein: core {core}: {fatal}");
        std::process::exit(i32::from(EXIT_CODE_STORAGE_FAILURE));
    }
}

async fn serve_shard<M: Machine + 'static>(
    task: ShardTask<M>,
    serving_flag: Serving,
) -> Result<(), Fatal> {
    let ShardTask { core, dir, options, make_machine, router, peers } = task;
    let transport = match peers {
        Some(peers) => {
            let identity = Identity { cluster: peers.cluster, node: options.node, core };
            let transport = Transport::start(identity, peers.listen, &peers.members)
                .map_err(|error| Fatal::Open(format!("peer listener: {error}")))?;
            Some(transport)
        }
        None => None,
    };
    std::fs::create_dir_all(&dir)
        .map_err(|error| Fatal::Open(format!("{}: {error}", dir.display())))?;
    let mut disk = DmaDisk::open(&dir)
        .await
        .map_err(|error| Fatal::Open(format!("{}: {error}", dir.display())))?;
    let make = Arc::clone(&make_machine);
    let mut shard = Shard::open(options, disk.list(), wall_millis(), Box::new(move || make()));
    let inbox = &router.inboxes[usize::from(core.0)];
    let mut waiting: HashMap<u64, Waiting<M::Reply>> = HashMap::new();
    let mut next_token = 0_u64;
    let tick = Duration::from_millis(TICK_MILLIS);
    let mut next_tick = Instant::now() + tick;
    let mut completions: Vec<Completion> = Vec::new();
    let mut serving = false;
    let mut fetches = Fetches::default();
    let mut counters = CoreStatus::default();
    while !router.is_stopping() {
        let mut progress = false;
        while let Some(envelope) = inbox.queue.pop() {
            progress = true;
            counters.envelopes += 1;
            counters.operations += envelope.ops.len() as u64;
            for (index, op) in envelope.ops {
                next_token += 1;
                waiting.insert(next_token, (Arc::clone(&envelope.ticket), index));
                shard.submit(request(op, Token(next_token)));
            }
        }
        if let Some(transport) = &transport {
            progress |= receive_from_peers(transport, &mut shard)?;
        }
        shard.flush()?;
        progress |= disk_turn(&mut shard, &mut disk, &mut completions, &mut counters)?;
        for (token, reply) in shard.take_replies() {
            if let Some((ticket, index)) = waiting.remove(&token.0) {
                ticket.fill(index, reply);
            }
        }
        for (to, group, message) in shard.take_outbox() {
            counters.messages_sent += 1;
            if let Some(transport) = &transport {
                transport.send(to, group, message);
            } else {
                debug!(%core, %to, "no peer transport: message dropped");
            }
        }
        for (to, message) in shard.take_forwards() {
            if let Some(transport) = &transport {
                transport.send_forward(to, &message);
            }
        }
        progress |= snapshot_turn(core, &mut shard, &mut fetches, transport.as_deref());
        if !serving && shard.is_serving() {
            serving = true;
            info!(%core, groups = shard.replicas().count(), "shard recovered its log; serving");
            serving_flag.set();
        }
        let now = Instant::now();
        if now >= next_tick {
            publish(&router, core, &shard, &counters, waiting.len());
        }
        while now >= next_tick {
            shard.tick(wall_millis())?;
            next_tick += tick;
            progress = true;
        }
        if progress {
            glommio::yield_if_needed().await;
            continue;
        }
        let peers_arrived = async {
            match &transport {
                Some(transport) => transport.arrived().await,
                None => std::future::pending().await,
            }
        };
        futures_lite::future::or(wait(inbox, &router, &disk, next_tick - now), peers_arrived).await;
    }
    disk.close().await.map_err(|error| Fatal::Storage(format!("closing the log: {error}")))?;
    for (_, (ticket, index)) in waiting.drain() {
        ticket.fill(index, Err(ShardError::Unavailable("the node stopped".to_string())));
    }
    info!(%core, "shard stopped");
    Ok(())
}

/// Submits the shard's disk requests and hands it the completions; whether any completed.
fn disk_turn<M: Machine>(
    shard: &mut Shard<M>,
    disk: &mut DmaDisk,
    completions: &mut Vec<Completion>,
    counters: &mut CoreStatus,
) -> Result<bool, Fatal> {
    for (op, request) in shard.pump()? {
        counters.disk_requests += 1;
        counters.log_syncs += u64::from(matches!(request, DiskRequest::Sync { .. }));
        counters.log_writes += u64::from(matches!(request, DiskRequest::Write { .. }));
        disk.submit(op, request);
    }
    disk.poll(completions);
    let completed = !completions.is_empty();
    for completion in completions.drain(..) {
        shard.on_completion(&completion)?;
    }
    Ok(completed)
}

/// Publishes this core's report (`runtime/status.rs`); once per tick.
fn publish<M: Machine>(
    router: &Router<M::Command, M::Reply>,
    core: CoreIndex,
    shard: &Shard<M>,
    counters: &CoreStatus,
    waiting: usize,
) {
    let report = CoreStatus {
        serving: shard.is_serving(),
        stats: shard.stats,
        groups: shard.group_status(),
        waiting,
        ..counters.clone()
    };
    router.status.publish(usize::from(core.0), report);
}

/// Hands the shard what peers sent (consensus messages, forwarded requests and answers);
/// whether anything arrived.
fn receive_from_peers<M: Machine>(
    transport: &Transport,
    shard: &mut Shard<M>,
) -> Result<bool, Fatal> {
    let mut arrived = false;
    for (from, group, message) in transport.receive() {
        arrived = true;
        shard.on_message(from, group, message)?;
    }
    for (from, message) in transport.receive_forwards() {
        arrived = true;
        shard.on_forward(from, message)?;
    }
    Ok(arrived)
}

/// Waits for work: an envelope, a disk completion, the next tick, or a stop.
async fn wait<C, R>(inbox: &Inbox<C, R>, router: &Router<C, R>, disk: &DmaDisk, timeout: Duration) {
    let arrived = futures_lite::future::poll_fn(|context| {
        inbox.waker.register(context.waker());
        if inbox.queue.is_empty() && !router.is_stopping() {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    });
    let timer = glommio::timer::sleep(timeout);
    if disk.in_flight_count() > 0 {
        futures_lite::future::or(futures_lite::future::or(arrived, disk.completed()), async {
            timer.await;
        })
        .await;
    } else {
        futures_lite::future::or(arrived, async {
            timer.await;
        })
        .await;
    }
}

fn request<C>(op: Op<C>, token: Token) -> Request<C> {
    match op {
        Op::Write { group, client, sequence, command, bytes } => {
            Request::Write { group, client, sequence, command, token, bytes }
        }
        Op::Read { group, consistency, command, behind_writes } => {
            Request::Read { group, consistency, command, token, behind_writes }
        }
    }
}

/// One loop turn of snapshot transfer: serves peers' requests, feeds chunks to fetches,
/// starts the fetches the replicas want, and aborts the silent ones. Whether anything arrived.
fn snapshot_turn<M: Machine>(
    core: CoreIndex,
    shard: &mut Shard<M>,
    fetches: &mut Fetches,
    transport: Option<&Transport>,
) -> bool {
    let Some(transport) = transport else {
        for (group, from, _) in shard.take_snapshots_wanted() {
            debug!(%core, %group, %from, "no peer transport: snapshot fetch aborted");
            shard.snapshot_aborted(group);
        }
        return false;
    };
    let received = transport.receive_snapshots();
    let progress = !received.is_empty();
    for (from, message) in received {
        let outcome = snapshot_message(shard, fetches, transport, from, message);
        snapshot_outcome(shard, transport, outcome);
    }
    for (group, from, slot) in shard.take_snapshots_wanted() {
        info!(%core, %group, %from, %slot, "fetching a snapshot");
        let outcome = fetches.want(group, from, slot, wall_millis());
        snapshot_outcome(shard, transport, Some(outcome));
    }
    let mut expired = Vec::new();
    fetches.expire(wall_millis(), &mut expired);
    for outcome in expired {
        snapshot_outcome(shard, transport, Some(outcome));
    }
    progress
}
/// Handles one snapshot-transfer message: serves a request from this shard's latest durable
/// snapshot, or feeds a chunk or refusal to the fetch it belongs to.
fn snapshot_message<M: Machine>(
    shard: &Shard<M>,
    fetches: &mut Fetches,
    transport: &Transport,
    from: NodeId,
    message: SnapshotMessage,
) -> Option<Outcome> {
    match message {
        SnapshotMessage::Request { group, slot, offset } => {
            for chunk in serve(shard.snapshot(group), group, slot, offset) {
                transport.send_snapshot(from, &chunk);
            }
            None
        }
        SnapshotMessage::Chunk { group, meta, total, offset, bytes } => {
            fetches.on_chunk(from, group, meta, total, offset, &bytes, wall_millis())
        }
        SnapshotMessage::Refused { group, .. } => fetches.on_refused(from, group),
    }
}

/// Carries out what a transfer asks for.
fn snapshot_outcome<M: Machine>(
    shard: &mut Shard<M>,
    transport: &Transport,
    outcome: Option<Outcome>,
) {
    match outcome {
        None => {}
        Some(Outcome::Send(to, message)) => transport.send_snapshot(to, &message),
        Some(Outcome::Install(group, meta, state)) => {
            info!(%group, slot = %meta.slot, bytes = state.len(), "snapshot fetched; installing");
            shard.install_snapshot(group, meta, state);
        }
        Some(Outcome::Abort(group)) => {
            debug!(%group, "snapshot fetch aborted; the replica asks again later");
            shard.snapshot_aborted(group);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_tags_pick_the_group_and_the_function_is_stable() {
        assert_eq!(group_of(b"{user1}.a", 64), group_of(b"{user1}.b", 64));
        assert_eq!(group_of(b"{user1}.a", 64), group_of(b"user1", 64));
        // An empty tag hashes the whole key, as in Redis Cluster.
        assert_eq!(group_of(b"{}.a", 64), GroupId(crc32c::crc32c(b"{}.a") % 64));
        // Pinned values: changing the function would misroute every existing data directory.
        assert_eq!(group_of(b"foo", 16), GroupId(crc32c::crc32c(b"foo") % 16));
        assert_eq!(crc32c::crc32c(b"foo"), 0xcfc4_ae1d);
    }

    #[test]
    fn a_full_inbox_refuses_with_overloaded_and_fills_every_slot() {
        let router: Router<u32, u32> = Router::new(NodeId::DEFAULT, 1, 1);
        let read = |command| Op::Read {
            group: GroupId(0),
            consistency: Consistency::Stale,
            command,
            behind_writes: false,
        };
        let mut tickets = Vec::new();
        for command in 0..=NODE_INBOX_ENVELOPES_MAX {
            tickets.push(router.submit(vec![read(u32::try_from(command).unwrap())]));
        }
        let last = tickets.pop().unwrap();
        let replies = futures_lite::future::block_on(last);
        assert_eq!(replies, vec![Err(ShardError::Overloaded)]);
        router.stop();
        let refused = futures_lite::future::block_on(router.submit(vec![read(7)]));
        assert!(matches!(refused.as_slice(), [Err(ShardError::Unavailable(_))]));
    }

    #[test]
    fn a_layout_is_written_once_and_a_different_one_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout { cores: 2, groups: 8 };
        assert_eq!(Layout::check_or_create(dir.path(), layout), Ok(layout));
        assert_eq!(Layout::check_or_create(dir.path(), layout), Ok(layout));
        let error = Layout::check_or_create(dir.path(), Layout { cores: 1, groups: 4 });
        assert!(error.unwrap_err().contains("created for 2 cores and 8 groups"));
    }
}
