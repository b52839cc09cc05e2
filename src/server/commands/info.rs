//! `INFO [section ...]` and `KLEIN STATUS`: what the node reports about itself.
//!
//! `INFO` keeps Redis's layout (`# Section` headers, `field:value` lines, CRLF, sections
//! chosen by name, `default`, `all` or `everything`), so tools that parse it (redis-cli
//! `--stat`, client ready checks) read Klein's numbers: keys and memory come from every
//! group's state machine on this node, `# Replication` from its replicas (Redis's `role`,
//! then Klein's per-group lines). `KLEIN STATUS` is the operator's view that `klein admin
//! status` prints: one line per group with master, ballot, chosen/applied frontiers and, at a
//! master, each peer's lag.

use std::fmt::Write as _;

use super::connection::REDIS_COMPATIBLE_VERSION;
use super::unknown_subcommand;
use crate::runtime::status::NodeStatus;
use crate::server::resp::{Argument, ReplyWriter};
use crate::server::session::Session;

/// The sections `INFO` (no argument, or `default`) prints, in order.
const DEFAULT_SECTIONS: [&str; 7] =
    ["server", "clients", "memory", "persistence", "stats", "replication", "keyspace"];

/// `INFO [section ...]`.
pub fn info(session: &Session, arguments: &[Argument<'_>], out: &mut ReplyWriter<'_>) {
    let mut wanted: Vec<String> = arguments[1..]
        .iter()
        .map(|argument| String::from_utf8_lossy(argument).to_ascii_lowercase())
        .collect();
    if wanted.is_empty()
        || wanted.iter().any(|name| matches!(name.as_str(), "default" | "all" | "everything"))
    {
        wanted = DEFAULT_SECTIONS.iter().map(ToString::to_string).collect();
    }
    let status = session.handle().map(crate::embedded::Handle::status);
    let mut text = String::new();
    for name in DEFAULT_SECTIONS {
        if !wanted.iter().any(|w| w == name) {
            continue;
        }
        if !text.is_empty() {
            text.push_str("\r\n");
        }
        section(name, status, &mut text);
    }
    out.verbatim(&text);
}

fn section(name: &str, status: Option<&NodeStatus>, text: &mut String) {
    let cores = status.map(NodeStatus::snapshot).unwrap_or_default();
    let groups = status.map(NodeStatus::groups).unwrap_or_default();
    let (keys, expires, memory) = groups.iter().fold((0, 0, 0), |(k, e, m), group| {
        (k + group.sizes.0, e + group.sizes.1, m + group.sizes.2)
    });
    match name {
        "server" => {
            let _ = write!(
                text,
                "# Server\r\nredis_version:{REDIS_COMPATIBLE_VERSION}\r\nklein_version:{}\r\n\
                 redis_mode:standalone\r\nos:{}\r\nprocess_id:{}\r\n",
                env!("CARGO_PKG_VERSION"),
                std::env::consts::OS,
                std::process::id(),
            );
        }
        "clients" => {
            let waiting: usize = cores.iter().map(|core| core.waiting).sum();
            let (connected, _, _) = crate::server::stats::snapshot();
            let _ = write!(
                text,
                "# Clients\r\nconnected_clients:{connected}\r\nblocked_clients:0\r\n\
                 klein_requests_waiting:{waiting}\r\n"
            );
        }
        "memory" => {
            let _ = write!(
                text,
                "# Memory\r\nused_memory:{memory}\r\nmaxmemory:0\r\nmaxmemory_policy:noeviction\r\n"
            );
        }
        "persistence" => {
            text.push_str("# Persistence\r\nloading:0\r\naof_enabled:1\r\n");
        }
        "stats" => {
            let sum = |get: &dyn Fn(&crate::runtime::status::CoreStatus) -> u64| -> u64 {
                cores.iter().map(get).sum()
            };
            let (_, received, commands) = crate::server::stats::snapshot();
            let _ = write!(
                text,
                "# Stats\r\ntotal_connections_received:{received}\r\n\
                 total_commands_processed:{commands}\r\nklein_operations:{}\r\n\
                 klein_batches_proposed:{}\r\n\
                 klein_writes_proposed:{}\r\nklein_reads_served:{}\r\nklein_forwards_sent:{}\r\n\
                 klein_log_writes:{}\r\nklein_messages_sent:{}\r\n",
                sum(&|c| c.operations),
                sum(&|c| c.stats.batches_proposed),
                sum(&|c| c.stats.writes_proposed),
                sum(&|c| c.stats.reads_served),
                sum(&|c| c.stats.forwards_sent),
                sum(&|c| c.log_writes),
                sum(&|c| c.messages_sent),
            );
        }
        "replication" => {
            text.push_str("# Replication\r\n");
            match status {
                Some(status) => text.push_str(&status.render_info()),
                None => text.push_str("role:master\r\n"),
            }
        }
        "keyspace" => {
            text.push_str("# Keyspace\r\n");
            if keys > 0 {
                let _ = write!(text, "db0:keys={keys},expires={expires},avg_ttl=0\r\n");
            }
        }
        _ => {}
    }
}

/// `KLEIN STATUS`: the node's groups, one line each (see the module documentation).
pub fn klein(session: &Session, arguments: &[Argument<'_>], out: &mut ReplyWriter<'_>) {
    match arguments.get(1).map(|sub| sub.to_ascii_uppercase()) {
        Some(sub) if sub == b"STATUS" && arguments.len() == 2 => match session.handle() {
            Some(handle) => out.verbatim(&handle.status().render_text()),
            None => out.error("ERR this connection has no node behind it"),
        },
        Some(sub) if sub == b"HELP" => {
            out.verbatim(
                "KLEIN STATUS: per group: role, master, ballot, chosen/applied slots, lag\n",
            );
        }
        Some(sub) => out.error(&unknown_subcommand(&sub, "KLEIN")),
        None => out.error(&super::wrong_arity("klein")),
    }
}
