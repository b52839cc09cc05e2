//! Thread-per-core runtime: the only module that names glommio.
//!
//! Owns: one glommio `LocalExecutor` per core, pinned (`Placement::Fixed`); the process-wide
//! set-up they need (memory-lock limit, data directory lock, signals); and the RESP listener
//! that accepts on every core (`SO_REUSEPORT`: the kernel spreads connections, no core hands
//! sockets to another). Later it owns the shards, the peer transport and the disk seam's real
//! implementation. [`shard`] is the pure part of a shard (no glommio, no clock), which the
//! simulator runs too: today its storage adapter between the consensus core and the log.
//!
//! Must never: let a glommio type escape (the layers above get [`Connection`], a plain byte
//! stream, and the [`ConnectionHandler`] trait), share mutable state between cores other than
//! through explicit messages, or decide anything the consensus core decides.
//!
//! ```text
//!  main thread                core 0 .. core N-1 (one pinned thread each)
//!  -----------                ----------------------------------------
//!  memlock::prepare           ShutdownSignal::register (SIGINT/SIGTERM)
//!  lock data dir              bind RESP listener (SO_REUSEPORT)
//!  spawn core 0 ----------->  report Ready(address)
//!  spawn cores 1.. -------->  report Ready(address)
//!  log "RESP listener ready"  accept -> ConnectionHandler::serve (local task)
//!  join all  <-------------   signal -> stop accepting, drop connections, exit
//! ```

pub mod disk_dma;
pub mod disk_modes;
#[cfg(test)]
mod enospc_tests;
pub mod log_bench;
pub mod memlock;
pub mod metrics;
pub mod node;
pub mod shard;
mod shutdown;
pub mod snapshot_fetch;
pub mod status;
pub mod transport;

use std::cell::Cell;
use std::collections::BTreeMap;
use std::fs::{File, OpenOptions, TryLockError};
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::mpsc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_lite::{AsyncRead, AsyncWrite};
use glommio::net::{TcpListener, TcpStream};
use glommio::{LocalExecutorBuilder, Placement};
use tracing::{debug, info, warn};

use crate::config::Config;
use crate::consensus::Membership;
use crate::constants::{CONNECTIONS_COUNT_MAX, SNAPSHOT_INTERVAL_SLOTS};
use crate::log::superblock::Superblock;
use crate::log::writer::WriterOptions;
use crate::types::{CoreIndex, GroupId};
use memlock::{IoMemoryPlan, MemlockOutcome, MemlockTooSmall};
use node::{Layout, Peers, Router, ShardTask};
use shard::{Machine, ShardOptions};
use shutdown::ShutdownSignal;

/// Serves accepted client connections. Implemented by the layer above (the RESP server); the
/// runtime calls it on the core that accepted the connection.
pub trait ConnectionHandler: Send + Sync + 'static {
    /// Returns the task that serves `connection` until it closes. It runs on the accepting
    /// core and is dropped (closing the connection) at shutdown.
    fn serve(&self, connection: Connection, client_id: u64) -> Pin<Box<dyn Future<Output = ()>>>;
}

/// An accepted client connection: a byte stream bound to the core that accepted it.
pub struct Connection {
    stream: TcpStream,
    peer: Option<SocketAddr>,
}

impl Connection {
    /// The client's address, when the socket still knows it.
    #[must_use]
    pub fn peer_address(&self) -> Option<SocketAddr> {
        self.peer
    }

    /// How long a read may wait for data before it fails with `TimedOut` (`None`: forever).
    pub fn set_read_timeout(&mut self, timeout: Option<Duration>) {
        // Only a zero duration is refused; callers never pass one.
        let _ = self.stream.set_read_timeout(timeout.filter(|timeout| !timeout.is_zero()));
    }

    /// Writes all of `bytes`, failing with `TimedOut` if the peer has not taken them within
    /// `limit` (a client that does not read its replies).
    ///
    /// # Errors
    /// The socket's error, or `TimedOut`.
    pub async fn write_all_within(&mut self, bytes: &[u8], limit: Duration) -> io::Result<()> {
        let stream = &mut self.stream;
        let write = async move { futures_lite::AsyncWriteExt::write_all(stream, bytes).await };
        let expire = async move {
            glommio::timer::Timer::new(limit).await;
            Err(io::Error::new(io::ErrorKind::TimedOut, "the peer did not take the bytes in time"))
        };
        futures_lite::future::or(write, expire).await
    }
}

impl AsyncRead for Connection {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Connection {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_close(cx)
    }
}

/// Why the node could not start (or stopped abnormally).
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The cluster settings are incomplete.
    #[error("{reason}")]
    ClusterConfig {
        /// What is missing.
        reason: String,
    },
    /// The data directory could not be created or opened.
    #[error("cannot use data directory {path}: {source}")]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// The failure.
        source: io::Error,
    },
    /// Another process holds the data directory.
    #[error("data directory {path} is in use by another klein process")]
    DataDirLocked {
        /// The directory.
        path: PathBuf,
    },
    /// The memory-lock limit is too small for the executors.
    #[error(transparent)]
    Memlock(#[from] MemlockTooSmall),
    /// The CPUs this process may run on could not be read, or are fewer than `--cores`.
    #[error("cannot place {cores} executors: {reason}")]
    Placement {
        /// Executors requested.
        cores: usize,
        /// What went wrong.
        reason: String,
    },
    /// The metrics endpoint could not be bound.
    #[error("cannot serve metrics on {address}: {source}")]
    Metrics {
        /// The address.
        address: SocketAddr,
        /// The failure.
        source: io::Error,
    },
    /// The RESP listener could not be bound.
    #[error("cannot listen on {address}: {source}")]
    Listen {
        /// The address.
        address: SocketAddr,
        /// The failure.
        source: io::Error,
    },
    /// The data directory was laid out for another number of cores or groups.
    #[error("{reason}")]
    Layout {
        /// Which, and how to start instead.
        reason: String,
    },
    /// An executor failed to start or stopped abnormally.
    #[error("core {core}: {reason}")]
    Executor {
        /// The core.
        core: CoreIndex,
        /// What went wrong.
        reason: String,
    },
}

/// The cluster id written into every log's superblock (one cluster per data directory; a
/// configurable id comes with cluster bootstrap).
const CLUSTER_ID: u64 = 1;

/// Name of the lock file that keeps two processes off one data directory.
const DATA_DIR_LOCK_FILE: &str = "LOCK";

/// What a core reports to the main thread once it is serving (or could not start).
enum CoreReport {
    Ready(Option<SocketAddr>),
    Failed(RuntimeError),
}

/// What a node runs on its cores besides the executors themselves.
pub struct Services<M: Machine> {
    /// Serves RESP connections accepted on `config.listen`; `None`: no listener (embedded).
    pub handler: Option<Arc<dyn ConnectionHandler>>,
    /// The router the shard tasks drain (shared with the callers that submit).
    pub router: Arc<Router<M::Command, M::Reply>>,
    /// Makes a fresh state machine for a group.
    pub make_machine: Arc<dyn Fn() -> M + Send + Sync>,
    /// Whether SIGINT/SIGTERM stop the node (the server: yes; an embedding host: no, it calls
    /// [`Router::stop`]).
    pub signals: bool,
    /// Told once every core serves: the RESP address if there is a listener.
    pub ready: Option<mpsc::Sender<Option<SocketAddr>>>,
}

/// Starts one pinned executor per configured core, each with its shard (the groups it owns,
/// over its own log under `data_dir/core-N`) and, with a handler, a RESP listener; runs until
/// SIGINT/SIGTERM (with `signals`) or [`Router::stop`], then shuts down in order.
///
/// # Errors
/// See [`RuntimeError`].
///
/// # Panics
/// Only on a broken invariant: `config.cores` is validated to at most
/// [`crate::constants::CORES_COUNT_MAX`], which fits a [`CoreIndex`].
#[allow(clippy::needless_pass_by_value)] // The services are the node's for its whole life.
pub fn run<M>(config: &Config, services: Services<M>) -> Result<(), RuntimeError>
where
    M: Machine + 'static,
    M::Command: Send + 'static,
    M::Reply: Send + 'static,
{
    let peers = peers(config)?;
    let _data_dir_lock = lock_data_dir(&config.data_dir)?;
    let layout = Layout { cores: config.cores, groups: services.router.groups() };
    Layout::check_or_create(&config.data_dir, layout)
        .map_err(|reason| RuntimeError::Layout { reason })?;
    let cpus = allowed_cpus(config.cores)?;
    let plan = memlock::prepare(config.cores)?;
    log_memlock_plan(&plan, config.cores);
    if services.handler.is_some() {
        refuse_shared_port(config.listen)?;
    }
    let _metrics = match config.metrics_listen {
        Some(address) => Some(
            metrics::start(address, Arc::clone(&services.router))
                .map_err(|source| RuntimeError::Metrics { address, source })?,
        ),
        None => None,
    };

    let mut handles = Vec::with_capacity(config.cores);
    let mut reports = Vec::with_capacity(config.cores);
    let mut address = config.listen;
    for (index, cpu) in cpus.iter().copied().enumerate() {
        let core = CoreIndex(u16::try_from(index).expect("cores are bounded by CORES_COUNT_MAX"));
        let (report, report_receiver) = mpsc::channel();
        let shard = ShardTask {
            core,
            dir: node::core_dir(&config.data_dir, core),
            options: shard_options(config, core, services.router.groups()),
            make_machine: Arc::clone(&services.make_machine),
            router: Arc::clone(&services.router),
            peers: peers.clone(),
        };
        let context = CoreContext {
            core,
            cores: config.cores,
            listen: services.handler.as_ref().map(|_| address),
            handler: services.handler.clone(),
            signals: services.signals,
            shard,
            report,
        };
        let handle = LocalExecutorBuilder::new(Placement::Fixed(cpu))
            .name(&format!("klein-core-{index}"))
            .io_memory(plan.io_memory_bytes)
            .spawn(move || core_main(context));
        let handle = match handle {
            Ok(handle) => handle,
            Err(error) => {
                let error = RuntimeError::Executor { core, reason: error.to_string() };
                return Err(stop_cores(handles, &reports, index > 0, error));
            }
        };
        handles.push((core, handle));
        // Core 0 binds first: when the configured port is 0 the kernel picks one, and the
        // other cores must join that same port.
        if index == 0 {
            match wait_ready(core, &report_receiver) {
                Ok(bound) => address = bound.unwrap_or(address),
                Err(error) => return Err(stop_cores(handles, &[], false, error)),
            }
        } else {
            reports.push((core, report_receiver));
        }
    }
    let mut failure = None;
    for (core, receiver) in &reports {
        if let Err(error) = wait_ready(*core, receiver) {
            failure.get_or_insert(error);
        }
    }
    if let Some(error) = failure {
        return Err(stop_cores(handles, &[], true, error));
    }
    let data_dir = config.data_dir.display();
    if services.handler.is_some() {
        info!(%address, cores = config.cores, %data_dir, "RESP listener ready");
    } else {
        info!(cores = config.cores, %data_dir, "node ready");
    }
    if let Some(ready) = &services.ready {
        let _ = ready.send(services.handler.as_ref().map(|_| address));
    }
    let mut first_error = None;
    for (core, handle) in handles {
        if let Err(error) = handle.join() {
            first_error.get_or_insert(RuntimeError::Executor { core, reason: error.to_string() });
        }
    }
    if let Some(error) = first_error {
        Err(error)
    } else {
        info!("shutdown complete");
        Ok(())
    }
}

/// Waits for one core to report that it serves, or why it cannot.
fn wait_ready(
    core: CoreIndex,
    receiver: &mpsc::Receiver<CoreReport>,
) -> Result<Option<SocketAddr>, RuntimeError> {
    match receiver.recv() {
        Ok(CoreReport::Ready(bound)) => Ok(bound),
        Ok(CoreReport::Failed(error)) => Err(error),
        Err(_) => Err(RuntimeError::Executor { core, reason: "stopped before serving".into() }),
    }
}

/// Stops the cores already started after a start-up failure, and returns that failure.
///
/// Every core in `handles` has reported (or is waited for here through `pending`), so each
/// running one has registered for SIGTERM: raising it stops them through the one shutdown path.
/// `core_zero_serving` says whether any core runs at all; without one no handler is registered
/// and raising SIGTERM would kill the process instead of reporting `error`.
fn stop_cores(
    handles: Vec<(CoreIndex, glommio::ExecutorJoinHandle<()>)>,
    pending: &[(CoreIndex, mpsc::Receiver<CoreReport>)],
    core_zero_serving: bool,
    error: RuntimeError,
) -> RuntimeError {
    for (core, receiver) in pending {
        let _ = wait_ready(*core, receiver);
    }
    if core_zero_serving {
        let _ = signal_hook::low_level::raise(signal_hook::consts::SIGTERM);
    }
    for (core, handle) in handles {
        if let Err(error) = handle.join() {
            warn!(%core, %error, "executor stopped abnormally");
        }
    }
    error
}

/// Everything one core needs; moved into its thread.
struct CoreContext<M: Machine> {
    core: CoreIndex,
    cores: usize,
    /// Where to listen for RESP clients, when there is a handler.
    listen: Option<SocketAddr>,
    handler: Option<Arc<dyn ConnectionHandler>>,
    signals: bool,
    shard: ShardTask<M>,
    report: mpsc::Sender<CoreReport>,
}

/// The peer transport's settings, for a cluster of more than one node.
fn peers(config: &Config) -> Result<Option<Peers>, RuntimeError> {
    if config.is_single_node() {
        return Ok(None);
    }
    let missing = |what: String| RuntimeError::ClusterConfig { reason: what };
    let listen = config
        .peer_listen
        .ok_or_else(|| missing("a cluster of several nodes needs --peer-listen".to_string()))?;
    let mut members = BTreeMap::new();
    for (node, address) in &config.initial_cluster {
        let address = address
            .ok_or_else(|| missing(format!("--initial-cluster gives no address for {node}")))?;
        members.insert(*node, address);
    }
    let last = CoreIndex(u16::try_from(config.cores - 1).expect("cores are bounded"));
    for address in members.values().chain([&listen]) {
        if transport::core_address(*address, last).is_none() {
            return Err(missing(format!(
                "peer port {} leaves no room for {} cores (core k uses port + k * {})",
                address.port(),
                config.cores,
                crate::constants::PEER_PORT_CORE_STRIDE
            )));
        }
    }
    Ok(Some(Peers { cluster: CLUSTER_ID, listen, members }))
}

/// How a core's shard opens: its groups are those with `g % cores == core`.
fn shard_options(config: &Config, core: CoreIndex, groups: u32) -> ShardOptions {
    let cores = u32::try_from(config.cores).expect("cores are bounded by CORES_COUNT_MAX");
    let voters = config.initial_cluster.keys().copied().collect();
    ShardOptions {
        node: config.node_id,
        groups: (0..groups).filter(|g| g % cores == u32::from(core.0)).map(GroupId).collect(),
        membership: Membership::majority(1, voters, std::collections::BTreeSet::new())
            .expect("the initial cluster has at least this node"),
        identity: Superblock::new(CLUSTER_ID, config.node_id, core),
        writer: WriterOptions::DEFAULT,
        snapshot_interval_slots: SNAPSHOT_INTERVAL_SLOTS,
        seed: config.node_id.get() ^ (u64::from(core.0) << 32) ^ wall_seed(),
        prefer_lowest_master: true,
    }
}

/// Election jitter needs no secrecy, only different values on different nodes and starts.
fn wall_seed() -> u64 {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    now.map_or(0, |since| u64::try_from(since.as_nanos() & u128::from(u64::MAX)).unwrap_or(0))
}

async fn core_main<M>(context: CoreContext<M>)
where
    M: Machine + 'static,
{
    let CoreContext { core, cores, listen, handler, signals, shard, report } = context;
    let router = Arc::clone(&shard.router);
    let mut shutdown = if signals {
        match ShutdownSignal::register() {
            Ok(shutdown) => Some(shutdown),
            Err(error) => {
                let reason = format!("cannot register for SIGINT/SIGTERM: {error}");
                let _ = report.send(CoreReport::Failed(RuntimeError::Executor { core, reason }));
                return;
            }
        }
    } else {
        None
    };
    // Clients are served once the core's groups are recovered (a start-up reads the log).
    let serving = node::Serving::default();
    let shard_task = glommio::spawn_local(node::run_shard(shard, serving.clone()));
    serving.wait().await;
    let listener = match listen.map(TcpListener::bind).transpose() {
        Ok(listener) => listener,
        Err(source) => {
            let source = io::Error::from(source);
            let address = listen.expect("only a listener fails to bind");
            let _ = report.send(CoreReport::Failed(RuntimeError::Listen { address, source }));
            return;
        }
    };
    let bound = listener.as_ref().and_then(|l| l.local_addr().ok()).or(listen);
    let _ = report.send(CoreReport::Ready(bound));
    drop(report);
    debug!(%core, ?bound, "core serving");

    let stop = async {
        match &mut shutdown {
            Some(shutdown) => futures_lite::future::or(shutdown.wait(), router.stopped(core)).await,
            None => router.stopped(core).await,
        }
    };
    match (&listener, handler) {
        (Some(listener), Some(handler)) => {
            futures_lite::future::or(stop, accept_loop(core, cores, listener, handler)).await;
        }
        _ => stop.await,
    }
    info!(%core, "shutting down: no longer accepting; open connections are closed");
    // Every core stops its shard: the one that got the signal tells the others.
    router.stop();
    shard_task.await;
    // Returning ends the executor; its remaining tasks (the connections) are dropped with it,
    // which closes their sockets.
}

/// Accepts connections on this core until the process shuts down.
async fn accept_loop(
    core: CoreIndex,
    cores: usize,
    listener: &TcpListener,
    handler: Arc<dyn ConnectionHandler>,
) {
    let connections_max = (CONNECTIONS_COUNT_MAX / cores).max(1);
    let open = Rc::new(Cell::new(0_usize));
    let mut accepted: u64 = 0;
    loop {
        let stream = match listener.accept().await {
            Ok(stream) => stream,
            Err(error) => {
                // Out of descriptors or memory: back off instead of spinning on the error.
                warn!(%core, %error, "accept failed");
                glommio::timer::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        if open.get() >= connections_max {
            refuse_connection(stream);
            continue;
        }
        let _ = stream.set_nodelay(true);
        accepted += 1;
        // Unique per node without shared state: core k hands out k+1, k+1+cores, ...
        let client_id = (accepted - 1) * cores as u64 + u64::from(core.0) + 1;
        let peer = stream.peer_addr().ok();
        let serving = handler.serve(Connection { stream, peer }, client_id);
        let open_count = Rc::clone(&open);
        open_count.set(open_count.get() + 1);
        glommio::spawn_local(async move {
            serving.await;
            open_count.set(open_count.get() - 1);
        })
        .detach();
    }
}

/// Tells a client over the connection limit why it is refused, as Redis does, and closes.
fn refuse_connection(mut stream: TcpStream) {
    glommio::spawn_local(async move {
        use futures_lite::AsyncWriteExt;
        let _ = stream.write_all(b"-ERR max number of clients reached\r\n").await;
    })
    .detach();
}

/// Creates the data directory and takes its lock file for the life of the process.
fn lock_data_dir(path: &Path) -> Result<File, RuntimeError> {
    let data_dir_error = |source| RuntimeError::DataDir { path: path.to_path_buf(), source };
    std::fs::create_dir_all(path).map_err(data_dir_error)?;
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path.join(DATA_DIR_LOCK_FILE))
        .map_err(data_dir_error)?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(TryLockError::WouldBlock) => {
            Err(RuntimeError::DataDirLocked { path: path.to_path_buf() })
        }
        Err(TryLockError::Error(source)) => Err(data_dir_error(source)),
    }
}

/// The first `cores` CPUs this process may run on.
fn allowed_cpus(cores: usize) -> Result<Vec<usize>, RuntimeError> {
    let placement_error = |reason: String| RuntimeError::Placement { cores, reason };
    let set = rustix::thread::sched_getaffinity(None)
        .map_err(|error| placement_error(format!("sched_getaffinity: {error}")))?;
    let cpus: Vec<usize> =
        (0..rustix::thread::CpuSet::MAX_CPU).filter(|cpu| set.is_set(*cpu)).take(cores).collect();
    if cpus.len() < cores {
        return Err(placement_error(format!("only {} CPUs are available", cpus.len())));
    }
    Ok(cpus)
}

/// Refuses to start on a port another process already listens on.
///
/// The per-core listeners use `SO_REUSEPORT`, which would let a second Klein (same user) share
/// the port silently and receive half the connections. A plain bind without the option fails
/// if anyone listens there.
fn refuse_shared_port(address: SocketAddr) -> Result<(), RuntimeError> {
    if address.port() == 0 {
        return Ok(());
    }
    std::net::TcpListener::bind(address)
        .map(drop)
        .map_err(|source| RuntimeError::Listen { address, source })
}

fn log_memlock_plan(plan: &IoMemoryPlan, cores: usize) {
    let io_memory_kib = plan.io_memory_bytes / 1024;
    match plan.outcome {
        MemlockOutcome::Sufficient { limit_bytes: None } => {
            info!(
                cores,
                io_memory_kib, "RLIMIT_MEMLOCK is unlimited; glommio I/O memory at default"
            );
        }
        MemlockOutcome::Sufficient { limit_bytes: Some(limit) } => info!(
            cores,
            io_memory_kib,
            limit_kib = limit / 1024,
            "RLIMIT_MEMLOCK already sufficient; glommio I/O memory at default"
        ),
        MemlockOutcome::Raised { from_bytes, to_bytes } => info!(
            cores,
            io_memory_kib,
            from_kib = from_bytes / 1024,
            to_kib = to_bytes / 1024,
            "raised RLIMIT_MEMLOCK; glommio I/O memory at default"
        ),
        MemlockOutcome::Fitted { limit_bytes } => warn!(
            cores,
            io_memory_kib,
            limit_kib = limit_bytes / 1024,
            "RLIMIT_MEMLOCK cannot be raised; glommio I/O memory shrunk to fit the limit"
        ),
    }
}
