//! String commands against Redis 7's exact replies.

use super::support::{Harness, bulk, err, int, ok};
use crate::state_machine::Reply;

const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";
const NOT_INTEGER: &str = "ERR value is not an integer or out of range";

#[test]
fn get_and_set_round_trip_and_missing_is_null() {
    let mut h = Harness::new();
    assert_eq!(h.run("GET k"), Reply::Null);
    assert_eq!(h.run("SET k v"), ok());
    assert_eq!(h.run("get k"), bulk("v"));
    assert_eq!(h.run("GET k extra"), err("ERR wrong number of arguments for 'get' command"));
    assert_eq!(h.run("SET k"), err("ERR wrong number of arguments for 'set' command"));
}

#[test]
fn set_nx_xx_get_follow_redis() {
    let mut h = Harness::new();
    assert_eq!(h.run("SET k v1 XX"), Reply::Null);
    assert_eq!(h.run("SET k v1 NX"), ok());
    assert_eq!(h.run("SET k v2 NX"), Reply::Null);
    assert_eq!(h.run("SET k v2 XX GET"), bulk("v1"));
    assert_eq!(h.run("SET k v3 NX GET"), bulk("v2"));
    assert_eq!(h.run("GET k"), bulk("v2"));
    assert_eq!(h.run("SET new v GET"), Reply::Null);
    h.run("LPUSH list a");
    assert_eq!(h.run("SET list v GET"), err(WRONGTYPE));
    assert_eq!(h.run("SET list v"), ok());
}

#[test]
fn set_ifeq_sets_only_over_an_equal_string() {
    let mut h = Harness::new();
    assert_eq!(h.run("SET k v IFEQ v"), Reply::Null, "a missing key is not created");
    assert_eq!(h.run("EXISTS k"), int(0));
    h.run("SET k v1");
    assert_eq!(h.run("SET k v2 IFEQ other"), Reply::Null);
    assert_eq!(h.run("GET k"), bulk("v1"));
    assert_eq!(h.run("set k v2 ifeq v1"), ok());
    assert_eq!(h.run("GET k"), bulk("v2"));
    assert_eq!(h.run("SET k v3 IFEQ v2 GET EX 100"), bulk("v2"));
    assert_eq!(h.run("TTL k"), int(100));
    assert_eq!(h.run("SET k v4 GET IFEQ nope"), bulk("v3"));
    assert_eq!(h.run("SET k v4 IFEQ v3 KEEPTTL"), ok());
    assert_eq!(h.run("TTL k"), int(100));
    assert_eq!(h.run("SET k v5 IFEQ v4"), ok());
    assert_eq!(h.run("TTL k"), int(-1), "without KEEPTTL the deadline is cleared");
    h.run("HSET h f v");
    assert_eq!(h.run("SET h v IFEQ v"), Reply::Null, "a non-string is simply not set");
    assert_eq!(h.run("TYPE h"), Reply::Simple("hash".into()));
    assert_eq!(h.run("SET h v IFEQ v GET"), err(WRONGTYPE));
    for line in [
        "SET k v NX IFEQ v",
        "SET k v IFEQ v XX",
        "SET k v IFEQ a IFEQ b",
        "SET k v IFEQ",
        "GETEX k IFEQ v",
    ] {
        assert_eq!(h.run(line), err("ERR syntax error"), "{line}");
    }
}

#[test]
fn set_option_conflicts_are_syntax_errors() {
    let mut h = Harness::new();
    for line in [
        "SET k v NX XX",
        "SET k v XX NX",
        "SET k v EX 10 PX 100",
        "SET k v EX 10 KEEPTTL",
        "SET k v KEEPTTL EX 10",
        "SET k v EX",
        "SET k v PERSIST",
        "SET k v EXAT 10 PXAT 10",
        "SET k v FOO",
    ] {
        assert_eq!(h.run(line), err("ERR syntax error"), "{line}");
    }
    // Repeating the same option is accepted, the last value wins (Redis 7).
    assert_eq!(h.run("SET k v EX 10 EX 20"), ok());
    assert_eq!(h.run("TTL k"), int(20));
    assert_eq!(h.run("SET k v NX NX"), Reply::Null);
}

#[test]
fn set_expire_values_are_checked_like_redis() {
    let mut h = Harness::new();
    assert_eq!(h.run("SET k v EX 0"), err("ERR invalid expire time in 'set' command"));
    assert_eq!(h.run("SET k v PX -5"), err("ERR invalid expire time in 'set' command"));
    assert_eq!(h.run("SET k v EX abc"), err(NOT_INTEGER));
    assert_eq!(
        h.run("SET k v EX 9223372036854775"),
        err("ERR invalid expire time in 'set' command")
    );
    assert_eq!(
        h.run("SET k v PX 9223372036854775807"),
        err("ERR invalid expire time in 'set' command")
    );
    assert_eq!(h.run("SETEX k 0 v"), err("ERR invalid expire time in 'setex' command"));
    assert_eq!(h.run("PSETEX k -1 v"), err("ERR invalid expire time in 'psetex' command"));
    assert_eq!(h.run("SETEX k x v"), err(NOT_INTEGER));
    assert_eq!(h.run("GET k"), Reply::Null);
}

#[test]
fn set_ttl_options_use_the_stamp() {
    let mut h = Harness::new();
    h.now = 10_000;
    assert_eq!(h.run("SET k v PX 1500"), ok());
    assert_eq!(h.run("PTTL k"), int(1500));
    assert_eq!(h.run("SET k v2 KEEPTTL"), ok());
    assert_eq!(h.run("PTTL k"), int(1500));
    assert_eq!(h.run("SET k v3"), ok());
    assert_eq!(h.run("PTTL k"), int(-1));
    assert_eq!(h.run("SET k v EXAT 20"), ok());
    assert_eq!(h.run("PEXPIRETIME k"), int(20_000));
    assert_eq!(h.run("SETEX s 5 v"), ok());
    assert_eq!(h.run("TTL s"), int(5));
    // An absolute deadline in the past stores nothing visible.
    assert_eq!(h.run("SET old v PXAT 5000"), ok());
    assert_eq!(h.run("EXISTS old"), int(0));
    assert_eq!(h.machine.key_count(), 2);
}

#[test]
fn setnx_mset_msetnx_mget() {
    let mut h = Harness::new();
    assert_eq!(h.run("SETNX a 1"), int(1));
    assert_eq!(h.run("SETNX a 2"), int(0));
    assert_eq!(h.run("MSET b 2 c 3"), ok());
    assert_eq!(h.run("MSET b 2 c"), err("ERR wrong number of arguments for 'mset' command"));
    assert_eq!(h.run("MSETNX c 9 d 4"), int(0));
    assert_eq!(h.run("MSETNX d 4 e 5"), int(1));
    h.run("SADD set x");
    assert_eq!(
        h.run("MGET a b missing set e"),
        Reply::Array(vec![bulk("1"), bulk("2"), Reply::Null, Reply::Null, bulk("5")])
    );
}

#[test]
fn getset_getdel_getex() {
    let mut h = Harness::new();
    assert_eq!(h.run("GETSET k a"), Reply::Null);
    assert_eq!(h.run("SET k v EX 100"), ok());
    assert_eq!(h.run("GETSET k b"), bulk("v"));
    assert_eq!(h.run("TTL k"), int(-1));
    assert_eq!(h.run("GETEX k EX 50"), bulk("b"));
    assert_eq!(h.run("TTL k"), int(50));
    assert_eq!(h.run("GETEX k"), bulk("b"));
    assert_eq!(h.run("TTL k"), int(50));
    assert_eq!(h.run("GETEX k PERSIST"), bulk("b"));
    assert_eq!(h.run("TTL k"), int(-1));
    assert_eq!(h.run("GETEX k NX"), err("ERR syntax error"));
    assert_eq!(h.run("GETEX k EX 0"), err("ERR invalid expire time in 'getex' command"));
    assert_eq!(h.run("GETEX k EX x"), err(NOT_INTEGER));
    // Redis 7.0 checks the expire only after the lookup and the type check.
    assert_eq!(h.run("GETEX missing PX 0"), Reply::Null);
    assert_eq!(h.run("GETEX missing PX x"), Reply::Null);
    h.run("SADD set m");
    assert_eq!(h.run("GETEX set PX 0"), err(WRONGTYPE));
    assert_eq!(h.run("GETEX missing EX 10"), Reply::Null);
    assert_eq!(h.run("GETDEL k"), bulk("b"));
    assert_eq!(h.run("GETDEL k"), Reply::Null);
    h.run("HSET h f v");
    assert_eq!(h.run("GETDEL h"), err(WRONGTYPE));
    assert_eq!(h.run("GETEX h"), err(WRONGTYPE));
}

#[test]
fn incr_family_matches_redis_errors() {
    let mut h = Harness::new();
    assert_eq!(h.run("INCR n"), int(1));
    assert_eq!(h.run("INCRBY n 10"), int(11));
    assert_eq!(h.run("DECR n"), int(10));
    assert_eq!(h.run("DECRBY n 20"), int(-10));
    assert_eq!(h.run("INCRBY n x"), err(NOT_INTEGER));
    assert_eq!(h.run("INCRBY n 1.5"), err(NOT_INTEGER));
    assert_eq!(h.run("DECRBY n -9223372036854775808"), err("ERR decrement would overflow"));
    h.run("SET n 9223372036854775807");
    assert_eq!(h.run("INCR n"), err("ERR increment or decrement would overflow"));
    for bad in ["abc", " 1", "01", "+1", "-0", "1 "] {
        h.run_args(&[b"SET", b"s", bad.as_bytes()]);
        assert_eq!(h.run("INCR s"), err(NOT_INTEGER), "{bad:?}");
    }
    h.run("SET t 5 EX 100");
    assert_eq!(h.run("INCR t"), int(6));
    assert_eq!(h.run("TTL t"), int(100));
    h.run("LPUSH l a");
    assert_eq!(h.run("INCR l"), err(WRONGTYPE));
}

#[test]
fn incrbyfloat_formats_like_redis() {
    let mut h = Harness::new();
    h.run("SET f 10.50");
    assert_eq!(h.run("INCRBYFLOAT f 0.1"), bulk("10.6"));
    assert_eq!(h.run("INCRBYFLOAT f -5"), bulk("5.6"));
    h.run("SET g 5.0e3");
    assert_eq!(h.run("INCRBYFLOAT g 2.0e2"), bulk("5200"));
    assert_eq!(h.run("INCRBYFLOAT new 3"), bulk("3"));
    h.run("RPUSH list a");
    assert_eq!(h.run("INCRBYFLOAT list abc"), err(WRONGTYPE), "the type check comes first");
    assert_eq!(h.run("INCRBYFLOAT new abc"), err("ERR value is not a valid float"));
    h.run("SET d 0.1");
    assert_eq!(h.run("INCRBYFLOAT d 0.2"), bulk("0.3"), "Redis's long double prints 0.3");
    assert_eq!(h.run("INCRBYFLOAT d -0.3"), bulk("0"));
    assert_eq!(h.run("INCRBYFLOAT d 1e300"), Reply::Bulk(format!("{}", 1e300).into_bytes()));
    assert_eq!(h.run("INCRBYFLOAT f abc"), err("ERR value is not a valid float"));
    assert_eq!(h.run("INCRBYFLOAT f inf"), err("ERR increment would produce NaN or Infinity"));
    h.run("SET s hello");
    assert_eq!(h.run("INCRBYFLOAT s 1"), err("ERR value is not a valid float"));
}

#[test]
fn append_strlen_getrange_setrange() {
    let mut h = Harness::new();
    assert_eq!(h.run("APPEND k Hello"), int(5));
    assert_eq!(h.run("APPEND k World"), int(10));
    assert_eq!(h.run("STRLEN k"), int(10));
    assert_eq!(h.run("STRLEN missing"), int(0));
    assert_eq!(h.run("GETRANGE k 0 3"), bulk("Hell"));
    assert_eq!(h.run("GETRANGE k -3 -1"), bulk("rld"));
    assert_eq!(h.run("GETRANGE k 0 -1"), bulk("HelloWorld"));
    assert_eq!(h.run("GETRANGE k 10 100"), bulk(""));
    assert_eq!(h.run("GETRANGE k -1 -5"), bulk(""));
    assert_eq!(h.run("GETRANGE k -100 2"), bulk("Hel"));
    assert_eq!(h.run("GETRANGE missing 0 -1"), bulk(""));
    assert_eq!(h.run("SETRANGE k 5 Redis"), int(10));
    assert_eq!(h.run("GET k"), bulk("HelloRedis"));
    assert_eq!(h.run("SETRANGE pad 3 x"), int(4));
    assert_eq!(h.run("GET pad"), Reply::Bulk(b"\0\0\0x".to_vec()));
    assert_eq!(h.run("SETRANGE empty 5 "), int(0));
    assert_eq!(h.run("EXISTS empty"), int(0));
    assert_eq!(h.run("SETRANGE k -1 x"), err("ERR offset is out of range"));
    assert_eq!(
        h.run("SETRANGE k 536870911 xx"),
        err("ERR string exceeds maximum allowed size (proto-max-bulk-len)")
    );
    h.run("SADD set a");
    assert_eq!(h.run("APPEND set x"), err(WRONGTYPE));
    assert_eq!(h.run("STRLEN set"), err(WRONGTYPE));
}
