/**
 * Regressions from the review of Worker sharing (fixed in 6c471ea), each
 * replayed with a real Worker against the real server: the heartbeat period
 * after attach, a persistent pool's one connection per port, an aborted keyed
 * getconn, a Worker's unkeyed keys, and psycopg2's persistent putconn forms.
 */
import assert from "node:assert/strict";
import { PersistentConnectionPool, ThreadedConnectionPool } from "../../mod.ts";
import { createTestDatabase } from "../_db.ts";
import { startWorker, type WorkerError } from "../_shared_helpers.ts";

const db = await createTestDatabase();

/** A Worker running `_workers/shared_regressions_client.ts`: one command per scenario. */
const startRegressionWorker = () => startWorker("shared_regressions_client.ts");

async function ownerPid(conn: { query(text: string): Promise<{ rows: { pid: number }[] }> }): Promise<number> {
  return (await conn.query("select pg_backend_pid() as pid")).rows[0].pid;
}

Deno.test("a Worker that borrows right after attach beats at heartbeatTimeout / 5: idle 1.5 s in a transaction with heartbeatTimeout 400, it keeps its lease", async () => {
  const pool = new ThreadedConnectionPool(0, 2, db.url);
  const w = startRegressionWorker();
  try {
    const port = pool.share({ heartbeatTimeout: 400 });
    // Before the fix the beat the attach started kept its default 1 s period: reclaimed at ~500 ms.
    const r = await w.call<{ pid: number; pidAfter: number; status: string }>(
      "attachThenIdleInTransaction",
      { port, ms: 1_500 },
      [port],
    );
    assert.equal(r.pidAfter, r.pid, "the same session");
    assert.equal(r.status, "T", "still inside the transaction it began");
  } finally {
    w.terminate();
    await pool.closeall();
  }
});

Deno.test("PersistentConnectionPool in a Worker: two concurrent pool.query() calls both succeed, on the port's one session", async () => {
  const pool = new PersistentConnectionPool(0, 2, db.url);
  const w = startRegressionWorker();
  try {
    const port = pool.share();
    await w.call("attach", { port }, [port]);
    const results = await w.call<({ pid: number } | { error: WorkerError })[]>("twoConcurrentQueries");
    assert.ok(results.every((r) => "pid" in r), `both queries succeed: ${JSON.stringify(results)}`);
    const pids = results.map((r) => (r as { pid: number }).pid);
    assert.equal(pids[0], pids[1], "a persistent pool binds one connection per port");
  } finally {
    w.terminate();
    await pool.closeall();
  }
});

Deno.test("PersistentConnectionPool in a Worker: getconn() alongside pool.query() keeps the Worker's session; the owner's getconn() gets another", async () => {
  const pool = new PersistentConnectionPool(1, 2, db.url);
  const w = startRegressionWorker();
  try {
    const port = pool.share();
    await w.call("attach", { port }, [port]);
    const { index, pid } = await w.call<{ index: number; pid: number }>("holdWhileQuerying");
    // Before the fix the query's end put the held connection back, and the owner got the same session.
    const mine = await pool.getconn();
    try {
      assert.notEqual(await ownerPid(mine), pid, "no session shared between isolates");
      assert.equal(await w.call<number>("pid", { index }), pid, "the Worker still holds its session");
    } finally {
      await pool.putconn(mine);
    }
  } finally {
    w.terminate();
    await pool.closeall();
  }
});

Deno.test("ThreadedConnectionPool in a Worker: an aborted getconn({ key, signal }) of a held key leaves the held connection usable and leased", async () => {
  const pool = new ThreadedConnectionPool(1, 2, db.url);
  const w = startRegressionWorker();
  try {
    const port = pool.share();
    await w.call("attach", { port }, [port]);
    const r = await w.call<{ pid: number; abortError: WorkerError; pidAfter?: number; firstError?: WorkerError }>(
      "abortSecondGetconnOfHeldKey",
      { key: "a" },
    );
    assert.equal(r.abortError?.message, "gave up", "the aborted call rejects with the signal's reason");
    assert.equal(r.firstError, undefined, `the held connection still works: ${JSON.stringify(r.firstError)}`);
    assert.equal(r.pidAfter, r.pid);
    // The Worker's pool.query() above used (and gave back) a second connection; the held one stays bound.
    assert.equal(pool.toJSON().used, 1, "still bound to the Worker, not back in the idle list");
    const mine = await pool.getconn("owner");
    try {
      assert.notEqual(await ownerPid(mine), r.pid);
    } finally {
      await pool.putconn(mine, "owner");
    }
  } finally {
    w.terminate();
    await pool.closeall();
  }
});

Deno.test("ThreadedConnectionPool: a Worker's unkeyed getconn() does not take the key 1 the owner's getconn(1) uses", async () => {
  const pool = new ThreadedConnectionPool(0, 3, db.url);
  const w = startRegressionWorker();
  try {
    const port = pool.share();
    await w.call("attach", { port }, [port]);
    const { pid } = await w.call<{ pid: number }>("hold", {});
    // psycopg2 code passes small integer keys by hand; the pool's own fresh keys are 1, 2, ...
    const mine = await pool.getconn(1);
    try {
      assert.notEqual(await ownerPid(mine), pid, "the owner must not get the Worker's connection");
    } finally {
      await pool.putconn(mine, 1);
    }
  } finally {
    w.terminate();
    await pool.closeall();
  }
});

Deno.test("PersistentConnectionPool in a Worker: putconn(conn, true) closes the connection, putconn() returns the one held", async () => {
  const pool = new PersistentConnectionPool(1, 2, db.url);
  const w = startRegressionWorker();
  try {
    const port = pool.share();
    await w.call("attach", { port }, [port]);
    const r = await w.call<{
      pid: number;
      pidAfterClose: number;
      putconnNoArg: "returned" | WorkerError;
      queryAfterReturn: "ran" | WorkerError;
    }>("persistentPutconnForms");
    assert.notEqual(r.pidAfterClose, r.pid, "putconn(conn, true) closed the session");
    assert.equal(r.putconnNoArg, "returned", `putconn() without a connection: ${JSON.stringify(r.putconnNoArg)}`);
    assert.ok(
      r.queryAfterReturn !== "ran" && r.queryAfterReturn.isPoolError,
      "the returned connection is no longer usable",
    );
    assert.equal(pool.toJSON().used, 0, "nothing bound after putconn()");
  } finally {
    w.terminate();
    await pool.closeall();
  }
});
