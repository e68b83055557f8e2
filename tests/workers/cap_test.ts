/**
 * One pool shared with Workers keeps one connection cap across isolates, and
 * the classic pools keep their semantics through the channel.
 */
import assert from "node:assert/strict";
import { ConnectionPool, PersistentConnectionPool, ThreadedConnectionPool } from "../../mod.ts";
import { createTestDatabase } from "../_db.ts";
import { samplePeak, startWorker, type TestWorker } from "../_shared_helpers.ts";

const db = await createTestDatabase();
globalThis.addEventListener("unload", () => {});

async function withWorkers(n: number, fn: (workers: TestWorker[]) => Promise<void>): Promise<void> {
  const workers = Array.from({ length: n }, startWorker);
  try {
    await fn(workers);
  } finally {
    for (const w of workers) w.terminate();
  }
}

Deno.test("attachPool() mirrors the owner's pool and query() returns rows, rowCount and fields", async () => {
  await using pool = new ConnectionPool({ conninfo: db.url, minSize: 1, maxSize: 2, name: "shared-basic" });
  await withWorkers(1, async ([w]) => {
    assert.deepEqual(await w.attach(pool.share()), { name: "shared-basic", maxSize: 2, flavor: "pool" });
    const r = await w.call<{ rows: unknown[]; rowCount: number; fields: { name: string; dataTypeID: number }[] }>(
      "query",
      { text: "select $1::int as x, 'a'::text as y", params: [7] },
    );
    assert.deepEqual(r.rows, [{ x: 7, y: "a" }]);
    assert.equal(r.rowCount, 1);
    assert.deepEqual(r.fields, [{ name: "x", dataTypeID: 23 }, { name: "y", dataTypeID: 25 }]);
    assert.equal(await w.call("close"), true);
  });
});

Deno.test("6 Workers through a shared pool of 4 never open more than 4 server connections", async () => {
  await using pool = new ConnectionPool({ conninfo: db.url, minSize: 1, maxSize: 4, name: "shared-cap" });
  await withWorkers(6, async (workers) => {
    for (const w of workers) await w.attach(pool.share());
    const peak = samplePeak(db.name);
    await Promise.all(
      workers.map((w) => w.call("load", { text: "select pg_sleep(0.005)", n: 60, concurrency: 8 })),
    );
    const seen = await peak.stop();
    assert.ok(seen <= 4, `peak ${seen} server connections, cap 4`);
    assert.equal(seen, 4, "the load should have used the whole cap");
    assert.ok(pool.getStats().poolSize <= 4);
  });
});

Deno.test("ThreadedConnectionPool shared: a Worker's getconn() throws PoolExhaustedError at maxconn, across isolates", async () => {
  const pool = new ThreadedConnectionPool(0, 2, db.url);
  try {
    await withWorkers(2, async ([a, b]) => {
      assert.equal((await a.attach(pool.share())).flavor, "classic");
      await b.attach(pool.share());
      const local = await pool.getconn();
      await a.call("hold");
      const error = await b.fail("hold");
      assert.ok(error.isPoolExhaustedError, `${error.name}: ${error.message}`);
      assert.equal(error.message, "connection pool exhausted");
      await pool.putconn(local);
      await b.call("hold"); // a connection is free again
    });
  } finally {
    await pool.closeall();
  }
});

Deno.test("ThreadedConnectionPool shared: the same key in one Worker is the same connection, in two Workers two", async () => {
  const pool = new ThreadedConnectionPool(0, 4, db.url);
  try {
    await withWorkers(2, async ([a, b]) => {
      await a.attach(pool.share());
      await b.attach(pool.share());
      const a1 = await a.call<{ index: number; pid: number }>("hold", { key: "k" });
      const a2 = await a.call<{ index: number; pid: number }>("hold", { key: "k" });
      const b1 = await b.call<{ index: number; pid: number }>("hold", { key: "k" });
      assert.equal(a1.pid, a2.pid);
      assert.equal(a1.index, a2.index);
      assert.notEqual(a1.pid, b1.pid);
    });
  } finally {
    await pool.closeall();
  }
});

Deno.test("PersistentConnectionPool shared: each Worker always gets its own one connection", async () => {
  const pool = new PersistentConnectionPool(0, 3, db.url);
  try {
    await withWorkers(2, async ([a, b]) => {
      assert.equal((await a.attach(pool.share())).flavor, "persistent");
      await b.attach(pool.share());
      const a1 = await a.call<{ index: number; pid: number }>("hold");
      const a2 = await a.call<{ index: number; pid: number }>("hold");
      const b1 = await b.call<{ index: number; pid: number }>("hold");
      const mine = await pool.getconn();
      const { rows } = await mine.query<{ pid: number }>("select pg_backend_pid() as pid");
      assert.equal(a1.pid, a2.pid, "same Worker, same connection");
      assert.equal(a1.index, a2.index);
      assert.equal(new Set([a1.pid, b1.pid, rows[0].pid]).size, 3, "one connection per isolate");
      const q = await a.call<{ rows: { pid: number }[] }>("query", { text: "select pg_backend_pid() as pid" });
      assert.equal(q.rows[0].pid, a1.pid, "query() runs on the Worker's own connection");
      await a.call("release", { index: a1.index });
      await pool.putconn();
    });
  } finally {
    await pool.closeall();
  }
});

Deno.test({
  name: "drop the test database",
  fn: () => db.drop(),
});
