/**
 * One transaction implementation for local and attached pools
 * (src/query/transaction.ts): the same "did not commit" checks on both sides of
 * the Worker channel, and the pool's own COMMIT/ROLLBACK bounded when the
 * link goes silent.
 */
import assert from "node:assert/strict";
import { ConnectionPool, PoolError, PoolTimeoutError } from "../../mod.ts";
import { createTestDatabase, waitFor } from "../_db.ts";
import { startWorker, WorkerCallError } from "../_shared_helpers.ts";
import { proxyToServer } from "../_faults.ts";

const db = await createTestDatabase();

async function rows(pool: ConnectionPool, table: string): Promise<number> {
  const { rows } = await pool.query<{ n: number }>(`select count(*)::int as n from ${table}`);
  return rows[0].n;
}

Deno.test("a connection lost after the last statement (error swallowed): a Worker's transaction() rejects exactly like the owner's, 0 rows written", async () => {
  await using pool = new ConnectionPool({ conninfo: db.url, minSize: 1, maxSize: 2 });
  await pool.query("create table lost_in_worker (n int)");
  const ownerError = await pool.transaction(async (conn) => {
    await conn.query("insert into lost_in_worker values (1)");
    try {
      await conn.query("select pg_terminate_backend(pg_backend_pid())");
    } catch {
      // swallowed on purpose
    }
    return "done";
  }).then(() => undefined, (error) => error as Error);
  assert.ok(ownerError instanceof PoolError, "the owner's transaction() rejects");
  assert.match(ownerError.message, /did not commit/);

  const w = startWorker();
  try {
    await w.attach(pool.share());
    const failure = await w.call("transactionLost", { table: "lost_in_worker" }).then(
      (value) => assert.fail(`the Worker's transaction() resolved with ${String(value)}`),
      (error) => error,
    );
    assert.ok(failure instanceof WorkerCallError);
    assert.equal(failure.info.isPoolError, true);
    assert.equal(failure.info.name, ownerError.name);
    assert.equal(failure.info.message, ownerError.message);
  } finally {
    w.terminate();
  }
  assert.equal(await rows(pool, "lost_in_worker"), 0, "nothing was committed");
});

for (const how of ["COMMIT", "ROLLBACK after a throw", "withConnection's COMMIT"] as const) {
  Deno.test(`${how} on a link gone silent: the call rejects within connectTimeout and the connection is discarded`, async () => {
    await using proxy = await proxyToServer();
    const bound = 500;
    await using pool = new ConnectionPool({
      conninfo: proxy.url(db.url),
      minSize: 1,
      maxSize: 1,
      connectTimeout: bound,
    });
    await pool.open({ wait: true });
    const started = performance.now();
    const call = how === "withConnection's COMMIT"
      ? pool.withConnection(async (conn) => {
        await conn.query("begin");
        await conn.query("select 1");
        proxy.blackhole();
      })
      : pool.transaction(async (conn) => {
        await conn.query("select 1");
        proxy.blackhole();
        if (how === "ROLLBACK after a throw") throw new Error("boom");
      });
    const error = await call.then(() => undefined, (e) => e as Error);
    const elapsed = performance.now() - started;
    if (how === "ROLLBACK after a throw") {
      assert.equal(error?.message, "boom", "fn's error surfaces, not the ROLLBACK's");
    } else {
      assert.ok(error instanceof PoolTimeoutError, `rejects with PoolTimeoutError, got ${error}`);
      assert.match(error.message, /COMMIT got no answer in 500 ms/);
    }
    // The bound, then closing the silent socket (also bounded by connectTimeout): generous under load.
    assert.ok(elapsed < 4 * bound + 2_000, `settled after ${Math.round(elapsed)} ms`);
    await waitFor(() => pool.getStats().returnsBad === 1, { timeout: 5_000 });
    await proxy.start();
    assert.equal((await pool.query("select 1 as x")).rows[0].x, 1, "a replacement serves once the link is back");
  });
}

Deno.test("a Worker's COMMIT on a link gone silent: its transaction() rejects within the owner's connectTimeout, like the owner's", async () => {
  await using proxy = await proxyToServer();
  const bound = 500;
  await using pool = new ConnectionPool({ conninfo: proxy.url(db.url), minSize: 1, maxSize: 1, connectTimeout: bound });
  await pool.open({ wait: true });
  const w = startWorker();
  try {
    await w.attach(pool.share());
    const call = w.call("transactionPaused").then(() => undefined, (error) => error);
    await w.call("waitPaused"); // inside the transaction, before its COMMIT
    proxy.blackhole();
    const started = performance.now();
    await w.call("resume");
    const failure = await call;
    const elapsed = performance.now() - started;
    assert.ok(failure instanceof WorkerCallError, "the Worker's transaction() rejects");
    assert.equal(failure.info.isPoolTimeoutError, true);
    assert.match(failure.info.message, /COMMIT got no answer in 500 ms/);
    assert.ok(elapsed < 4 * bound + 2_000, `settled after ${Math.round(elapsed)} ms`);
    await waitFor(() => pool.getStats().returnsBad === 1, { timeout: 5_000, message: "the owner discarded it" });
  } finally {
    w.terminate();
  }
});
