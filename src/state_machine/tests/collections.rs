//! Hash, list and set commands against Redis 7's exact replies.

use super::support::{Harness, bulk, bulks, err, int, ok, sorted};
use crate::state_machine::Reply;

const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";

#[test]
fn hash_basics_and_insertion_order() {
    let mut h = Harness::new();
    assert_eq!(h.run("HSET h b 1 a 2"), int(2));
    assert_eq!(h.run("HSET h a 3 c 4"), int(1));
    assert_eq!(h.run("HSET h a"), err("ERR wrong number of arguments for 'hset' command"));
    assert_eq!(h.run("HMSET h d 5"), ok());
    assert_eq!(h.run("HMSET h d"), err("ERR wrong number of arguments for 'hmset' command"));
    assert_eq!(h.run("HGET h a"), bulk("3"));
    assert_eq!(h.run("HGET h zz"), Reply::Null);
    assert_eq!(h.run("HMGET h a zz b"), Reply::Array(vec![bulk("3"), Reply::Null, bulk("1")]));
    assert_eq!(
        h.run("HGETALL h"),
        Reply::Map(vec![
            (bulk("b"), bulk("1")),
            (bulk("a"), bulk("3")),
            (bulk("c"), bulk("4")),
            (bulk("d"), bulk("5")),
        ])
    );
    assert_eq!(h.run("HKEYS h"), bulks(&["b", "a", "c", "d"]));
    assert_eq!(h.run("HVALS h"), bulks(&["1", "3", "4", "5"]));
    assert_eq!(h.run("HLEN h"), int(4));
    assert_eq!(h.run("HEXISTS h a"), int(1));
    assert_eq!(h.run("HEXISTS h zz"), int(0));
    assert_eq!(h.run("HSTRLEN h a"), int(1));
    assert_eq!(h.run("HSTRLEN h zz"), int(0));
    assert_eq!(h.run("HDEL h a zz"), int(1));
    assert_eq!(h.run("HKEYS h"), bulks(&["b", "c", "d"]));
    assert_eq!(h.run("HDEL h b c d"), int(3));
    assert_eq!(h.run("EXISTS h"), int(0), "an emptied hash is deleted");
    assert_eq!(h.run("HGETALL h"), Reply::Map(vec![]));
    assert_eq!(h.machine.used_memory(), 0);
}

#[test]
fn hash_increments_and_setnx() {
    let mut h = Harness::new();
    assert_eq!(h.run("HINCRBY h n 5"), int(5));
    assert_eq!(h.run("HINCRBY h n -7"), int(-2));
    assert_eq!(h.run("HINCRBY h n x"), err("ERR value is not an integer or out of range"));
    h.run("HSET h s abc");
    assert_eq!(h.run("HINCRBY h s 1"), err("ERR hash value is not an integer"));
    assert_eq!(h.run("HINCRBYFLOAT h s 1"), err("ERR hash value is not a float"));
    h.run("HSET h big 9223372036854775807");
    assert_eq!(h.run("HINCRBY h big 1"), err("ERR increment or decrement would overflow"));
    assert_eq!(h.run("HINCRBYFLOAT h f 10.5"), bulk("10.5"));
    assert_eq!(h.run("HINCRBYFLOAT h f 0.1"), bulk("10.6"));
    assert_eq!(h.run("HINCRBYFLOAT h f inf"), err("ERR value is NaN or Infinity"));
    assert_eq!(h.run("HSETNX h f 1"), int(0));
    assert_eq!(h.run("HSETNX h g 1"), int(1));
    h.run("SET str v");
    for line in ["HSET str a b", "HGET str a", "HGETALL str", "HDEL str a", "HINCRBY str a 1"] {
        assert_eq!(h.run(line), err(WRONGTYPE), "{line}");
    }
}

#[test]
fn list_push_pop_range_index() {
    let mut h = Harness::new();
    assert_eq!(h.run("RPUSH l a b c"), int(3));
    assert_eq!(h.run("LPUSH l z y"), int(5));
    assert_eq!(h.run("LRANGE l 0 -1"), bulks(&["y", "z", "a", "b", "c"]));
    assert_eq!(h.run("LRANGE l -2 100"), bulks(&["b", "c"]));
    assert_eq!(h.run("LRANGE l 3 1"), bulks(&[]));
    assert_eq!(h.run("LRANGE l -100 0"), bulks(&["y"]));
    assert_eq!(h.run("LRANGE missing 0 -1"), bulks(&[]));
    assert_eq!(h.run("LLEN l"), int(5));
    assert_eq!(h.run("LINDEX l -1"), bulk("c"));
    assert_eq!(h.run("LINDEX l 10"), Reply::Null);
    assert_eq!(h.run("LPOP l"), bulk("y"));
    assert_eq!(h.run("RPOP l 2"), bulks(&["c", "b"]));
    assert_eq!(h.run("LPOP l 0"), bulks(&[]));
    assert_eq!(h.run("LPOP l -1"), err("ERR value is out of range, must be positive"));
    assert_eq!(h.run("LPOP l 1 2"), err("ERR wrong number of arguments for 'lpop' command"));
    assert_eq!(h.run("LPOP l 10"), bulks(&["z", "a"]));
    assert_eq!(h.run("EXISTS l"), int(0));
    assert_eq!(h.run("LPOP l"), Reply::Null);
    assert_eq!(h.run("LPOP l 2"), Reply::NullArray);
    assert_eq!(h.run("LPUSHX l a"), int(0));
    assert_eq!(h.run("EXISTS l"), int(0));
    h.run("SET s v");
    assert_eq!(h.run("LPUSH s a"), err(WRONGTYPE));
    assert_eq!(h.run("LRANGE s 0 1"), err(WRONGTYPE));
}

#[test]
fn set_commands_and_deterministic_spop() {
    let mut h = Harness::new();
    assert_eq!(h.run("SADD s a b c a"), int(3));
    assert_eq!(h.run("SADD s d"), int(1));
    assert_eq!(h.run("SCARD s"), int(4));
    assert_eq!(h.run("SISMEMBER s a"), int(1));
    assert_eq!(h.run("SISMEMBER s x"), int(0));
    assert_eq!(h.run("SMISMEMBER s a x"), Reply::Array(vec![int(1), int(0)]));
    assert_eq!(h.run("SMEMBERS s"), Reply::Set(vec![bulk("a"), bulk("b"), bulk("c"), bulk("d")]));
    assert_eq!(h.run("SREM s a x"), int(1));
    assert_eq!(h.run("SPOP missing"), Reply::Null);
    assert_eq!(h.run("SPOP missing 2"), Reply::Set(vec![]));
    assert_eq!(h.run("SPOP s -1"), err("ERR value is out of range, must be positive"));
    assert_eq!(h.run("SPOP s 1 2"), err("ERR syntax error"));
    let mut other = Harness::new();
    other.run("SADD s a b c a");
    other.run("SADD s d");
    other.run("SREM s a x");
    let first = h.run("SPOP s");
    assert_eq!(first, other.run("SPOP s"), "replicas pop the same member");
    assert!(matches!(first, Reply::Bulk(_)));
    let Reply::Set(rest) = h.run("SPOP s 5") else { panic!() };
    assert_eq!(rest.len(), 2);
    assert_eq!(h.run("EXISTS s"), int(0));
    h.run("SET str v");
    assert_eq!(h.run("SADD str a"), err(WRONGTYPE));
    assert_eq!(h.run("SPOP str"), err(WRONGTYPE));
}

#[test]
fn list_edits_follow_redis() {
    let mut h = Harness::new();
    assert_eq!(h.run("LSET missing 0 x"), err("ERR no such key"));
    h.run("RPUSH l a b c b a");
    assert_eq!(h.run("LSET l -1 z"), ok());
    assert_eq!(h.run("LSET l 5 z"), err("ERR index out of range"));
    assert_eq!(h.run("LRANGE l 0 -1"), bulks(&["a", "b", "c", "b", "z"]));
    assert_eq!(h.run("LREM l -1 b"), int(1));
    assert_eq!(h.run("LRANGE l 0 -1"), bulks(&["a", "b", "c", "z"]));
    assert_eq!(h.run("LINSERT l BEFORE c x"), int(5));
    assert_eq!(h.run("LINSERT l AFTER z y"), int(6));
    assert_eq!(h.run("LINSERT l AFTER nope y"), int(-1));
    assert_eq!(h.run("LINSERT missing AFTER a y"), int(0));
    assert_eq!(h.run("LINSERT l MIDDLE a y"), err("ERR syntax error"));
    assert_eq!(h.run("LRANGE l 0 -1"), bulks(&["a", "b", "x", "c", "z", "y"]));
    assert_eq!(h.run("LTRIM l 1 -2"), ok());
    assert_eq!(h.run("LRANGE l 0 -1"), bulks(&["b", "x", "c", "z"]));
    assert_eq!(h.run("LTRIM l -2 100"), ok());
    assert_eq!(h.run("LRANGE l 0 -1"), bulks(&["c", "z"]));
    assert_eq!(h.run("LREM l 0 c"), int(1));
    assert_eq!(h.run("LTRIM l 5 10"), ok());
    assert_eq!(h.run("EXISTS l"), int(0));
    assert_eq!(h.run("LTRIM missing 0 1"), ok());
    assert_eq!(h.machine.used_memory(), 0);
}

#[test]
fn lmove_and_rpoplpush_move_items_between_lists() {
    let mut h = Harness::new();
    h.run("RPUSH src a b c");
    assert_eq!(h.run("RPOPLPUSH src dst"), bulk("c"));
    assert_eq!(h.run("LMOVE src dst LEFT RIGHT"), bulk("a"));
    assert_eq!(h.run("LRANGE dst 0 -1"), bulks(&["c", "a"]));
    assert_eq!(h.run("LMOVE dst dst LEFT RIGHT"), bulk("c"));
    assert_eq!(h.run("LRANGE dst 0 -1"), bulks(&["a", "c"]));
    assert_eq!(h.run("LMOVE src dst UP RIGHT"), err("ERR syntax error"));
    assert_eq!(h.run("RPOPLPUSH missing dst"), Reply::Null);
    h.run("SET str v");
    assert_eq!(h.run("RPOPLPUSH src str"), err(WRONGTYPE));
    assert_eq!(h.run("LRANGE src 0 -1"), bulks(&["b"]), "nothing moved on an error");
    assert_eq!(h.run("RPOPLPUSH src other"), bulk("b"));
    assert_eq!(h.run("EXISTS src"), int(0));
}

#[test]
fn set_algebra_and_store_forms() {
    let mut h = Harness::new();
    h.run("SADD a 1 2 3 4");
    h.run("SADD b 3 4 5");
    let set = |items: &[&str]| Reply::Set(items.iter().map(|i| bulk(i)).collect());
    assert_eq!(h.run("SINTER a b"), set(&["3", "4"]));
    assert_eq!(h.run("SUNION a b"), set(&["1", "2", "3", "4", "5"]));
    assert_eq!(h.run("SDIFF a b"), set(&["1", "2"]));
    assert_eq!(h.run("SINTER a missing"), set(&[]));
    assert_eq!(h.run("SDIFF a missing"), set(&["1", "2", "3", "4"]));
    assert_eq!(h.run("SINTERSTORE dst a b"), int(2));
    assert_eq!(h.run("SMEMBERS dst"), set(&["3", "4"]));
    assert_eq!(h.run("SUNIONSTORE dst missing"), int(0));
    assert_eq!(h.run("EXISTS dst"), int(0));
    h.run("SET str v");
    assert_eq!(h.run("SINTER missing str"), err(WRONGTYPE));
    assert_eq!(h.run("SDIFFSTORE str a b"), int(2));
    assert_eq!(h.run("TYPE str"), Reply::Simple("set".into()));
}

#[test]
fn smove_and_srandmember() {
    let mut h = Harness::new();
    h.run("SADD a x y");
    assert_eq!(h.run("SMOVE missing a x"), int(0));
    assert_eq!(h.run("SMOVE a b nope"), int(0));
    assert_eq!(h.run("SMOVE a a x"), int(1));
    assert_eq!(h.run("SMOVE a b x"), int(1));
    assert_eq!(h.run("SISMEMBER b x"), int(1));
    h.run("SET str v");
    assert_eq!(h.run("SMOVE a str y"), err(WRONGTYPE));
    assert_eq!(h.run("SMOVE a b y"), int(1));
    assert_eq!(h.run("EXISTS a"), int(0));
    h.run("SADD s a b c d e");
    assert_eq!(h.run("SRANDMEMBER missing"), Reply::Null);
    assert_eq!(h.run("SRANDMEMBER missing 3"), Reply::Array(vec![]));
    assert_eq!(h.run("SRANDMEMBER s 0"), Reply::Array(vec![]));
    let five = sorted(h.run("SRANDMEMBER s 10"));
    assert_eq!(Reply::Array(five), bulks(&["a", "b", "c", "d", "e"]));
    let mut distinct = sorted(h.run("SRANDMEMBER s 3"));
    distinct.dedup();
    assert_eq!(distinct.len(), 3);
    let Reply::Array(repeats) = h.run("SRANDMEMBER s -20") else { panic!() };
    assert_eq!(repeats.len(), 20);
    assert_eq!(h.run("SRANDMEMBER s x"), err("ERR value is not an integer or out of range"));
    assert_eq!(h.read("SRANDMEMBER s 2"), h.read("SRANDMEMBER s 2"), "same time, same members");
    assert_eq!(h.run("SCARD s"), int(5), "SRANDMEMBER removes nothing");
}
