/**
 * Errors cross the Worker channel with their class and the server's fields;
 * the owner closing fails the Workers' calls; bad input never crashes the owner.
 */
import assert from "node:assert/strict";
import { attachPool, ConnectionPool, PoolError, ThreadedConnectionPool } from "../../mod.ts";
import { createTestDatabase, waitFor } from "../_db.ts";
import { captureLogs } from "../_pool_helpers.ts";
import { startWorker, type TestWorker } from "../_shared_helpers.ts";

const db = await createTestDatabase();

async function withWorker(fn: (w: TestWorker) => Promise<void>): Promise<void> {
  const w = startWorker();
  try {
    await fn(w);
  } finally {
    w.terminate();
  }
}

Deno.test("getconn() in a Worker rejects with PoolTimeoutError when the shared pool is exhausted", async () => {
  await using pool = new ConnectionPool({ conninfo: db.url, minSize: 1, maxSize: 1, name: "shared-timeout" });
  await withWorker(async (w) => {
    await w.attach(pool.share());
    const mine = await pool.getconn();
    const error = await w.fail("hold", { timeout: 200 });
    await pool.putconn(mine);
    assert.ok(error.isPoolTimeoutError && error.isPoolError, `${error.name}: ${error.message}`);
    assert.equal(error.name, "PoolTimeoutError");
    assert.match(error.message, /shared-timeout.*after 200 ms/);
  });
});

Deno.test("a server error reaches the Worker with its SQLSTATE code, detail, hint and message", async () => {
  await using pool = new ConnectionPool({ conninfo: db.url, minSize: 1, maxSize: 1 });
  await withWorker(async (w) => {
    await w.attach(pool.share());
    const division = await w.fail("query", { text: "select 1/0" });
    assert.equal(division.code, "22012");
    assert.equal(division.message, "division by zero");
    assert.equal(division.isPoolError, false);
    const raised = await w.fail("query", {
      text: "do $$ begin raise exception 'custom failure' using detail = 'the detail', hint = 'the hint', " +
        "errcode = 'P0001'; end $$",
    });
    assert.deepEqual(
      { code: raised.code, detail: raised.detail, hint: raised.hint, message: raised.message },
      { code: "P0001", detail: "the detail", hint: "the hint", message: "custom failure" },
    );
    // On a leased connection too, and the status shows the failed transaction.
    const { index } = await w.call<{ index: number }>("hold");
    await w.call("connQuery", { index, text: "begin" });
    assert.equal((await w.fail("connQuery", { index, text: "select 1/0" })).code, "22012");
    const after = await w.fail("connQuery", { index, text: "select 1" });
    assert.equal(after.code, "25P02", "in failed transaction");
    await w.call("release", { index });
  });
});

Deno.test("a Worker's getconn() rejects with TooManyRequestsError when maxWaiting requests already wait", async () => {
  await using pool = new ConnectionPool({ conninfo: db.url, minSize: 1, maxSize: 1, maxWaiting: 1 });
  await withWorker(async (w) => {
    await w.attach(pool.share());
    const mine = await pool.getconn();
    const waiting = pool.getconn({ timeout: 2_000 });
    const error = await w.fail("hold", { timeout: 2_000 });
    assert.ok(error.isTooManyRequestsError && error.isPoolError, `${error.name}: ${error.message}`);
    await pool.putconn(mine);
    await pool.putconn(await waiting);
  });
});

Deno.test("closing the owner's pool rejects a Worker's waiting request and its next call with PoolClosedError", async () => {
  await using pool = new ConnectionPool({ conninfo: db.url, minSize: 1, maxSize: 1 });
  await withWorker(async (w) => {
    await w.attach(pool.share());
    const mine = await pool.getconn();
    const waiting = w.fail("hold", { timeout: 10_000 });
    await waitFor(() => pool.getStats().requestsWaiting === 1);
    const closing = pool.close({ timeout: 100 });
    const error = await waiting;
    assert.ok(error.isPoolClosedError, `${error.name}: ${error.message}`);
    await closing;
    const next = await w.fail("query", { text: "select 1" });
    assert.ok(next.isPoolClosedError, `${next.name}: ${next.message}`);
    void mine; // closed by pool.close() after its timeout
  });
});

Deno.test("closeall() on a shared ThreadedConnectionPool fails the Workers' next calls with PoolClosedError", async () => {
  const pool = new ThreadedConnectionPool(1, 2, db.url);
  await withWorker(async (w) => {
    await w.attach(pool.share());
    await w.call("query", { text: "select 1" });
    await pool.closeall();
    const error = await w.fail("hold");
    assert.ok(error.isPoolClosedError, `${error.name}: ${error.message}`);
  });
});

Deno.test("attaching the same port twice fails with a clear PoolError", async () => {
  await using pool = new ConnectionPool({ conninfo: db.url, minSize: 1, maxSize: 1 });
  await withWorker(async (w) => {
    const port = pool.share();
    const error = await (async () => {
      try {
        await w.call("attachAgain", { port }, [port]);
      } catch (e) {
        return (e as { info: { isPoolError: boolean; message: string } }).info;
      }
      throw new Error("expected attachAgain to fail");
    })();
    assert.ok(error.isPoolError);
    assert.match(error.message, /already attached/);
  });
});

Deno.test("messages that are not ours, of another version, a second hello or an unknown lease are ignored with a warning", async () => {
  await using logs = await captureLogs();
  await using pool = new ConnectionPool({ conninfo: db.url, minSize: 1, maxSize: 1, name: "shared-bad" });
  const port = pool.share();
  const replies: unknown[] = [];
  port.onmessage = (e) => replies.push(...(Array.isArray(e.data) ? e.data : [e.data]));
  try {
    port.postMessage("not a message");
    port.postMessage({ hello: "world" });
    port.postMessage({ v: 2, kind: "hello", id: 1 });
    port.postMessage({ v: 1, kind: "frobnicate", id: 2 });
    port.postMessage({ v: 1, kind: "query", id: 3, lease: 999, text: "select 1" });
    port.postMessage({ v: 1, kind: "release", id: 4, lease: 998 });
    port.postMessage({ v: 1, kind: "hello", id: 5 });
    port.postMessage({ v: 1, kind: "hello", id: 6 });
    await waitFor(() => replies.length >= 4);
    const byId = new Map(replies.map((r) => [(r as { id: number }).id, r as Record<string, unknown>]));
    assert.deepEqual([...byId.keys()].sort(), [3, 4, 5, 6], "no reply to what is not ours");
    assert.match((byId.get(3)!.error as { message: string }).message, /lease 999 is not held/);
    assert.equal((byId.get(3)!.error as { name: string }).name, "PoolError");
    assert.equal(byId.get(5)!.kind, "welcome");
    assert.match((byId.get(6)!.error as { message: string }).message, /already attached/);
    const warnings = logs.records.filter((r) => r.level === "warning").length;
    assert.ok(warnings >= 6, `${warnings} warnings logged`);
    // The owner is fine: a proper attach on a new port works.
    await using attached = await attachPool(pool.share());
    assert.deepEqual((await attached.query("select 1 as x")).rows, [{ x: 1 }]);
  } finally {
    port.close();
  }
});

Deno.test("putconn() in a Worker of a connection returned twice rejects with PoolError", async () => {
  await using pool = new ConnectionPool({ conninfo: db.url, minSize: 1, maxSize: 1 });
  await using attached = await attachPool(pool.share());
  const conn = await attached.getconn();
  await attached.putconn(conn);
  await assert.rejects(attached.putconn(conn), (e) => e instanceof PoolError && /already returned/.test(e.message));
  await assert.rejects(conn.query("select 1"), PoolError);
});

Deno.test({ name: "drop the test database", fn: () => db.drop() });
