//! Keyspace commands against Redis 7's exact replies.

use super::support::{Harness, bulk, bulks, err, int, ok};
use crate::state_machine::Reply;

#[test]
fn del_exists_type_touch() {
    let mut h = Harness::new();
    h.run("MSET a 1 b 2");
    h.run("RPUSH l x");
    assert_eq!(h.run("EXISTS a a missing b"), int(3));
    assert_eq!(h.run("TYPE a"), Reply::Simple("string".into()));
    assert_eq!(h.run("TYPE l"), Reply::Simple("list".into()));
    assert_eq!(h.run("TYPE missing"), Reply::Simple("none".into()));
    assert_eq!(h.run("TOUCH a missing"), int(1));
    assert_eq!(h.run("DEL a missing l"), int(2));
    assert_eq!(h.run("UNLINK b"), int(1));
    assert_eq!(h.run("DBSIZE"), int(0));
    assert_eq!(h.run("DEL"), err("ERR wrong number of arguments for 'del' command"));
}

#[test]
fn rename_and_renamenx_keep_the_deadline() {
    let mut h = Harness::new();
    assert_eq!(h.run("RENAME a b"), err("ERR no such key"));
    assert_eq!(h.run("RENAMENX a b"), err("ERR no such key"));
    h.run("SET a 1 EX 100");
    assert_eq!(h.run("RENAME a a"), ok());
    assert_eq!(h.run("RENAMENX a a"), int(0));
    assert_eq!(h.run("RENAME a b"), ok());
    assert_eq!(h.run("TTL b"), int(100));
    assert_eq!(h.run("EXISTS a"), int(0));
    h.run("SET c 3");
    assert_eq!(h.run("RENAMENX b c"), int(0));
    assert_eq!(h.run("RENAMENX b d"), int(1));
    assert_eq!(h.run("RENAME d c"), ok());
    assert_eq!(h.run("GET c"), bulk("1"));
    assert_eq!(h.run("TTL c"), int(100));
}

#[test]
fn copy_follows_redis_options() {
    let mut h = Harness::new();
    h.run("HSET src f v");
    h.run("EXPIRE src 50");
    assert_eq!(h.run("COPY src src"), err("ERR source and destination objects are the same"));
    assert_eq!(h.run("COPY missing dst"), int(0));
    assert_eq!(h.run("COPY src dst"), int(1));
    assert_eq!(h.run("HGET dst f"), bulk("v"));
    assert_eq!(h.run("TTL dst"), int(50));
    assert_eq!(h.run("COPY src dst"), int(0));
    assert_eq!(h.run("COPY src dst REPLACE"), int(1));
    assert_eq!(h.run("COPY src dst DB 1"), err("ERR DB index is out of range"));
    assert_eq!(h.run("COPY src dst DB 0 REPLACE"), int(1));
    assert_eq!(h.run("COPY src dst FOO"), err("ERR syntax error"));
    // The copy is independent of the source.
    h.run("HSET dst f changed");
    assert_eq!(h.run("HGET src f"), bulk("v"));
}

#[test]
fn keys_matches_globs_and_hides_expired_keys() {
    let mut h = Harness::new();
    h.run("MSET hello 1 hallo 2 hxllo 3 hllo 4 heeeello 5");
    h.run("SET gone 1 PX 10");
    let mut keys = match h.run("KEYS h?llo") {
        Reply::Array(items) => items,
        other => panic!("{other:?}"),
    };
    keys.sort_by_key(|reply| match reply {
        Reply::Bulk(bytes) => bytes.clone(),
        _ => Vec::new(),
    });
    assert_eq!(Reply::Array(keys), bulks(&["hallo", "hello", "hxllo"]));
    assert_eq!(h.run("KEYS h[^e]llo"), h.run("KEYS h[a-x]llo").clone_without("hello"));
    h.now += 10;
    assert_eq!(h.run("KEYS gone"), Reply::Array(vec![]));
    assert_eq!(h.run("KEYS g*"), Reply::Array(vec![]));
}

trait Without {
    fn clone_without(&self, item: &str) -> Reply;
}

impl Without for Reply {
    fn clone_without(&self, item: &str) -> Reply {
        match self {
            Reply::Array(items) => {
                Reply::Array(items.iter().filter(|i| **i != bulk(item)).cloned().collect())
            }
            other => other.clone(),
        }
    }
}

fn scan_all(h: &mut Harness, options: &str) -> (Vec<Vec<u8>>, usize) {
    let mut cursor = "0".to_string();
    let mut keys = Vec::new();
    let mut calls = 0;
    loop {
        calls += 1;
        let reply = h.read(&format!("SCAN {cursor}{options}"));
        let Reply::Array(parts) = reply else { panic!("{reply:?}") };
        let (Reply::Bulk(next), Reply::Array(batch)) = (&parts[0], &parts[1]) else {
            panic!("{parts:?}")
        };
        for key in batch {
            let Reply::Bulk(key) = key else { panic!() };
            keys.push(key.clone());
        }
        cursor = String::from_utf8(next.clone()).unwrap();
        if cursor == "0" {
            return (keys, calls);
        }
    }
}

#[test]
fn scan_visits_every_key_once_with_count_match_and_type() {
    let mut h = Harness::new();
    for i in 0..100 {
        h.run(&format!("SET key:{i} v"));
    }
    h.run("SADD set:1 m");
    let (mut keys, calls) = scan_all(&mut h, " COUNT 7");
    assert!(calls >= 100 / 7, "{calls}");
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), 101);
    let (keys, _) = scan_all(&mut h, " MATCH key:1* COUNT 1000");
    assert_eq!(keys.len(), 11);
    let (keys, _) = scan_all(&mut h, " TYPE set");
    assert_eq!(keys, vec![b"set:1".to_vec()]);
    assert_eq!(h.read("SCAN x"), err("ERR invalid cursor"));
    assert_eq!(h.read("SCAN 0 COUNT 0"), err("ERR syntax error"));
    assert_eq!(h.read("SCAN 0 COUNT"), err("ERR syntax error"));
    assert_eq!(h.read("SCAN 0 COUNT x"), err("ERR value is not an integer or out of range"));
}

#[test]
fn scan_cursor_survives_deletes_and_inserts() {
    let mut h = Harness::new();
    for i in 0..50 {
        h.run(&format!("SET k{i} v"));
    }
    let Reply::Array(first) = h.read("SCAN 0 COUNT 10") else { panic!() };
    let Reply::Bulk(cursor) = &first[0] else { panic!() };
    let cursor = String::from_utf8(cursor.clone()).unwrap();
    let Reply::Array(seen) = &first[1] else { panic!() };
    let seen: Vec<Vec<u8>> =
        seen.iter().map(|r| if let Reply::Bulk(b) = r { b.clone() } else { panic!() }).collect();
    for i in 0..50 {
        let key = format!("k{i}");
        if seen.contains(&key.clone().into_bytes()) {
            h.run(&format!("DEL {key}"));
        }
        h.run(&format!("SET new{i} v"));
    }
    let mut rest = Vec::new();
    let mut cursor = cursor;
    while cursor != "0" {
        let Reply::Array(parts) = h.read(&format!("SCAN {cursor} COUNT 10")) else { panic!() };
        let Reply::Bulk(next) = &parts[0] else { panic!() };
        cursor = String::from_utf8(next.clone()).unwrap();
        let Reply::Array(batch) = &parts[1] else { panic!() };
        rest.extend(
            batch.iter().map(|r| if let Reply::Bulk(b) = r { b.clone() } else { panic!() }),
        );
    }
    for i in 0..50 {
        let key = format!("k{i}").into_bytes();
        if !seen.contains(&key) {
            assert!(rest.contains(&key), "k{i} present throughout was not returned");
        }
    }
}

#[test]
fn randomkey_flushall_dbsize() {
    let mut h = Harness::new();
    assert_eq!(h.run("RANDOMKEY"), Reply::Null);
    h.run("MSET a 1 b 2 c 3");
    let Reply::Bulk(key) = h.run("RANDOMKEY") else { panic!() };
    assert!([b"a".to_vec(), b"b".to_vec(), b"c".to_vec()].contains(&key));
    assert_eq!(h.run("DBSIZE"), int(3));
    assert_eq!(h.run("FLUSHALL ASYNC"), ok());
    assert_eq!(h.run("FLUSHDB"), ok());
    assert_eq!(h.run("FLUSHDB x"), err("ERR syntax error"));
    assert_eq!(h.run("DBSIZE"), int(0));
    assert_eq!(h.machine.used_memory(), 0);
}

#[test]
fn expire_family_with_conditions() {
    let mut h = Harness::new();
    h.now = 1_000_000;
    assert_eq!(h.run("EXPIRE missing 10"), int(0));
    h.run("SET k v");
    assert_eq!(h.run("TTL k"), int(-1));
    assert_eq!(h.run("EXPIRE k 100 XX"), int(0));
    assert_eq!(h.run("EXPIRE k 100 GT"), int(0));
    assert_eq!(h.run("EXPIRE k 100 NX"), int(1));
    assert_eq!(h.run("EXPIRE k 200 NX"), int(0));
    assert_eq!(h.run("EXPIRE k 50 GT"), int(0));
    assert_eq!(h.run("EXPIRE k 200 GT"), int(1));
    assert_eq!(h.run("EXPIRE k 300 LT"), int(0));
    assert_eq!(h.run("PEXPIRE k 1500 LT"), int(1));
    assert_eq!(h.run("PTTL k"), int(1500));
    assert_eq!(h.run("TTL k"), int(2));
    assert_eq!(h.run("EXPIRETIME k"), int(1002));
    assert_eq!(h.run("PEXPIRETIME k"), int(1_001_500));
    assert_eq!(h.run("EXPIREAT k 2000"), int(1));
    assert_eq!(h.run("PEXPIRETIME k"), int(2_000_000));
    assert_eq!(h.run("PEXPIREAT k 3000000 XX LT"), int(0));
    assert_eq!(h.run("PERSIST k"), int(1));
    assert_eq!(h.run("PERSIST k"), int(0));
    assert_eq!(h.run("PEXPIREAT k 3000000 XX LT"), int(0));
    assert_eq!(h.run("PEXPIRE k 100 LT"), int(1));
    assert_eq!(h.run("EXPIRE k -1"), int(1));
    assert_eq!(h.run("EXISTS k"), int(0));
    assert_eq!(h.run("TTL k"), int(-2));
    assert_eq!(h.run("EXPIRETIME k"), int(-2));
}

#[test]
fn expire_option_and_overflow_errors() {
    let mut h = Harness::new();
    h.run("SET k v");
    assert_eq!(
        h.run("EXPIRE k 10 NX XX"),
        err("ERR NX and XX, GT or LT options at the same time are not compatible")
    );
    assert_eq!(
        h.run("EXPIRE k 10 GT LT"),
        err("ERR GT and LT options at the same time are not compatible")
    );
    assert_eq!(h.run("EXPIRE k 10 FOO"), err("ERR Unsupported option FOO"));
    assert_eq!(h.run("EXPIRE k abc"), err("ERR value is not an integer or out of range"));
    assert_eq!(
        h.run("EXPIRE k 9223372036854775807"),
        err("ERR invalid expire time in 'expire' command")
    );
    assert_eq!(
        h.run("PEXPIRE k 9223372036854775807"),
        err("ERR invalid expire time in 'pexpire' command")
    );
    assert_eq!(h.run("PEXPIREAT k 9223372036854775807"), int(1));
    assert_eq!(h.run("TTL k"), int(9_223_372_036_853_776));
}

#[test]
fn keys_expire_exactly_at_their_deadline_stamp() {
    let mut h = Harness::new();
    h.now = 5_000;
    h.run("SET k v PX 100");
    h.now = 5_099;
    assert_eq!(h.run("GET k"), bulk("v"));
    assert_eq!(h.read("GET k"), bulk("v"));
    h.now = 5_100;
    assert_eq!(h.read("GET k"), Reply::Null);
    assert_eq!(h.read("EXISTS k"), int(0));
    assert_eq!(h.machine.key_count(), 1, "the read path never deletes");
    assert_eq!(h.run("GET k"), Reply::Null);
    assert_eq!(h.machine.key_count(), 0, "apply deletes lazily");
    assert_eq!(h.machine.expires_count(), 0);
}

#[test]
fn object_encoding_and_memory_usage() {
    let mut h = Harness::new();
    h.run("SET int 12345");
    h.run("SET short hello");
    h.run(&format!("SET long {}", "x".repeat(45)));
    h.run("SADD ints 1 2 3");
    h.run("SADD words a b");
    h.run("HSET h f v");
    h.run("ZADD z 1 a");
    h.run("RPUSH l a");
    for (key, encoding) in [
        ("int", "int"),
        ("short", "embstr"),
        ("long", "raw"),
        ("ints", "intset"),
        ("words", "listpack"),
        ("h", "listpack"),
        ("z", "listpack"),
        ("l", "listpack"),
    ] {
        assert_eq!(h.read(&format!("OBJECT ENCODING {key}")), bulk(encoding), "{key}");
    }
    assert_eq!(h.read("OBJECT ENCODING missing"), Reply::Null);
    assert_eq!(h.read("OBJECT REFCOUNT h"), int(1));
    assert_eq!(h.read("OBJECT IDLETIME h"), int(0));
    h.now += 5_000;
    assert_eq!(h.read("OBJECT IDLETIME h"), int(5), "OBJECT does not touch the key");
    assert!(matches!(h.read("OBJECT FREQ h"), Reply::Error(e) if e.contains("LFU maxmemory")));
    assert_eq!(h.read("OBJECT FOO h"), err("ERR unknown subcommand 'FOO'. Try OBJECT HELP."));
    assert_eq!(
        h.read("OBJECT ENCODING"),
        err("ERR wrong number of arguments for 'object|encoding' command")
    );
    let Reply::Integer(usage) = h.read("MEMORY USAGE long SAMPLES 5") else { panic!() };
    assert_eq!(usage, 64 + 4 + 45);
    assert_eq!(h.read("MEMORY USAGE missing"), Reply::Null);
    assert_eq!(h.read("MEMORY STATS"), err("ERR unknown subcommand 'STATS'. Try MEMORY HELP."));
}
