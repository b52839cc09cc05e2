//! The load generator behind `klein-bench`: drives any Redis-protocol server (Klein, Redis)
//! over TCP and measures it. A client of the server like any other, it uses no other layer.
//!
//! - **Closed loop** (like `redis-benchmark -P`): every connection keeps `pipeline` requests
//!   in flight; as replies arrive it refills, one write per connection per turn. Latency runs
//!   from the write of a request to its reply.
//! - **Open loop** (`open_loop_rate`): every connection sends on a fixed schedule (the total
//!   rate split evenly, connections staggered), at most `pipeline` in flight. Latency runs from
//!   the *intended* send time, so a stalled server shows up in the latency instead of slowing
//!   the generator down (no coordinated omission). Sends made more than [`LATE_AFTER`] behind
//!   schedule count as late; sends still owed when the run ends count as dropped.
//!
//! Every reply is parsed (RESP2 and RESP3) and judged: error replies are counted by their first
//! word (`ERR`, `BUSY`, `OOM`, ...) and never as successes; a `GET` must return `value_size`
//! bytes or nil. A request without a reply after `timeout` fails its connection.
//!
//! Threads are plain `std` threads, each with its own epoll loop over its connections
//! (decision `docs/decisions/0005-load-generator-io.md`).

pub mod reply;
pub mod report;
pub mod stats;
mod worker;
pub mod workload;

use std::fmt;
use std::io::{self, Read as _, Write as _};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs as _};
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

pub use report::Report;
pub use stats::Stats;
pub use workload::{KeyDist, Mix, Op};

/// Open loop: a send made later than this after its scheduled time counts as late.
pub const LATE_AFTER: Duration = Duration::from_millis(1);
/// How long connecting and the `HELLO 3` handshake may take, per connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// When a run stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// After this many measured requests in total (split evenly over the connections).
    Requests(u64),
    /// After this long, measured from the end of the warm-up.
    Duration(Duration),
}

/// One run's settings (the flags of `klein-bench`).
#[derive(Debug, Clone)]
pub struct Config {
    /// Server host name or address.
    pub host: String,
    /// Server port.
    pub port: u16,
    /// Connections.
    pub clients: usize,
    /// Generator threads (connections are dealt round-robin).
    pub threads: usize,
    /// Requests in flight per connection (closed loop), or the most allowed (open loop).
    pub pipeline: usize,
    /// When to stop.
    pub stop: Stop,
    /// Time before measuring starts (requests sent during it are not counted).
    pub warmup: Duration,
    /// Keys are `key:0..keyspace` (12 digits).
    pub keyspace: u64,
    /// How keys are drawn.
    pub key_dist: KeyDist,
    /// Bytes per `SET` value.
    pub value_size: usize,
    /// The command mix.
    pub mix: Mix,
    /// Open loop at this many requests per second in total; `None` is closed loop.
    pub open_loop_rate: Option<f64>,
    /// Send `HELLO 3` first (RESP3 replies).
    pub resp3: bool,
    /// Seed of the key and command choice (connection `i` uses a stream derived from it).
    pub seed: u64,
    /// A request without a reply after this long fails its connection.
    pub timeout: Duration,
    /// CPUs to pin the generator threads to (thread `i` on `cpus[i % len]`); empty: no pinning.
    pub cpus: Vec<usize>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            host: "127.0.0.1".to_string(),
            port: 6379,
            clients: 50,
            threads: 1,
            pipeline: 1,
            stop: Stop::Duration(Duration::from_secs(10)),
            warmup: Duration::ZERO,
            keyspace: 100_000,
            key_dist: KeyDist::Uniform,
            value_size: 64,
            mix: Mix::from_str_or_set("set"),
            open_loop_rate: None,
            resp3: false,
            seed: 1,
            timeout: Duration::from_secs(10),
            cpus: Vec::new(),
        }
    }
}

impl Mix {
    fn from_str_or_set(text: &str) -> Mix {
        text.parse().unwrap_or_else(|_| "set".parse().expect("`set` is a mix"))
    }
}

/// Why a run could not start.
#[derive(Debug)]
pub enum Error {
    /// The settings contradict each other.
    Config(String),
    /// Connecting or the handshake failed.
    Connect(String),
    /// A generator thread could not start or failed.
    Worker(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Config(message) => write!(f, "invalid settings: {message}"),
            Error::Connect(message) => write!(f, "cannot connect: {message}"),
            Error::Worker(message) => write!(f, "generator thread failed: {message}"),
        }
    }
}

impl std::error::Error for Error {}

/// What the progress callback sees, about ten times a second.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    /// Time since the run started (warm-up included).
    pub elapsed: Duration,
    /// Whether the warm-up is still on.
    pub warming_up: bool,
    /// Measured requests answered so far.
    pub completed: u64,
    /// Requests (or whole seconds) the run is to measure.
    pub target: u64,
    /// Whether `target` counts requests (else seconds).
    pub target_is_requests: bool,
}

/// The schedule every worker follows.
#[derive(Debug, Clone)]
struct Plan {
    start: Instant,
    measure_start: Instant,
    /// No send at or after this instant (duration runs).
    end: Option<Instant>,
    /// Measured requests per connection index (requests runs).
    quotas: Vec<u64>,
    /// Open loop: the time between two sends of one connection.
    interval: Duration,
    late_after: Duration,
}

/// Counters the workers update and the sampling thread reads.
#[derive(Debug, Default)]
struct Shared {
    completed: AtomicU64,
}

impl Config {
    /// Checks the settings against each other.
    ///
    /// # Errors
    /// The first contradiction found, in words.
    pub fn validate(&self) -> Result<(), Error> {
        let fail = |message: String| Err(Error::Config(message));
        if self.clients == 0 {
            return fail("--clients must be at least 1".to_string());
        }
        if self.threads == 0 || self.threads > self.clients {
            return fail(format!("--threads must be 1..={} (the clients)", self.clients));
        }
        if self.pipeline == 0 {
            return fail("--pipeline must be at least 1".to_string());
        }
        match self.stop {
            Stop::Requests(0) => return fail("--requests must be at least 1".to_string()),
            Stop::Duration(duration) if duration.is_zero() => {
                return fail("--duration must be above 0".to_string());
            }
            _ => {}
        }
        if let Some(rate) = self.open_loop_rate
            && !(rate.is_finite() && rate > 0.0)
        {
            return fail(format!("--open-loop-rate must be above 0, not {rate}"));
        }
        if self.timeout.is_zero() {
            return fail("--timeout must be above 0".to_string());
        }
        workload::KeySampler::new(self.keyspace, self.key_dist).map_err(Error::Config)?;
        Ok(())
    }
}

/// Runs one benchmark: connects every client, drives the load, and reports. `progress` is
/// called about ten times a second from the calling thread.
///
/// # Errors
/// Invalid settings, a connection or handshake that failed, or a generator thread that could
/// not start. Failures during the run are counted in the report, not returned.
pub fn run(config: &Config, progress: &mut dyn FnMut(&Progress)) -> Result<Report, Error> {
    config.validate()?;
    let mut streams: Vec<Vec<(usize, TcpStream)>> = (0..config.threads).map(|_| vec![]).collect();
    for index in 0..config.clients {
        streams[index % config.threads].push((index, connect(config)?));
    }
    let plan = plan(config, Instant::now());
    let shared = Shared::default();
    let outcome = thread::scope(|scope| {
        let mut handles = Vec::new();
        for (thread_index, streams) in streams.into_iter().enumerate() {
            let (plan, shared) = (&plan, &shared);
            let cpu =
                (!config.cpus.is_empty()).then(|| config.cpus[thread_index % config.cpus.len()]);
            let handle = thread::Builder::new()
                .name(format!("klein-bench-{thread_index}"))
                .spawn_scoped(scope, move || {
                    if let Some(cpu) = cpu {
                        pin(cpu)?;
                    }
                    worker::run(config, plan, shared, streams)
                })
                .map_err(|error| Error::Worker(error.to_string()))?;
            handles.push(handle);
        }
        let sampled = report::sample(config, &plan, &shared.completed, &handles, progress);
        let mut stats = Stats::new();
        for handle in handles {
            let worker = handle.join().map_err(|_| Error::Worker("panicked".to_string()))?;
            stats.merge(&worker.map_err(|error| Error::Worker(error.to_string()))?);
        }
        Ok::<_, Error>((stats, sampled))
    })?;
    let (stats, sampled) = outcome;
    Ok(Report::new(config.clone(), stats, plan.measure_start, plan.end, sampled))
}

/// The settings that `SET` every key of `config`'s key space once (`value_size` bytes each),
/// closed loop over the same connections and threads, at least 16 requests in flight each:
/// run them before a `GET` benchmark so every `GET` can hit.
#[must_use]
pub fn prefill_config(config: &Config) -> Config {
    Config {
        stop: Stop::Requests(config.keyspace),
        warmup: Duration::ZERO,
        key_dist: KeyDist::Sequential,
        mix: Mix::from_str_or_set("set"),
        open_loop_rate: None,
        pipeline: config.pipeline.max(16),
        clients: config.clients.min(usize::try_from(config.keyspace).unwrap_or(usize::MAX)),
        threads: config.threads.min(usize::try_from(config.keyspace).unwrap_or(usize::MAX)),
        ..config.clone()
    }
}

/// The schedule of a run starting at `start`.
fn plan(config: &Config, start: Instant) -> Plan {
    let measure_start = start + config.warmup;
    let (end, quotas) = match config.stop {
        Stop::Duration(duration) => (Some(measure_start + duration), vec![]),
        Stop::Requests(total) => {
            let clients = u64::try_from(config.clients).unwrap_or(u64::MAX);
            let quotas = (0..clients)
                .map(|index| total / clients + u64::from(index < total % clients))
                .collect();
            (None, quotas)
        }
    };
    #[expect(clippy::cast_precision_loss, reason = "connection counts are small")]
    let interval = config
        .open_loop_rate
        .map_or(Duration::ZERO, |rate| Duration::from_secs_f64(config.clients as f64 / rate));
    Plan { start, measure_start, end, quotas, interval, late_after: LATE_AFTER }
}

/// Connects one client (blocking, with `TCP_NODELAY`) and, for RESP3, says `HELLO 3`.
fn connect(config: &Config) -> Result<TcpStream, Error> {
    let target = format!("{}:{}", config.host, config.port);
    let fail =
        |what: &str, error: &dyn fmt::Display| Error::Connect(format!("{target}: {what}: {error}"));
    let addresses: Vec<SocketAddr> = (config.host.as_str(), config.port)
        .to_socket_addrs()
        .map_err(|error| fail("resolve", &error))?
        .collect();
    let address = addresses.first().ok_or_else(|| fail("resolve", &"no address"))?;
    let stream = TcpStream::connect_timeout(address, CONNECT_TIMEOUT)
        .map_err(|error| fail("connect", &error))?;
    stream.set_nodelay(true).map_err(|error| fail("TCP_NODELAY", &error))?;
    if config.resp3 {
        hello3(&stream).map_err(|error| fail("HELLO 3", &error))?;
    }
    Ok(stream)
}

/// Sends `HELLO 3` and waits for a reply that is not an error.
fn hello3(mut stream: &TcpStream) -> io::Result<()> {
    stream.set_read_timeout(Some(CONNECT_TIMEOUT))?;
    stream.write_all(b"*2\r\n$5\r\nHELLO\r\n$1\r\n3\r\n")?;
    let mut buffer = vec![0u8; 4096];
    let mut filled = 0;
    loop {
        if filled == buffer.len() {
            buffer.resize(buffer.len() * 2, 0);
        }
        let read = stream.read(&mut buffer[filled..])?;
        if read == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "closed during HELLO"));
        }
        filled += read;
        match reply::parse(&buffer[..filled]) {
            Ok(None) => {}
            Ok(Some((reply::Reply::Error { .. }, length))) => {
                let text = String::from_utf8_lossy(&buffer[..length]);
                return Err(io::Error::other(format!("refused: {}", text.trim_end())));
            }
            Ok(Some((_, length))) if length == filled => break,
            Ok(Some(_)) => return Err(io::Error::other("more than one reply to HELLO")),
            Err(error) => return Err(io::Error::other(error.0)),
        }
    }
    stream.set_read_timeout(None)
}

/// Pins the calling thread to `cpu`.
fn pin(cpu: usize) -> io::Result<()> {
    if cpu >= rustix::thread::CpuSet::MAX_CPU {
        return Err(io::Error::other(format!("no CPU {cpu}")));
    }
    let mut set = rustix::thread::CpuSet::new();
    set.set(cpu);
    rustix::thread::sched_setaffinity(None, &set)?;
    Ok(())
}

/// Reads the shared completion counter.
fn completed(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_split_over_connections() {
        let config = Config { clients: 3, stop: Stop::Requests(10), ..Config::default() };
        let plan = plan(&config, Instant::now());
        assert_eq!(plan.quotas, [4, 3, 3]);
        assert_eq!(plan.end, None);
        assert_eq!(plan.interval, Duration::ZERO);
    }

    #[test]
    fn open_loop_interval_is_per_connection() {
        let config = Config { clients: 50, open_loop_rate: Some(10_000.0), ..Config::default() };
        assert_eq!(plan(&config, Instant::now()).interval, Duration::from_millis(5));
    }

    #[test]
    fn prefill_sets_every_key_once() {
        let config = Config { keyspace: 10, clients: 50, threads: 2, ..Config::default() };
        let prefill = prefill_config(&config);
        assert_eq!(prefill.stop, Stop::Requests(10));
        assert_eq!((prefill.clients, prefill.threads, prefill.pipeline), (10, 2, 16));
        assert_eq!(prefill.key_dist, KeyDist::Sequential);
        assert!(prefill.validate().is_ok());
    }

    #[test]
    fn contradictions_are_refused() {
        assert!(Config::default().validate().is_ok());
        for bad in [
            Config { clients: 0, ..Config::default() },
            Config { threads: 51, ..Config::default() },
            Config { pipeline: 0, ..Config::default() },
            Config { stop: Stop::Requests(0), ..Config::default() },
            Config { open_loop_rate: Some(0.0), ..Config::default() },
            Config { keyspace: 0, ..Config::default() },
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
    }
}
