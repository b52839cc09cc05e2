// ioredis against a real `klein server` (run by tests/clients.rs).
//
// Usage: node ioredis.js --port N
//
// Connects with ioredis's defaults (RESP2, the INFO ready check that waits for `loading:0`),
// then SET/GET, a hash, a pipeline with an error in it, and a clean QUIT. Exits 0 when every
// check passed, 1 with the failed check otherwise; a watchdog ends it after 20 s.
"use strict";

const assert = require("node:assert/strict");
const Redis = require("ioredis");

const portIndex = process.argv.indexOf("--port");
const port = Number(process.argv[portIndex + 1]);
if (portIndex < 0 || !Number.isInteger(port)) {
  console.error("usage: node ioredis.js --port N");
  process.exit(2);
}

const watchdog = setTimeout(() => {
  console.error("FAILED: ioredis checks did not finish within 20 s");
  process.exit(1);
}, 20_000);

async function main() {
  const version = require("ioredis/package.json").version;
  console.log(`ioredis ${version}, node ${process.version}`);
  const redis = new Redis({
    host: "127.0.0.1",
    port,
    enableReadyCheck: true, // the default, stated: INFO must report loading:0
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null, // fail, do not reconnect, if the server drops us
    connectTimeout: 5_000,
    commandTimeout: 5_000,
  });
  const errors = [];
  redis.on("error", (error) => errors.push(error));
  let ready = false;
  redis.on("ready", () => {
    ready = true;
  });
  await redis.connect();
  assert.equal(ready, true, "the 'ready' event fired (INFO ready check passed)");
  assert.equal(redis.status, "ready");

  assert.equal(await redis.ping(), "PONG");
  assert.equal(await redis.set("node:greeting", "hello"), "OK");
  assert.equal(await redis.get("node:greeting"), "hello");
  assert.equal(await redis.get("node:missing"), null);
  assert.equal(await redis.set("node:expiring", "v", "EX", 60), "OK");
  const ttl = await redis.ttl("node:expiring");
  assert.ok(ttl > 0 && ttl <= 60, `TTL after SET EX 60: ${ttl}`);
  assert.equal(await redis.hset("node:hash", { a: "1", b: "2" }), 2);
  assert.deepEqual(await redis.hgetall("node:hash"), { a: "1", b: "2" });
  await assert.rejects(redis.incr("node:greeting"), /ERR value is not an integer/);

  // A pipeline: one write of many commands, one reply each, an error kept in its place.
  const pipeline = redis.pipeline();
  for (let index = 0; index < 50; index++) {
    pipeline.set(`node:p${index}`, String(index));
  }
  pipeline.incr("node:p49").get("node:p49").rpush("node:list", "a", "b", "c");
  pipeline.lrange("node:list", 0, -1).hset("node:p0", "f", "v");
  const results = await pipeline.exec();
  assert.equal(results.length, 55);
  for (let index = 0; index < 50; index++) {
    assert.deepEqual(results[index], [null, "OK"], `pipelined SET ${index}`);
  }
  assert.deepEqual(results[50], [null, 50]);
  assert.deepEqual(results[51], [null, "50"]);
  assert.deepEqual(results[52], [null, 3]);
  assert.deepEqual(results[53], [null, ["a", "b", "c"]]);
  assert.match(String(results[54][0]), /^ReplyError: WRONGTYPE/, "pipelined wrong-type error");
  assert.deepEqual(
    await redis.mget("node:p1", "node:p2", "node:nothing"),
    ["1", "2", null],
    "MGET",
  );

  // A clean quit: QUIT is answered with OK, then the connection ends.
  const ended = new Promise((resolve) => redis.once("end", resolve));
  assert.equal(await redis.quit(), "OK");
  await ended;
  assert.equal(redis.status, "end");
  assert.deepEqual(errors, [], "no connection errors");
  console.log("ioredis: all checks passed");
}

main().then(
  () => {
    clearTimeout(watchdog);
  },
  (error) => {
    console.error(`FAILED: ${error.stack || error}`);
    process.exit(1);
  },
);
