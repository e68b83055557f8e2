/**
 * share() runs a Worker's request at most once, and never one the Worker was
 * told failed: a terminated Worker's queued `pool.query()` calls do not start
 * on the owner, and `AttachedPool.close()` fails only calls that never ran.
 * Checked by counting the rows the server committed.
 */
import assert from "node:assert/strict";
import pg from "pg";
import { ConnectionPool } from "../../mod.ts";
import { createTestDatabase, waitFor } from "../_db.ts";
import { startWorker } from "../_shared_helpers.ts";

const db = await createTestDatabase();
const STATEMENT_MS = 20;
const INSERT = `insert into t(v) select $1::int from pg_sleep(${STATEMENT_MS / 1000})`;
const QUEUED = 60;

async function withAdmin<T>(fn: (admin: pg.Client) => Promise<T>): Promise<T> {
  const admin = new pg.Client({ connectionString: db.url });
  await admin.connect();
  try {
    return await fn(admin);
  } finally {
    await admin.end();
  }
}
await withAdmin((a) => a.query("create table t (v int)"));

async function rows(admin: pg.Client): Promise<number> {
  const { rows } = await admin.query("select count(*)::int as n from t");
  return rows[0].n as number;
}

/** Nothing waits in the pool and nothing is borrowed: no further statement can start. */
function untilQuiet(pool: ConnectionPool, timeout: number): Promise<void> {
  return waitFor(() => {
    const s = pool.getStats();
    return s.requestsWaiting === 0 && s.poolSize === s.poolAvailable;
  }, { timeout });
}

/** Starts a Worker that queues QUEUED writes on a one-connection pool; resolves once a few have committed. */
async function queueWrites(pool: ConnectionPool, admin: pg.Client, worker?: boolean, heartbeatTimeout = 10_000) {
  await admin.query("truncate t");
  const w = startWorker("at_most_once_client.ts");
  const port = pool.share({ heartbeatTimeout, worker: worker ? w.worker : undefined });
  await w.call("attach", { port }, [port]);
  await w.call("queue", { n: QUEUED, text: INSERT });
  await waitFor(async () => (await rows(admin)) >= 3, { timeout: 5_000, interval: 2 });
  return w;
}

Deno.test("share({ worker }): a terminated Worker's queued pool.query() writes never start on the owner", async () => {
  await withAdmin(async (admin) => {
    await using pool = new ConnectionPool({ conninfo: db.url, minSize: 1, maxSize: 1 });
    const w = await queueWrites(pool, admin, true);
    w.terminate();
    const atTerminate = await rows(admin);
    const terminated = performance.now();
    await untilQuiet(pool, 2_000);
    const quietAfter = performance.now() - terminated;
    // At most the statement running at terminate() (and one granted in the same tick) completes afterwards.
    const final = await rows(admin);
    assert.ok(final <= atTerminate + 1, `${final} rows committed, ${atTerminate} when the Worker was terminated`);
    assert.ok(quietAfter < 500, `the owner's pool was busy ${quietAfter.toFixed(0)} ms after terminate()`);
    const started = performance.now();
    await pool.query("select 1");
    assert.ok(performance.now() - started < 200, "the owner's own query does not wait behind the dead Worker's");
  });
});

Deno.test("share(): a Worker terminated without share({ worker }) stops starting writes once its heartbeat lapses", async () => {
  const HEARTBEAT_TIMEOUT = 300;
  await withAdmin(async (admin) => {
    await using pool = new ConnectionPool({ conninfo: db.url, minSize: 1, maxSize: 1 });
    const w = await queueWrites(pool, admin, false, HEARTBEAT_TIMEOUT);
    w.terminate();
    const atTerminate = await rows(admin);
    await untilQuiet(pool, HEARTBEAT_TIMEOUT * 2 + 1_000);
    const final = await rows(admin);
    // Statements may start until the heartbeat lapses (the last ping is up to heartbeatTimeout / 5 old), never after.
    const bound = atTerminate + Math.ceil(HEARTBEAT_TIMEOUT / STATEMENT_MS) + 2;
    assert.ok(final <= bound, `${final} rows committed, at most ${bound} expected (${atTerminate} at terminate())`);
    assert.ok(final < QUEUED, "not every queued write ran");
  });
});

Deno.test("AttachedPool.close() while its pool.query() calls wait: every call it was told failed never ran", async () => {
  await withAdmin(async (admin) => {
    await using pool = new ConnectionPool({ conninfo: db.url, minSize: 1, maxSize: 1 });
    const w = await queueWrites(pool, admin);
    try {
      const told = await w.call<{ done: number; closed: number; other: string[] }>("closeAndCount");
      await untilQuiet(pool, 2_000);
      const committed = await rows(admin);
      assert.deepEqual(told.other, [], "only PoolClosedError for calls that did not complete");
      assert.equal(told.done + told.closed, QUEUED);
      assert.ok(told.closed > 0, "close() came while calls still waited");
      assert.equal(committed, told.done, "the rows committed are exactly the calls reported done");
    } finally {
      w.terminate();
    }
  });
});

Deno.test("share(): a Worker blocked past heartbeatTimeout is told its waiting writes failed, and none of those ran", async () => {
  const HEARTBEAT_TIMEOUT = 300;
  await withAdmin(async (admin) => {
    await using pool = new ConnectionPool({ conninfo: db.url, minSize: 1, maxSize: 1 });
    const w = await queueWrites(pool, admin, false, HEARTBEAT_TIMEOUT);
    try {
      const told = await w.call<{ done: number; closed: number; other: string[] }>("spinAndCount", {
        ms: HEARTBEAT_TIMEOUT * 3,
      });
      await untilQuiet(pool, 2_000);
      const committed = await rows(admin);
      assert.ok(told.other.length > 0, "some writes were abandoned while the Worker was blocked");
      assert.ok(told.other.every((e) => /abandoned/.test(e)), told.other[0]);
      assert.equal(told.done + told.other.length, QUEUED);
      assert.equal(committed, told.done, "the rows committed are exactly the calls reported done");
    } finally {
      w.terminate();
    }
  });
});

Deno.test("share(): a Worker blocked past heartbeatTimeout with statements queued on a lease: only the running one may have run", async () => {
  const HEARTBEAT_TIMEOUT = 300;
  await withAdmin(async (admin) => {
    await using pool = new ConnectionPool({ conninfo: db.url, minSize: 1, maxSize: 1 });
    await admin.query("truncate t");
    const w = startWorker("at_most_once_client.ts");
    try {
      const port = pool.share({ heartbeatTimeout: HEARTBEAT_TIMEOUT });
      await w.call("attach", { port }, [port]);
      await w.call("queueOnLease", { n: QUEUED, text: INSERT });
      await waitFor(async () => (await rows(admin)) >= 3, { timeout: 5_000, interval: 2 });
      const told = await w.call<{ done: number; closed: number; lost: number; other: string[] }>("spinAndCount", {
        ms: HEARTBEAT_TIMEOUT * 3,
      });
      await untilQuiet(pool, 2_000);
      const committed = await rows(admin);
      assert.equal(told.done + told.lost + told.closed + told.other.length, QUEUED);
      assert.ok(told.other.length > 0, "the statements not started were abandoned");
      assert.ok(told.other.every((e) => /abandoned/.test(e)), told.other[0]);
      assert.ok(told.lost <= 1, `${told.lost} statements may have run: only the one running at the reclaim can have`);
      // What the Worker was told failed for sure never ran: every committed row is a call told done or "may have run".
      assert.ok(
        committed >= told.done && committed <= told.done + told.lost,
        `${committed} rows, told ${JSON.stringify(told)}`,
      );
    } finally {
      w.terminate();
    }
  });
});
