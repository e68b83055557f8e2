/**
 * Transactions across the Worker channel: a lease stays on one server
 * session until it is put back, so BEGIN/COMMIT/ROLLBACK in a Worker act on
 * the owner's connection as they would locally.
 */
import assert from "node:assert/strict";
import pg from "pg";
import { ConnectionPool } from "../../mod.ts";
import { createTestDatabase } from "../_db.ts";
import { startWorker } from "../_shared_helpers.ts";

const db = await createTestDatabase();
{
  const setup = new pg.Client({ connectionString: db.url });
  await setup.connect();
  await setup.query("create table t (v int)");
  await setup.end();
}

async function values(pool: ConnectionPool): Promise<number[]> {
  const { rows } = await pool.query<{ v: number }>("select v from t order by v");
  return rows.map((r) => r.v);
}

Deno.test("transaction() in a Worker commits on success and rolls back on throw", async () => {
  await using pool = new ConnectionPool({ conninfo: db.url, minSize: 1, maxSize: 2 });
  const w = startWorker();
  try {
    await w.attach(pool.share());
    await pool.query("delete from t");
    assert.equal(await w.call("transaction", { value: 1 }), "T", "status inside the transaction is 'T'");
    assert.equal(await w.call("transaction", { value: 2, fail: true }), "rolled back");
    assert.deepEqual(await values(pool), [1]);
  } finally {
    w.terminate();
  }
});

Deno.test("withConnection() in a Worker commits a transaction left open, rolls back on throw", async () => {
  await using pool = new ConnectionPool({ conninfo: db.url, minSize: 1, maxSize: 2 });
  const w = startWorker();
  try {
    await w.attach(pool.share());
    await pool.query("delete from t");
    assert.equal(await w.call("withConnection", { value: 10 }), "T");
    assert.equal(await w.call("withConnection", { value: 11, fail: true }), "rolled back");
    assert.deepEqual(await values(pool), [10]);
  } finally {
    w.terminate();
  }
});

Deno.test("a Worker's lease stays on one session: BEGIN, insert, ROLLBACK by hand leaves nothing, status follows", async () => {
  await using pool = new ConnectionPool({ conninfo: db.url, minSize: 2, maxSize: 2 });
  const w = startWorker();
  try {
    await w.attach(pool.share());
    await pool.query("delete from t");
    const { index, pid, status } = await w.call<{ index: number; pid: number; status: string }>("hold");
    assert.equal(status, "I");
    const q = (text: string, params?: unknown[]) =>
      w.call<{ rows: Record<string, unknown>[]; status: string }>("connQuery", { index, text, params });
    assert.equal((await q("begin")).status, "T");
    await q("insert into t(v) values ($1)", [5]);
    assert.equal((await q("select pg_backend_pid() as pid")).rows[0].pid, pid, "same session all along");
    assert.deepEqual(await values(pool), [], "uncommitted row invisible from the owner's other connection");
    assert.deepEqual((await q("select v from t")).rows, [{ v: 5 }], "visible inside the Worker's transaction");
    assert.equal((await q("rollback")).status, "I");
    assert.deepEqual(await values(pool), []);
    await w.call("release", { index });
  } finally {
    w.terminate();
  }
});

Deno.test("a Worker putting back a connection inside a transaction: the owner rolls it back", async () => {
  await using pool = new ConnectionPool({ conninfo: db.url, minSize: 1, maxSize: 1 });
  const w = startWorker();
  try {
    await w.attach(pool.share());
    await pool.query("delete from t");
    const { index } = await w.call<{ index: number }>("hold");
    await w.call("connQuery", { index, text: "begin" });
    await w.call("connQuery", { index, text: "insert into t(v) values (7)" });
    await w.call("release", { index });
    // Only one connection: this runs on the one the Worker returned, so it must be idle.
    assert.deepEqual(await values(pool), []);
  } finally {
    w.terminate();
  }
});

Deno.test({ name: "drop the test database", fn: () => db.drop() });
