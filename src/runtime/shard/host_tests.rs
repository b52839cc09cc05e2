//! Tests of [`Shard`] over the simulated disk: a write is answered only once its batch is
//! applied, survives power loss and restart; three shards replicate through their outboxes;
//! followers forward writes and reads to the master, exactly once across a master failure;
//! full queues refuse.

use std::collections::{BTreeMap, BTreeSet};

use super::host::{Consistency, Machine, Request, Shard, ShardError, ShardOptions, Token};
use crate::consensus::Membership;
use crate::constants::{SHARD_QUEUE_ENTRIES_MAX, TICK_MILLIS};
use crate::log::disk::Disk;
use crate::log::sim_disk::{SimDisk, SimDiskOptions};
use crate::log::superblock::Superblock;
use crate::log::writer::WriterOptions;
use crate::types::{CoreIndex, GroupId, NodeId};

const WRITER: WriterOptions =
    WriterOptions { segment_size_bytes: 64 * 4096, staged_bytes_max: 16 * 4096 };
const GROUP: GroupId = GroupId(0);

/// A small KV machine with exactly-once writes, enough to drive the shard.
#[derive(Default)]
struct Kv {
    map: BTreeMap<Vec<u8>, Vec<u8>>,
    sessions: BTreeMap<u64, (u64, Option<Vec<u8>>)>,
    /// Writes applied (retries answered from `sessions` not counted).
    applied: u64,
}

#[derive(Clone, Debug)]
enum Command {
    Set(Vec<u8>, Vec<u8>),
    Get(Vec<u8>),
}

fn put(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&u32::try_from(bytes.len()).unwrap().to_le_bytes());
    out.extend_from_slice(bytes);
}

fn take<'a>(input: &mut &'a [u8], length: usize) -> Result<&'a [u8], String> {
    if input.len() < length {
        return Err("short batch".to_string());
    }
    let (head, rest) = input.split_at(length);
    *input = rest;
    Ok(head)
}

fn take_bytes<'a>(input: &mut &'a [u8]) -> Result<&'a [u8], String> {
    let length = u32::from_le_bytes(take(input, 4)?.try_into().unwrap());
    take(input, length as usize)
}

impl Machine for Kv {
    type Command = Command;
    type Reply = Option<Vec<u8>>;

    fn encode_batch(&self, entries: &[(u64, u64, &Command)]) -> Vec<u8> {
        let mut out = Vec::new();
        for (client, sequence, command) in entries {
            out.extend_from_slice(&client.to_le_bytes());
            out.extend_from_slice(&sequence.to_le_bytes());
            match command {
                Command::Set(key, value) => {
                    put(&mut out, key);
                    put(&mut out, value);
                }
                Command::Get(key) => {
                    out.extend_from_slice(&u32::MAX.to_le_bytes());
                    put(&mut out, key);
                }
            }
        }
        out
    }

    fn decode_batch(&self, mut batch: &[u8]) -> Result<Vec<(u64, u64, Command)>, String> {
        let mut entries = Vec::new();
        while !batch.is_empty() {
            let client = u64::from_le_bytes(take(&mut batch, 8)?.try_into().unwrap());
            let sequence = u64::from_le_bytes(take(&mut batch, 8)?.try_into().unwrap());
            if batch.starts_with(&u32::MAX.to_le_bytes()) {
                take(&mut batch, 4)?;
                entries.push((client, sequence, Command::Get(take_bytes(&mut batch)?.to_vec())));
                continue;
            }
            let key = take_bytes(&mut batch)?.to_vec();
            let value = take_bytes(&mut batch)?.to_vec();
            entries.push((client, sequence, Command::Set(key, value)));
        }
        Ok(entries)
    }

    fn encode_replies(&self, replies: &[Option<Vec<u8>>]) -> Vec<u8> {
        let mut out = Vec::new();
        for reply in replies {
            match reply {
                None => out.push(0),
                Some(bytes) => {
                    out.push(1);
                    put(&mut out, bytes);
                }
            }
        }
        out
    }

    fn decode_replies(&self, mut bytes: &[u8]) -> Result<Vec<Option<Vec<u8>>>, String> {
        let mut replies = Vec::new();
        while let Some((&tag, rest)) = bytes.split_first() {
            bytes = rest;
            replies.push(match tag {
                0 => None,
                1 => Some(take_bytes(&mut bytes)?.to_vec()),
                _ => return Err(format!("reply tag {tag}")),
            });
        }
        Ok(replies)
    }

    fn apply_batch(
        &mut self,
        _stamp: u64,
        mut batch: &[u8],
        replies: &mut Vec<Option<Vec<u8>>>,
    ) -> Result<(), String> {
        while !batch.is_empty() {
            let client = u64::from_le_bytes(take(&mut batch, 8)?.try_into().unwrap());
            let sequence = u64::from_le_bytes(take(&mut batch, 8)?.try_into().unwrap());
            if batch.starts_with(&u32::MAX.to_le_bytes()) {
                take(&mut batch, 4)?;
                let key = take_bytes(&mut batch)?;
                replies.push(self.map.get(key).cloned());
                continue;
            }
            let key = take_bytes(&mut batch)?.to_vec();
            let value = take_bytes(&mut batch)?.to_vec();
            if let Some((seen, reply)) = self.sessions.get(&client)
                && *seen == sequence
                && client != 0
            {
                replies.push(reply.clone());
                continue;
            }
            let reply = self.map.insert(key, value);
            self.applied += 1;
            self.sessions.insert(client, (sequence, reply.clone()));
            replies.push(reply);
        }
        Ok(())
    }

    fn read(&mut self, _now: u64, command: &Command) -> Option<Vec<u8>> {
        let Command::Get(key) = command else { panic!("reads only") };
        self.map.get(key).cloned()
    }

    fn housekeeping(&self, _now: u64, _max: usize) -> Vec<Command> {
        Vec::new()
    }

    fn snapshot(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for (key, value) in &self.map {
            put(&mut out, key);
            put(&mut out, value);
        }
        out
    }

    fn restore(&mut self, mut bytes: &[u8]) -> Result<(), String> {
        self.map.clear();
        while !bytes.is_empty() {
            let key = take_bytes(&mut bytes)?.to_vec();
            let value = take_bytes(&mut bytes)?.to_vec();
            self.map.insert(key, value);
        }
        Ok(())
    }
}

fn node(id: u64) -> NodeId {
    NodeId::new(id).unwrap()
}

/// What a request got.
type Answer = Result<Option<Vec<u8>>, ShardError>;

/// One node: its shard and its disk.
struct Node {
    shard: Shard<Kv>,
    disk: SimDisk,
    replies: Vec<(Token, Answer)>,
}

fn options(id: u64, voters: u64) -> ShardOptions {
    let voters: BTreeSet<NodeId> = (1..=voters).map(node).collect();
    ShardOptions {
        node: node(id),
        groups: vec![GROUP],
        membership: Membership::majority(1, voters, BTreeSet::new()).unwrap(),
        identity: Superblock::new(7, node(id), CoreIndex(0)),
        writer: WRITER,
        snapshot_interval_slots: crate::constants::SNAPSHOT_INTERVAL_SLOTS,
        seed: id,
        prefer_lowest_master: true,
    }
}

impl Node {
    fn new(id: u64, voters: u64, disk: SimDisk, now: u64) -> Node {
        let listing = disk.list();
        let shard = Shard::open(options(id, voters), listing, now, Box::new(Kv::default));
        Node { shard, disk, replies: Vec::new() }
    }

    /// Submits what the shard asks for and completes what the disk finished.
    fn disk_round(&mut self) {
        for (op, request) in self.shard.pump().expect("no fatal error") {
            self.disk.submit(op, request);
        }
        let mut completions = Vec::new();
        self.disk.poll(&mut completions);
        for completion in completions {
            self.shard.on_completion(&completion).expect("no fatal error");
        }
        self.replies.extend(self.shard.take_replies());
    }
}

/// Runs `nodes` for `ticks` ticks from `now`, delivering every message; returns the new now.
fn run(nodes: &mut [Node], mut now: u64, ticks: u64) -> u64 {
    for _ in 0..ticks {
        now += TICK_MILLIS;
        for index in 0..nodes.len() {
            nodes[index].shard.tick(now).unwrap();
            nodes[index].shard.flush().unwrap();
            for _ in 0..4 {
                nodes[index].disk_round();
            }
            for (to, group, message) in nodes[index].shard.take_outbox() {
                let from = nodes[index].shard.replicas().next().unwrap().node();
                let target = usize::try_from(to.get() - 1).unwrap();
                nodes[target].shard.on_message(from, group, message).unwrap();
            }
            deliver_forwards(nodes, index, None);
        }
    }
    now
}

/// Hands node `index`'s forwarding messages to their targets (none to or from `down`).
fn deliver_forwards(nodes: &mut [Node], index: usize, down: Option<usize>) {
    let from = node(u64::try_from(index).unwrap() + 1);
    for (to, message) in nodes[index].shard.take_forwards() {
        let target = usize::try_from(to.get() - 1).unwrap();
        if Some(target) != down && Some(index) != down {
            nodes[target].shard.on_forward(from, message).unwrap();
        }
    }
    nodes[index].replies.extend(nodes[index].shard.take_replies());
}

fn master_index(nodes: &[Node]) -> Option<usize> {
    nodes
        .iter()
        .position(|n| n.shard.replicas().next().is_some_and(crate::consensus::Replica::is_serving))
}

fn set(token: u64, key: &str, value: &str) -> Request<Command> {
    Request::Write {
        group: GROUP,
        client: 1,
        sequence: token,
        command: Command::Set(key.into(), value.into()),
        token: Token(token),
        bytes: key.len() + value.len(),
    }
}

fn get(token: u64, key: &str, consistency: Consistency) -> Request<Command> {
    let command = Command::Get(key.into());
    Request::Read { group: GROUP, consistency, command, token: Token(token), behind_writes: false }
}

/// A read pipelined behind writes of the same client.
fn get_behind(token: u64, key: &str) -> Request<Command> {
    let command = Command::Get(key.into());
    let consistency = Consistency::Linearizable;
    Request::Read { group: GROUP, consistency, command, token: Token(token), behind_writes: true }
}

fn reply_of(node: &Node, token: u64) -> Option<&Result<Option<Vec<u8>>, ShardError>> {
    node.replies.iter().find(|(t, _)| *t == Token(token)).map(|(_, reply)| reply)
}

#[test]
fn a_single_node_answers_a_write_once_durable_and_keeps_it_across_power_loss() {
    let disk = SimDisk::new(1, SimDiskOptions::default());
    let mut nodes = vec![Node::new(1, 1, disk, 1_000)];
    let now = run(&mut nodes, 1_000, 300);
    assert_eq!(master_index(&nodes), Some(0), "a lone voter becomes master");
    nodes[0].shard.submit(set(1, "k", "v1"));
    nodes[0].shard.flush().unwrap();
    // Proposed, not yet durable: no reply before the disk completes the write.
    assert!(nodes[0].shard.take_replies().is_empty());
    let now = run(&mut nodes, now, 2);
    assert_eq!(reply_of(&nodes[0], 1), Some(&Ok(None)));
    nodes[0].shard.submit(get(2, "k", Consistency::Linearizable));
    let _ = run(&mut nodes, now, 2);
    assert_eq!(reply_of(&nodes[0], 2), Some(&Ok(Some(b"v1".to_vec()))));

    // Power loss: whatever was not durable may vanish; the acknowledged write may not.
    for seed in 0..8 {
        let crashed = nodes[0].disk.crash(seed);
        let mut restarted = vec![Node::new(1, 1, crashed, 5_000)];
        let now = run(&mut restarted, 5_000, 300);
        assert!(restarted[0].shard.is_serving());
        restarted[0].shard.submit(get(3, "k", Consistency::Linearizable));
        let _ = run(&mut restarted, now, 2);
        assert_eq!(reply_of(&restarted[0], 3), Some(&Ok(Some(b"v1".to_vec()))), "seed {seed}");
    }
}

#[test]
fn three_shards_replicate_and_followers_forward_to_the_master() {
    let mut nodes: Vec<Node> = (1..=3)
        .map(|id| Node::new(id, 3, SimDisk::new(id, SimDiskOptions::default()), 1_000))
        .collect();
    let now = run(&mut nodes, 1_000, 700);
    let master = master_index(&nodes).expect("a master is elected");
    let follower = (master + 1) % 3;
    nodes[master].shard.submit(set(1, "k", "v"));
    let now = run(&mut nodes, now, 5);
    assert_eq!(reply_of(&nodes[master], 1), Some(&Ok(None)));
    // The commit reaches followers with the next heartbeat.
    let now = run(&mut nodes, now, 20);
    assert_eq!(nodes[follower].shard.stats.forwards_sent, 0);

    // A write and reads at a follower: the write and the linearizable read go to the master
    // (answered with the master's replies, once the write is chosen); the stale read is
    // served from the follower's own state.
    nodes[follower].shard.submit(set(2, "k", "w"));
    nodes[follower].shard.submit(get(4, "k", Consistency::Stale));
    let now = run(&mut nodes, now, 5);
    assert_eq!(reply_of(&nodes[follower], 2), Some(&Ok(Some(b"v".to_vec()))));
    assert_eq!(reply_of(&nodes[follower], 4), Some(&Ok(Some(b"v".to_vec()))));
    nodes[follower].shard.submit(get(3, "k", Consistency::Linearizable));
    nodes[follower].shard.submit(get(5, "k", Consistency::Lease));
    let _ = run(&mut nodes, now, 5);
    assert_eq!(reply_of(&nodes[follower], 3), Some(&Ok(Some(b"w".to_vec()))), "latest write");
    assert_eq!(reply_of(&nodes[follower], 5), Some(&Ok(Some(b"w".to_vec()))));
    assert_eq!(nodes[follower].shard.stats.forwards_sent, 3, "one write, two reads");
    assert_eq!(nodes[master].shard.stats.forwards_received, 3);
}

#[test]
fn a_forwarded_write_survives_its_master_failing_and_applies_once() {
    for seed in 0..3 {
        let mut nodes: Vec<Node> = (1..=3)
            .map(|id| {
                Node::new(id, 3, SimDisk::new(id + 100 * seed, SimDiskOptions::default()), 1_000)
            })
            .collect();
        let now = run(&mut nodes, 1_000, 700);
        assert_eq!(master_index(&nodes), Some(0), "seed {seed}: node 1 holds the group");
        // The follower forwards; the master receives the request and may propose it, then
        // goes down (it neither runs nor receives from now on).
        nodes[2].shard.submit(set(7, "k", "once"));
        nodes[2].shard.flush().unwrap();
        deliver_forwards(&mut nodes, 2, None);
        nodes[0].shard.flush().unwrap();
        if seed > 0 {
            // The master got as far as sending its Accepts.
            for (to, group, message) in nodes[0].shard.take_outbox() {
                let target = usize::try_from(to.get() - 1).unwrap();
                nodes[target].shard.on_message(node(1), group, message).unwrap();
            }
        }
        let now = run_fetching(&mut nodes, Some(0), now, 400);
        let master = master_index(&nodes[1..]).map(|i| i + 1).expect("nodes 2, 3 elect");
        assert!(
            matches!(reply_of(&nodes[2], 7), Some(Ok(None))),
            "seed {seed}: the write is answered, by the new master: {:?}",
            reply_of(&nodes[2], 7)
        );
        // Exactly once: the session table of the machine records one application.
        nodes[2].shard.submit(get(8, "k", Consistency::Linearizable));
        let _ = run_fetching(&mut nodes, Some(0), now, 10);
        assert_eq!(reply_of(&nodes[2], 8), Some(&Ok(Some(b"once".to_vec()))), "seed {seed}");
        assert!(nodes[2].shard.stats.forwards_sent >= 2, "resent after the failure");
        let machine = nodes[master].shard.machine(GROUP).unwrap();
        assert_eq!(machine.map.get(b"k".as_slice()), Some(&b"once".to_vec()));
        assert_eq!(machine.applied, 1, "seed {seed}: applied once");
    }
}

#[test]
fn a_full_queue_refuses_with_overloaded() {
    let disk = SimDisk::new(2, SimDiskOptions::default());
    let mut nodes = vec![Node::new(1, 1, disk, 1_000)];
    let _ = run(&mut nodes, 1_000, 300);
    let count = u64::try_from(SHARD_QUEUE_ENTRIES_MAX).unwrap();
    for token in 1..=count + 1 {
        nodes[0].shard.submit(set(token, "k", "v"));
    }
    let replies = nodes[0].shard.take_replies();
    assert_eq!(replies, vec![(Token(count + 1), Err(ShardError::Overloaded))]);
    assert_eq!(nodes[0].shard.stats.overloaded, 1);
}

#[test]
fn requests_before_recovery_ends_are_refused_not_held() {
    let disk = SimDisk::new(3, SimDiskOptions::default());
    let mut node = Node::new(1, 1, disk, 1_000);
    node.shard.submit(set(1, "k", "v"));
    let replies = node.shard.take_replies();
    assert!(matches!(replies.as_slice(), [(Token(1), Err(ShardError::Unavailable(_)))]));
}

#[test]
fn requests_wait_for_the_first_election_and_reads_follow_earlier_writes() {
    let disk = SimDisk::new(4, SimDiskOptions::default());
    let mut nodes = vec![Node::new(1, 1, disk, 1_000)];
    // Recovery only: the replica is a follower with no master yet.
    let now = until_serving(&mut nodes[0], 1_000);
    assert_eq!(master_index(&nodes), None);
    nodes[0].shard.submit(get(1, "k", Consistency::Stale));
    nodes[0].shard.submit(get(5, "k", Consistency::Linearizable));
    nodes[0].shard.submit(set(2, "k", "v1"));
    nodes[0].shard.submit(get_behind(3, "k"));
    nodes[0].shard.submit(set(4, "k", "v2"));
    // A stale read is served at once, from whatever the replica has.
    assert_eq!(nodes[0].shard.take_replies(), vec![(Token(1), Ok(None))]);
    let _ = run(&mut nodes, now, 250);
    // The linearizable read waited for the master, then ran on the read path; the writes and
    // the read behind them went through one batch, in order.
    assert_eq!(reply_of(&nodes[0], 5), Some(&Ok(None)));
    assert_eq!(reply_of(&nodes[0], 2), Some(&Ok(None)));
    assert_eq!(reply_of(&nodes[0], 3), Some(&Ok(Some(b"v1".to_vec()))));
    assert_eq!(reply_of(&nodes[0], 4), Some(&Ok(Some(b"v1".to_vec()))));
}

#[test]
fn a_group_without_a_master_refuses_after_the_wait_bound() {
    // Three voters, only one of them runs: no master can be elected.
    let disk = SimDisk::new(5, SimDiskOptions::default());
    let mut nodes = [Node::new(1, 3, disk, 1_000)];
    let now = until_serving(&mut nodes[0], 1_000);
    nodes[0].shard.submit(set(1, "k", "v"));
    nodes[0].shard.submit(get(2, "k", Consistency::Linearizable));
    let _ = run_alone(&mut nodes[0], now, crate::constants::SHARD_MASTER_WAIT_TICKS + 1);
    assert!(matches!(reply_of(&nodes[0], 1), Some(Err(ShardError::NotMaster { .. }))));
    assert!(matches!(reply_of(&nodes[0], 2), Some(Err(ShardError::NotMaster { .. }))));
}

/// Runs one node of a larger cluster whose peers are down: its messages are lost.
fn run_alone(node: &mut Node, mut now: u64, ticks: u64) -> u64 {
    for _ in 0..ticks {
        now += TICK_MILLIS;
        node.shard.tick(now).unwrap();
        node.shard.flush().unwrap();
        node.disk_round();
        node.shard.take_outbox();
    }
    now
}

/// Runs a node until its log is recovered and its groups serve requests.
fn until_serving(node: &mut Node, mut now: u64) -> u64 {
    while !node.shard.is_serving() {
        now = run_alone(node, now, 1);
        assert!(now < 100_000, "recovery does not finish");
    }
    now
}

#[test]
fn masters_move_to_the_lowest_live_node_and_stay_put_when_it_is_down() {
    for seed in 0..4 {
        let mut nodes: Vec<Node> = (1..=3)
            .map(|id| {
                Node::new(id, 3, SimDisk::new(id + 10 * seed, SimDiskOptions::default()), 1_000)
            })
            .collect();
        let now = run(&mut nodes, 1_000, 600);
        assert_eq!(master_index(&nodes), Some(0), "seed {seed}: node 1 holds the group");
        // Writes still work at the new master.
        nodes[0].shard.submit(set(1, "k", "v"));
        let _ = run(&mut nodes, now, 5);
        assert_eq!(reply_of(&nodes[0], 1), Some(&Ok(None)));
    }
    // Node 1 never runs: nodes 2 and 3 elect a master and it stays (no transfer to the dead).
    let mut nodes: Vec<Node> = (1..=3)
        .map(|id| Node::new(id, 3, SimDisk::new(id, SimDiskOptions::default()), 1_000))
        .collect();
    let mut now = 1_000;
    for _ in 0..800 {
        now += TICK_MILLIS;
        for index in 1..3 {
            nodes[index].shard.tick(now).unwrap();
            nodes[index].shard.flush().unwrap();
            nodes[index].disk_round();
            nodes[index].disk_round();
            for (to, group, message) in nodes[index].shard.take_outbox() {
                let from = node(u64::try_from(index).unwrap() + 1);
                if to != node(1) {
                    let target = usize::try_from(to.get() - 1).unwrap();
                    nodes[target].shard.on_message(from, group, message).unwrap();
                }
            }
        }
    }
    let master = master_index(&nodes).expect("nodes 2 and 3 elect a master");
    assert!(master > 0);
    let transfers = nodes[master].shard.replicas().next().unwrap().is_transferring();
    assert!(!transfers, "no transfer to a node that is down");
}

/// Snapshots handed to a laggard by [`run_fetching`] (only one test uses it).
static INSTALLS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Like [`run`], with node `down` stopped: it neither runs nor receives. Snapshots the
/// laggard wants are moved by hand from the node named (the runtime's fetch, without bytes
/// on a wire).
fn run_fetching(nodes: &mut [Node], down: Option<usize>, mut now: u64, ticks: u64) -> u64 {
    for _ in 0..ticks {
        now += TICK_MILLIS;
        for index in (0..nodes.len()).filter(|index| Some(*index) != down) {
            nodes[index].shard.tick(now).unwrap();
            nodes[index].shard.flush().unwrap();
            for _ in 0..4 {
                nodes[index].disk_round();
            }
            let from = node(u64::try_from(index).unwrap() + 1);
            for (to, group, message) in nodes[index].shard.take_outbox() {
                let target = usize::try_from(to.get() - 1).unwrap();
                if Some(target) != down {
                    nodes[target].shard.on_message(from, group, message).unwrap();
                }
            }
            deliver_forwards(nodes, index, down);
            for (group, peer, slot) in nodes[index].shard.take_snapshots_wanted() {
                let source = usize::try_from(peer.get() - 1).unwrap();
                match nodes[source].shard.snapshot(group) {
                    Some((meta, state)) if meta.slot >= slot => {
                        INSTALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        nodes[index].shard.install_snapshot(group, meta, state);
                    }
                    _ => nodes[index].shard.snapshot_aborted(group),
                }
            }
        }
    }
    now
}

#[test]
fn a_node_left_behind_past_a_snapshot_installs_a_peers_and_serves_the_same_reads() {
    let interval = crate::constants::ACCEPT_AHEAD_SLOTS_MAX + 64;
    let mut nodes: Vec<Node> = (1..=3)
        .map(|id| {
            let disk = SimDisk::new(id, SimDiskOptions::default());
            let listing = disk.list();
            let options = ShardOptions { snapshot_interval_slots: interval, ..options(id, 3) };
            let shard = Shard::open(options, listing, 1_000, Box::new(Kv::default));
            Node { shard, disk, replies: Vec::new() }
        })
        .collect();
    let mut now = run_fetching(&mut nodes, None, 1_000, 700);
    let master = master_index(&nodes).expect("a master is elected");
    let laggard = (master + 1) % 3;
    // One write per tick: each its own slot, past a snapshot and its log truncation.
    let writes = interval + interval / 2;
    for token in 1..=writes {
        nodes[master].shard.submit(set(token, &format!("k{}", token % 50), &token.to_string()));
        now = run_fetching(&mut nodes, Some(laggard), now, 1);
    }
    now = run_fetching(&mut nodes, Some(laggard), now, 20);
    assert!(reply_of(&nodes[master], writes).is_some_and(Result::is_ok));
    let served = nodes[master].shard.snapshot(GROUP).expect("the master took a snapshot");
    assert!(served.0.slot.0 >= interval, "snapshot at {}", served.0.slot);

    assert_eq!(INSTALLS.load(std::sync::atomic::Ordering::Relaxed), 0);
    now = run_fetching(&mut nodes, None, now, 600);
    assert!(INSTALLS.load(std::sync::atomic::Ordering::Relaxed) >= 1, "a snapshot was moved");
    let last = format!("k{}", writes % 50);
    for (index, token) in [(laggard, 90_001), (master, 90_002)] {
        nodes[index].shard.submit(get(token, &last, Consistency::Stale));
    }
    let _ = run_fetching(&mut nodes, None, now, 2);
    let expected = Some(&Ok(Some(writes.to_string().into_bytes())));
    assert_eq!(reply_of(&nodes[master], 90_002), expected);
    assert_eq!(reply_of(&nodes[laggard], 90_001), expected, "the laggard caught up");
    let (laggard_machine, master_machine) =
        (nodes[laggard].shard.machine(GROUP).unwrap(), nodes[master].shard.machine(GROUP).unwrap());
    assert_eq!(laggard_machine.map, master_machine.map);
    assert!(nodes[laggard].shard.snapshot(GROUP).is_some(), "the installed one is served");
}
