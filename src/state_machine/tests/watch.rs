//! `WATCH` support: per-key modification versions, `KeyVersions` reads and `WatchedExec`
//! guards, their encoding, and versions across snapshots (including the format before them).

use super::support::{Harness, bulk, int, ok};
use crate::state_machine::codec::{put_bytes, put_u32, put_u64};
use crate::state_machine::{
    BatchBuilder, Command, DecodeError, Limits, Reply, StateMachine, parse,
};

fn command(line: &str) -> Command {
    let words: Vec<&[u8]> = line.split(' ').map(str::as_bytes).collect();
    parse(&words).unwrap()
}

/// Applies `command` through a batch, as the log does.
fn apply(h: &mut Harness, command: &Command) -> Reply {
    h.sequence += 1;
    let mut batch = BatchBuilder::new();
    batch.push(h.client, h.sequence, command);
    let mut replies = Vec::new();
    h.machine.apply_batch(h.now, &batch.finish(), &mut replies).unwrap();
    replies.pop().unwrap()
}

fn versions(h: &mut Harness, keys: &[&str]) -> Vec<u64> {
    let query = Command::KeyVersions { keys: keys.iter().map(|k| k.as_bytes().to_vec()).collect() };
    let read = h.machine.read(h.now, &query);
    // The log path answers the same as the read path.
    assert_eq!(apply(h, &query), read);
    let Reply::Array(items) = read else { panic!("{read:?}") };
    items
        .into_iter()
        .map(|item| match item {
            Reply::Integer(version) => u64::try_from(version).unwrap(),
            other => panic!("{other:?}"),
        })
        .collect()
}

fn guarded(guards: &[(&str, u64)], lines: &[&str]) -> Command {
    Command::WatchedExec {
        guards: guards.iter().map(|(key, version)| (key.as_bytes().to_vec(), *version)).collect(),
        commands: lines.iter().map(|line| command(line)).collect(),
    }
}

#[test]
fn a_write_gives_its_keys_a_new_version_and_a_read_does_not() {
    let mut h = Harness::new();
    assert_eq!(versions(&mut h, &["a", "b"]), vec![0, 0], "absent keys have version 0");
    h.run("SET a 1");
    let [a1, b1] = versions(&mut h, &["a", "b"])[..] else { panic!() };
    assert!(a1 > 0);
    assert_eq!(b1, 0);
    h.run("GET a");
    h.read("GET a");
    assert_eq!(versions(&mut h, &["a"]), vec![a1], "reads change nothing");
    h.run("INCR a");
    let a2 = versions(&mut h, &["a"])[0];
    assert!(a2 > a1);
    h.run("RENAME a b");
    let [a3, b3] = versions(&mut h, &["a", "b"])[..] else { panic!() };
    assert_eq!(a3, 0, "a renamed-away key is absent");
    assert!(b3 > a2);
    h.run("DEL b");
    assert_eq!(versions(&mut h, &["b"]), vec![0]);
    h.run("SET e 1 PX 100");
    assert!(versions(&mut h, &["e"])[0] > 0);
    h.now += 100;
    assert_eq!(versions(&mut h, &["e"]), vec![0], "an expired key counts as absent");
}

#[test]
fn watched_exec_applies_only_while_every_guard_holds() {
    let mut h = Harness::new();
    h.run("SET a 1");
    let [a, b] = versions(&mut h, &["a", "b"])[..] else { panic!() };
    let exec = guarded(&[("a", a), ("b", b)], &["INCR a", "SET b x"]);
    assert_eq!(exec.keys(), vec![b"a".as_slice(), b"b", b"a", b"b"]);
    assert_eq!(apply(&mut h, &exec), Reply::Array(vec![int(2), ok()]));
    // The same guards are stale now: nothing applies, the reply is a null array.
    let again = guarded(&[("a", a), ("b", b)], &["INCR a", "DEL b"]);
    assert_eq!(apply(&mut h, &again), Reply::NullArray);
    assert_eq!(h.run("GET a"), bulk("2"));
    assert_eq!(h.run("GET b"), bulk("x"));
    // A key created since the watch (absent then) fails its guard too.
    let [c] = versions(&mut h, &["c"])[..] else { panic!() };
    h.run("SET c 1");
    assert_eq!(apply(&mut h, &guarded(&[("c", c)], &["SET a 9"])), Reply::NullArray);
    assert_eq!(h.run("GET a"), bulk("2"));
    // Guards alone (an empty transaction) are checked as well.
    let [c] = versions(&mut h, &["c"])[..] else { panic!() };
    assert_eq!(apply(&mut h, &guarded(&[("c", c)], &[])), Reply::Array(vec![]));
    h.run("DEL c");
    assert_eq!(apply(&mut h, &guarded(&[("c", c)], &[])), Reply::NullArray);
}

#[test]
fn flushall_and_expiry_invalidate_watched_keys() {
    let mut h = Harness::new();
    h.run("SET a 1");
    h.run("SET t 1 PX 50");
    let [a, t] = versions(&mut h, &["a", "t"])[..] else { panic!() };
    h.now += 50;
    assert_eq!(apply(&mut h, &guarded(&[("t", t)], &["SET x 1"])), Reply::NullArray);
    h.run("FLUSHALL");
    assert_eq!(apply(&mut h, &guarded(&[("a", a)], &["SET x 1"])), Reply::NullArray);
}

#[test]
fn watched_exec_is_a_write_and_replicas_agree() {
    let exec = guarded(&[("a", 1)], &["GET a"]);
    assert_eq!(exec.access(), crate::state_machine::Access::Write);
    let mut h = Harness::new();
    assert_eq!(
        h.machine.read(h.now, &exec),
        Reply::Error(crate::state_machine::reply::NOT_READ_ONLY.to_string())
    );
    let mut one = StateMachine::new(Limits::default());
    let mut two = StateMachine::new(Limits::default());
    for machine in [&mut one, &mut two] {
        for (stamp, line) in [(1, "SET a 1"), (2, "INCR a"), (3, "DEL b")] {
            machine.apply_command(stamp, &command(line));
        }
    }
    assert_eq!(one.digest(), two.digest());
    let exec = guarded(&[("a", 2)], &["INCR a"]);
    assert_eq!(one.apply_command(4, &exec), two.apply_command(4, &exec));
    assert_eq!(one.digest(), two.digest());
}

#[test]
fn new_commands_round_trip_and_refuse_nesting() {
    let commands = [
        Command::KeyVersions { keys: vec![b"a".to_vec(), b"b".to_vec()] },
        guarded(&[("a", 7), ("b", 0)], &["SET a 1", "GET b"]),
        guarded(&[], &[]),
    ];
    for original in commands {
        let mut bytes = Vec::new();
        original.encode(&mut bytes);
        let (decoded, used) = Command::decode(&bytes).unwrap();
        assert_eq!(decoded, original);
        assert_eq!(used, bytes.len());
        for cut in 0..bytes.len() {
            assert!(Command::decode(&bytes[..cut]).is_err(), "{original:?} cut at {cut}");
        }
    }
    for inner in [guarded(&[], &["GET a"]), Command::Exec { commands: vec![command("GET a")] }] {
        for outer in [
            Command::Exec { commands: vec![inner.clone()] },
            Command::WatchedExec { guards: vec![], commands: vec![inner.clone()] },
        ] {
            let mut bytes = Vec::new();
            outer.encode(&mut bytes);
            assert_eq!(Command::decode(&bytes), Err(DecodeError::Malformed("nested exec")));
        }
    }
}

#[test]
fn versions_survive_a_snapshot() {
    let mut h = Harness::new();
    h.run("SET a 1");
    h.run("HSET h f v");
    let before = versions(&mut h, &["a", "h"]);
    let restored = StateMachine::restore(&h.machine.snapshot(), Limits::default()).unwrap();
    let mut r = Harness { machine: restored, now: h.now, client: 2, sequence: 0 };
    assert_eq!(versions(&mut r, &["a", "h"]), before);
    // The write count continues: the next write on either gives the same version.
    h.run("SET z 1");
    r.run("SET z 1");
    assert_eq!(versions(&mut h, &["z"]), versions(&mut r, &["z"]));
}

#[test]
fn a_snapshot_from_before_versions_restores_with_every_key_present() {
    // Format 1: magic, version, sessions, key count, then key, deadline, value; CRC32C.
    let mut bytes = b"KLSM".to_vec();
    bytes.push(1);
    crate::state_machine::sessions::Sessions::default().encode(&mut bytes);
    put_u64(&mut bytes, 1);
    put_bytes(&mut bytes, b"old");
    bytes.push(0); // no deadline
    bytes.push(0); // string
    put_bytes(&mut bytes, b"v");
    let checksum = crc32c::crc32c(&bytes);
    put_u32(&mut bytes, checksum);
    let machine = StateMachine::restore(&bytes, Limits::default()).unwrap();
    let mut h = Harness { machine, now: 1, client: 1, sequence: 0 };
    assert_eq!(h.run("GET old"), bulk("v"));
    let [old] = versions(&mut h, &["old"])[..] else { panic!() };
    assert!(old > 0, "a present key must not look absent to WATCH");
    h.run("SET new 1");
    assert!(versions(&mut h, &["new"])[0] > old);
}
