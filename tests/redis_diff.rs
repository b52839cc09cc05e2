//! Differential test (issue 6): the same seeded random sequences of supported commands go to a
//! `klein server` and to a real `redis-server` 7.0; the replies must be equal, over RESP2 and
//! over RESP3. On a mismatch the test prints the seed, the sequence, the command and both
//! replies.
//!
//! Keys: a few under the hash tag `{d}` (one group, so multi-key commands stay legal) and a few
//! plain ones that land on different groups, used by the commands Klein splits or fans out
//! (`MGET`, `MSET`, `DEL`, `EXISTS`, `TOUCH`, `UNLINK`, `DBSIZE`, `KEYS`, `SCAN`).
//!
//! Documented exceptions, where Redis and Klein legitimately differ:
//! - Unordered collections (`SMEMBERS`, `SINTER`/`SUNION`/`SDIFF`, `HKEYS`, `HVALS`, `HGETALL`,
//!   `KEYS`): compared sorted (Redis's order is an encoding artefact, not a contract).
//! - `SCAN`: cursors are opaque and differ; the sorted union of a full iteration is compared.
//! - `TTL`/`PTTL`: the two servers see the command a few milliseconds apart, so a positive
//!   remaining time is compared as "positive"; -1 and -2 are compared exactly. TTLs are large
//!   (>= 100000 s) so nothing expires during a run; `GT`/`LT` use absolute `EXPIREAT` stamps.
//! - Not generated: `RANDOMKEY`, `SPOP`, `SRANDMEMBER` (random by contract; `SPOP` would also
//!   make the two states diverge), `OBJECT`, `MEMORY`, `DEBUG`, `INFO` (implementation
//!   details).
//! - `EXPIRETIME`/`PEXPIRETIME`: after a relative `EXPIRE` the deadline depends on each
//!   server's clock (Klein's is the master's stamp), and a CI run saw them one second apart
//!   across a second boundary; a positive deadline is compared as "positive", like a TTL.
//! - `MSETNX` only over `{d}` keys: across groups Klein refuses it with CROSSSLOT by design.
//! - `INCRBYFLOAT` past 2^63: Redis computes in x87 `long double` (64-bit mantissa) and
//!   rounds `9223372036854775807 + 1.5` to `...808`; Klein's exact decimal gives `...808.5`.
//!   An open difference (reported, not yet fixed): `INCRBY` operands stay below 2^53 here.
//! - `SET ... IFEQ` is Valkey 8.1, not Redis 7.0: covered by the state machine's unit tests.

// Short names (k: key, t: tagged key, v: value, m: member, n/i: indexes) keep the command
// templates readable on one line each.
#![allow(clippy::many_single_char_names)]

mod common;

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::Server;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use redis::{Connection, Value};

const SEQUENCES: usize = 200;
const COMMANDS: usize = 200;
const TAGGED: [&str; 4] = ["{d}a", "{d}b", "{d}c", "{d}d"];
const PLAIN: [&str; 4] = ["pa", "pb", "pc", "pd"];
const VALUES: [&str; 8] = ["a", "b", "1", "2", "10", "-3", "1.5", "xyz"];
const FIELDS: [&str; 4] = ["f0", "f1", "f2", "f3"];
const MEMBERS: [&str; 5] = ["m0", "m1", "m2", "m3", "m4"];

/// A `redis-server` on a free port with a temporary directory, stopped by PID on drop.
struct Redis {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Redis {
    fn start() -> Redis {
        let dir = tempfile::tempdir().expect("temporary directory");
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new("redis-server")
            .args(["--save", "", "--appendonly", "no", "--bind", "127.0.0.1", "--port"])
            .arg(port.to_string())
            .arg("--dir")
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|error| {
                panic!("redis-server 7.0 must be on PATH (.ci/run installs it): {error}")
            });
        let redis = Redis { child, port, _dir: dir };
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start on port {port}");
            std::thread::sleep(Duration::from_millis(20));
        }
        redis
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn connect(address: &str, resp3: bool) -> Connection {
    let protocol = if resp3 { "?protocol=resp3" } else { "" };
    let client = redis::Client::open(format!("redis://{address}/{protocol}")).unwrap();
    let connection = client.get_connection_with_timeout(Duration::from_secs(10)).unwrap();
    connection.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    connection
}

fn pick<'a>(rng: &mut SmallRng, items: &[&'a str]) -> &'a str {
    items[rng.random_range(0..items.len())]
}

fn any_key(rng: &mut SmallRng) -> &'static str {
    if rng.random_bool(0.75) { pick(rng, &TAGGED) } else { pick(rng, &PLAIN) }
}

fn words(line: &str) -> Vec<String> {
    line.split(' ').map(str::to_owned).collect()
}

/// One random command line over the key space.
fn generate(rng: &mut SmallRng) -> Vec<String> {
    let k = any_key(rng);
    let t = pick(rng, &TAGGED);
    let t2 = pick(rng, &TAGGED);
    let v = pick(rng, &VALUES);
    let f = pick(rng, &FIELDS);
    let m = pick(rng, &MEMBERS);
    let n = rng.random_range(-3..4);
    let i = rng.random_range(-4..5);
    let line = match rng.random_range(0..26) {
        0 | 20..=22 => strings(rng, k, v),
        2..=3 => split(rng),
        4..=7 => hashes(rng, k, f, v),
        8..=11 => lists(rng, k, t, v, n, i),
        12..=15 => sets(rng, k, t, t2, m),
        16..=19 => zsets(rng, k, m, n, i),
        _ => keys(rng, k, t, t2),
    };
    words(&line)
}

fn strings(rng: &mut SmallRng, k: &str, v: &str) -> String {
    let option = pick(rng, &["", " NX", " XX", " GET", " EX 100000", " KEEPTTL", " XX GET"]);
    let option2 = pick(rng, &["", " PX 200000000", " NX GET", " KEEPTTL GET", " EX 0"]);
    match rng.random_range(0..20) {
        0..=2 => format!("SET {k} {v}{option}"),
        3 => format!("SET {k} {v}{option2}"),
        4..=5 => format!("GET {k}"),
        6 => format!("SETNX {k} {v}"),
        7 => format!("GETSET {k} {v}"),
        8 => format!("GETDEL {k}"),
        9 => format!("APPEND {k} {v}"),
        10 => format!("STRLEN {k}"),
        11 => format!("INCR {k}"),
        12 => format!("DECRBY {k} {}", rng.random_range(-5..5)),
        13 => format!("INCRBYFLOAT {k} {}", pick(rng, &["1.5", "-2", "0.1", "3e2", "abc"])),
        14 => format!("GETRANGE {k} {} {}", rng.random_range(-4..4), rng.random_range(-4..4)),
        15 => format!("SETRANGE {k} {} {v}", rng.random_range(0..5)),
        16 => format!("SETEX {k} {} {v}", pick(rng, &["100000", "0", "-1", "x"])),
        17 => format!("GETEX {k}{}", pick(rng, &["", " PERSIST", " EX 100000", " PX 0"])),
        18 => format!("MSETNX {} {v} {} {v}", pick(rng, &TAGGED), pick(rng, &TAGGED)),
        _ => format!("INCRBY {k} {}", pick(rng, &["1", "-1", "x", "4503599627370496"])),
    }
}

fn keys(rng: &mut SmallRng, k: &str, t: &str, t2: &str) -> String {
    match rng.random_range(0..16) {
        0 => format!("TYPE {k}"),
        1 => format!("RENAME {t} {t2}"),
        2 => format!("RENAMENX {t} {t2}"),
        3 => format!("COPY {t} {t2}{}", pick(rng, &["", " REPLACE"])),
        4 => format!("EXPIRE {k} {}", pick(rng, &["100000", "200000", "0", "-5", "x"])),
        5 => format!("PEXPIRE {k} 300000000{}", pick(rng, &["", " NX", " XX"])),
        6 => {
            let stamp = pick(rng, &["4000000000", "4100000000", "4200000000"]);
            let condition = pick(rng, &["", " NX", " XX", " GT", " LT", " NX GT"]);
            format!("EXPIREAT {k} {stamp}{condition}")
        }
        7 => format!("EXPIRETIME {k}"),
        8 => format!("PERSIST {k}"),
        9 => format!("TTL {k}"),
        10 => format!("PTTL {k}"),
        11 => format!("EXISTS {k} {t}"),
        12 => "DBSIZE".to_owned(),
        13 => format!("KEYS {}", pick(rng, &["*", "{d}*", "p?", "*[ab]"])),
        14 => "SCAN*".to_owned(),
        _ => format!("PEXPIREAT {k} 4100000000000"),
    }
}

/// The commands Klein splits across groups.
fn split(rng: &mut SmallRng) -> String {
    let name = pick(rng, &["MGET", "MSET", "DEL", "EXISTS", "TOUCH", "UNLINK"]);
    let count = rng.random_range(1..5);
    let mut line = name.to_owned();
    for _ in 0..count {
        line.push(' ');
        line.push_str(any_key(rng));
        if name == "MSET" {
            line.push(' ');
            line.push_str(pick(rng, &VALUES));
        }
    }
    line
}

fn hashes(rng: &mut SmallRng, k: &str, f: &str, v: &str) -> String {
    let f2 = pick(rng, &FIELDS);
    match rng.random_range(0..14) {
        0..=2 => format!("HSET {k} {f} {v}{}", if rng.random_bool(0.3) { " f9 z" } else { "" }),
        3 => format!("HGET {k} {f}"),
        4 => format!("HMGET {k} {f} {f2}"),
        5 => format!("HDEL {k} {f} {f2}"),
        6 => format!("HEXISTS {k} {f}"),
        7 => format!("HLEN {k}"),
        8 => format!("HKEYS {k}"),
        9 => format!("HVALS {k}"),
        10 => format!("HGETALL {k}"),
        11 => format!("HINCRBY {k} {f} {}", pick(rng, &["1", "-2", "x"])),
        12 => format!("HSETNX {k} {f} {v}"),
        _ => format!("HINCRBYFLOAT {k} {f} {}", pick(rng, &["1.5", "-0.5", "x"])),
    }
}

fn lists(rng: &mut SmallRng, k: &str, t: &str, v: &str, n: i32, i: i32) -> String {
    let t2 = pick(rng, &TAGGED);
    match rng.random_range(0..16) {
        0..=2 => format!("LPUSH {k} {v} {}", pick(rng, &VALUES)),
        3..=4 => format!("RPUSH {k} {v}"),
        5 => format!("LPOP {k}{}", pick(rng, &["", " 2", " 0"])),
        6 => format!("RPOP {k}"),
        7 => format!("LLEN {k}"),
        8..=9 => format!("LRANGE {k} {n} {i}"),
        10 => format!("LINDEX {k} {i}"),
        11 => format!("LSET {k} {i} {v}"),
        12 => format!("LREM {k} {n} {v}"),
        13 => format!("LINSERT {k} {} {v} x", pick(rng, &["BEFORE", "AFTER"])),
        14 => format!("LTRIM {k} {n} {i}"),
        _ => format!("LMOVE {t} {t2} {} {}", pick(rng, &["LEFT", "RIGHT"]), "RIGHT"),
    }
}

fn sets(rng: &mut SmallRng, k: &str, t: &str, t2: &str, m: &str) -> String {
    let m2 = pick(rng, &MEMBERS);
    match rng.random_range(0..12) {
        0..=2 => format!("SADD {k} {m} {m2}"),
        3 => format!("SREM {k} {m}"),
        4 => format!("SMEMBERS {k}"),
        5 => format!("SISMEMBER {k} {m}"),
        6 => format!("SCARD {k}"),
        7 => format!("SMISMEMBER {k} {m} {m2}"),
        8 => format!("{} {t} {t2}", pick(rng, &["SINTER", "SUNION", "SDIFF"])),
        9 => format!("{} {t} {t2}", pick(rng, &["SINTERSTORE", "SUNIONSTORE", "SDIFFSTORE"])),
        10 => format!("SMOVE {t} {t2} {m}"),
        _ => format!("SMISMEMBER {t} m9 {m}"),
    }
}

fn zsets(rng: &mut SmallRng, k: &str, m: &str, n: i32, i: i32) -> String {
    let score = pick(rng, &["1", "2.5", "-1", "inf", "0", "x"]);
    match rng.random_range(0..14) {
        0..=2 => format!("ZADD {k}{} {score} {m}", pick(rng, &["", " NX", " XX", " GT", " CH"])),
        3 => format!("ZREM {k} {m}"),
        4 => format!("ZSCORE {k} {m}"),
        5 => format!("ZCARD {k}"),
        6 => format!("ZRANGE {k} {n} {i}{}", pick(rng, &["", " WITHSCORES", " REV"])),
        7 => format!("ZRANGEBYSCORE {k} {} +inf WITHSCORES", pick(rng, &["-inf", "(1", "2"])),
        8 => format!("ZINCRBY {k} {score} {m}"),
        9 => format!("ZRANK {k} {m}"),
        10 => format!("ZCOUNT {k} -inf {}", pick(rng, &["2", "(2.5", "+inf"])),
        11 => format!("ZPOPMIN {k}{}", pick(rng, &["", " 2"])),
        12 => format!("ZREVRANK {k} {m}"),
        _ => format!("ZMSCORE {k} {m} m9"),
    }
}

/// The reply as compared: errors by their full text, unordered replies sorted, positive TTLs
/// as "positive".
fn query(connection: &mut Connection, command: &[String]) -> Result<Value, String> {
    if command[0] == "SCAN*" {
        return Ok(scan_all(connection));
    }
    let mut cmd = redis::cmd(&command[0]);
    for argument in &command[1..] {
        cmd.arg(argument);
    }
    let reply = cmd.query::<Value>(connection).map_err(|error| error.to_string())?;
    Ok(normalise(&command[0], reply))
}

fn normalise(name: &str, reply: Value) -> Value {
    match (name, reply) {
        ("TTL" | "PTTL" | "EXPIRETIME" | "PEXPIRETIME", Value::Int(left)) if left > 0 => {
            Value::Int(1)
        }
        (
            "SMEMBERS" | "SINTER" | "SUNION" | "SDIFF" | "HKEYS" | "HVALS" | "KEYS",
            Value::Array(mut items) | Value::Set(mut items),
        ) => {
            items.sort_by_key(|item| format!("{item:?}"));
            Value::Array(items)
        }
        ("HGETALL", Value::Map(mut pairs)) => {
            pairs.sort_by_key(|pair| format!("{pair:?}"));
            Value::Map(pairs)
        }
        ("HGETALL", Value::Array(items)) => {
            let mut pairs: Vec<_> = items.chunks(2).map(<[Value]>::to_vec).collect();
            pairs.sort_by_key(|pair| format!("{pair:?}"));
            Value::Array(pairs.concat())
        }
        (_, reply) => reply,
    }
}

/// The sorted union of the keys a full `SCAN` iteration returns.
fn scan_all(connection: &mut Connection) -> Value {
    let mut cursor = "0".to_owned();
    let mut keys = Vec::new();
    for _ in 0..10_000 {
        let (next, batch): (String, Vec<String>) = redis::cmd("SCAN")
            .arg(&cursor)
            .arg("COUNT")
            .arg(3)
            .query(connection)
            .unwrap_or_else(|error| panic!("SCAN {cursor} COUNT 3 after {keys:?}: {error}"));
        keys.extend(batch);
        if next == "0" {
            keys.sort();
            keys.dedup();
            return Value::Array(
                keys.into_iter().map(|key| Value::BulkString(key.into())).collect(),
            );
        }
        cursor = next;
    }
    panic!("SCAN did not finish in 10000 calls");
}

fn run(resp3: bool) {
    let klein = Server::start(&[]);
    let redis = Redis::start();
    let mut ours = connect(&klein.address.to_string(), resp3);
    let mut theirs = connect(&format!("127.0.0.1:{}", redis.port), resp3);
    let seed: u64 = std::env::var("KLEIN_DIFF_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(6);
    let mut rng = SmallRng::seed_from_u64(seed ^ u64::from(resp3));
    for sequence in 0..SEQUENCES {
        for connection in [&mut ours, &mut theirs] {
            let () = redis::cmd("FLUSHALL").query(connection).unwrap();
        }
        for index in 0..COMMANDS {
            let command = generate(&mut rng);
            let klein_reply = query(&mut ours, &command);
            let redis_reply = query(&mut theirs, &command);
            assert_eq!(
                klein_reply,
                redis_reply,
                "seed {seed} resp3 {resp3} sequence {sequence} command {index}: {}\n\
                 left: klein, right: redis",
                command.join(" ")
            );
        }
    }
}

#[test]
fn the_same_random_commands_get_the_same_replies_as_redis_over_resp2_and_resp3() {
    let started = Instant::now();
    let resp2 = std::thread::spawn(|| run(false));
    let resp3 = std::thread::spawn(|| run(true));
    let (two, three) = (resp2.join(), resp3.join());
    if let Err(panic) = two.and(three) {
        std::panic::resume_unwind(panic);
    }
    eprintln!(
        "redis_diff: {SEQUENCES} x {COMMANDS} commands x 2 protocols in {:?}",
        started.elapsed()
    );
}
