//! A 3-node cluster of real `klein server` processes on loopback: writes through any node
//! (followers forward to the master) and linearizable reads from any node see the latest
//! acknowledged write; writes keep being acknowledged while the master is killed with SIGKILL
//! (the gap is measured and printed), nothing acknowledged is lost, the killed node restarts
//! and catches up, and a cluster whose every node was killed and restarted still has every
//! acknowledged write.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::Server;

/// Writes the first test makes, all to one group (one hash tag), one slot each: below
/// `SNAPSHOT_INTERVAL_SLOTS`, so the restarted node catches up from its peers' logs (the
/// snapshot path has its own test below).
const WRITES: u64 = 3000;

/// Writes acknowledged before the master is killed.
const WRITES_BEFORE_KILL: usize = 800;

/// A free loopback port (bound and released: another process could take it, rarely).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Three nodes, their data directories and peer ports.
struct Cluster {
    /// Each node's peer port and metrics port.
    peer_ports: Vec<u16>,
    metrics_ports: Vec<u16>,
    dirs: Vec<PathBuf>,
    flags: Vec<Vec<String>>,
    nodes: Vec<Option<Server>>,
    root: tempfile::TempDir,
}

impl Cluster {
    fn start(count: u64) -> Cluster {
        let root = tempfile::tempdir().unwrap();
        let peers: Vec<u16> = (0..count).map(|_| free_port()).collect();
        let members: Vec<String> = peers
            .iter()
            .enumerate()
            .map(|(index, port)| format!("{}=127.0.0.1:{port}", index + 1))
            .collect();
        let members = members.join(",");
        let metrics_ports: Vec<u16> = (0..count).map(|_| free_port()).collect();
        let mut cluster = Cluster {
            peer_ports: peers.clone(),
            metrics_ports: metrics_ports.clone(),
            dirs: vec![],
            flags: vec![],
            nodes: vec![],
            root,
        };
        for (index, port) in peers.iter().enumerate() {
            cluster.dirs.push(cluster.root.path().join(format!("n{}", index + 1)));
            cluster.flags.push(vec![
                "--node-id".into(),
                (index + 1).to_string(),
                "--cores".into(),
                "1".into(),
                "--peer-listen".into(),
                format!("127.0.0.1:{port}"),
                "--initial-cluster".into(),
                members.clone(),
                "--metrics-listen".into(),
                format!("127.0.0.1:{}", metrics_ports[index]),
            ]);
        }
        let nodes: Vec<Option<Server>> =
            (0..peers.len()).map(|index| Some(cluster.boot(index))).collect();
        cluster.nodes = nodes;
        cluster
    }

    fn boot(&self, index: usize) -> Server {
        let flags: Vec<&str> = self.flags[index].iter().map(String::as_str).collect();
        Server::start_in(Path::new(&self.dirs[index]), &flags)
    }

    fn restart(&mut self, index: usize) {
        self.nodes[index] = Some(self.boot(index));
    }

    fn kill(&mut self, index: usize) {
        if let Some(node) = self.nodes[index].take() {
            node.kill();
        }
    }

    fn addresses(&self) -> Vec<Option<std::net::SocketAddr>> {
        self.nodes.iter().map(|node| node.as_ref().map(|node| node.address)).collect()
    }
}

/// A client that finds the master: it follows `TRYAGAIN node N` and moves on from dead nodes.
struct Client {
    addresses: Vec<Option<std::net::SocketAddr>>,
    current: usize,
    connection: Option<redis::Connection>,
}

impl Client {
    fn new(addresses: Vec<Option<std::net::SocketAddr>>) -> Client {
        Client { addresses, current: 0, connection: None }
    }

    /// Runs `command` until a node executes it or `deadline` passes; the node's index.
    fn run(
        &mut self,
        command: &redis::Cmd,
        deadline: Instant,
    ) -> Result<(usize, redis::Value), String> {
        loop {
            if Instant::now() > deadline {
                return Err("no node executed the command in time".into());
            }
            if self.connection.is_none() {
                let Some(address) = self.addresses[self.current] else {
                    self.next();
                    continue;
                };
                let client = redis::Client::open(format!("redis://{address}/")).unwrap();
                if let Ok(connection) =
                    client.get_connection_with_timeout(Duration::from_millis(500))
                {
                    connection.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                    self.connection = Some(connection);
                } else {
                    self.next();
                    continue;
                }
            }
            let connection = self.connection.as_mut().expect("connected");
            match command.query::<redis::Value>(connection) {
                Ok(value) => return Ok((self.current, value)),
                Err(error) => {
                    let text = error.to_string();
                    if let Some(node) = text
                        .split("node ")
                        .nth(1)
                        .and_then(|rest| rest.split_whitespace().next()?.parse::<usize>().ok())
                    {
                        self.current = node - 1;
                    } else if !text.contains("TryAgain") && !text.contains("TRYAGAIN") {
                        self.next();
                    } else {
                        std::thread::sleep(Duration::from_millis(10));
                    }
                    self.connection = None;
                }
            }
        }
    }

    fn next(&mut self) {
        self.connection = None;
        self.current = (self.current + 1) % self.addresses.len();
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn writes_resume_after_the_master_is_killed_and_nothing_acknowledged_is_lost() {
    let mut cluster = Cluster::start(3);
    let acked: Arc<Mutex<BTreeMap<u64, Instant>>> = Arc::default();
    let who: Arc<Mutex<Option<usize>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let addresses = Arc::new(Mutex::new(cluster.addresses()));
    let writer = {
        let (acked, who, stop, addresses) =
            (acked.clone(), who.clone(), stop.clone(), addresses.clone());
        std::thread::spawn(move || {
            let mut client = Client::new(addresses.lock().unwrap().clone());
            let mut index = 0_u64;
            while !stop.load(Ordering::Relaxed) && index < WRITES {
                client.addresses = addresses.lock().unwrap().clone();
                let command = redis::cmd("SET").arg(format!("{{w}}:{index}")).arg(index).clone();
                let deadline = Instant::now() + Duration::from_secs(10);
                let (node, value) = client.run(&command, deadline).expect("writes keep working");
                assert_eq!(value, redis::Value::Okay);
                acked.lock().unwrap().insert(index, Instant::now());
                *who.lock().unwrap() = Some(node);
                index += 1;
            }
        })
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while acked.lock().unwrap().len() < WRITES_BEFORE_KILL {
        assert!(Instant::now() < deadline, "writes are too slow");
        std::thread::sleep(Duration::from_millis(10));
    }
    // The master of the one group written: the node that acknowledged the latest write.
    let master = who.lock().unwrap().expect("writes were acknowledged");
    let killed_at = Instant::now();
    cluster.kill(master);
    addresses.lock().unwrap()[master] = None;
    std::thread::sleep(Duration::from_secs(2));
    let resumed = acked
        .lock()
        .unwrap()
        .values()
        .find(|at| **at > killed_at)
        .map(|at| at.duration_since(killed_at))
        .expect("writes resumed after the kill");
    println!(
        "cluster: writes resumed {} ms after the master (node {}) was killed",
        resumed.as_millis(),
        master + 1
    );
    assert!(resumed < Duration::from_millis(1500), "resumed after {resumed:?}");

    cluster.restart(master);
    addresses.lock().unwrap()[master] = cluster.nodes[master].as_ref().map(|node| node.address);
    std::thread::sleep(Duration::from_secs(2));
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    let acked: Vec<u64> = acked.lock().unwrap().keys().copied().collect();
    println!("cluster: {} writes acknowledged", acked.len());
    assert!(acked.len() > WRITES_BEFORE_KILL);

    // Every acknowledged write, read linearizably through whichever node is master.
    let mut client = Client::new(cluster.addresses());
    let check = |client: &mut Client| {
        for index in &acked {
            let command = redis::cmd("GET").arg(format!("{{w}}:{index}")).clone();
            let deadline = Instant::now() + Duration::from_secs(10);
            let (_, value) = client.run(&command, deadline).unwrap();
            assert_eq!(
                value,
                redis::Value::BulkString(index.to_string().into_bytes()),
                "{{w}}:{index}"
            );
        }
    };
    check(&mut client);

    // The restarted node caught up: its own (stale) reads see the last write.
    let last = *acked.last().unwrap();
    let address = cluster.nodes[master].as_ref().unwrap().address;
    let mut connection =
        redis::Client::open(format!("redis://{address}/")).unwrap().get_connection().unwrap();
    let () = redis::cmd("CLIENT").arg("CONSISTENCY").arg("stale").query(&mut connection).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let value: Option<String> =
            redis::cmd("GET").arg(format!("{{w}}:{last}")).query(&mut connection).unwrap();
        if value == Some(last.to_string()) {
            break;
        }
        assert!(Instant::now() < deadline, "the restarted node did not catch up");
        std::thread::sleep(Duration::from_millis(50));
    }

    // Every node killed at once, then restarted: still every acknowledged write.
    for index in 0..3 {
        cluster.kill(index);
    }
    for index in 0..3 {
        cluster.restart(index);
    }
    let mut client = Client::new(cluster.addresses());
    check(&mut client);
}

/// A connection to node `index` of `cluster`.
fn connect(cluster: &Cluster, index: usize) -> redis::Connection {
    let address = cluster.nodes[index].as_ref().unwrap().address;
    let client = redis::Client::open(format!("redis://{address}/")).unwrap();
    let connection = client.get_connection_with_timeout(Duration::from_secs(2)).unwrap();
    connection.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    connection
}

#[test]
fn writes_through_any_node_and_linearizable_reads_from_any_node_see_the_latest() {
    const ROUNDS: usize = 300;
    let cluster = Cluster::start(3);
    let mut connections: Vec<redis::Connection> =
        (0..3).map(|index| connect(&cluster, index)).collect();
    // The first write waits for the groups' first elections (bounded by the shard's wait).
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match redis::cmd("SET").arg("warm").arg("up").query::<()>(&mut connections[2]) {
            Ok(()) => break,
            Err(error) => assert!(Instant::now() < deadline, "no master in time: {error}"),
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut latencies: Vec<Vec<Duration>> = vec![Vec::new(); 3];
    for round in 0..ROUNDS {
        // Keys spread over every group; writer and reader are different nodes each round.
        let key = format!("key:{round}");
        let (writer, reader) = (round % 3, (round + 1 + round / 3 % 2) % 3);
        let started = Instant::now();
        let () = redis::cmd("SET").arg(&key).arg(round).query(&mut connections[writer]).unwrap();
        latencies[writer].push(started.elapsed());
        let value: Option<String> =
            redis::cmd("GET").arg(&key).query(&mut connections[reader]).unwrap();
        assert_eq!(
            value,
            Some(round.to_string()),
            "{key} written via node {}, read via node {}",
            writer + 1,
            reader + 1
        );
        // An overwrite through a third node, read back where the first write went.
        let () = redis::cmd("INCR").arg(&key).query(&mut connections[(reader + 1) % 3]).unwrap();
        let value: Option<String> =
            redis::cmd("GET").arg(&key).query(&mut connections[writer]).unwrap();
        assert_eq!(value, Some((round + 1).to_string()), "{key} after INCR");
    }
    for (index, samples) in latencies.iter_mut().enumerate() {
        samples.sort();
        println!(
            "cluster: SET via node {}: p50 {:?}, max {:?} ({} writes)",
            index + 1,
            samples[samples.len() / 2],
            samples[samples.len() - 1],
            samples.len()
        );
    }
}

/// Reads `key` on node `index` with stale consistency until it is `expected` or `bound` ends.
fn stale_read_until(cluster: &Cluster, index: usize, key: &str, expected: &str, bound: Duration) {
    let address = cluster.nodes[index].as_ref().unwrap().address;
    let deadline = Instant::now() + bound;
    let mut connection = loop {
        let client = redis::Client::open(format!("redis://{address}/")).unwrap();
        match client.get_connection_with_timeout(Duration::from_millis(500)) {
            Ok(connection) => break connection,
            Err(error) => assert!(Instant::now() < deadline, "node {index} unreachable: {error}"),
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let () = redis::cmd("CLIENT").arg("CONSISTENCY").arg("stale").query(&mut connection).unwrap();
    loop {
        let value: Option<String> =
            redis::cmd("GET").arg(key).query(&mut connection).ok().flatten();
        if value.as_deref() == Some(expected) {
            return;
        }
        assert!(Instant::now() < deadline, "node {} did not catch up: {value:?}", index + 1);
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_node_restarted_after_its_peers_truncated_their_logs_catches_up_by_snapshot() {
    // More writes to one group (one hash tag) than a snapshot interval, one slot each.
    const WRITES: u64 = 4096 + 600;
    let mut cluster = Cluster::start(3);
    let mut client = Client::new(cluster.addresses());
    let deadline = Instant::now() + Duration::from_secs(20);
    client.run(redis::cmd("SET").arg("{t}:first").arg("0"), deadline).unwrap();
    // Masters sit on the lowest live node: node 3 is a follower.
    let laggard = 2;
    stale_read_until(&cluster, laggard, "{t}:first", "0", Duration::from_secs(10));
    cluster.kill(laggard);
    let mut addresses = cluster.addresses();
    addresses[laggard] = None;
    let mut client = Client::new(addresses);
    let started = Instant::now();
    for index in 0..WRITES {
        let command = redis::cmd("SET").arg(format!("{{t}}:{index}")).arg(index).clone();
        let deadline = Instant::now() + Duration::from_secs(10);
        let (_, value) = client.run(&command, deadline).expect("writes keep working");
        assert_eq!(value, redis::Value::Okay);
    }
    println!("cluster: {WRITES} writes in {:?} with node 3 down", started.elapsed());

    cluster.restart(laggard);
    let restarted = Instant::now();
    let last = WRITES - 1;
    let key = format!("{{t}}:{last}");
    stale_read_until(&cluster, laggard, &key, &last.to_string(), Duration::from_secs(30));
    println!("cluster: node 3 caught up {:?} after its restart", restarted.elapsed());
    stale_read_until(&cluster, laggard, "{t}:17", "17", Duration::from_secs(1));

    // It caught up by a snapshot fetched over the peer transport, not by replaying a log.
    let node = cluster.nodes[laggard].take().unwrap();
    node.signal(rustix::process::Signal::TERM);
    let (_, lines) = node.wait();
    assert!(
        lines.iter().any(|line| line.contains("snapshot fetched; installing")),
        "no snapshot was installed"
    );
}

/// `klein admin status` against node `index`: its output.
fn admin_status(cluster: &Cluster, index: usize) -> String {
    let address = cluster.nodes[index].as_ref().unwrap().address;
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_klein"))
        .args(["admin", "status", "--address", &address.to_string()])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap()
}

/// `GET /metrics` from node `index`.
fn scrape(cluster: &Cluster, index: usize) -> String {
    use std::io::{Read, Write};
    let mut stream =
        std::net::TcpStream::connect(("127.0.0.1", cluster.metrics_ports[index])).unwrap();
    stream.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200 OK"), "{response}");
    response
}

/// The value of the metric line that starts with `prefix` (name and labels).
fn metric(text: &str, prefix: &str) -> Option<u64> {
    text.lines().find(|line| line.starts_with(prefix))?.rsplit(' ').next()?.parse().ok()
}

#[test]
fn status_info_and_metrics_report_masters_and_garbage_peers_are_refused() {
    let mut cluster = Cluster::start(3);
    // Masters settle on node 1 (the lowest live node id): every group's line says so, on
    // node 1 as master and on node 2 as follower.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (first, second) = (admin_status(&cluster, 0), admin_status(&cluster, 1));
        let groups = |text: &str| text.lines().filter(|l| l.starts_with("group ")).count();
        let settled = groups(&first) > 0
            && first
                .lines()
                .filter(|l| l.starts_with("group "))
                .all(|l| l.contains("role master master 1 "))
            && groups(&second) == groups(&first)
            && second
                .lines()
                .filter(|l| l.starts_with("group "))
                .all(|l| l.contains("role follower master 1 "));
        if settled {
            println!("cluster: klein admin status on node 1:\n{first}");
            assert!(first.starts_with("node 1\n"));
            assert!(first.contains("voters 1,2,3"), "{first}");
            assert!(first.contains("lag[2] "), "a master reports each peer's lag: {first}");
            break;
        }
        assert!(Instant::now() < deadline, "masters did not settle on node 1:\n{first}\n{second}");
        std::thread::sleep(Duration::from_millis(200));
    }
    // Writes through node 2 (forwarded) show in node 1's counters and key counts.
    let mut connection = connect(&cluster, 1);
    for index in 0..50 {
        let () =
            redis::cmd("SET").arg(format!("m:{index}")).arg(index).query(&mut connection).unwrap();
    }
    let info: String = redis::cmd("INFO").arg("replication").query(&mut connection).unwrap();
    assert!(info.contains("role:slave") && info.contains("klein_groups_mastered:0"), "{info}");
    // Reports are published once per tick (10 ms): poll briefly.
    let deadline = Instant::now() + Duration::from_secs(2);
    let info = loop {
        let info: String = redis::cmd("INFO").query(&mut connect(&cluster, 0)).unwrap();
        if info.contains("# Keyspace\r\ndb0:keys=50,") || Instant::now() > deadline {
            break info;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(info.contains("role:master"), "{info}");
    assert!(info.contains("# Keyspace\r\ndb0:keys=50,"), "{info}");
    let metrics = scrape(&cluster, 0);
    assert!(metric(&metrics, "klein_writes_proposed_total{node=\"1\",core=\"0\"}").unwrap() >= 50);
    assert!(metric(&metrics, "klein_forwards_received_total{node=\"1\"").unwrap() >= 50);
    assert_eq!(metric(&metrics, "klein_group_master{node=\"1\",group=\"0\"}"), Some(1));
    let follower = scrape(&cluster, 1);
    assert!(metric(&follower, "klein_forwards_sent_total{node=\"2\"").unwrap() >= 50);
    assert_eq!(metric(&follower, "klein_group_master_node{node=\"2\",group=\"0\"}"), Some(1));

    // A peer that sends garbage, and one from another cluster, are refused with a log line;
    // the node keeps serving.
    let peer = ("127.0.0.1", cluster.peer_ports[0]);
    let mut garbage = std::net::TcpStream::connect(peer).unwrap();
    std::io::Write::write_all(&mut garbage, &[0xAB; 256]).unwrap();
    let mut stranger = std::net::TcpStream::connect(peer).unwrap();
    let mut encoder = klein::wire::Encoder::new(klein::types::NodeId::new(9).unwrap());
    encoder.handshake(&klein::wire::Handshake::ours(
        0xBAD,
        klein::types::NodeId::new(9).unwrap(),
        klein::types::NodeId::new(1),
        klein::types::CoreIndex(0),
    ));
    std::io::Write::write_all(&mut stranger, encoder.finish()).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let () =
        redis::cmd("SET").arg("after").arg("garbage").query(&mut connect(&cluster, 0)).unwrap();
    let value: String = redis::cmd("GET").arg("after").query(&mut connection).unwrap();
    assert_eq!(value, "garbage");
    let node = cluster.nodes[0].take().unwrap();
    node.signal(rustix::process::Signal::TERM);
    let (_, lines) = node.wait();
    let refused: Vec<&String> =
        lines.iter().filter(|line| line.contains("peer connection closed")).collect();
    assert!(refused.iter().any(|line| line.contains("magic")), "garbage not logged: {refused:?}");
    assert!(
        refused.iter().any(|line| line.contains("incompatible peer")),
        "the stranger not logged: {refused:?}"
    );
}
