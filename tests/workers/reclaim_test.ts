/**
 * A Worker that dies while holding connections: its leases come back rolled
 * back within the documented bound (heartbeatTimeout + heartbeatTimeout / 4,
 * plus the rollback), or at once on its `error` event with `share({ worker })`.
 * A Worker blocked for less than the bound keeps its leases.
 */
import assert from "node:assert/strict";
import pg from "pg";
import { ConnectionPool } from "../../mod.ts";
import { createTestDatabase, waitFor } from "../_db.ts";
import { captureLogs } from "../_pool_helpers.ts";
import { startWorker } from "../_shared_helpers.ts";

const db = await createTestDatabase();
{
  const setup = new pg.Client({ connectionString: db.url });
  await setup.connect();
  await setup.query("create table t (v int)");
  await setup.end();
}

const HEARTBEAT_TIMEOUT = 500;
/** The bound: no message for heartbeatTimeout, noticed by a sweep every heartbeatTimeout / 4. */
const BOUND = HEARTBEAT_TIMEOUT * 1.25;

Deno.test("a terminated Worker's connection, held inside an open transaction, comes back rolled back within the bound", async () => {
  await using pool = new ConnectionPool({ conninfo: db.url, minSize: 1, maxSize: 1 });
  const w = startWorker();
  try {
    await w.attach(pool.share({ heartbeatTimeout: HEARTBEAT_TIMEOUT }));
    const { index, pid } = await w.call<{ index: number; pid: number }>("hold");
    await w.call("connQuery", { index, text: "begin" });
    await w.call("connQuery", { index, text: "insert into t(v) values (1)" });
    w.terminate();
    const killed = performance.now();
    // The pool's only connection is leased: this waits for the reclaim.
    const conn = await pool.getconn({ timeout: 5_000 });
    const elapsed = performance.now() - killed;
    try {
      const { rows } = await conn.query<{ pid: number }>("select pg_backend_pid() as pid");
      assert.equal(rows[0].pid, pid, "the same connection, reclaimed, not a new one");
      assert.equal(conn.getTransactionStatus(), "I", "rolled back");
      assert.deepEqual((await conn.query("select v from t")).rows, [], "the insert was rolled back");
    } finally {
      await pool.putconn(conn);
    }
    // The Worker's last ping may predate terminate() by up to one interval (heartbeatTimeout / 5).
    assert.ok(elapsed >= HEARTBEAT_TIMEOUT * 0.8 - 50, `reclaimed after ${elapsed.toFixed(0)} ms: too early`);
    assert.ok(elapsed <= BOUND * 1.2 + 150, `reclaimed after ${elapsed.toFixed(0)} ms, bound ${BOUND} ms`);
  } finally {
    w.terminate();
  }
});

Deno.test("share({ worker }): a Worker crashing with an uncaught error gives its connection back at once", async () => {
  await using pool = new ConnectionPool({ conninfo: db.url, minSize: 1, maxSize: 1 });
  const w = startWorker();
  w.worker.addEventListener("error", (e) => e.preventDefault()); // the crash is the point
  try {
    await w.attach(pool.share({ heartbeatTimeout: 10_000, worker: w.worker }));
    const { index } = await w.call<{ index: number }>("hold");
    await w.call("connQuery", { index, text: "begin" });
    await w.call("connQuery", { index, text: "insert into t(v) values (2)" });
    const crashed = performance.now();
    await w.call("crash");
    const conn = await pool.getconn({ timeout: 5_000 });
    const elapsed = performance.now() - crashed;
    try {
      assert.deepEqual((await conn.query("select v from t")).rows, []);
    } finally {
      await pool.putconn(conn);
    }
    assert.ok(elapsed < 2_000, `reclaimed after ${elapsed.toFixed(0)} ms, heartbeatTimeout was 10000`);
  } finally {
    w.terminate();
  }
});

Deno.test("a Worker terminated while waiting for a connection does not keep the one it is granted later", async () => {
  await using logs = await captureLogs();
  await using pool = new ConnectionPool({ conninfo: db.url, minSize: 1, maxSize: 1 });
  const w = startWorker();
  try {
    await w.attach(pool.share({ heartbeatTimeout: HEARTBEAT_TIMEOUT }));
    const mine = await pool.getconn();
    void w.call("hold", { timeout: 10_000 }).catch(() => {});
    await waitFor(() => pool.getStats().requestsWaiting === 1, { message: "the Worker's request never queued" });
    w.terminate();
    // Once the owner gave up on the Worker, hand the connection back: the dead Worker's
    // request is served and must return it at once, not hold it for another bound.
    await waitFor(() => logs.messages().some((m) => m.includes("reclaiming")), { timeout: BOUND * 2 + 500 });
    await pool.putconn(mine);
    const again = await pool.getconn({ timeout: 300 });
    await pool.putconn(again);
  } finally {
    w.terminate();
  }
});

Deno.test("a Worker blocked for less than the bound keeps its lease; blocked for longer, it loses it with a PoolError", async () => {
  await using pool = new ConnectionPool({ conninfo: db.url, minSize: 1, maxSize: 1 });
  const w = startWorker();
  try {
    await w.attach(pool.share({ heartbeatTimeout: 1_000 }));
    const { index, pid } = await w.call<{ index: number; pid: number }>("hold");
    await w.call("spin", { ms: 500 });
    const q = await w.call<{ rows: { pid: number }[] }>("connQuery", { index, text: "select pg_backend_pid() as pid" });
    assert.equal(q.rows[0].pid, pid, "still holds the same lease after a 500 ms block");
    await w.call("spin", { ms: 2_000 });
    const error = await w.fail("connQuery", { index, text: "select 1" });
    assert.ok(error.isPoolError, `${error.name}: ${error.message}`);
    assert.match(error.message, /reclaimed/);
    // The connection went back to the pool meanwhile.
    const conn = await pool.getconn({ timeout: 1_000 });
    await pool.putconn(conn);
  } finally {
    w.terminate();
  }
});

Deno.test({ name: "drop the test database", fn: () => db.drop() });
