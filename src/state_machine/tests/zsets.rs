//! Sorted-set commands against Redis 7's exact replies.

use super::support::{Harness, bulk, bulks, err, int};
use crate::state_machine::Reply;

fn scored(pairs: &[(&str, f64)]) -> Reply {
    Reply::ScoredMembers(pairs.iter().map(|(m, s)| (m.as_bytes().to_vec(), *s)).collect())
}

#[test]
fn zadd_flags_follow_redis() {
    let mut h = Harness::new();
    assert_eq!(h.run("ZADD z 1 a 2 b"), int(2));
    assert_eq!(h.run("ZADD z NX 5 a 3 c"), int(1));
    assert_eq!(h.run("ZSCORE z a"), Reply::Double(1.0));
    assert_eq!(h.run("ZADD z XX CH 7 a 9 new"), int(1));
    assert_eq!(h.run("ZSCORE z new"), Reply::Null);
    assert_eq!(h.run("ZADD z GT CH 6 a 10 b"), int(1));
    assert_eq!(h.run("ZSCORE z a"), Reply::Double(7.0));
    assert_eq!(h.run("ZADD z LT 1 c"), int(0));
    assert_eq!(h.run("ZSCORE z c"), Reply::Double(1.0));
    assert_eq!(h.run("ZADD z INCR 2.5 a"), Reply::Double(9.5));
    assert_eq!(h.run("ZADD z INCR GT -1 a"), Reply::Null);
    assert_eq!(h.run("ZINCRBY z 1 zz"), Reply::Double(1.0));
    assert_eq!(
        h.run("ZADD z NX XX 1 a"),
        err("ERR XX and NX options at the same time are not compatible")
    );
    assert_eq!(
        h.run("ZADD z GT LT 1 a"),
        err("ERR GT, LT, and/or NX options at the same time are not compatible")
    );
    assert_eq!(
        h.run("ZADD z INCR 1 a 2 b"),
        err("ERR INCR option supports a single increment-element pair")
    );
    assert_eq!(h.run("ZADD z 1"), err("ERR wrong number of arguments for 'zadd' command"));
    assert_eq!(h.run("ZADD z 1 a 2"), err("ERR syntax error"));
    assert_eq!(h.run("ZADD z x a"), err("ERR value is not a valid float"));
    assert_eq!(h.run("ZADD z nan a"), err("ERR value is not a valid float"));
    assert_eq!(h.run("ZADD z inf i"), int(1));
    assert_eq!(h.run("ZINCRBY z -inf i"), err("ERR resulting score is not a number (NaN)"));
    assert_eq!(h.run("ZADD missing XX 1 a"), int(0));
    assert_eq!(h.run("EXISTS missing"), int(0));
}

#[test]
fn zrange_variants() {
    let mut h = Harness::new();
    h.run("ZADD z 1 a 2 b 3 c 3 bb 4 d");
    assert_eq!(h.run("ZRANGE z 0 -1"), bulks(&["a", "b", "bb", "c", "d"]));
    assert_eq!(h.run("ZRANGE z 1 2 WITHSCORES"), scored(&[("b", 2.0), ("bb", 3.0)]));
    assert_eq!(h.run("ZRANGE z 0 1 REV"), bulks(&["d", "c"]));
    assert_eq!(h.run("ZREVRANGE z 0 1"), bulks(&["d", "c"]));
    assert_eq!(h.run("ZRANGE z (1 3 BYSCORE"), bulks(&["b", "bb", "c"]));
    assert_eq!(h.run("ZRANGE z 3 (1 BYSCORE REV"), bulks(&["c", "bb", "b"]));
    assert_eq!(h.run("ZRANGE z -inf +inf BYSCORE LIMIT 1 2"), bulks(&["b", "bb"]));
    assert_eq!(
        h.run("ZRANGEBYSCORE z 2 3 WITHSCORES"),
        scored(&[("b", 2.0), ("bb", 3.0), ("c", 3.0)])
    );
    assert_eq!(h.run("ZREVRANGEBYSCORE z +inf 3 LIMIT 0 2"), bulks(&["d", "c"]));
    assert_eq!(h.run("ZRANGEBYSCORE z 2 3 LIMIT -1 2"), bulks(&[]));
    assert_eq!(
        h.run("ZRANGE z 0 1 LIMIT 0 1"),
        err(
            "ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX"
        )
    );
    assert_eq!(h.run("ZRANGEBYSCORE z x 3"), err("ERR min or max is not a float"));
    assert_eq!(h.run("ZRANGEBYSCORE z 0 1 REV"), err("ERR syntax error"));
    assert_eq!(h.run("ZRANGE z 0 1 FOO"), err("ERR syntax error"));
    assert_eq!(h.run("ZRANGE missing 0 -1"), bulks(&[]));
    assert_eq!(h.run("ZCARD z"), int(5));
    assert_eq!(h.run("ZCOUNT z (1 3"), int(3));
    assert_eq!(h.run("ZRANK z bb"), int(2));
    assert_eq!(h.run("ZREVRANK z bb"), int(2));
    assert_eq!(h.run("ZRANK z d"), int(4));
    assert_eq!(h.run("ZREVRANK z d"), int(0));
    assert_eq!(h.run("ZRANK z nope"), Reply::Null);
}

#[test]
fn zpop_and_zrem() {
    let mut h = Harness::new();
    h.run("ZADD z 1 a 2 b 3 c");
    assert_eq!(h.run("ZPOPMIN z"), Reply::Array(vec![bulk("a"), Reply::Double(1.0)]));
    assert_eq!(h.run("ZPOPMAX z 5"), scored(&[("c", 3.0), ("b", 2.0)]));
    assert_eq!(h.run("EXISTS z"), int(0));
    assert_eq!(h.run("ZPOPMIN z"), Reply::Array(vec![]));
    assert_eq!(h.run("ZPOPMIN z -1"), err("ERR value is out of range, must be positive"));
    h.run("ZADD z 1 a 2 b");
    assert_eq!(h.run("ZREM z a x"), int(1));
    assert_eq!(h.run("ZREM z b"), int(1));
    assert_eq!(h.run("EXISTS z"), int(0));
    h.run("SET s v");
    assert_eq!(
        h.run("ZADD s 1 a"),
        err("WRONGTYPE Operation against a key holding the wrong kind of value")
    );
}

#[test]
fn zmscore_and_range_removals() {
    let mut h = Harness::new();
    h.run("ZADD z 1 a 2 b 3 c 4 d 5 e");
    assert_eq!(
        h.run("ZMSCORE z a x e"),
        Reply::Array(vec![Reply::Double(1.0), Reply::Null, Reply::Double(5.0)])
    );
    assert_eq!(h.run("ZMSCORE missing a"), Reply::Array(vec![Reply::Null]));
    assert_eq!(h.run("ZREMRANGEBYSCORE z (1 2"), int(1));
    assert_eq!(h.run("ZREMRANGEBYRANK z -2 -1"), int(2));
    assert_eq!(h.run("ZRANGE z 0 -1"), bulks(&["a", "c"]));
    assert_eq!(h.run("ZREMRANGEBYRANK z 5 10"), int(0));
    assert_eq!(h.run("ZREMRANGEBYSCORE z -inf +inf"), int(2));
    assert_eq!(h.run("EXISTS z"), int(0));
    assert_eq!(h.run("ZREMRANGEBYSCORE z x 1"), err("ERR min or max is not a float"));
}

#[test]
fn collection_scans_return_everything_with_cursor_zero() {
    let mut h = Harness::new();
    h.run("HSET h f1 v1 f2 v2 g v3");
    h.run("SADD s a b");
    h.run("ZADD z 1.5 m 2 n");
    let scan = |items: Reply| Reply::Array(vec![bulk("0"), items]);
    assert_eq!(h.run("HSCAN h 0"), scan(bulks(&["f1", "v1", "f2", "v2", "g", "v3"])));
    assert_eq!(h.run("HSCAN h 0 MATCH f* NOVALUES"), scan(bulks(&["f1", "f2"])));
    assert_eq!(h.run("SSCAN s 0 COUNT 1"), scan(bulks(&["a", "b"])));
    assert_eq!(h.run("ZSCAN z 0"), scan(bulks(&["m", "1.5", "n", "2"])));
    assert_eq!(h.run("SSCAN missing 0"), scan(bulks(&[])));
    assert_eq!(h.run("SSCAN s x"), err("ERR invalid cursor"));
    assert_eq!(h.run("SSCAN s 0 TYPE set"), err("ERR syntax error"));
    assert_eq!(h.run("SSCAN s 0 NOVALUES"), err("ERR syntax error"));
    assert_eq!(
        h.run("SSCAN h 0"),
        err("WRONGTYPE Operation against a key holding the wrong kind of value")
    );
}

#[test]
fn lex_ranges_follow_redis() {
    let mut h = Harness::new();
    h.run("ZADD z 0 a 0 b 0 c 0 d 0 e");
    assert_eq!(h.run("ZRANGEBYLEX z - [c"), bulks(&["a", "b", "c"]));
    assert_eq!(h.run("ZRANGEBYLEX z - (c"), bulks(&["a", "b"]));
    assert_eq!(h.run("ZRANGEBYLEX z [aaa (d"), bulks(&["b", "c"]));
    assert_eq!(h.run("ZREVRANGEBYLEX z + [c LIMIT 1 2"), bulks(&["d", "c"]));
    assert_eq!(h.run("ZRANGE z [b + BYLEX LIMIT 0 2"), bulks(&["b", "c"]));
    assert_eq!(h.run("ZRANGE z + [d BYLEX REV"), bulks(&["e", "d"]));
    assert_eq!(h.run("ZLEXCOUNT z - +"), int(5));
    assert_eq!(h.run("ZLEXCOUNT z (a [c"), int(2));
    assert_eq!(h.run("ZRANGEBYLEX z a c"), err("ERR min or max not valid string range item"));
    assert_eq!(
        h.run("ZRANGE z - + BYLEX WITHSCORES"),
        err("ERR syntax error, WITHSCORES not supported in combination with BYLEX")
    );
    assert_eq!(h.run("ZRANGE z - + BYLEX BYSCORE"), err("ERR syntax error"));
    assert_eq!(h.run("ZRANGEBYLEX missing - +"), bulks(&[]));
}
