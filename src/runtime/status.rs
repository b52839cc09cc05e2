//! What a node reports about itself: per core, its shard's counters and every group's
//! replication state, published by the core's shard task once per tick and read by
//! `INFO`, `KLEIN STATUS` (`klein admin status`) and the Prometheus endpoint
//! (`--metrics-listen`).
//!
//! Each core writes only its own slot; a reader copies a slot out. The slot is a mutex that
//! the writer only ever `try_lock`s, so a slow reader makes a core skip one publication (the
//! next tick's replaces it), never wait: nothing on the data path blocks on another core.

use std::fmt::Write as _;
use std::sync::Mutex;

use crate::consensus::Role;
use crate::runtime::shard::ShardStats;
use crate::types::{GroupId, NodeId};

/// One group's replication state on this node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupStatus {
    /// The group.
    pub group: GroupId,
    /// This replica's role.
    pub role: Role,
    /// Whether this replica is the serving master (phase 1 done, own claim applied).
    pub serving: bool,
    /// The master this replica follows (itself when master), if known.
    pub master: Option<NodeId>,
    /// The highest ballot promised: `(round, node)`.
    pub ballot: (u64, u64),
    /// Every slot below it is chosen (this replica's knowledge).
    pub chosen: u64,
    /// Every slot below it is applied here.
    pub applied: u64,
    /// The log is truncated below it (a snapshot covers what is below).
    pub truncation: u64,
    /// The voters of the group's latest configuration.
    pub voters: Vec<NodeId>,
    /// The learners of that configuration.
    pub learners: Vec<NodeId>,
    /// As master: each peer's applied frontier it knows (lag = `chosen - applied`).
    pub peers_applied: Vec<(NodeId, u64)>,
    /// Writes queued, not yet proposed.
    pub queued: usize,
    /// Batches proposed and not yet applied.
    pub in_flight: usize,
    /// Requests forwarded to the master and not answered.
    pub forwarded: usize,
    /// The state machine's keys, keys with a deadline, and memory in bytes.
    pub sizes: (u64, u64, u64),
}

/// One core's report.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CoreStatus {
    /// Whether the core recovered its log and serves.
    pub serving: bool,
    /// The shard's counters.
    pub stats: ShardStats,
    /// Its groups.
    pub groups: Vec<GroupStatus>,
    /// Consensus messages sent to peers (all groups).
    pub messages_sent: u64,
    /// Log sync requests submitted (no-ops on the real disk: its files are `O_DSYNC`).
    pub log_syncs: u64,
    /// Log writes submitted; on the real disk each is durable when it completes (`O_DSYNC`),
    /// so this counts the device flushes the log costs.
    pub log_writes: u64,
    /// Log requests submitted (writes, syncs, reads).
    pub disk_requests: u64,
    /// Envelopes taken from the core's inbox.
    pub envelopes: u64,
    /// Operations those envelopes carried.
    pub operations: u64,
    /// Requests waiting for a reply on this core.
    pub waiting: usize,
}

/// Every core's report, shared by the node (one per node, in the router).
#[derive(Debug)]
pub struct NodeStatus {
    node: NodeId,
    cores: Vec<Mutex<CoreStatus>>,
}

impl NodeStatus {
    /// An empty report for `cores` cores of node `node`.
    #[must_use]
    pub fn new(node: NodeId, cores: usize) -> NodeStatus {
        NodeStatus { node, cores: (0..cores).map(|_| Mutex::new(CoreStatus::default())).collect() }
    }

    /// This node.
    #[must_use]
    pub fn node(&self) -> NodeId {
        self.node
    }

    /// Replaces core `core`'s report unless a reader holds it right now (then the next
    /// publication does).
    pub fn publish(&self, core: usize, status: CoreStatus) {
        if let Some(slot) = self.cores.get(core)
            && let Ok(mut slot) = slot.try_lock()
        {
            *slot = status;
        }
    }

    /// A copy of every core's latest report.
    #[must_use]
    pub fn snapshot(&self) -> Vec<CoreStatus> {
        self.cores
            .iter()
            .map(|slot| slot.lock().map(|status| status.clone()).unwrap_or_default())
            .collect()
    }

    /// Every group's state, ascending by group.
    #[must_use]
    pub fn groups(&self) -> Vec<GroupStatus> {
        let mut groups: Vec<GroupStatus> =
            self.snapshot().into_iter().flat_map(|core| core.groups).collect();
        groups.sort_by_key(|group| group.group);
        groups
    }

    /// The `KLEIN STATUS` text: one line per group (master, ballot, chosen, applied, lag).
    #[must_use]
    pub fn render_text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "node {}", self.node);
        for group in self.groups() {
            let master = group.master.map_or_else(|| "none".to_string(), |m| m.to_string());
            let _ = write!(
                out,
                "group {} role {} master {master} ballot {}.{} chosen {} applied {} truncated {} \
                 voters {} learners {}",
                group.group.0,
                role_name(group.role, group.serving),
                group.ballot.0,
                group.ballot.1,
                group.chosen,
                group.applied,
                group.truncation,
                ids(&group.voters),
                ids(&group.learners),
            );
            for (peer, applied) in &group.peers_applied {
                let _ = write!(out, " lag[{peer}] {}", group.chosen.saturating_sub(*applied));
            }
            out.push('\n');
        }
        out
    }

    /// The `INFO replication` section's fields (Redis's `role` first).
    #[must_use]
    pub fn render_info(&self) -> String {
        let groups = self.groups();
        let mastered = groups.iter().filter(|g| g.serving).count();
        let role = if !groups.is_empty() && mastered == groups.len() { "master" } else { "slave" };
        let mut out = String::new();
        let _ = write!(
            out,
            "role:{role}\r\nklein_node_id:{}\r\nklein_groups:{}\r\n\
             klein_groups_mastered:{mastered}\r\n",
            self.node,
            groups.len()
        );
        let lag = groups
            .iter()
            .flat_map(|g| {
                g.peers_applied.iter().map(|(_, applied)| g.chosen.saturating_sub(*applied))
            })
            .max()
            .unwrap_or(0);
        let _ = write!(out, "klein_max_follower_lag_slots:{lag}\r\n");
        for group in &groups {
            let master = group.master.map_or(0, NodeId::get);
            let _ = write!(
                out,
                "klein_group{}:role={},master={master},chosen={},applied={}\r\n",
                group.group.0,
                role_name(group.role, group.serving),
                group.chosen,
                group.applied
            );
        }
        out
    }

    /// The Prometheus text exposition (version 0.0.4) of every counter and gauge.
    #[must_use]
    pub fn render_prometheus(&self) -> String {
        let cores = self.snapshot();
        let node = self.node;
        let mut out = String::new();
        for (name, help, get) in CORE_COUNTERS {
            let _ = writeln!(out, "# HELP klein_{name} {help}\n# TYPE klein_{name} counter");
            for (core, status) in cores.iter().enumerate() {
                let value = get(status);
                let _ = writeln!(out, "klein_{name}{{node=\"{node}\",core=\"{core}\"}} {value}");
            }
        }
        let _ = writeln!(out, "# HELP klein_waiting Requests waiting for a reply.");
        let _ = writeln!(out, "# TYPE klein_waiting gauge");
        for (core, status) in cores.iter().enumerate() {
            let waiting = status.waiting;
            let _ = writeln!(out, "klein_waiting{{node=\"{node}\",core=\"{core}\"}} {waiting}");
        }
        let groups: Vec<&GroupStatus> = cores.iter().flat_map(|core| core.groups.iter()).collect();
        for (name, help, get) in GROUP_GAUGES {
            let _ =
                writeln!(out, "# HELP klein_group_{name} {help}\n# TYPE klein_group_{name} gauge");
            for group in &groups {
                let (id, value) = (group.group.0, get(group));
                let _ =
                    writeln!(out, "klein_group_{name}{{node=\"{node}\",group=\"{id}\"}} {value}");
            }
        }
        out
    }
}

/// A metric: name (after `klein_`), help text, and how to read it.
type Metric<T> = (&'static str, &'static str, fn(&T) -> u64);

/// Per-core counters.
const CORE_COUNTERS: [Metric<CoreStatus>; 14] = [
    ("batches_proposed_total", "Slots proposed with client writes (instances).", |s| {
        s.stats.batches_proposed
    }),
    ("writes_proposed_total", "Client writes carried by proposed batches.", |s| {
        s.stats.writes_proposed
    }),
    ("slots_applied_total", "Slots applied to state machines.", |s| s.stats.slots_applied),
    ("reads_served_total", "Reads served.", |s| s.stats.reads_served),
    ("overloaded_total", "Requests refused as overloaded.", |s| s.stats.overloaded),
    ("writes_lost_slot_total", "Writes whose slot another value took (conflicts).", |s| {
        s.stats.writes_lost_slot
    }),
    ("forwards_sent_total", "Requests forwarded to a master, resends included.", |s| {
        s.stats.forwards_sent
    }),
    ("forwards_received_total", "Forwarded requests received as master.", |s| {
        s.stats.forwards_received
    }),
    ("messages_sent_total", "Consensus messages sent to peers.", |s| s.messages_sent),
    ("log_syncs_total", "Log sync requests submitted.", |s| s.log_syncs),
    ("log_writes_total", "Log writes submitted (each durable on completion: O_DSYNC).", |s| {
        s.log_writes
    }),
    ("disk_requests_total", "Log requests submitted.", |s| s.disk_requests),
    ("envelopes_total", "Envelopes taken from the core's inbox.", |s| s.envelopes),
    ("operations_total", "Operations submitted to the core.", |s| s.operations),
];

/// Per-group gauges.
const GROUP_GAUGES: [Metric<GroupStatus>; 12] = [
    ("master", "1 when this node is the group's serving master.", |g| u64::from(g.serving)),
    ("master_node", "The master this replica follows (0: none known).", |g| {
        g.master.map_or(0, NodeId::get)
    }),
    ("chosen", "Chosen frontier (slots).", |g| g.chosen),
    ("applied", "Applied frontier (slots).", |g| g.applied),
    ("ballot_round", "Round of the highest ballot promised.", |g| g.ballot.0),
    ("queued", "Writes queued, not yet proposed.", |g| g.queued as u64),
    ("in_flight", "Batches proposed, not yet applied.", |g| g.in_flight as u64),
    ("forwarded", "Requests forwarded to the master, unanswered.", |g| g.forwarded as u64),
    ("max_peer_lag", "As master: the largest peer lag in slots.", |g| {
        g.peers_applied
            .iter()
            .map(|(_, applied)| g.chosen.saturating_sub(*applied))
            .max()
            .unwrap_or(0)
    }),
    ("keys", "Keys in the group's state machine.", |g| g.sizes.0),
    ("expires", "Keys with a deadline.", |g| g.sizes.1),
    ("memory_bytes", "The state machine's accounted memory.", |g| g.sizes.2),
];

fn role_name(role: Role, serving: bool) -> &'static str {
    match role {
        Role::Master if serving => "master",
        Role::Master => "master-preparing",
        Role::Candidate => "candidate",
        Role::Follower => "follower",
    }
}

fn ids(nodes: &[NodeId]) -> String {
    if nodes.is_empty() {
        return "-".to_string();
    }
    nodes.iter().map(ToString::to_string).collect::<Vec<_>>().join(",")
}
