/**
 * The deadline of `transaction()` / `withConnection()` covers the COMMIT: a
 * COMMIT still running at the deadline (a deferred trigger here) is
 * cancelled, the call rejects around the deadline, and nothing commits.
 * Against the real server.
 */
import assert from "node:assert/strict";
import { ConnectionLostError, ConnectionPool, PoolError, PoolTimeoutError } from "../../mod.ts";
import { proxyToServer } from "../_faults.ts";
import { adminQuery, waitFor, withTestDatabase } from "../_db.ts";

const SLOW_COMMIT = [
  "create table t (x int)",
  `create function slow_commit() returns trigger language plpgsql as $$
     begin perform pg_sleep(4); return null; end $$`,
  `create constraint trigger slow_commit after insert on t deferrable initially deferred
     for each row execute function slow_commit()`,
];

async function nothingRunning(dbName: string): Promise<void> {
  await waitFor(async () => {
    const [row] = await adminQuery<{ n: number }>(
      "select count(*)::int as n from pg_stat_activity where datname = $1 and state = 'active' and query ilike 'commit%'",
      [dbName],
    );
    return row.n === 0;
  }, { timeout: 2_000, message: "the COMMIT still runs on the server" });
}

Deno.test("transaction({ timeout }) whose COMMIT runs past the deadline rejects around it and commits nothing", () =>
  withTestDatabase(async (db) => {
    await using pool = new ConnectionPool({ conninfo: db.url, minSize: 1, maxSize: 1 });
    for (const sql of SLOW_COMMIT) await pool.query(sql);
    const started = performance.now();
    await assert.rejects(
      pool.transaction(async (conn) => {
        await conn.query("insert into t values (1)");
      }, { timeout: 500 }),
      PoolTimeoutError,
    );
    const took = performance.now() - started;
    assert.ok(took >= 450 && took < 1_500, `rejected after ${Math.round(took)} ms`);
    await nothingRunning(db.name);
    assert.deepEqual((await pool.query("select count(*)::int as n from t")).rows, [{ n: 0 }]);
    // The connection was kept (the cancel succeeded) and works.
    assert.equal(pool.getStats().poolSize, 1);
    assert.deepEqual((await pool.query("select 1 as n")).rows, [{ n: 1 }]);
  }));

Deno.test("withConnection({ signal }) whose helper COMMIT runs past the abort rejects around it and commits nothing", () =>
  withTestDatabase(async (db) => {
    await using pool = new ConnectionPool({ conninfo: db.url, minSize: 1, maxSize: 1 });
    for (const sql of SLOW_COMMIT) await pool.query(sql);
    const signal = AbortSignal.timeout(500);
    const started = performance.now();
    await assert.rejects(
      pool.withConnection(async (conn) => {
        await conn.query("begin");
        await conn.query("insert into t values (1)"); // left open: the helper commits it
      }, { signal }),
    );
    const took = performance.now() - started;
    assert.ok(took >= 450 && took < 1_500, `rejected after ${Math.round(took)} ms`);
    await nothingRunning(db.name);
    assert.deepEqual((await pool.query("select count(*)::int as n from t")).rows, [{ n: 0 }]);
  }));

Deno.test("transaction({ timeout }) whose COMMIT finishes before the deadline commits and resolves", () =>
  withTestDatabase(async (db) => {
    await using pool = new ConnectionPool({ conninfo: db.url, minSize: 1, maxSize: 1 });
    await pool.query("create table t (x int)");
    const value = await pool.transaction(async (conn) => {
      await conn.query("insert into t values (1)");
      return "done";
    }, { timeout: 5_000 });
    assert.equal(value, "done");
    assert.deepEqual((await pool.query("select count(*)::int as n from t")).rows, [{ n: 1 }]);
  }));

Deno.test("transaction({ timeout }) whose COMMIT gets no answer and cannot be cancelled rejects saying the outcome is unknown", () =>
  withTestDatabase(async (db) => {
    await using proxy = await proxyToServer();
    await using pool = new ConnectionPool({ conninfo: proxy.url(db.url), minSize: 1, maxSize: 1, connectTimeout: 400 });
    await pool.query("create table t (x int)");
    const started = performance.now();
    await assert.rejects(
      pool.transaction(async (conn) => {
        await conn.query("insert into t values (1)");
        proxy.blackhole(); // the COMMIT and its cancel go out and nothing comes back
      }, { timeout: 300 }),
      (e: unknown) => e instanceof PoolError && /whether the transaction committed is unknown/.test(e.message),
    );
    const took = performance.now() - started;
    assert.ok(took < 2_500, `rejected after ${Math.round(took)} ms`);
    await proxy.start();
    assert.deepEqual((await pool.query("select 1 as n")).rows, [{ n: 1 }]);
  }));

Deno.test("a COMMIT whose session the server ends mid-way rejects with ConnectionLostError: whether it committed is unknown", () =>
  withTestDatabase(async (db) => {
    await using pool = new ConnectionPool({ conninfo: db.url, minSize: 1, maxSize: 1 });
    for (const sql of SLOW_COMMIT) await pool.query(sql);
    const killer = (async () => {
      await waitFor(async () => {
        const rows = await adminQuery<{ pid: number }>(
          "select pid from pg_stat_activity where datname = $1 and state = 'active' and query ilike 'commit%'",
          [db.name],
        );
        if (rows.length === 0) return false;
        await adminQuery("select pg_terminate_backend($1)", [rows[0].pid]);
        return true;
      }, { timeout: 3_000, message: "the COMMIT never ran" });
    })();
    const error = await pool.transaction(async (conn) => {
      await conn.query("insert into t values (1)");
    }).then(() => undefined, (e: unknown) => e);
    await killer;
    assert.ok(error instanceof ConnectionLostError, `expected ConnectionLostError, got ${error}`);
    assert.match(error.message, /whether the transaction committed is unknown/);
    assert.ok(error.cause !== undefined, "the driver's error is the cause");
  }));
