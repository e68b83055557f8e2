/**
 * capGroup against the real server: pools in several isolates (Workers, each
 * with its own sockets) and in one isolate share one budget of connections.
 */
import assert from "node:assert/strict";
import { ConnectionPool, NullConnectionPool, PoolError, PoolTimeoutError, toPrometheus } from "../../mod.ts";
import { backendCount, waitFor, withTestDatabase } from "../_db.ts";
import { samplePeak, withWorkers } from "../_shared_helpers.ts";
import { HEARTBEAT_MS, STALE_MS } from "../../src/cap_group/_member.ts";

let groups = 0;
/** A group name no other test (or test file running in parallel) uses. */
function group(): string {
  return `test-${Deno.pid}-${++groups}-${Math.random()}`;
}

Deno.test("capGroup: one Worker holding every slot idle, another gets a connection within its timeout", () =>
  withTestDatabase((db) =>
    withWorkers(2, async ([a, b]) => {
      const g = group();
      await a.call("open", { url: db.url, group: g, maxSize: 3, name: "a" });
      await b.call("open", { url: db.url, group: g, maxSize: 3, name: "b" });
      const peak = samplePeak(db.name);
      try {
        assert.equal(await a.call("hold", { n: 3 }), 3);
        await a.call("putAll"); // three idle connections in a, none free in the group
        await waitFor(async () => (await b.call<Record<string, number>>("stats")).groupSize === 3, {
          message: "b joined the group",
        });
        const stats = await b.call<Record<string, number>>("stats");
        assert.equal(stats.groupSize, 3);
        assert.equal(stats.groupMax, 3);
        const waited = await b.call<number>("borrow", { timeout: 5_000 });
        assert.ok(waited < 5_000);
        const sa = await a.call<Record<string, number>>("stats");
        assert.equal(sa.poolSize, 2, "a closed one idle connection to make room");
        assert.ok(sa.groupSize <= 3);
      } finally {
        assert.ok((await peak.stop()) <= 3, "never more than maxSize backends");
        await a.call("close");
        await b.call("close");
      }
    })
  ));

Deno.test("capGroup: a terminated Worker's slots come back within the documented bound", () =>
  withTestDatabase((db) =>
    withWorkers(2, async ([a, b]) => {
      const g = group();
      await a.call("open", { url: db.url, group: g, maxSize: 2, name: "a" });
      await b.call("open", { url: db.url, group: g, maxSize: 2, name: "b" });
      assert.equal(await a.call("hold", { n: 2 }), 2); // in use: nothing to shed
      const failed = await b.fail("borrow", { timeout: 300 });
      assert.ok(failed.isPoolTimeoutError, "the group is full while a lives");
      assert.match(String(failed.message), /capGroup '.+': 2 of 2 connections held/, "the message says why");
      a.terminate();
      const bound = STALE_MS + 2 * HEARTBEAT_MS;
      assert.ok(bound <= 10_000);
      const started = performance.now();
      await b.call("borrow", { timeout: bound + 2_000 }); // slack for a loaded machine
      const took = performance.now() - started;
      assert.ok(took <= bound + 2_000, `slots came back after ${took} ms`);
      await waitFor(async () => (await backendCount(db.name)) <= 2, { timeout: 5_000 });
      await b.call("close");
    })
  ));

Deno.test("capGroup: an event loop blocked under the staleness bound keeps its connections", () =>
  withTestDatabase((db) =>
    withWorkers(2, async ([a, b]) => {
      const g = group();
      await a.call("open", { url: db.url, group: g, maxSize: 2, name: "a" });
      await b.call("open", { url: db.url, group: g, maxSize: 2, name: "b" });
      await a.call("hold", { n: 2 });
      await a.call("putAll");
      // b waits while a is blocked: a cannot close an idle one for it until it wakes up.
      const peak = samplePeak(db.name);
      const waiting = b.call<number>("borrow", { timeout: 20_000 });
      await a.call("block", { ms: STALE_MS - 2 * HEARTBEAT_MS });
      await waiting;
      // Had a been taken for dead, b would have opened a third backend next to a's two.
      assert.ok((await peak.stop()) <= 2, "a was not reclaimed");
      const sa = await a.call<Record<string, number>>("stats");
      const sb = await b.call<Record<string, number>>("stats");
      assert.equal(sa.poolSize, 1, "a closed one idle connection for b");
      assert.equal(sa.groupSize, sa.poolSize + sb.poolSize);
      await a.call("close");
      await b.call("close");
    })
  ));

Deno.test("capGroup: an isolate blocked past the staleness bound rejoins and closes what is over the budget", () =>
  withTestDatabase((db) =>
    withWorkers(2, async ([a, b]) => {
      const g = group();
      await a.call("open", { url: db.url, group: g, maxSize: 2, name: "a" });
      await b.call("open", { url: db.url, group: g, maxSize: 2, name: "b" });
      await a.call("hold", { n: 2 });
      await a.call("putAll");
      const blocked = a.call("block", { ms: STALE_MS + 3 * HEARTBEAT_MS });
      // b reclaims a's slots (a looks dead) and opens its own connection.
      await b.call("borrow", { timeout: 20_000 });
      await blocked;
      // a wakes up, finds its row reclaimed, counts its 2 connections again and closes what is over.
      await waitFor(async () => (await a.call<Record<string, number>>("stats")).poolSize <= 1, {
        timeout: 10_000,
        message: "a closed its connections over the budget",
      });
      await waitFor(async () => (await backendCount(db.name)) <= 2, { timeout: 10_000 });
      const sa = await a.call<Record<string, number>>("stats");
      const sb = await b.call<Record<string, number>>("stats");
      assert.equal(sa.groupSize, sa.poolSize + sb.poolSize, "the table counts every open connection again");
      assert.ok(sa.groupSize <= 2);
      await a.call("close");
      await b.call("close");
    })
  ));

Deno.test("capGroup: waiters in two isolates are served in the order they came (FIFO across isolates)", () =>
  withTestDatabase((db) =>
    withWorkers(3, async ([a, b, c]) => {
      const g = group();
      for (const [i, w] of [a, b, c].entries()) {
        await w.call("open", { url: db.url, group: g, maxSize: 1, name: `w${i}` });
      }
      await a.call("hold", { n: 1 }); // the group's only slot, in use
      const order: string[] = [];
      const first = b.call("borrow", { timeout: 20_000 }).then(() => order.push("b"));
      await waitFor(async () => (await b.call<Record<string, number>>("stats")).requestsWaiting === 1);
      const second = c.call("borrow", { timeout: 20_000 }).then(() => order.push("c"));
      await waitFor(async () => (await c.call<Record<string, number>>("stats")).requestsWaiting === 1);
      await a.call("putAll"); // idle in a: closed to make room for the oldest waiter
      await Promise.all([first, second]);
      assert.deepEqual(order, ["b", "c"]);
      for (const w of [a, b, c]) await w.call("close");
    })
  ));

Deno.test("capGroup: a burst of queries in three Workers never holds more than maxSize backends", () =>
  withTestDatabase((db) =>
    withWorkers(3, async (workers) => {
      const g = group();
      for (const [i, w] of workers.entries()) {
        await w.call("open", { url: db.url, group: g, maxSize: 4, name: `w${i}`, null: i === 2 });
      }
      const peak = samplePeak(db.name);
      try {
        await Promise.all(workers.map((w) => w.call("burst", { n: 30, text: "select pg_sleep(0.01)" })));
      } finally {
        assert.ok((await peak.stop()) <= 4, "never more than maxSize backends");
      }
      for (const w of workers) {
        const s = await w.call<Record<string, number>>("stats");
        assert.equal(s.requestsErrors, 0);
        assert.ok(s.connectionsNum > 0, "every Worker opened its own connections");
      }
      for (const w of workers) await w.call("close");
    })
  ));

Deno.test("capGroup: pools of one group in one isolate share the budget, and the idle ones make room", () =>
  withTestDatabase(async (db) => {
    const g = group();
    await using a = new ConnectionPool({ conninfo: db.url, capGroup: g, minSize: 1, maxSize: 3 });
    await using b = new NullConnectionPool({ conninfo: db.url, capGroup: g, maxSize: 3 });
    await a.open({ wait: true });
    const held = await Promise.all([a.getconn(), a.getconn(), a.getconn()]);
    for (const c of held) await a.putconn(c);
    const peak = samplePeak(db.name);
    const results = await Promise.all(Array.from({ length: 10 }, () => b.query("select 1 as x")));
    assert.equal(results.length, 10);
    assert.ok((await peak.stop()) <= 3);
    assert.equal(a.getStats().poolSize, 1, "a kept its minSize and closed the rest for b");
  }));

Deno.test("capGroup: a pool with another maxSize than the group's gets a clear error", () =>
  withTestDatabase(async (db) => {
    const g = group();
    await using a = new ConnectionPool({ conninfo: db.url, capGroup: g, minSize: 1, maxSize: 3 });
    await using b = new ConnectionPool({
      conninfo: db.url,
      capGroup: g,
      minSize: 0,
      maxSize: 4,
      backoff: { initialDelay: 50 },
    });
    await a.open({ wait: true });
    const error = await b.getconn({ timeout: 1_000 }).then(() => undefined, (e) => e);
    assert.ok(error instanceof PoolTimeoutError);
    assert.ok(error.cause instanceof PoolError);
    assert.match((error.cause as Error).message, /capGroup '.*': pool '.*' has maxSize 4 but the group's budget is 3/);
  }));

Deno.test("capGroup: a pool on another database than the group's gets a clear error", () =>
  withTestDatabase(async (db) => {
    const g = group();
    const other = new URL(db.url);
    other.pathname = "/postgres";
    await using a = new ConnectionPool({ conninfo: db.url, capGroup: g, minSize: 1, maxSize: 2 });
    await using b = new ConnectionPool({ conninfo: other.toString(), capGroup: g, minSize: 0, maxSize: 2 });
    await a.open({ wait: true });
    const error = await b.getconn({ timeout: 1_000 }).then(() => undefined, (e) => e);
    assert.ok(error instanceof PoolTimeoutError);
    assert.match((error.cause as Error).message, /connects to another server or database/);
  }));

Deno.test("capGroup: minSize that does not fit the budget is lowered (maxSize - 1 kept warm in all)", () =>
  withTestDatabase(async (db) => {
    const g = group();
    await using a = new ConnectionPool({ conninfo: db.url, capGroup: g, minSize: 2, maxSize: 4 });
    await using b = new ConnectionPool({ conninfo: db.url, capGroup: g, minSize: 2, maxSize: 4 });
    await a.open({ wait: true });
    await b.open();
    await waitFor(() => b.minSize === 1, { timeout: 5_000, message: "b's minSize lowered to 4 - 1 - 2" });
    assert.equal(a.minSize, 2);
    await b.wait({ timeout: 5_000 });
    // b may have started its second attempt before it learnt its share: that one is just above its minSize.
    assert.ok(b.getStats().groupSize! <= 4);
  }));

Deno.test("capGroup option: bad values name the option", () => {
  const conninfo = "postgres://u@localhost/db";
  assert.throws(() => new ConnectionPool({ conninfo, capGroup: 5 as unknown as string }), {
    name: "TypeError",
    message: /'capGroup'/,
  });
  assert.throws(() => new ConnectionPool({ conninfo, capGroup: "" }), { name: "RangeError", message: /'capGroup'/ });
  assert.throws(() => new NullConnectionPool({ conninfo, capGroup: "x" }), {
    name: "RangeError",
    message: /'capGroup'.*finite/,
  });
});

Deno.test("capGroup: getStats() and the exporters add the group's figures only for a pool in a group", () => {
  const conninfo = "postgres://u@localhost/db";
  const grouped = new ConnectionPool({ conninfo, capGroup: "metrics", maxSize: 6, minSize: 1, name: "g" });
  const plain = new ConnectionPool({ conninfo, maxSize: 6, name: "p" });
  const stats = grouped.getStats();
  assert.deepEqual([stats.groupSize, stats.groupMax, stats.groupWaiting], [0, 6, 0]);
  assert.equal("groupSize" in plain.getStats(), false);
  const text = toPrometheus(grouped, plain);
  assert.match(text, /^# TYPE tidepool_group_size gauge$/m);
  assert.match(text, /^tidepool_group_max\{pool="g"\} 6$/m);
  assert.match(text, /^tidepool_group_waiting\{pool="g"\} 0$/m);
  assert.doesNotMatch(text, /tidepool_group_\w+\{pool="p"\}/);
  assert.doesNotMatch(toPrometheus(plain), /tidepool_group_/);
});
