//! The load generator against a real Redis: closed loop, open loop, RESP3, and servers that
//! answer with errors (which must be counted as failures, never as successes).
//!
//! Needs `redis-server` on the PATH (Debian `redis-server`; `.ci/test` installs it) and fails,
//! rather than skips, without it. Each test starts its own server on a free loopback port with
//! a temporary directory and no persistence, and kills it (by its PID) on drop.

use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use klein::loadgen::{self, Config, Op, Report, Stop};

/// A `redis-server` child process.
struct Redis {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Redis {
    fn start(extra: &[&str]) -> Redis {
        let dir = tempfile::tempdir().expect("temporary directory");
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut args = vec![
            "--bind".to_string(),
            "127.0.0.1".to_string(),
            "--port".to_string(),
            port.to_string(),
            "--dir".to_string(),
            dir.path().display().to_string(),
            "--save".to_string(),
            String::new(),
            "--appendonly".to_string(),
            "no".to_string(),
        ];
        args.extend(extra.iter().map(ToString::to_string));
        let child = Command::new("redis-server")
            .args(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect(
                "redis-server must be on the PATH (apt-get install redis-server; .ci/test and \
                 .ci/run install it)",
            );
        let redis = Redis { child, port, _dir: dir };
        let deadline = Instant::now() + Duration::from_secs(10);
        while redis.command(b"*1\r\n$4\r\nPING\r\n").is_none() {
            assert!(Instant::now() < deadline, "redis-server did not answer PING on {port}");
            thread::sleep(Duration::from_millis(20));
        }
        redis
    }

    /// Sends one raw request and returns the first reply bytes.
    fn command(&self, request: &[u8]) -> Option<Vec<u8>> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        stream.write_all(request).ok()?;
        let mut reply = vec![0; 512];
        let read = stream.read(&mut reply).ok()?;
        reply.truncate(read);
        (read > 0).then_some(reply)
    }

    fn config(&self) -> Config {
        Config {
            port: self.port,
            clients: 4,
            pipeline: 4,
            stop: Stop::Requests(4000),
            keyspace: 200,
            value_size: 100,
            timeout: Duration::from_secs(10),
            ..Config::default()
        }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn run(config: &Config) -> Report {
    let report = loadgen::run(config, &mut |_| {}).expect("the run starts");
    println!("{}", report.summary());
    report
}

#[test]
fn closed_loop_sets_then_gets_return_the_value_size() {
    let redis = Redis::start(&[]);
    let set = run(&Config { mix: "set".parse().unwrap(), ..redis.config() });
    assert_eq!((set.successes(), set.failures()), (4000, 0));
    assert!(set.throughput() > 0.0);
    assert_eq!(set.stats.latency[Op::Set.index()].len(), 4000);
    assert!(set.stats.errors.is_empty(), "{:?}", set.stats.errors);

    // 4000 uniform draws over 200 keys set every key (seeded): every GET is a hit of 100 B.
    let get = run(&Config { mix: "get".parse().unwrap(), threads: 2, ..redis.config() });
    assert_eq!((get.successes(), get.failures()), (4000, 0));
    assert_eq!((get.stats.get_hits, get.stats.get_misses), (4000, 0));

    let json = get.to_json();
    assert_eq!(json["results"]["ok"], 4000);
    assert_eq!(json["results"]["per_command"]["get"]["ok"], 4000);
    assert!(json["results"]["latency_us"]["p99.99"].as_f64().unwrap() > 0.0);
}

#[test]
fn resp3_mixed_commands_and_zipf_keys() {
    let redis = Redis::start(&[]);
    let config = Config {
        mix: "set:2,get:2,incr:1,del:1,ping:1".parse().unwrap(),
        key_dist: "zipf:0.99".parse().unwrap(),
        resp3: true,
        ..redis.config()
    };
    let report = run(&config);
    assert_eq!((report.successes(), report.failures()), (4000, 0));
    for op in Op::ALL {
        assert!(report.stats.ok[op.index()] > 0, "{op:?} never ran");
    }
}

#[test]
fn open_loop_sends_on_schedule() {
    let redis = Redis::start(&[]);
    let config = Config {
        mix: "get:80,set:20".parse().unwrap(),
        stop: Stop::Duration(Duration::from_secs(1)),
        warmup: Duration::from_millis(200),
        open_loop_rate: Some(2000.0),
        pipeline: 8,
        ..redis.config()
    };
    let report = run(&config);
    // 4 connections x 500 sends in the measured second, each sent or counted as dropped.
    assert_eq!(report.failures(), 0);
    assert_eq!(report.successes() + report.stats.dropped_sends, 2000);
    assert!(report.successes() > 1000, "{}", report.summary());
    assert!(report.elapsed >= Duration::from_secs(1));
    // Every measured send's lag behind its schedule is recorded.
    assert_eq!(report.stats.send_lag.len(), report.successes());
    let json = report.to_json();
    assert_eq!(json["results"]["latency_from"], "intended send time");
    assert!(json["results"]["open_loop"]["dropped_sends"].is_u64());
    assert_eq!(json["results"]["open_loop"]["send_lag_us"]["count"], report.successes());
}

#[test]
fn error_replies_are_counted_as_failures_by_kind() {
    // Every write is refused: used memory is always above 1 byte.
    let redis = Redis::start(&["--maxmemory", "1", "--maxmemory-policy", "noeviction"]);
    let report = run(&Config { mix: "set:3,get:1".parse().unwrap(), ..redis.config() });
    let sets = report.stats.failed[Op::Set.index()];
    assert!(sets > 2000, "{}", report.summary());
    assert_eq!(report.stats.ok[Op::Set.index()], 0);
    assert_eq!(report.successes() + report.failures(), 4000);
    assert_eq!(report.stats.errors.len(), 1, "{:?}", report.stats.errors);
    assert_eq!(report.stats.errors[0].kind, "OOM");
    assert_eq!(report.stats.errors[0].count, sets);
    assert!(report.stats.errors[0].example.starts_with("OOM command not allowed"));
    assert_eq!(report.stats.latency[Op::Set.index()].len(), 0, "errors have no latency");
    // GETs still work, and find nothing.
    assert_eq!(report.stats.get_misses, report.stats.ok[Op::Get.index()]);
}

#[test]
fn a_command_the_server_rejects_fails_and_the_binary_exits_1() {
    let redis = Redis::start(&[]);
    // INCR of a key that holds no integer is refused with -ERR.
    let set = b"*3\r\n$3\r\nSET\r\n$20\r\ncounter:000000000000\r\n$3\r\nabc\r\n";
    assert_eq!(redis.command(set).as_deref(), Some(&b"+OK\r\n"[..]));
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("run.json");
    let output = Command::new(env!("CARGO_BIN_EXE_klein-bench"))
        .args(["--port", &redis.port.to_string(), "--clients", "2", "--requests", "100"])
        .args(["--keyspace", "1", "--mix", "incr", "--quiet", "--json"])
        .arg(&json)
        .output()
        .expect("klein-bench runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("0 ok, 100 failed"), "{stdout}");
    assert!(stdout.contains("errors ERR: 100"), "{stdout}");
    let document: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(document["results"]["failed"], 100);
    assert_eq!(document["results"]["errors"][0]["kind"], "ERR");
    assert_eq!(document["config"]["mix"], "incr:1");

    // A clean run exits 0 and can write its latency distribution as `.hgrm`.
    let hgrm = dir.path().join("ping.hgrm");
    let ping = Command::new(env!("CARGO_BIN_EXE_klein-bench"))
        .args(["--port", &redis.port.to_string(), "--requests", "200", "--mix", "ping", "-q"])
        .arg("--hgrm")
        .arg(&hgrm)
        .output()
        .unwrap();
    assert_eq!(ping.status.code(), Some(0), "{ping:?}");
    let distribution = std::fs::read_to_string(&hgrm).unwrap();
    assert!(distribution.starts_with("       Value     Percentile"), "{distribution}");
    assert!(distribution.contains("Total count    =          200]"), "{distribution}");

    // An existing result file is never overwritten.
    let again = Command::new(env!("CARGO_BIN_EXE_klein-bench"))
        .args(["--port", &redis.port.to_string(), "--requests", "10", "--quiet", "--json"])
        .arg(&json)
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(2));
}

#[test]
fn no_server_is_a_start_error() {
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let config = Config { port, ..Config::default() };
    let error = loadgen::run(&config, &mut |_| {}).unwrap_err();
    assert!(error.to_string().contains("cannot connect"), "{error}");
}

/// A one-connection fake server: answers `+OK` to every `SET` of `request_len` bytes, but
/// stops answering (and reading) for `stall` once, `stall_after` after the first request.
fn stalling_server(request_len: usize, stall_after: Duration, stall: Duration) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        stream.set_nodelay(true).unwrap();
        let mut buffer = vec![0u8; 1 << 16];
        let mut pending = 0;
        let mut first: Option<Instant> = None;
        let mut stalled = false;
        loop {
            let Ok(read) = stream.read(&mut buffer) else { return };
            if read == 0 {
                return;
            }
            let start = *first.get_or_insert_with(Instant::now);
            if !stalled && start.elapsed() >= stall_after {
                stalled = true;
                thread::sleep(stall);
            }
            pending += read;
            let replies = pending / request_len;
            pending %= request_len;
            if stream.write_all(&b"+OK\r\n".repeat(replies)).is_err() {
                return;
            }
        }
    });
    port
}

#[test]
fn open_loop_latency_includes_a_stall_closed_loop_hides_it() {
    let mut request = Vec::new();
    klein::loadgen::workload::encode(&mut request, Op::Set, 0, b"x");
    let stall = Duration::from_millis(300);
    let slow = 100_000_000; // 100 ms in nanoseconds
    let base = Config {
        clients: 1,
        value_size: 1,
        stop: Stop::Duration(Duration::from_millis(1500)),
        mix: "set".parse().unwrap(),
        ..Config::default()
    };

    // Open loop, 1000/s: about 300 sends fall due during the stall; each one's latency counts
    // from its scheduled time, so some 200 of them exceed 100 ms.
    let port = stalling_server(request.len(), Duration::from_millis(400), stall);
    let open = Config { port, open_loop_rate: Some(1000.0), pipeline: 1000, ..base.clone() };
    let report = run(&open);
    let histogram = &report.stats.latency[Op::Set.index()];
    let slow_open = histogram.count_between(slow, u64::MAX);
    assert!(slow_open >= 120, "{slow_open} slow: {}", report.summary());

    // Closed loop, one request in flight: the stall delays one request; the ones that were
    // never sent meanwhile are invisible (coordinated omission).
    let port = stalling_server(request.len(), Duration::from_millis(400), stall);
    let report = run(&Config { port, ..base });
    let slow_closed = report.stats.latency[Op::Set.index()].count_between(slow, u64::MAX);
    assert!(slow_closed <= 2, "{slow_closed} slow: {}", report.summary());
    assert_eq!(report.failures(), 0);
}

#[test]
fn prefill_sets_every_key_so_every_get_hits() {
    let redis = Redis::start(&[]);
    let config = Config {
        mix: "get".parse().unwrap(),
        keyspace: 5003,
        clients: 7,
        threads: 2,
        key_dist: "zipf:0.5".parse().unwrap(),
        ..redis.config()
    };
    let prefill = run(&loadgen::prefill_config(&config));
    assert_eq!((prefill.successes(), prefill.failures()), (5003, 0));
    let dbsize = redis.command(b"*1\r\n$6\r\nDBSIZE\r\n").unwrap();
    assert_eq!(dbsize, b":5003\r\n", "{}", String::from_utf8_lossy(&dbsize));
    let get = run(&config);
    assert_eq!((get.stats.get_hits, get.stats.get_misses, get.failures()), (4000, 0, 0));
}

#[test]
fn a_silent_server_times_out_and_the_timeouts_are_failures() {
    // Accepts and reads, never answers.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    thread::spawn(move || {
        let mut streams = Vec::new();
        for stream in listener.incoming().take(2) {
            let mut stream = stream.unwrap();
            let mut sink = [0u8; 4096];
            while stream.read(&mut sink).is_ok_and(|read| read > 0) {}
            streams.push(stream);
        }
    });
    let config = Config {
        port,
        clients: 2,
        pipeline: 3,
        stop: Stop::Requests(100),
        timeout: Duration::from_millis(200),
        ..Config::default()
    };
    let started = Instant::now();
    let report = run(&config);
    assert!(started.elapsed() < Duration::from_secs(5));
    // Each connection sent its first 3 requests, waited, and failed them as timed out.
    assert_eq!((report.successes(), report.failures()), (0, 6));
    assert_eq!(report.stats.errors.len(), 1);
    assert_eq!(
        (report.stats.errors[0].kind.as_str(), report.stats.errors[0].count),
        ("timeout", 6)
    );
    assert_eq!(report.stats.closed_connections, 2);
}
