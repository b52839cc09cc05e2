//! Klein as a Redis server for data: a real `klein server` process, real clients (the Rust
//! `redis` crate in RESP2 and RESP3, `redis-cli`), acknowledged writes surviving `kill -9`.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::Server;
use redis::{Commands, Connection, RedisResult, Value};

fn connect(server: &Server, resp3: bool) -> Connection {
    let protocol = if resp3 { "?protocol=resp3" } else { "" };
    let url = format!("redis://{}/{protocol}", server.address);
    let client = redis::Client::open(url).unwrap();
    let connection = client.get_connection_with_timeout(Duration::from_secs(10)).unwrap();
    connection.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    connection
}

#[test]
fn acknowledged_writes_survive_kill_9_and_restart() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_in(dir.path(), &[]);
    let mut connection = connect(&server, false);
    // One by one, then a pipeline of many in one write.
    for index in 0..50 {
        let () = connection.set(format!("key:{index}"), format!("value:{index}")).unwrap();
    }
    let mut pipe = redis::pipe();
    for index in 50..500 {
        pipe.set(format!("key:{index}"), format!("value:{index}")).ignore();
    }
    pipe.incr("counter", 7).ignore().get("key:499");
    let (last,): (String,) = pipe.query(&mut connection).unwrap();
    assert_eq!(last, "value:499", "a pipeline reads its own earlier write");
    server.kill();

    let server = Server::start_in(dir.path(), &[]);
    let mut connection = connect(&server, false);
    for index in 0..500 {
        let value: Option<String> = connection.get(format!("key:{index}")).unwrap();
        assert_eq!(value.as_deref(), Some(format!("value:{index}").as_str()), "key:{index}");
    }
    let counter: i64 = connection.get("counter").unwrap();
    assert_eq!(counter, 7);
    let size: i64 = redis::cmd("DBSIZE").query(&mut connection).unwrap();
    assert_eq!(size, 501);
}

#[test]
fn multi_key_commands_span_groups_and_keyspace_commands_see_every_group() {
    let server = Server::start(&[]);
    for resp3 in [false, true] {
        let mut connection = connect(&server, resp3);
        let () = redis::cmd("FLUSHALL").query(&mut connection).unwrap();
        let pairs: Vec<(String, String)> =
            (0..40).map(|index| (format!("k{index}"), format!("v{index}"))).collect();
        let () = connection.mset(&pairs).unwrap();
        let keys: Vec<String> = pairs.iter().map(|(key, _)| key.clone()).collect();
        let mut wanted = keys.clone();
        wanted.push("missing".to_string());
        let values: Vec<Option<String>> = connection.mget(&wanted).unwrap();
        assert_eq!(values.len(), 41);
        for (index, value) in values.iter().take(40).enumerate() {
            assert_eq!(value.as_deref(), Some(format!("v{index}").as_str()));
        }
        assert_eq!(values[40], None);
        let all: BTreeSet<String> = connection.keys("*").unwrap();
        assert_eq!(all, keys.iter().cloned().collect());
        let scanned: BTreeSet<String> = connection.scan::<String>().unwrap().collect();
        assert_eq!(scanned, all, "SCAN walks every group");
        let existing: i64 =
            redis::cmd("EXISTS").arg(&keys[..10]).arg("nope").query(&mut connection).unwrap();
        assert_eq!(existing, 10);
        let deleted: i64 = connection.del(&keys[..20]).unwrap();
        assert_eq!(deleted, 20);
        let size: i64 = redis::cmd("DBSIZE").query(&mut connection).unwrap();
        assert_eq!(size, 20);
        // Keys of one hash tag share a group, so a multi-key command on them is atomic.
        let () = connection.mset_nx(&[("{t}a", "1"), ("{t}b", "2")]).map(|_: i64| ()).unwrap();
        let crossed: RedisResult<i64> =
            connection.mset_nx(&[("x1", "1"), ("x2", "2"), ("x3", "3"), ("x4", "4")]);
        let error = crossed.expect_err("keys of several groups").to_string();
        assert!(error.contains("CrossSlot") && error.contains("same slot"), "{error}");
    }
}

#[test]
fn redis_cli_sets_and_gets() {
    let server = Server::start(&[]);
    let port = server.port().to_string();
    let run = |args: &[&str]| {
        let output = std::process::Command::new("redis-cli")
            .args(["-p", &port])
            .args(args)
            .output()
            .expect("redis-cli is installed (.ci/run installs redis-tools)");
        String::from_utf8(output.stdout).unwrap().trim().to_string()
    };
    assert_eq!(run(&["SET", "greeting", "hello"]), "OK");
    assert_eq!(run(&["GET", "greeting"]), "hello");
    assert_eq!(run(&["-3", "GET", "greeting"]), "hello");
    assert!(run(&["INCR", "greeting"]).contains("ERR value is not an integer or out of range"));
    let mut connection = connect(&server, true);
    let value: Value = redis::cmd("GET").arg("nothing").query(&mut connection).unwrap();
    assert_eq!(value, Value::Nil);
}
