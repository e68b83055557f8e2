/**
 * getconn(): idle first, growth, FIFO waiters, timeouts, maxWaiting, abort,
 * and the connection object itself.
 */
import assert from "node:assert/strict";
import pg from "pg";
import { ConnectionPool, PoolError, PoolTimeoutError, TooManyRequestsError } from "../../mod.ts";
import { waitFor, withTestDatabase } from "../_db.ts";
import { startProxy } from "../_proxy.ts";
import { assertAbout, backendPid, expectBackends, timed } from "../_pool_helpers.ts";

Deno.test("getconn() hands out an idle connection at once, without queueing", () =>
  withTestDatabase(async (db) => {
    await using pool = new ConnectionPool({ conninfo: db.url, minSize: 2 });
    await pool.open({ wait: true });
    pool.popStats();
    const conn = await pool.getconn();
    const stats = pool.getStats();
    assert.equal(stats.requestsNum, 1);
    assert.equal(stats.requestsQueued, 0);
    assert.equal(stats.poolAvailable, 1);
    await pool.putconn(conn);
  }));

Deno.test("getconn() queues while size < maxSize and asks for one more connection", () =>
  withTestDatabase(async (db) => {
    await using pool = new ConnectionPool({ conninfo: db.url, minSize: 1, maxSize: 3 });
    await pool.open({ wait: true });
    const first = await pool.getconn();
    const second = await pool.getconn({ timeout: 5_000 });
    const stats = pool.getStats();
    assert.equal(stats.requestsQueued, 1);
    assert.equal(stats.poolSize, 2, "grows by one, not to maxSize");
    assert.notEqual(await backendPid(second), await backendPid(first));
    await expectBackends(db.name, 2);
    await pool.putconn(first);
    await pool.putconn(second);
  }));

Deno.test("getconn() serves waiters in FIFO order as connections are returned", () =>
  withTestDatabase(async (db) => {
    await using pool = new ConnectionPool({ conninfo: db.url, minSize: 1, maxSize: 1 });
    const held = await pool.getconn();
    const served: number[] = [];
    const conns: pg.Client[] = [];
    const waiters = [0, 1, 2].map((i) =>
      pool.getconn({ timeout: 10_000 }).then((conn) => {
        served.push(i);
        conns.push(conn);
      })
    );
    await waitFor(() => pool.getStats().requestsWaiting === 3);
    await pool.putconn(held);
    await waitFor(() => served.length === 1);
    assert.deepEqual(served, [0]);
    await pool.putconn(conns[0]);
    await waitFor(() => served.length === 2);
    assert.deepEqual(served, [0, 1]);
    await pool.putconn(conns[1]);
    await Promise.all(waiters);
    assert.deepEqual(served, [0, 1, 2]);
    await pool.putconn(conns[2]);
  }));

Deno.test("a waiter gets a returned connection when it frees up before a new one opens", () =>
  withTestDatabase(async (db) => {
    await using proxy = await startProxy({ targetPort: Number(new URL(db.url).port) });
    await using pool = new ConnectionPool({ conninfo: proxy.url(db.url), minSize: 1, maxSize: 2 });
    await pool.open({ wait: true });
    const held = await pool.getconn();
    const heldPid = await backendPid(held);
    proxy.delay(3_000); // the growth attempt is slow
    const waiter = pool.getconn({ timeout: 10_000 });
    await waitFor(() => pool.getStats().requestsWaiting === 1);
    const { ms, value } = await timed(async () => {
      await pool.putconn(held);
      return await waiter;
    });
    assert.ok(ms < 1_000, `served by the return, not the slow connect (${ms} ms)`);
    assert.equal(await backendPid(value!), heldPid);
    await pool.putconn(value!);
  }));

Deno.test("a waiter gets a new connection when it opens before any is returned", () =>
  withTestDatabase(async (db) => {
    await using pool = new ConnectionPool({ conninfo: db.url, minSize: 1, maxSize: 2 });
    await pool.open({ wait: true });
    const held = await pool.getconn();
    const conn = await pool.getconn({ timeout: 10_000 });
    assert.notEqual(await backendPid(conn), await backendPid(held));
    assert.equal(pool.getStats().connectionsNum, 2);
    await pool.putconn(held);
    await pool.putconn(conn);
  }));

Deno.test("getconn() rejects with PoolTimeoutError after timeout, naming the pool and its counts", () =>
  withTestDatabase(async (db) => {
    await using pool = new ConnectionPool({ conninfo: db.url, name: "tp-small", minSize: 1, maxSize: 1 });
    const held = await pool.getconn();
    const { ms, error } = await timed(() => pool.getconn({ timeout: 300 }));
    assert.ok(error instanceof PoolTimeoutError, String(error));
    assert.ok(error instanceof PoolError);
    assert.equal(error.name, "PoolTimeoutError");
    assert.match(error.message, /'tp-small'/);
    assert.match(error.message, /300 ms/);
    assert.match(error.message, /size 1 \(max 1\), connecting 0, idle 0, in use 1, waiting 1/);
    assertAbout(ms, 300);
    assert.equal(pool.getStats().requestsErrors, 1);
    await pool.putconn(held);
  }));

Deno.test("getconn() uses the pool's timeout by default", () =>
  withTestDatabase(async (db) => {
    await using pool = new ConnectionPool({ conninfo: db.url, minSize: 1, timeout: 250 });
    const held = await pool.getconn();
    const { ms, error } = await timed(() => pool.getconn());
    assert.ok(error instanceof PoolTimeoutError);
    assertAbout(ms, 250);
    await pool.putconn(held);
  }));

Deno.test("getconn() rejects with TooManyRequestsError at once when maxWaiting requests wait", () =>
  withTestDatabase(async (db) => {
    await using pool = new ConnectionPool({ conninfo: db.url, minSize: 1, maxWaiting: 2 });
    const held = await pool.getconn();
    const w1 = pool.getconn({ timeout: 10_000 });
    const w2 = pool.getconn({ timeout: 10_000 });
    await waitFor(() => pool.getStats().requestsWaiting === 2);
    const { ms, error } = await timed(() => pool.getconn({ timeout: 10_000 }));
    assert.ok(error instanceof TooManyRequestsError, String(error));
    assert.match(error.message, /maxWaiting/);
    assert.ok(ms < 200, `refused at once, took ${ms} ms`);
    await pool.putconn(held);
    await pool.putconn(await w1);
    await pool.putconn(await w2);
  }));

Deno.test("getconn() rejects with the signal's reason when aborted while waiting", () =>
  withTestDatabase(async (db) => {
    await using pool = new ConnectionPool({ conninfo: db.url, minSize: 1 });
    const held = await pool.getconn();
    const controller = new AbortController();
    const reason = new Error("client went away");
    const waiter = pool.getconn({ timeout: 10_000, signal: controller.signal });
    await waitFor(() => pool.getStats().requestsWaiting === 1);
    controller.abort(reason);
    await assert.rejects(waiter, (e) => e === reason);
    assert.equal(pool.getStats().requestsWaiting, 0);
    await pool.putconn(held);
  }));

Deno.test("getconn() with an already aborted signal rejects with its reason", () =>
  withTestDatabase(async (db) => {
    await using pool = new ConnectionPool({ conninfo: db.url, minSize: 1 });
    await pool.open({ wait: true });
    const reason = new Error("already gone");
    await assert.rejects(pool.getconn({ signal: AbortSignal.abort(reason) }), (e) => e === reason);
    assert.equal(pool.getStats().poolAvailable, 1, "the idle connection was not taken");
  }));

Deno.test("a waiter that timed out never loses a connection: the return goes to the next waiter", () =>
  withTestDatabase(async (db) => {
    await using pool = new ConnectionPool({ conninfo: db.url, minSize: 1 });
    const held = await pool.getconn();
    const pid = await backendPid(held);
    const early = pool.getconn({ timeout: 100 });
    const late = pool.getconn({ timeout: 10_000 });
    await assert.rejects(early, PoolTimeoutError);
    await pool.putconn(held);
    const conn = await late;
    assert.equal(await backendPid(conn), pid);
    assert.equal(pool.getStats().poolSize, 1);
    await pool.putconn(conn);
    assert.equal(pool.getStats().poolAvailable, 1);
  }));

Deno.test("a waiter that aborted never loses a connection: the return goes back to idle", () =>
  withTestDatabase(async (db) => {
    await using pool = new ConnectionPool({ conninfo: db.url, minSize: 1 });
    const held = await pool.getconn();
    const controller = new AbortController();
    const waiter = pool.getconn({ timeout: 10_000, signal: controller.signal });
    await waitFor(() => pool.getStats().requestsWaiting === 1);
    controller.abort();
    await assert.rejects(waiter);
    await pool.putconn(held);
    const stats = pool.getStats();
    assert.equal(stats.poolSize, 1);
    assert.equal(stats.poolAvailable, 1);
    assert.equal(stats.requestsWaiting, 0);
    const again = await pool.getconn({ timeout: 1_000 });
    await pool.putconn(again);
  }));

Deno.test("conn is the driver's pg.Client and `await using` returns it to the pool", () =>
  withTestDatabase(async (db) => {
    await using pool = new ConnectionPool({ conninfo: db.url, minSize: 1 });
    let pid: number;
    {
      await using conn = await pool.connection();
      assert.ok(conn instanceof pg.Client);
      assert.equal(typeof conn[Symbol.asyncDispose], "function");
      pid = await backendPid(conn);
      assert.equal(pool.getStats().poolAvailable, 0);
    }
    assert.equal(pool.getStats().poolAvailable, 1);
    const again = await pool.getconn();
    assert.equal(await backendPid(again), pid);
    await pool.putconn(again);
  }));

Deno.test("putconn() of a connection not from this pool rejects with PoolError", () =>
  withTestDatabase(async (db) => {
    await using pool = new ConnectionPool({ conninfo: db.url, minSize: 1 });
    await using other = new ConnectionPool({ conninfo: db.url, minSize: 1 });
    const foreign = new pg.Client({ connectionString: db.url });
    await assert.rejects(pool.putconn(foreign), PoolError);
    const fromOther = await other.getconn();
    await assert.rejects(pool.putconn(fromOther), PoolError);
    await other.putconn(fromOther);
  }));

Deno.test("putconn() of a connection returned twice rejects with PoolError", () =>
  withTestDatabase(async (db) => {
    await using pool = new ConnectionPool({ conninfo: db.url, minSize: 1 });
    const conn = await pool.getconn();
    await pool.putconn(conn);
    await assert.rejects(pool.putconn(conn), (e) => e instanceof PoolError && /already returned/.test(e.message));
    assert.equal(pool.getStats().poolAvailable, 1);
  }));
