"""redis-py against a real `klein server`, in RESP2 and RESP3 (run by tests/clients.rs).

Usage: redis_py.py --port N [--multi works|unsupported]

Exits 0 when every check passed, non-zero with the failed check otherwise. `--multi` says what
the MULTI/EXEC case must see: `works` (atomic pipeline, WATCH conflicts) or `unsupported` (the
server answers `ERR unknown command 'MULTI'`: an expected failure, printed as such; if MULTI
works after all, the script fails so the expectation gets flipped).
"""

import argparse
import sys
import time

import redis


class CheckFailed(Exception):
    pass


def check(condition, message):
    if not condition:
        raise CheckFailed(message)


def check_equal(actual, expected, what):
    check(actual == expected, f"{what}: got {actual!r}, want {expected!r}")


def connect(port, protocol):
    client = redis.Redis(
        host="127.0.0.1",
        port=port,
        protocol=protocol,
        decode_responses=True,
        socket_timeout=10,
        socket_connect_timeout=10,
    )
    hello = client.execute_command("HELLO", protocol)
    if isinstance(hello, list):  # RESP2: a flat field/value array
        hello = dict(zip(hello[0::2], hello[1::2]))
    check_equal(int(hello["proto"]), protocol, "HELLO proto")
    return client


def strings_and_keys(client, prefix):
    key = prefix + "string"
    check_equal(client.set(key, "hello"), True, "SET")
    check_equal(client.get(key), "hello", "GET")
    check_equal(client.append(key, " world"), 11, "APPEND")
    check_equal(client.strlen(key), 11, "STRLEN")
    check_equal(client.getrange(key, 0, 4), "hello", "GETRANGE")
    check_equal(client.set(key, "other", nx=True), None, "SET NX on an existing key")
    check_equal(client.get(prefix + "missing"), None, "GET of a missing key")
    counter = prefix + "counter"
    check_equal(client.incr(counter), 1, "INCR")
    check_equal(client.incrby(counter, 41), 42, "INCRBY")
    check_equal(client.decr(counter), 41, "DECR")
    check_equal(client.incrbyfloat(counter, 0.5), 41.5, "INCRBYFLOAT")
    pairs = {f"{prefix}m{index}": f"v{index}" for index in range(10)}
    check_equal(client.mset(pairs), True, "MSET")
    wanted = list(pairs) + [prefix + "missing"]
    check_equal(client.mget(wanted), list(pairs.values()) + [None], "MGET")
    check_equal(client.getdel(prefix + "m0"), "v0", "GETDEL")
    check_equal(client.exists(prefix + "m0", prefix + "m1"), 1, "EXISTS after GETDEL")
    check_equal(client.type(key), "string", "TYPE")
    scanned = set(client.scan_iter(match=prefix + "m*", count=100))
    check_equal(scanned, set(pairs) - {prefix + "m0"}, "SCAN MATCH")
    check_equal(client.delete(*pairs), 9, "DEL")
    try:
        client.incr(key)
        raise CheckFailed("INCR of a non-number succeeded")
    except redis.ResponseError as error:
        check("not an integer" in str(error), f"INCR error text: {error}")


def expiry(client, prefix):
    key = prefix + "expiring"
    client.set(key, "v")
    check_equal(client.ttl(key), -1, "TTL without expiry")
    check_equal(client.expire(key, 100), True, "EXPIRE")
    ttl = client.ttl(key)
    check(0 < ttl <= 100, f"TTL after EXPIRE 100: {ttl}")
    pttl = client.pttl(key)
    check(0 < pttl <= 100_000, f"PTTL after EXPIRE 100: {pttl}")
    check_equal(client.persist(key), True, "PERSIST")
    check_equal(client.ttl(key), -1, "TTL after PERSIST")
    check_equal(client.set(key, "short", px=100), True, "SET PX")
    check_equal(client.set(prefix + "ex", "v", ex=50), True, "SET EX")
    check(0 < client.ttl(prefix + "ex") <= 50, "SET EX sets a TTL")
    deadline = time.monotonic() + 5
    while client.get(key) is not None:
        check(time.monotonic() < deadline, "a key SET with PX 100 still exists after 5 s")
        time.sleep(0.05)
    check_equal(client.exists(key), 0, "EXISTS after expiry")
    check_equal(client.ttl(key), -2, "TTL of an expired key")


def hashes(client, prefix):
    key = prefix + "hash"
    check_equal(client.hset(key, mapping={"a": "1", "b": "2", "c": "3"}), 3, "HSET mapping")
    check_equal(client.hget(key, "b"), "2", "HGET")
    check_equal(client.hgetall(key), {"a": "1", "b": "2", "c": "3"}, "HGETALL")
    check_equal(client.hmget(key, ["a", "zz"]), ["1", None], "HMGET")
    check_equal(client.hincrby(key, "a", 9), 10, "HINCRBY")
    check_equal(client.hexists(key, "c"), True, "HEXISTS")
    check_equal(client.hdel(key, "c", "zz"), 1, "HDEL")
    check_equal(client.hlen(key), 2, "HLEN")
    check_equal(sorted(client.hkeys(key)), ["a", "b"], "HKEYS")
    check_equal(client.type(key), "hash", "TYPE of a hash")


def lists(client, prefix):
    key = prefix + "list"
    check_equal(client.rpush(key, "b", "c"), 2, "RPUSH")
    check_equal(client.lpush(key, "a"), 3, "LPUSH")
    check_equal(client.lrange(key, 0, -1), ["a", "b", "c"], "LRANGE")
    check_equal(client.llen(key), 3, "LLEN")
    check_equal(client.lindex(key, 1), "b", "LINDEX")
    check_equal(client.lpop(key), "a", "LPOP")
    check_equal(client.rpop(key, 2), ["c", "b"], "RPOP count")
    check_equal(client.exists(key), 0, "an emptied list is gone")


def sets(client, prefix):
    key = prefix + "set"
    check_equal(client.sadd(key, "x", "y", "z", "x"), 3, "SADD")
    check_equal(client.smembers(key), {"x", "y", "z"}, "SMEMBERS")
    check_equal(client.sismember(key, "y"), True, "SISMEMBER")
    check_equal(client.srem(key, "y", "nope"), 1, "SREM")
    check_equal(client.scard(key), 2, "SCARD")
    popped = client.spop(key)
    check(popped in {"x", "z"}, f"SPOP returned {popped!r}")
    check_equal(client.scard(key), 1, "SCARD after SPOP")


def sorted_sets(client, prefix):
    key = prefix + "zset"
    check_equal(client.zadd(key, {"one": 1, "two": 2, "three": 3}), 3, "ZADD")
    # redis-py gives (member, score) tuples in RESP2 and [member, score] lists in RESP3.
    check_equal(
        [tuple(pair) for pair in client.zrange(key, 0, -1, withscores=True)],
        [("one", 1.0), ("two", 2.0), ("three", 3.0)],
        "ZRANGE WITHSCORES",
    )
    check_equal(client.zscore(key, "two"), 2.0, "ZSCORE")
    check_equal(client.zincrby(key, 2.5, "one"), 3.5, "ZINCRBY")
    check_equal(client.zrangebyscore(key, 2, 3), ["two", "three"], "ZRANGEBYSCORE")
    check_equal(client.zrank(key, "one"), 2, "ZRANK")
    check_equal(client.zcard(key), 3, "ZCARD")
    check_equal([tuple(pair) for pair in client.zpopmin(key, 1)], [("two", 2.0)], "ZPOPMIN 1")
    check_equal(client.zrem(key, "three", "nope"), 1, "ZREM")


def plain_pipeline(client, prefix):
    pipe = client.pipeline(transaction=False)
    for index in range(100):
        pipe.set(f"{prefix}p{index}", index)
    pipe.incr(prefix + "p99")
    pipe.get(prefix + "p99")
    pipe.lpush(prefix + "plist", *range(5))
    pipe.hset(prefix + "p0", "f", "v")  # a wrong-type error inside the pipeline
    results = pipe.execute(raise_on_error=False)
    check_equal(results[:100], [True] * 100, "pipelined SETs")
    check_equal(results[100:103], [100, "100", 5], "pipelined INCR, GET, LPUSH")
    check(
        isinstance(results[103], redis.ResponseError) and "WRONGTYPE" in str(results[103]),
        f"a pipelined wrong-type error: {results[103]!r}",
    )


def transactions(client, prefix, multi, protocol):
    """MULTI/EXEC through redis-py's default (transactional) pipeline, and WATCH."""
    tag = "{" + prefix + "tx}"
    try:
        pipe = client.pipeline(transaction=True)
        pipe.set(tag + "a", "1").incr(tag + "b").get(tag + "a")
        results = pipe.execute()
    except redis.ResponseError as error:
        # redis-py collects the replies to MULTI and the queued commands and raises the
        # first error it cannot attach to a command: EXEC's.
        if multi == "unsupported" and "unknown command 'EXEC'" in str(error):
            try:
                client.execute_command("MULTI")
            except redis.ResponseError as multi_error:
                check(
                    str(multi_error).startswith("unknown command 'MULTI'"),
                    f"MULTI error: {multi_error}",
                )
                print(f"RESP{protocol}: expected failure: MULTI/EXEC is not supported ({error})")
                return
            raise CheckFailed("EXEC is unknown but MULTI is accepted") from error
        raise
    if multi == "unsupported":
        raise CheckFailed(
            f"MULTI/EXEC works now (results {results!r}): pass --multi works "
            "(MULTI_SUPPORTED in tests/clients.rs)"
        )
    check_equal(results, [True, 1, "1"], "MULTI/EXEC results")
    # WATCH: an untouched key lets EXEC run; a key changed by another client aborts it.
    counter = tag + "counter"
    client.set(counter, 10)

    def double(pipe):
        value = int(pipe.get(counter))
        pipe.multi()
        pipe.set(counter, value * 2)

    client.transaction(double, counter)
    check_equal(client.get(counter), "20", "WATCH/MULTI/EXEC through transaction()")
    other = connect(client.connection_pool.connection_kwargs["port"], protocol)
    with client.pipeline(transaction=True) as pipe:
        pipe.watch(counter)
        other.set(counter, 99)
        pipe.multi()
        pipe.set(counter, 0)
        try:
            pipe.execute()
            raise CheckFailed("EXEC ran although a watched key changed")
        except redis.WatchError:
            pass
    other.close()
    check_equal(client.get(counter), "99", "the other client's write stands after WatchError")


def lua_lock(client, prefix):
    """redis-py's Lock acquires with SET NX PX but releases with a Lua script (EVALSHA)."""
    name = prefix + "lock"
    lock = client.lock(name, timeout=5, blocking_timeout=1)
    check_equal(lock.acquire(), True, "Lock.acquire (SET NX PX)")
    check(0 < client.pttl(name) <= 5000, "the lock key has the lock's timeout")
    try:
        lock.release()
        raise CheckFailed("Lock.release succeeded, but Klein has no Lua")
    except redis.ResponseError as error:
        # redis-py strips the "ERR " error code from the message.
        text = str(error)
        check(text.startswith("unknown command 'EVALSHA'"), f"Lock.release error: {text!r}")
    try:
        client.eval("return 1", 0)
        raise CheckFailed("EVAL succeeded, but Klein has no Lua")
    except redis.ResponseError as error:
        check(str(error).startswith("unknown command 'EVAL'"), f"EVAL error: {error}")
    client.delete(name)


def run(port, protocol, multi):
    client = connect(port, protocol)
    prefix = f"py{protocol}:"
    check_equal(client.ping(), True, "PING")
    info = client.info()
    check_equal(info.get("loading"), 0, "INFO loading")
    check("redis_version" in info, f"INFO has no redis_version: {info}")
    strings_and_keys(client, prefix)
    expiry(client, prefix)
    hashes(client, prefix)
    lists(client, prefix)
    sets(client, prefix)
    sorted_sets(client, prefix)
    plain_pipeline(client, prefix)
    transactions(client, prefix, multi, protocol)
    lua_lock(client, prefix)
    client.close()
    print(f"RESP{protocol}: all checks passed")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--multi", choices=["works", "unsupported"], default="works")
    arguments = parser.parse_args()
    print(f"redis-py {redis.__version__}")
    try:
        for protocol in (2, 3):
            run(arguments.port, protocol, arguments.multi)
    except CheckFailed as failure:
        print(f"FAILED: {failure}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
