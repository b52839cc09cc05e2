//! Node configuration: defaults, then a TOML file, then command-line flags, then validation.
//!
//! Every value is validated here, once, whatever its source, so the flag `--cores 0` and the
//! file line `cores = 0` get the same one-line error naming the field. The rest of the crate
//! only ever sees a validated [`Config`].
//!
//! This module reads the configuration file and the number of online CPUs; it must never start
//! anything (no threads, sockets or data files).

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::constants::CORES_COUNT_MAX;
use crate::types::NodeId;

/// Default RESP listen address: loopback only, the Redis port.
pub const LISTEN_DEFAULT: &str = "127.0.0.1:6379";

/// Default data directory, relative to the current directory.
pub const DATA_DIR_DEFAULT: &str = "./klein-data";

/// A validated node configuration. Its `Debug` form hides the passwords.
#[derive(Clone, PartialEq, Eq)]
pub struct Config {
    /// Address of the RESP (Redis protocol) listener.
    pub listen: SocketAddr,
    /// Directory holding this node's log, superblock and snapshots.
    pub data_dir: PathBuf,
    /// Number of cores (pinned executors) to run, at least 1.
    pub cores: usize,
    /// This node's id within the cluster.
    pub node_id: NodeId,
    /// Address of the peer (node-to-node) listener, if this node talks to peers.
    pub peer_listen: Option<SocketAddr>,
    /// The members the cluster starts with: node id to peer address. Holds only this node for
    /// a single-node cluster (the default).
    pub initial_cluster: BTreeMap<NodeId, Option<SocketAddr>>,
    /// Most verbose log level printed.
    pub log_level: LogLevel,
    /// Address of the Prometheus metrics endpoint (`GET /metrics`), if any.
    pub metrics_listen: Option<SocketAddr>,
    /// The `default` user's password (Redis's `requirepass`); `None`: connections start
    /// authenticated.
    pub requirepass: Option<String>,
    /// Named users and their passwords (`AUTH user password`); a user named `default` sets
    /// the default user's password like `requirepass`.
    pub users: Vec<(String, String)>,
    /// Seconds a client connection may stay idle before it is closed; 0 (the default, as
    /// Redis): never.
    pub timeout_seconds: u64,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let users: Vec<&str> = self.users.iter().map(|(name, _)| name.as_str()).collect();
        f.debug_struct("Config")
            .field("listen", &self.listen)
            .field("data_dir", &self.data_dir)
            .field("cores", &self.cores)
            .field("node_id", &self.node_id)
            .field("peer_listen", &self.peer_listen)
            .field("initial_cluster", &self.initial_cluster)
            .field("log_level", &self.log_level)
            .field("requirepass", &self.requirepass.as_ref().map(|_| "<hidden>"))
            .field("users", &users)
            .field("timeout_seconds", &self.timeout_seconds)
            .field("metrics_listen", &self.metrics_listen)
            .finish()
    }
}

impl Config {
    /// Whether this configuration describes a cluster of one node.
    #[must_use]
    pub fn is_single_node(&self) -> bool {
        self.initial_cluster.len() == 1
    }
}

/// Log verbosity, from least to most verbose.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    /// Errors only.
    Error,
    /// Errors and warnings.
    Warn,
    /// The default: start-up, shutdown and state changes.
    Info,
    /// Debugging detail.
    Debug,
    /// Everything.
    Trace,
}

impl LogLevel {
    fn parse(text: &str) -> Option<LogLevel> {
        match text.to_ascii_lowercase().as_str() {
            "error" => Some(LogLevel::Error),
            "warn" | "warning" => Some(LogLevel::Warn),
            "info" => Some(LogLevel::Info),
            "debug" => Some(LogLevel::Debug),
            "trace" => Some(LogLevel::Trace),
            _ => None,
        }
    }
}

/// Raw, unvalidated settings: the shape of both the TOML file and the command-line overrides.
///
/// Values are kept as text (or the TOML type) until [`Settings::resolve`] so that every source
/// is validated by the same code and reported with the same wording.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// See [`Config::listen`].
    pub listen: Option<String>,
    /// See [`Config::data_dir`].
    pub data_dir: Option<PathBuf>,
    /// See [`Config::cores`]; text so that the flag and the file share one parser.
    pub cores: Option<Number>,
    /// See [`Config::node_id`].
    pub node_id: Option<Number>,
    /// See [`Config::peer_listen`].
    pub peer_listen: Option<String>,
    /// etcd-style member list: `1=127.0.0.1:7101,2=127.0.0.1:7102`.
    pub initial_cluster: Option<String>,
    /// `error`, `warn`, `info`, `debug` or `trace`.
    pub log_level: Option<String>,
    /// See [`Config::metrics_listen`].
    pub metrics_listen: Option<String>,
    /// See [`Config::requirepass`].
    pub requirepass: Option<String>,
    /// See [`Config::users`]: `name:password` each.
    pub users: Option<Vec<String>>,
    /// See [`Config::timeout_seconds`].
    pub timeout: Option<Number>,
}

/// An integer setting as written: a TOML integer, or text from a flag.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum Number {
    /// A TOML integer.
    Integer(i64),
    /// Text from a command-line flag (or a quoted TOML string).
    Text(String),
}

impl fmt::Display for Number {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Number::Integer(value) => write!(f, "{value}"),
            Number::Text(text) => write!(f, "{text}"),
        }
    }
}

impl Number {
    fn to_u64(&self) -> Option<u64> {
        match self {
            Number::Integer(value) => u64::try_from(*value).ok(),
            Number::Text(text) => text.trim().parse().ok(),
        }
    }
}

/// Where a setting came from, so an error can point at it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// A command-line flag.
    Flag,
    /// A key in the named TOML file.
    File(PathBuf),
}

/// Why a configuration was refused. Displays as one line naming the field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// The setting at fault, as its flag would be spelled (`cores`, `initial-cluster`, ...).
    pub field: &'static str,
    /// Where it came from; `None` when the fault is a combination of settings.
    pub origin: Option<Origin>,
    /// What is wrong with it.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.origin {
            Some(Origin::Flag) | None => {
                write!(f, "invalid --{}: {}", self.field, self.message)
            }
            Some(Origin::File(path)) => write!(
                f,
                "invalid `{}` in {}: {}",
                self.field.replace('-', "_"),
                path.display(),
                self.message
            ),
        }
    }
}

impl std::error::Error for ConfigError {}

impl Settings {
    /// Reads settings from a TOML file.
    ///
    /// # Errors
    /// A missing or unreadable file, a TOML syntax error, an unknown key or a value of the wrong
    /// type, each as one line naming the file, the line and the key.
    pub fn from_file(path: &Path) -> Result<Settings, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|error| ConfigError {
            field: "config",
            origin: Some(Origin::Flag),
            message: format!("cannot read {}: {error}", path.display()),
        })?;
        Settings::from_toml(&text, path)
    }

    /// Parses settings from TOML text; `path` is only used in error messages.
    ///
    /// # Errors
    /// As [`Settings::from_file`].
    pub fn from_toml(text: &str, path: &Path) -> Result<Settings, ConfigError> {
        toml::from_str(text).map_err(|error| {
            let line = error
                .span()
                .map(|span| 1 + text[..span.start.min(text.len())].matches('\n').count());
            let message = error.message().replace('\n', " ");
            let message = message.trim_end();
            ConfigError {
                field: "config",
                origin: Some(Origin::Flag),
                message: match line {
                    Some(line) => format!("{} line {line}: {message}", path.display()),
                    None => format!("{}: {message}", path.display()),
                },
            }
        })
    }

    /// Layers `overrides` (command-line flags) on top of `self` (the file).
    #[must_use]
    pub fn merge(self, overrides: Settings) -> Settings {
        Settings {
            listen: overrides.listen.or(self.listen),
            data_dir: overrides.data_dir.or(self.data_dir),
            cores: overrides.cores.or(self.cores),
            node_id: overrides.node_id.or(self.node_id),
            peer_listen: overrides.peer_listen.or(self.peer_listen),
            initial_cluster: overrides.initial_cluster.or(self.initial_cluster),
            log_level: overrides.log_level.or(self.log_level),
            metrics_listen: overrides.metrics_listen.or(self.metrics_listen),
            requirepass: overrides.requirepass.or(self.requirepass),
            users: overrides.users.or(self.users),
            timeout: overrides.timeout.or(self.timeout),
        }
    }

    /// Validates the merged settings into a [`Config`].
    ///
    /// `flags` are the settings given on the command line (to name the origin of a bad value),
    /// `file` the configuration file if any, and `cores_online` the number of CPUs this process
    /// may run on.
    ///
    /// # Errors
    /// The first invalid setting, as one line naming it.
    pub fn resolve(
        file: Option<(&Path, Settings)>,
        flags: Settings,
        cores_online: usize,
    ) -> Result<Config, ConfigError> {
        let (file_path, file_settings) = match file {
            Some((path, settings)) => (Some(path.to_path_buf()), settings),
            None => (None, Settings::default()),
        };
        let origin = |from_flag: bool| {
            if from_flag { Some(Origin::Flag) } else { file_path.clone().map(Origin::File) }
        };
        let error = |field: &'static str, from_flag: bool, message: String| ConfigError {
            field,
            origin: origin(from_flag),
            message,
        };
        let from_flag = FromFlag::of(&flags);
        let merged = file_settings.merge(flags);

        let listen_text = merged.listen.as_deref().unwrap_or(LISTEN_DEFAULT);
        let listen = parse_address(listen_text)
            .map_err(|message| error("listen", from_flag.listen, message))?;

        let data_dir = merged.data_dir.unwrap_or_else(|| PathBuf::from(DATA_DIR_DEFAULT));
        if data_dir.as_os_str().is_empty() {
            return Err(error("data-dir", from_flag.data_dir, "must not be empty".into()));
        }

        let cores_limit = cores_online.clamp(1, CORES_COUNT_MAX);
        let cores = match &merged.cores {
            None => cores_limit,
            Some(number) => match number.to_u64().and_then(|n| usize::try_from(n).ok()) {
                Some(cores) if (1..=cores_limit).contains(&cores) => cores,
                _ => {
                    return Err(error(
                        "cores",
                        from_flag.cores,
                        format!(
                            "'{number}' is not a core count between 1 and {cores_limit} \
                             (the CPUs this process may use)"
                        ),
                    ));
                }
            },
        };

        let node_id = match &merged.node_id {
            None => NodeId::DEFAULT,
            Some(number) => number.to_u64().and_then(NodeId::new).ok_or_else(|| {
                error(
                    "node-id",
                    from_flag.node_id,
                    format!("'{number}' is not a node id (an integer of at least 1)"),
                )
            })?,
        };

        let peer_listen = parse_optional_address(merged.peer_listen.as_deref())
            .map_err(|message| error("peer-listen", from_flag.peer_listen, message))?;

        let initial_cluster = match merged.initial_cluster.as_deref() {
            None => BTreeMap::from([(node_id, peer_listen)]),
            Some(text) => {
                let members = parse_initial_cluster(text).map_err(|message| {
                    error("initial-cluster", from_flag.initial_cluster, message)
                })?;
                if !members.contains_key(&node_id) {
                    return Err(ConfigError {
                        field: "initial-cluster",
                        origin: origin(from_flag.initial_cluster),
                        message: format!("does not list this node (node id {node_id})"),
                    });
                }
                members.into_iter().map(|(id, address)| (id, Some(address))).collect()
            }
        };
        // A member of a multi-node cluster listens for peers on its own entry unless told to
        // bind elsewhere (for example 0.0.0.0 behind the advertised address).
        let peer_listen = peer_listen.or_else(|| initial_cluster.get(&node_id).copied().flatten());

        let log_level = match merged.log_level.as_deref() {
            None => LogLevel::Info,
            Some(text) => LogLevel::parse(text).ok_or_else(|| {
                let message = format!("'{text}' is not one of error, warn, info, debug, trace");
                error("log-level", from_flag.log_level, message)
            })?,
        };

        let metrics_listen = parse_optional_address(merged.metrics_listen.as_deref())
            .map_err(|message| error("metrics-listen", from_flag.metrics_listen, message))?;
        let requirepass = merged.requirepass.filter(|password| !password.is_empty());

        let users = parse_users(merged.users.unwrap_or_default())
            .map_err(|message| error("user", from_flag.users, message))?;

        let timeout_seconds = match &merged.timeout {
            None => 0,
            Some(number) => parse_seconds(number)
                .map_err(|message| error("timeout", from_flag.timeout, message))?,
        };

        Ok(Config {
            listen,
            data_dir,
            cores,
            node_id,
            peer_listen,
            initial_cluster,
            log_level,
            metrics_listen,
            requirepass,
            users,
            timeout_seconds,
        })
    }
}

/// Which settings were given as flags (and so are reported as `--flag` on error).
struct FromFlag {
    listen: bool,
    data_dir: bool,
    cores: bool,
    node_id: bool,
    peer_listen: bool,
    initial_cluster: bool,
    log_level: bool,
    metrics_listen: bool,
    users: bool,
    timeout: bool,
}

impl FromFlag {
    fn of(flags: &Settings) -> FromFlag {
        FromFlag {
            listen: flags.listen.is_some(),
            data_dir: flags.data_dir.is_some(),
            cores: flags.cores.is_some(),
            node_id: flags.node_id.is_some(),
            peer_listen: flags.peer_listen.is_some(),
            initial_cluster: flags.initial_cluster.is_some(),
            log_level: flags.log_level.is_some(),
            metrics_listen: flags.metrics_listen.is_some(),
            users: flags.users.is_some(),
            timeout: flags.timeout.is_some(),
        }
    }
}

/// Parses a number of seconds (0 allowed).
fn parse_seconds(number: &Number) -> Result<u64, String> {
    number.to_u64().ok_or_else(|| format!("'{number}' is not a number of seconds (0: never)"))
}

/// Parses `name:password` entries; names are unique. The message never quotes a password.
fn parse_users(entries: Vec<String>) -> Result<Vec<(String, String)>, String> {
    let mut users: Vec<(String, String)> = Vec::new();
    for entry in entries {
        let parsed = entry.split_once(':').filter(|(name, password)| {
            !name.is_empty() && !password.is_empty() && !name.contains(char::is_whitespace)
        });
        let Some((name, password)) = parsed else {
            return Err(
                "an entry is not NAME:PASSWORD (both non-empty, no spaces in the name)".into()
            );
        };
        if users.iter().any(|(known, _)| known == name) {
            return Err(format!("user '{name}' is given twice"));
        }
        users.push((name.to_string(), password.to_string()));
    }
    Ok(users)
}

fn parse_optional_address(text: Option<&str>) -> Result<Option<SocketAddr>, String> {
    text.map(parse_address).transpose()
}

fn parse_address(text: &str) -> Result<SocketAddr, String> {
    text.trim()
        .parse()
        .map_err(|_| format!("'{text}' is not an IP address with a port (like 127.0.0.1:6379)"))
}

/// Parses `1=127.0.0.1:7101,2=127.0.0.1:7102` into members; ids and addresses must be unique.
fn parse_initial_cluster(text: &str) -> Result<BTreeMap<NodeId, SocketAddr>, String> {
    let mut members = BTreeMap::new();
    for entry in text.split(',').map(str::trim) {
        if entry.is_empty() {
            return Err(format!("'{text}' has an empty member entry"));
        }
        let Some((id_text, address_text)) = entry.split_once('=') else {
            return Err(format!("member '{entry}' is not of the form ID=HOST:PORT"));
        };
        let id = id_text
            .trim()
            .parse()
            .ok()
            .and_then(NodeId::new)
            .ok_or_else(|| format!("member '{entry}': '{id_text}' is not a node id (>= 1)"))?;
        let address = parse_address(address_text)
            .map_err(|message| format!("member '{entry}': {message}"))?;
        if members.values().any(|existing| *existing == address) {
            return Err(format!("member '{entry}': address {address} is listed twice"));
        }
        if members.insert(id, address).is_some() {
            return Err(format!("member '{entry}': node id {id} is listed twice"));
        }
    }
    Ok(members)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags() -> Settings {
        Settings::default()
    }

    fn resolve_flags(flags: Settings) -> Result<Config, ConfigError> {
        Settings::resolve(None, flags, 4)
    }

    fn node(id: u64) -> NodeId {
        NodeId::new(id).unwrap()
    }

    #[test]
    fn defaults_are_a_single_loopback_node_in_the_current_directory() {
        let config = resolve_flags(flags()).unwrap();
        assert_eq!(config.listen, "127.0.0.1:6379".parse::<SocketAddr>().unwrap());
        assert_eq!(config.data_dir, PathBuf::from("./klein-data"));
        assert_eq!(config.cores, 4);
        assert_eq!(config.node_id, NodeId::DEFAULT);
        assert_eq!(config.peer_listen, None);
        assert!(config.is_single_node());
        assert_eq!(config.log_level, LogLevel::Info);
    }

    #[test]
    fn flags_override_the_file() {
        let file = Settings::from_toml(
            "listen = \"127.0.0.1:7000\"\ncores = 2\nlog_level = \"debug\"\n",
            Path::new("k.toml"),
        )
        .unwrap();
        let flags = Settings { cores: Some(Number::Text("1".into())), ..flags() };
        let config = Settings::resolve(Some((Path::new("k.toml"), file)), flags, 4).unwrap();
        assert_eq!(config.listen, "127.0.0.1:7000".parse::<SocketAddr>().unwrap());
        assert_eq!(config.cores, 1);
        assert_eq!(config.log_level, LogLevel::Debug);
    }

    #[test]
    fn bad_flag_names_the_flag_in_one_line() {
        let flags = Settings { cores: Some(Number::Text("abc".into())), ..flags() };
        let error = resolve_flags(flags).unwrap_err();
        assert_eq!(error.field, "cores");
        let line = error.to_string();
        assert!(line.starts_with("invalid --cores: 'abc'"), "{line}");
        assert!(!line.contains('\n'));
    }

    #[test]
    fn bad_file_value_names_the_file_and_key() {
        let path = Path::new("k.toml");
        let file = Settings::from_toml("cores = 0\n", path).unwrap();
        let error = Settings::resolve(Some((path, file)), flags(), 4).unwrap_err();
        assert_eq!(error.to_string().split(':').next().unwrap(), "invalid `cores` in k.toml");
    }

    #[test]
    fn cores_above_online_cpus_are_refused() {
        let flags = Settings { cores: Some(Number::Text("5".into())), ..flags() };
        assert_eq!(resolve_flags(flags).unwrap_err().field, "cores");
    }

    #[test]
    fn unknown_file_key_is_refused_with_its_line() {
        let error =
            Settings::from_toml("listen = \"127.0.0.1:1\"\ncors = 2\n", Path::new("k.toml"))
                .unwrap_err();
        let line = error.to_string();
        assert!(line.contains("k.toml line 2"), "{line}");
        assert!(line.contains("cors"), "{line}");
        assert!(!line.contains('\n'), "{line}");
    }

    #[test]
    fn wrong_file_type_is_refused() {
        let error = Settings::from_toml("listen = 5\n", Path::new("k.toml")).unwrap_err();
        assert!(error.to_string().contains("line 1"), "{error}");
    }

    #[test]
    fn initial_cluster_is_parsed_and_must_list_this_node() {
        let text = "1=127.0.0.1:7101, 2=127.0.0.1:7102,3=127.0.0.1:7103";
        let flags_for = |id: &str| Settings {
            initial_cluster: Some(text.into()),
            node_id: Some(Number::Text(id.into())),
            ..flags()
        };
        let config = resolve_flags(flags_for("2")).unwrap();
        assert_eq!(config.initial_cluster.len(), 3);
        assert!(!config.is_single_node());
        assert_eq!(config.peer_listen, Some("127.0.0.1:7102".parse().unwrap()));
        assert_eq!(config.initial_cluster[&node(3)], Some("127.0.0.1:7103".parse().unwrap()));

        let error = resolve_flags(flags_for("4")).unwrap_err();
        assert_eq!(error.field, "initial-cluster");
        assert!(error.to_string().contains("node id 4"));
    }

    #[test]
    fn initial_cluster_rejects_duplicates_and_malformed_members() {
        for bad in [
            "1=127.0.0.1:7101,1=127.0.0.1:7102",
            "1=127.0.0.1:7101,2=127.0.0.1:7101",
            "1=127.0.0.1:7101,",
            "1:127.0.0.1:7101",
            "0=127.0.0.1:7101",
            "x=127.0.0.1:7101",
            "1=localhost",
        ] {
            let flags = Settings { initial_cluster: Some(bad.into()), ..flags() };
            let error = resolve_flags(flags).unwrap_err();
            assert_eq!(error.field, "initial-cluster", "{bad}");
        }
    }

    #[test]
    fn node_id_zero_and_bad_log_level_are_refused() {
        let zero = Settings { node_id: Some(Number::Text("0".into())), ..flags() };
        assert_eq!(resolve_flags(zero).unwrap_err().field, "node-id");
        let loud = Settings { log_level: Some("loud".into()), ..flags() };
        assert_eq!(resolve_flags(loud).unwrap_err().field, "log-level");
    }

    #[test]
    fn bad_listen_address_is_refused() {
        for bad in ["localhost", "127.0.0.1", "127.0.0.1:99999", ""] {
            let flags = Settings { listen: Some(bad.into()), ..flags() };
            assert_eq!(resolve_flags(flags).unwrap_err().field, "listen", "{bad}");
        }
    }

    #[test]
    fn passwords_users_and_timeout_are_read_from_flags_and_file() {
        let file = Settings::from_toml(
            "requirepass = \"pw\"\nusers = [\"alice:a1\", \"bob:b:2\"]\ntimeout = 30\n",
            Path::new("klein.toml"),
        )
        .unwrap();
        let config = Settings::resolve(Some((Path::new("klein.toml"), file)), flags(), 1).unwrap();
        assert_eq!(config.requirepass.as_deref(), Some("pw"));
        assert_eq!(config.users, vec![("alice".into(), "a1".into()), ("bob".into(), "b:2".into())]);
        assert_eq!(config.timeout_seconds, 30);
        let shown = format!("{config:?}");
        assert!(!shown.contains("pw\"") && !shown.contains("a1"), "{shown}");
        assert!(shown.contains("alice"), "{shown}");
        let defaults = resolve_flags(flags()).unwrap();
        assert_eq!(
            (defaults.requirepass, defaults.users.len(), defaults.timeout_seconds),
            (None, 0, 0)
        );
        let bad = Settings { users: Some(vec!["nopassword".into()]), ..flags() };
        let message = resolve_flags(bad).unwrap_err().to_string();
        assert_eq!(
            message,
            "invalid --user: an entry is not NAME:PASSWORD (both non-empty, no spaces in the name)"
        );
        let twice = Settings { users: Some(vec!["a:1".into(), "a:2".into()]), ..flags() };
        assert_eq!(
            resolve_flags(twice).unwrap_err().to_string(),
            "invalid --user: user 'a' is given twice"
        );
        let timeout = Settings { timeout: Some(Number::Text("-1".into())), ..flags() };
        assert_eq!(
            resolve_flags(timeout).unwrap_err().to_string(),
            "invalid --timeout: '-1' is not a number of seconds (0: never)"
        );
    }
}
