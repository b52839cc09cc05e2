//! The `klein` binary: parse flags, build the configuration, run the node. Nothing else.

use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use klein::config::{Config, LogLevel, Number, Settings};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Exit code for a command line or configuration Klein refuses (as clap uses for usage).
const EXIT_CONFIG: u8 = 2;
/// Exit code for a node that could not start or stopped abnormally.
const EXIT_RUNTIME: u8 = 1;
// A storage failure exits with its own code (`klein::constants::EXIT_CODE_STORAGE_FAILURE`).
const _: () = assert!(klein::constants::EXIT_CODE_STORAGE_FAILURE != EXIT_CONFIG);
const _: () = assert!(klein::constants::EXIT_CODE_STORAGE_FAILURE != EXIT_RUNTIME);

/// Klein: a Paxos-replicated, durable store that speaks the Redis protocol.
#[derive(Parser, Debug)]
#[command(name = "klein", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run a node that serves the Redis protocol (single node unless --initial-cluster).
    Server(Box<ServerArgs>),
    /// Start a local cluster of `klein server` processes (one core each) and stop it on Ctrl-C.
    Dev(DevArgs),
    /// Ask a running node about itself (over its Redis-protocol listener).
    Admin(AdminArgs),
}

/// Flags of `klein admin`.
#[derive(Args, Debug)]
struct AdminArgs {
    /// The node's RESP address.
    #[arg(long, value_name = "IP:PORT", default_value = "127.0.0.1:6379", global = true)]
    address: std::net::SocketAddr,
    #[command(subcommand)]
    command: AdminCommand,
}

#[derive(Subcommand, Debug)]
enum AdminCommand {
    /// Per group: role, master, ballot, chosen and applied slots, and (at a master) each
    /// peer's lag (`KLEIN STATUS`).
    Status,
}

/// Flags of `klein dev`.
#[derive(Args, Debug)]
struct DevArgs {
    /// Nodes to start.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=9))]
    nodes: u16,
    /// Folder holding every node's data directory (`n1`, `n2`, ...).
    #[arg(long, value_name = "DIR", default_value = "klein-dev")]
    dir: PathBuf,
    /// RESP port of node 1; node i listens on this + i - 1.
    #[arg(long, default_value_t = 7001)]
    port: u16,
    /// Peer port of node 1; node i uses this + i - 1.
    #[arg(long, default_value_t = 7101)]
    peer_port: u16,
}

/// Flags of `klein server`; each overrides the same key of `--config`.
#[derive(Args, Debug)]
struct ServerArgs {
    /// TOML configuration file (keys: listen, `data_dir`, cores, `node_id`, `peer_listen`,
    /// `initial_cluster`, `log_level`, `metrics_listen`).
    /// `initial_cluster`, `log_level`, requirepass, users = ["name:password", ...], timeout).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// RESP listen address [default: 127.0.0.1:6379].
    #[arg(long, value_name = "IP:PORT")]
    listen: Option<String>,
    /// Data directory [default: ./klein-data].
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Cores (pinned executors) to run [default: all this process may use].
    #[arg(long, value_name = "N")]
    cores: Option<String>,
    /// This node's id in the cluster [default: 1].
    #[arg(long, value_name = "ID")]
    node_id: Option<String>,
    /// Peer (node-to-node) listen address [default: this node's --initial-cluster entry].
    #[arg(long, value_name = "IP:PORT")]
    peer_listen: Option<String>,
    /// Initial members, etcd-style: 1=127.0.0.1:7101,2=127.0.0.1:7102,... [default: this node
    /// alone].
    #[arg(long, value_name = "ID=IP:PORT,...")]
    initial_cluster: Option<String>,
    /// Log level: error, warn, info, debug or trace [default: info].
    #[arg(long, value_name = "LEVEL")]
    log_level: Option<String>,
    /// Prometheus metrics endpoint (`GET /metrics`) listen address [default: none].
    #[arg(long, value_name = "IP:PORT")]
    metrics_listen: Option<String>,
    /// Password of the `default` user, as Redis's requirepass: clients must AUTH (or HELLO
    /// ... AUTH) before any other command [default: none].
    #[arg(long, value_name = "PASSWORD")]
    requirepass: Option<String>,
    /// A user for `AUTH name password`, as NAME:PASSWORD; repeat for more users (replaces the
    /// file's `users`). `default:PASSWORD` is the same as --requirepass.
    #[arg(long = "user", value_name = "NAME:PASSWORD")]
    users: Vec<String>,
    /// Close client connections idle for this many seconds; 0 never [default: 0].
    #[arg(long, value_name = "SECONDS")]
    timeout: Option<String>,
}

impl ServerArgs {
    fn settings(&self) -> Settings {
        Settings {
            listen: self.listen.clone(),
            data_dir: self.data_dir.clone(),
            cores: self.cores.clone().map(Number::Text),
            node_id: self.node_id.clone().map(Number::Text),
            peer_listen: self.peer_listen.clone(),
            initial_cluster: self.initial_cluster.clone(),
            log_level: self.log_level.clone(),
            metrics_listen: self.metrics_listen.clone(),
            requirepass: self.requirepass.clone(),
            users: if self.users.is_empty() { None } else { Some(self.users.clone()) },
            timeout: self.timeout.clone().map(Number::Text),
        }
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) if !error.use_stderr() => error.exit(), // --help, --version
        Err(error) => {
            // clap's message is several lines (usage, hint); one line names the problem.
            let rendered = error.render().to_string();
            let first = rendered.lines().next().unwrap_or("invalid command line");
            eprintln!("klein: {}", first.trim_start_matches("error: "));
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    match cli.command {
        Command::Server(args) => server(&args),
        Command::Dev(args) => dev(&args),
        Command::Admin(args) => admin(&args),
    }
}

/// `klein admin ...`: one admin command to one node, its answer printed.
fn admin(args: &AdminArgs) -> ExitCode {
    let arguments: &[&str] = match args.command {
        AdminCommand::Status => &["KLEIN", "STATUS"],
    };
    match klein::admin::request(args.address, arguments) {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("klein admin: {error}");
            ExitCode::from(EXIT_RUNTIME)
        }
    }
}

/// `klein dev`: one `klein server` process per node on loopback, data under `--dir`.
fn dev(args: &DevArgs) -> ExitCode {
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        if let Err(error) = signal_hook::flag::register(signal, std::sync::Arc::clone(&stop)) {
            eprintln!("klein: cannot register for signals: {error}");
            return ExitCode::from(EXIT_RUNTIME);
        }
    }
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(error) => {
            eprintln!("klein: cannot find this executable: {error}");
            return ExitCode::from(EXIT_RUNTIME);
        }
    };
    let cluster: Vec<String> = (1..=args.nodes)
        .map(|node| format!("{node}=127.0.0.1:{}", args.peer_port + node - 1))
        .collect();
    let cluster = cluster.join(",");
    let mut children = Vec::new();
    for node in 1..=args.nodes {
        let listen = format!("127.0.0.1:{}", args.port + node - 1);
        let child = std::process::Command::new(&exe)
            .arg("server")
            .args(["--node-id", &node.to_string(), "--listen", &listen, "--cores", "1"])
            .args(["--peer-listen", &format!("127.0.0.1:{}", args.peer_port + node - 1)])
            .args(["--initial-cluster", &cluster])
            .arg("--data-dir")
            .arg(args.dir.join(format!("n{node}")))
            .spawn();
        match child {
            Ok(child) => {
                println!("node {node}: redis-cli -p {} (pid {})", args.port + node - 1, child.id());
                children.push(child);
            }
            Err(error) => {
                eprintln!("klein: cannot start node {node}: {error}");
                stop.store(true, std::sync::atomic::Ordering::Relaxed);
                break;
            }
        }
    }
    println!("cluster {cluster}; data in {}; Ctrl-C stops it", args.dir.display());
    let mut failed = false;
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        std::thread::sleep(std::time::Duration::from_millis(100));
        for child in &mut children {
            if let Ok(Some(status)) = child.try_wait() {
                // Ctrl-C reaches the children too; give our own flag a moment to say so.
                std::thread::sleep(std::time::Duration::from_millis(200));
                if stop.load(std::sync::atomic::Ordering::Relaxed) {
                    break;
                }
                eprintln!("klein: node pid {} exited: {status}; stopping the cluster", child.id());
                failed = true;
                stop.store(true, std::sync::atomic::Ordering::Relaxed);
            }
        }
    }
    for child in &children {
        if let Ok(pid) = i32::try_from(child.id()) {
            // The children are ours, stopped by PID; an exited one is simply reaped below.
            let _ = rustix::process::kill_process(
                rustix::process::Pid::from_raw(pid).expect("a child's pid is positive"),
                rustix::process::Signal::TERM,
            );
        }
    }
    for child in &mut children {
        let _ = child.wait();
    }
    println!("cluster stopped");
    if failed { ExitCode::from(EXIT_RUNTIME) } else { ExitCode::SUCCESS }
}

fn server(args: &ServerArgs) -> ExitCode {
    let config = match load_config(args) {
        Ok(config) => config,
        Err(message) => {
            eprintln!("klein: {message}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    init_logging(config.log_level);
    tracing::info!(version = klein::VERSION, node_id = %config.node_id, "starting klein server");
    match klein::server::run(&config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error}");
            eprintln!("klein: {error}");
            ExitCode::from(EXIT_RUNTIME)
        }
    }
}

fn load_config(args: &ServerArgs) -> Result<Config, String> {
    let file = match &args.config {
        None => None,
        Some(path) => {
            Some((path.as_path(), Settings::from_file(path).map_err(|error| error.to_string())?))
        }
    };
    let cores_online = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    Settings::resolve(file, args.settings(), cores_online).map_err(|error| error.to_string())
}

fn init_logging(level: LogLevel) {
    let level = match level {
        LogLevel::Error => tracing::Level::ERROR,
        LogLevel::Warn => tracing::Level::WARN,
        LogLevel::Info => tracing::Level::INFO,
        LogLevel::Debug => tracing::Level::DEBUG,
        LogLevel::Trace => tracing::Level::TRACE,
    };
    tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_thread_names(true)
        .init();
}
