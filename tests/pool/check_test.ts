/**
 * Checkout `check`, `pool.check()`, `resize()` and the idle `order`.
 */
import assert from "node:assert/strict";
import pg from "pg";
import { ConnectionPool } from "../../mod.ts";
import { adminQuery, waitFor, withTestDatabase } from "../_db.ts";
import { backendPid, expectBackends } from "../_pool_helpers.ts";

Deno.test("check on checkout: a connection that fails it is discarded, counted, and the next one tried", () =>
  withTestDatabase(async (db) => {
    const bad = new Set<number>();
    let checks = 0;
    await using pool = new ConnectionPool({
      conninfo: db.url,
      minSize: 2,
      order: "fifo",
      check: async (conn) => {
        checks++;
        if (bad.has(await backendPid(conn))) throw new Error("failed the check");
      },
    });
    await pool.open({ wait: true });
    const a = await pool.getconn();
    const b = await pool.getconn();
    const [pidA, pidB] = [await backendPid(a), await backendPid(b)];
    await pool.putconn(a); // fifo: a is handed out first
    await pool.putconn(b);
    bad.add(pidA);
    pool.popStats();
    checks = 0;
    const conn = await pool.getconn({ timeout: 2_000 });
    assert.equal(await backendPid(conn), pidB);
    assert.equal(checks, 2);
    const stats = pool.getStats();
    assert.equal(stats.connectionsLost, 1);
    assert.equal(stats.requestsErrors, 0);
    await pool.putconn(conn);
    // The failed one is closed and replaced.
    await waitFor(async () => {
      const rows = await adminQuery<{ pid: number }>(
        "select pid from pg_stat_activity where datname = $1 and pid <> pg_backend_pid() and backend_type = 'client backend'",
        [db.name],
      );
      return rows.length === 2 && !rows.some((r) => r.pid === pidA);
    });
  }));

Deno.test("check failing on every connection ends in PoolTimeoutError within the request's timeout", () =>
  withTestDatabase(async (db) => {
    await using pool = new ConnectionPool({
      conninfo: db.url,
      minSize: 1,
      backoff: { initialDelay: 50, jitter: 0 },
      check: () => {
        throw new Error("always bad");
      },
    });
    await pool.open({ wait: true });
    const start = performance.now();
    await assert.rejects(pool.getconn({ timeout: 500 }), { name: "PoolTimeoutError" });
    const ms = performance.now() - start;
    assert.ok(ms >= 400 && ms < 1_500, `one timeout for all tries, took ${ms} ms`);
    assert.ok(pool.getStats().connectionsLost >= 2, "several connections were tried and discarded");
  }));

Deno.test("ConnectionPool.checkConnection passes a live connection and rejects a closed one", () =>
  withTestDatabase(async (db) => {
    let checks = 0;
    await using pool = new ConnectionPool({
      conninfo: db.url,
      minSize: 1,
      check: async (conn) => {
        checks++;
        await ConnectionPool.checkConnection(conn);
      },
    });
    const conn = await pool.getconn();
    assert.equal(checks, 1);
    await ConnectionPool.checkConnection(conn);
    await pool.putconn(conn);
    const closed = new pg.Client({ connectionString: db.url });
    closed.on("error", () => {});
    await closed.connect();
    await closed.end();
    await assert.rejects(ConnectionPool.checkConnection(closed));
  }));

Deno.test("pool.check() keeps live idle connections", () =>
  withTestDatabase(async (db) => {
    await using pool = new ConnectionPool({ conninfo: db.url, minSize: 2 });
    await pool.open({ wait: true });
    const pids = [];
    for (const c of [await pool.getconn(), await pool.getconn()]) {
      pids.push(await backendPid(c));
      await pool.putconn(c);
    }
    pool.popStats();
    await pool.check();
    assert.equal(pool.getStats().connectionsLost, 0);
    assert.equal(pool.getStats().poolAvailable, 2);
    const after = [];
    for (const c of [await pool.getconn(), await pool.getconn()]) {
      after.push(await backendPid(c));
      await pool.putconn(c);
    }
    assert.deepEqual(after.sort(), pids.sort());
  }));

Deno.test("pool.check() discards and replaces an idle connection that died unnoticed", () =>
  withTestDatabase(async (db) => {
    await using pool = new ConnectionPool({ conninfo: db.url, minSize: 2 });
    await pool.open({ wait: true });
    const victim = await pool.getconn();
    const pid = await backendPid(victim);
    // Simulates a death the socket never reported (half-open TCP): the pool's
    // own listeners are removed, so only a probe can find out.
    victim.removeAllListeners("end");
    victim.removeAllListeners("error");
    victim.on("error", () => {});
    await pool.putconn(victim);
    await adminQuery("select pg_terminate_backend($1)", [pid]);
    await expectBackends(db.name, 1);
    pool.popStats();
    await pool.check();
    assert.equal(pool.getStats().connectionsLost, 1);
    await waitFor(() => pool.getStats().poolAvailable === 2, { message: "replaced after check()" });
    await expectBackends(db.name, 2);
    for (const c of [await pool.getconn(), await pool.getconn()]) {
      assert.notEqual(await backendPid(c), pid);
      await pool.putconn(c);
    }
  }));

Deno.test("resize(2, 20) grows minSize at once and lets the pool grow to the new maxSize", () =>
  withTestDatabase(async (db) => {
    await using pool = new ConnectionPool({ conninfo: db.url, minSize: 1, maxSize: 1 });
    await pool.open({ wait: true });
    await pool.resize(2, 20);
    assert.equal(pool.minSize, 2);
    assert.equal(pool.maxSize, 20);
    await pool.wait({ timeout: 5_000 });
    await expectBackends(db.name, 2);
    const conns = [];
    for (let i = 0; i < 4; i++) conns.push(await pool.getconn({ timeout: 5_000 }));
    assert.equal(pool.getStats().poolSize, 4);
    for (const c of conns) await pool.putconn(c);
    const stats = pool.getStats();
    assert.equal(stats.poolMin, 2);
    assert.equal(stats.poolMax, 20);
  }));

Deno.test("resize() down closes idle connections above the new maxSize, and returned ones above it", () =>
  withTestDatabase(async (db) => {
    await using pool = new ConnectionPool({ conninfo: db.url, minSize: 4, maxSize: 4 });
    await pool.open({ wait: true });
    const held = await pool.getconn();
    await pool.resize(1, 2);
    // 3 idle + 1 borrowed: idle ones close until size <= 2.
    assert.equal(pool.getStats().poolSize, 2);
    await expectBackends(db.name, 2);
    await pool.putconn(held); // size 2 <= max 2: kept
    assert.equal(pool.getStats().poolSize, 2);
    assert.throws(() => pool.resize(3, 2), RangeError);
    assert.throws(() => pool.resize(-1), RangeError);
  }));

Deno.test("order 'fifo' hands out the longest-idle connection first", () =>
  withTestDatabase(async (db) => {
    await using pool = new ConnectionPool({ conninfo: db.url, minSize: 3, order: "fifo" });
    await pool.open({ wait: true });
    const conns = [await pool.getconn(), await pool.getconn(), await pool.getconn()];
    const pids = [];
    for (const c of conns) pids.push(await backendPid(c));
    for (const c of conns) await pool.putconn(c);
    const next = await pool.getconn();
    assert.equal(await backendPid(next), pids[0]);
    await pool.putconn(next);
  }));

Deno.test("order 'lifo' hands out the most recently returned connection first", () =>
  withTestDatabase(async (db) => {
    await using pool = new ConnectionPool({ conninfo: db.url, minSize: 3, order: "lifo" });
    await pool.open({ wait: true });
    const conns = [await pool.getconn(), await pool.getconn(), await pool.getconn()];
    const pids = [];
    for (const c of conns) pids.push(await backendPid(c));
    for (const c of conns) await pool.putconn(c);
    const next = await pool.getconn();
    assert.equal(await backendPid(next), pids[2]);
    await pool.putconn(next);
  }));
