/**
 * Edges a review found: zero meaning "no limit", close() racing a checkout,
 * reconnectFailed under steady demand, a second close(), and drivers whose
 * connections bring their own disposer.
 */
import assert from "node:assert/strict";
import { ConnectionPool, type Driver, PoolClosedError } from "../../mod.ts";
import { backendCount, waitFor, withTestDatabase } from "../_db.ts";
import { backendPid, closedPort, withPort } from "../_pool_helpers.ts";

Deno.test("connectTimeout 0 means no limit: configure, check, pool.check() and reset all run normally", () =>
  withTestDatabase(async (db) => {
    const slow = () => new Promise<void>((resolve) => setTimeout(resolve, 20));
    await using pool = new ConnectionPool({
      conninfo: db.url,
      minSize: 2,
      connectTimeout: 0,
      configure: slow,
      reset: slow,
      check: slow,
    });
    await pool.open({ wait: true, timeout: 5_000 });
    const conn = await pool.getconn({ timeout: 2_000 });
    await pool.putconn(conn);
    await pool.check();
    const stats = pool.getStats();
    assert.equal(stats.connectionsErrors, 0);
    assert.equal(stats.returnsBad, 0);
    assert.equal(stats.connectionsLost, 0);
    assert.equal(stats.poolSize, 2);
  }));

Deno.test("close() during a checkout's check: getconn rejects with PoolClosedError at once, not at its timeout", () =>
  withTestDatabase(async (db) => {
    const pool = new ConnectionPool({
      conninfo: db.url,
      minSize: 1,
      check: () => new Promise<void>((resolve) => setTimeout(resolve, 300)),
    });
    await pool.open({ wait: true, timeout: 5_000 });
    const started = performance.now();
    const request = pool.getconn({ timeout: 10_000 });
    await new Promise((resolve) => setTimeout(resolve, 50)); // the check is running
    await pool.close({ timeout: 100 });
    await assert.rejects(request, PoolClosedError);
    const elapsed = performance.now() - started;
    assert.ok(elapsed < 1_000, `rejected after ${elapsed.toFixed(0)} ms`);
    assert.equal(await backendCount(db.name), 0);
  }));

Deno.test("reconnectFailed is called while an outage lasts even when requests keep starting new attempts", async () => {
  let calls = 0;
  const pool = new ConnectionPool({
    conninfo: withPort("postgres://postgres@127.0.0.1/postgres", closedPort()),
    minSize: 1,
    timeout: 50,
    reconnectTimeout: 200,
    backoff: { initialDelay: 20, multiplier: 2, jitter: 0 },
    reconnectFailed: () => calls++,
  });
  try {
    const until = performance.now() + 1_200;
    while (performance.now() < until) {
      await pool.getconn().then(() => assert.fail("no server"), () => {}); // steady demand
    }
    assert.ok(calls >= 2, `reconnectFailed called ${calls} times in 1.2 s with reconnectTimeout 200 ms`);
    assert.ok(calls <= 7, `called ${calls} times: at most about once per reconnectTimeout`);
  } finally {
    await pool.close();
  }
});

Deno.test("maxLifetime 0 means no limit: connections are not replaced", () =>
  withTestDatabase(async (db) => {
    await using pool = new ConnectionPool({ conninfo: db.url, minSize: 2, maxLifetime: 0 });
    await pool.open({ wait: true, timeout: 5_000 });
    const conn = await pool.getconn();
    const pid = await backendPid(conn);
    await pool.putconn(conn);
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal(pool.getStats().connectionsNum, 2, "no connection was opened after the first two");
    const again = await pool.getconn();
    const pids = [await backendPid(again)];
    const other = await pool.getconn();
    pids.push(await backendPid(other));
    assert.ok(pids.includes(pid), "the first connection is still in the pool");
    await pool.putconn(again);
    await pool.putconn(other);
  }));

Deno.test("a second close() resolves only when the first one's work is done", () =>
  withTestDatabase(async (db) => {
    const pool = new ConnectionPool({ conninfo: db.url, minSize: 1 });
    const conn = await pool.getconn();
    const first = pool.close({ timeout: 300 });
    await pool.close(); // e.g. a shutdown handler, then `await using`
    // The first close() closed the borrowed connection at its deadline before the second one resolved.
    await assert.rejects(conn.query("select 1"));
    await first;
    await waitFor(async () => (await backendCount(db.name)) === 0, { message: "no session left" });
  }));

Deno.test("a connection that has its own Symbol.asyncDispose is still returned to the pool by `await using`", async () => {
  class OwnDisposer {
    closed = false;
    [Symbol.asyncDispose](): Promise<void> {
      this.closed = true; // a driver's own "close me"
      return Promise.resolve();
    }
  }
  const driver: Driver<OwnDisposer> = {
    description: "own-disposer",
    connect: () => Promise.resolve(new OwnDisposer()),
    close: (c) => {
      c.closed = true;
      return Promise.resolve();
    },
    status: (c) => c.closed ? "broken" : "idle",
    rollback: () => Promise.resolve(),
    ping: () => Promise.resolve(),
    query: () => Promise.resolve({ rows: [], rowCount: 0, fields: [] }),
    watch: () => {},
  };
  const pool = new ConnectionPool({ driver, minSize: 1, timeout: 200 });
  try {
    let first: OwnDisposer;
    {
      await using conn = await pool.connection();
      first = conn;
    }
    assert.equal(first.closed, false, "returned, not closed");
    assert.equal(pool.getStats().poolAvailable, 1);
    assert.equal(await pool.getconn(), first);
  } finally {
    await pool.close({ timeout: 100 });
  }
});
