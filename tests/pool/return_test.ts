/**
 * The return path: clean connections are kept, dirty ones rolled back, broken
 * ones replaced; reset and configure callbacks.
 */
import assert from "node:assert/strict";
import type pg from "pg";
import { ConnectionPool } from "../../mod.ts";
import { adminQuery, waitFor, withTestDatabase } from "../_db.ts";
import { backendPid, captureLogs, expectBackends } from "../_pool_helpers.ts";

const fastBackoff = { initialDelay: 50, multiplier: 2, jitter: 0 };

async function xactId(conn: pg.Client): Promise<string | null> {
  const { rows } = await conn.query<{ x: string | null }>("select pg_current_xact_id_if_assigned()::text as x");
  return rows[0].x;
}

Deno.test("a connection returned idle is kept: the next checkout gets the same backend", () =>
  withTestDatabase(async (db) => {
    await using pool = new ConnectionPool({ conninfo: db.url, minSize: 1 });
    const conn = await pool.getconn();
    const pid = await backendPid(conn);
    await pool.putconn(conn);
    const again = await pool.getconn();
    assert.equal(await backendPid(again), pid);
    assert.equal(pool.getStats().returnsBad, 0);
    await pool.putconn(again);
  }));

Deno.test("a connection returned inside a transaction is rolled back, kept, and a warning logged", () =>
  withTestDatabase(async (db) => {
    await using logs = await captureLogs();
    await using pool = new ConnectionPool({ conninfo: db.url, minSize: 1 });
    await pool.query("create table t (x int)");
    const conn = await pool.getconn();
    const pid = await backendPid(conn);
    await conn.query("begin");
    await conn.query("insert into t values (1)");
    assert.notEqual(await xactId(conn), null);
    await pool.putconn(conn);
    const again = await pool.getconn();
    assert.equal(await backendPid(again), pid, "kept, not replaced");
    assert.equal(again.getTransactionStatus(), "I");
    assert.equal(await xactId(again), null);
    const { rows } = await again.query("select * from t");
    assert.equal(rows.length, 0, "the insert was rolled back");
    await pool.putconn(again);
    const warnings = logs.records.filter((r) => r.level === "warning").map((r) => r.message.join(""));
    assert.ok(warnings.some((m) => /rolling back/.test(m)), warnings.join("\n"));
  }));

Deno.test("a connection returned in a failed transaction is rolled back and kept", () =>
  withTestDatabase(async (db) => {
    await using pool = new ConnectionPool({ conninfo: db.url, minSize: 1 });
    const conn = await pool.getconn();
    const pid = await backendPid(conn);
    await conn.query("begin");
    await assert.rejects(conn.query("select 1/0"));
    // pg rejects the query on the ErrorResponse; the 'E' status arrives with the ReadyForQuery right after.
    await waitFor(() => conn.getTransactionStatus() === "E", { message: "failed transaction status" });
    await pool.putconn(conn);
    const again = await pool.getconn();
    assert.equal(await backendPid(again), pid);
    assert.equal(again.getTransactionStatus(), "I");
    await again.query("select 1");
    await pool.putconn(again);
  }));

Deno.test("a connection closed by its borrower (conn.end()) is discarded and replaced", () =>
  withTestDatabase(async (db) => {
    await using pool = new ConnectionPool({ conninfo: db.url, minSize: 1 });
    const conn = await pool.getconn();
    const pid = await backendPid(conn);
    await conn.end();
    await pool.putconn(conn);
    assert.equal(pool.getStats().returnsBad, 1);
    const again = await pool.getconn({ timeout: 5_000 });
    assert.notEqual(await backendPid(again), pid);
    assert.notEqual(again, conn);
    await pool.putconn(again);
  }));

Deno.test("a connection whose backend was terminated while borrowed is discarded and replaced", () =>
  withTestDatabase(async (db) => {
    await using pool = new ConnectionPool({ conninfo: db.url, minSize: 1 });
    const conn = await pool.getconn();
    const pid = await backendPid(conn);
    await adminQuery("select pg_terminate_backend($1)", [pid]);
    await assert.rejects(conn.query("select 1"));
    await pool.putconn(conn);
    const again = await pool.getconn({ timeout: 5_000 });
    assert.notEqual(await backendPid(again), pid);
    await pool.putconn(again);
  }));

Deno.test("reset runs on every return (ConnectionPool.discardAll clears session state)", () =>
  withTestDatabase(async (db) => {
    let resets = 0;
    await using pool = new ConnectionPool({
      conninfo: db.url,
      minSize: 1,
      reset: async (conn) => {
        resets++;
        await ConnectionPool.discardAll(conn);
      },
    });
    const conn = await pool.getconn();
    const pid = await backendPid(conn);
    await conn.query("set application_name = 'dirty'");
    await conn.query("create temp table scratch (x int)");
    await pool.putconn(conn);
    assert.equal(resets, 1);
    const again = await pool.getconn();
    assert.equal(await backendPid(again), pid);
    const { rows } = await again.query<{ app: string }>("select current_setting('application_name') as app");
    assert.equal(rows[0].app, "");
    await assert.rejects(again.query("select * from scratch"), /does not exist/);
    await pool.putconn(again);
    assert.equal(resets, 2);
  }));

Deno.test("a connection whose reset throws is discarded and replaced", () =>
  withTestDatabase(async (db) => {
    await using pool = new ConnectionPool({
      conninfo: db.url,
      minSize: 1,
      reset: () => {
        throw new Error("reset refused");
      },
    });
    const conn = await pool.getconn();
    const pid = await backendPid(conn);
    await pool.putconn(conn);
    assert.equal(pool.getStats().returnsBad, 1);
    const again = await pool.getconn({ timeout: 5_000 });
    assert.notEqual(await backendPid(again), pid);
    await pool.putconn(again);
  }));

Deno.test("configure runs on each new connection before its first use", () =>
  withTestDatabase(async (db) => {
    let configured = 0;
    await using pool = new ConnectionPool({
      conninfo: db.url,
      minSize: 3,
      configure: async (conn) => {
        configured++;
        await conn.query("set application_name = 'tp-configured'");
      },
    });
    await pool.open({ wait: true });
    assert.equal(configured, 3);
    const apps = await adminQuery<{ app: string }>(
      "select application_name as app from pg_stat_activity where datname = $1 and backend_type = 'client backend' and pid <> pg_backend_pid()",
      [db.name],
    );
    assert.deepEqual(apps.map((r) => r.app), ["tp-configured", "tp-configured", "tp-configured"]);
    const conn = await pool.getconn();
    const { rows } = await conn.query<{ app: string }>("select current_setting('application_name') as app");
    assert.equal(rows[0].app, "tp-configured");
    await pool.putconn(conn);
  }));

Deno.test("a connection whose configure throws is discarded and the attempt retried with backoff", () =>
  withTestDatabase(async (db) => {
    const calls: number[] = [];
    await using pool = new ConnectionPool({
      conninfo: db.url,
      minSize: 1,
      backoff: fastBackoff,
      configure: async (conn) => {
        calls.push(performance.now());
        await conn.query("select 1");
        if (calls.length <= 2) throw new Error("not yet");
      },
    });
    const conn = await pool.getconn({ timeout: 5_000 });
    assert.equal(calls.length, 3);
    const stats = pool.getStats();
    assert.equal(stats.connectionsErrors, 2);
    assert.equal(stats.connectionsNum, 1);
    // Backoff 50 then 100 ms between the attempts (jitter 0).
    assert.ok(calls[1] - calls[0] >= 45, `first retry after ~50 ms, got ${calls[1] - calls[0]}`);
    assert.ok(calls[2] - calls[1] >= 90, `second retry after ~100 ms, got ${calls[2] - calls[1]}`);
    // Only the one good connection is open on the server.
    await expectBackends(db.name, 1);
    await pool.putconn(conn);
  }));

Deno.test("a connection returned straight from the catch of a query killed by pg_terminate_backend is discarded", () =>
  withTestDatabase(async (db) => {
    await using pool = new ConnectionPool({ conninfo: db.url, minSize: 1 });
    const conn = await pool.getconn();
    const pid = await backendPid(conn);
    // pg rejects the query with the FATAL error before the socket's end
    // event; returning in the same tick must not keep the dying connection.
    const returned = conn.query("select pg_sleep(30)").catch(async (error: { code?: string }) => {
      await pool.putconn(conn);
      return error;
    });
    await waitFor(async () =>
      (await adminQuery<{ n: number }>(
        "select count(*)::int as n from pg_stat_activity where pid = $1 and query like 'select pg_sleep%'",
        [pid],
      ))[0].n === 1
    );
    await adminQuery("select pg_terminate_backend($1)", [pid]);
    const error = (await returned) as { code?: string };
    assert.equal(error.code, "57P01");
    assert.equal(pool.getStats().returnsBad, 1);
    const again = await pool.getconn({ timeout: 5_000 });
    assert.notEqual(again, conn);
    assert.notEqual(await backendPid(again), pid);
    await pool.putconn(again);
  }));
