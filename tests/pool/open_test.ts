/**
 * open(), wait(), first-use opening and close(): psycopg_pool's lifecycle.
 */
import assert from "node:assert/strict";
import { ConnectionPool, PoolClosedError, PoolTimeoutError } from "../../mod.ts";
import { adminUrl, backendCount, waitFor, withTestDatabase } from "../_db.ts";
import { startProxy } from "../_proxy.ts";
import { assertAbout, closedPort, expectBackends, timed, withPort } from "../_pool_helpers.ts";

const fastBackoff = { initialDelay: 50, multiplier: 2, jitter: 0 };

Deno.test("open() returns at once and fills to minSize in the background", () =>
  withTestDatabase(async (db) => {
    await using pool = new ConnectionPool({ conninfo: db.url, minSize: 3 });
    await pool.open();
    assert.ok(pool.getStats().poolAvailable < 3, "open() without wait must not wait for connections");
    await waitFor(() => pool.getStats().poolAvailable === 3, { message: "pool never filled" });
    assert.equal(await backendCount(db.name), 3);
  }));

Deno.test("open({wait: true}) resolves with minSize connections ready on the server", () =>
  withTestDatabase(async (db) => {
    await using pool = new ConnectionPool({ conninfo: db.url, minSize: 3, maxSize: 5 });
    await pool.open({ wait: true, timeout: 10_000 });
    assert.equal(pool.getStats().poolAvailable, 3);
    assert.equal(await backendCount(db.name), 3);
  }));

Deno.test("open({wait: true}) rejects with PoolTimeoutError when the server is unreachable", async () => {
  const url = withPort(adminUrl(), closedPort());
  await using pool = new ConnectionPool({ conninfo: url, minSize: 1, backoff: fastBackoff });
  const { ms, error } = await timed(() => pool.open({ wait: true, timeout: 300 }));
  assert.ok(error instanceof PoolTimeoutError, String(error));
  assert.match(error.message, new RegExp(`'${pool.name}'`));
  assert.ok(error.cause instanceof Error, "cause is the last connection error");
  assertAbout(ms, 300);
});

Deno.test("a timed-out open({wait}) leaves the pool open and still filling", () =>
  withTestDatabase(async (db) => {
    await using proxy = await startProxy({ targetPort: Number(new URL(db.url).port) });
    await proxy.stop();
    await using pool = new ConnectionPool({ conninfo: proxy.url(db.url), minSize: 2, backoff: fastBackoff });
    await assert.rejects(pool.open({ wait: true, timeout: 200 }), PoolTimeoutError);
    assert.equal(pool.closed, false);
    await proxy.start();
    await pool.wait({ timeout: 5_000 });
    assert.equal(pool.getStats().poolAvailable, 2);
    assert.equal(await backendCount(db.name), 2);
  }));

Deno.test("a timed-out wait() leaves the pool open and still filling", () =>
  withTestDatabase(async (db) => {
    await using proxy = await startProxy({ targetPort: Number(new URL(db.url).port) });
    await proxy.stop();
    await using pool = new ConnectionPool({ conninfo: proxy.url(db.url), minSize: 1, backoff: fastBackoff });
    await pool.open();
    const { ms, error } = await timed(() => pool.wait({ timeout: 200 }));
    assert.ok(error instanceof PoolTimeoutError, String(error));
    assertAbout(ms, 200);
    assert.equal(pool.closed, false);
    await proxy.start();
    await pool.wait({ timeout: 5_000 });
    assert.equal(await backendCount(db.name), 1);
  }));

Deno.test("a pool never opened opens on first use", () =>
  withTestDatabase(async (db) => {
    await using pool = new ConnectionPool({ conninfo: db.url, minSize: 2 });
    const { rows } = await pool.query<{ x: number }>("select 1 as x");
    assert.equal(rows[0].x, 1);
    await waitFor(() => pool.getStats().poolAvailable === 2, { message: "first use must open and fill the pool" });
    assert.equal(await backendCount(db.name), 2);
  }));

Deno.test("wait() on a never-opened pool opens it", () =>
  withTestDatabase(async (db) => {
    await using pool = new ConnectionPool({ conninfo: db.url, minSize: 2 });
    await pool.wait({ timeout: 10_000 });
    assert.equal(await backendCount(db.name), 2);
  }));

Deno.test("a closed pool never reopens: getconn/open/query/wait/resize reject with PoolClosedError", () =>
  withTestDatabase(async (db) => {
    const pool = new ConnectionPool({ conninfo: db.url, minSize: 1 });
    await pool.open({ wait: true });
    await pool.close();
    assert.equal(pool.closed, true);
    await assert.rejects(pool.getconn(), PoolClosedError);
    await assert.rejects(pool.open(), PoolClosedError);
    await assert.rejects(pool.open({ wait: true }), PoolClosedError);
    await assert.rejects(pool.query("select 1"), PoolClosedError);
    await assert.rejects(pool.wait(), PoolClosedError);
    await assert.rejects(pool.resize(2, 3), PoolClosedError);
    await assert.rejects(pool.check(), PoolClosedError);
    assert.equal(pool.closed, true);
    await expectBackends(db.name, 0);
  }));

Deno.test("a pool closed before it was ever opened never opens", () =>
  withTestDatabase(async (db) => {
    const pool = new ConnectionPool({ conninfo: db.url, minSize: 1 });
    await pool.close();
    await assert.rejects(pool.getconn(), PoolClosedError);
    assert.equal(pool.getStats().connectionsNum, 0);
    await expectBackends(db.name, 0);
  }));

Deno.test("close() rejects waiters with PoolClosedError and closes every connection", () =>
  withTestDatabase(async (db) => {
    const pool = new ConnectionPool({ conninfo: db.url, minSize: 2, maxSize: 2 });
    await pool.open({ wait: true });
    const a = await pool.getconn();
    const b = await pool.getconn();
    const waiter = pool.getconn({ timeout: 10_000 });
    await waitFor(() => pool.getStats().requestsWaiting === 1);
    const closing = pool.close({ timeout: 5_000 });
    await assert.rejects(waiter, PoolClosedError);
    await pool.putconn(a);
    await pool.putconn(b);
    await closing;
    await expectBackends(db.name, 0);
  }));

Deno.test("close({timeout}) closes connections still borrowed after the timeout", () =>
  withTestDatabase(async (db) => {
    const pool = new ConnectionPool({ conninfo: db.url, minSize: 1 });
    const conn = await pool.getconn();
    const { ms } = await timed(() => pool.close({ timeout: 200 }));
    assertAbout(ms, 200);
    await expectBackends(db.name, 0);
    await assert.rejects(conn.query("select 1"));
    // Returning it late is harmless.
    await pool.putconn(conn).catch(() => {});
  }));

Deno.test("close() waits for borrowed connections returned before the timeout", () =>
  withTestDatabase(async (db) => {
    const pool = new ConnectionPool({ conninfo: db.url, minSize: 1 });
    const conn = await pool.getconn();
    const closing = pool.close({ timeout: 10_000 });
    const { rows } = await conn.query<{ x: number }>("select 2 as x");
    assert.equal(rows[0].x, 2, "a borrowed connection keeps working until returned");
    const { ms } = await timed(async () => {
      await pool.putconn(conn);
      await closing;
    });
    assert.ok(ms < 2_000, `close() should finish soon after the return, took ${ms} ms`);
    await expectBackends(db.name, 0);
  }));
