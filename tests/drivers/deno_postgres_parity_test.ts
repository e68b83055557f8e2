/**
 * The deno-postgres driver behaves as node-postgres does where a pool user can
 * tell: a serialization failure from the borrower's own `queryObject` is
 * retried, a NOTIFY for a session that ran LISTEN does not break its next
 * borrower, commands without a count report `rowCount` null, and an idle
 * connection the server ended leaves the pool at once.
 */
import assert from "node:assert/strict";
import pg from "pg";
import { ConnectionPool, createDenoPostgresDriver, type DenoPostgresClient } from "../../mod.ts";
import { adminQuery, backendCount, waitFor, withTestDatabase } from "../_db.ts";
import { loadDenoPostgres } from "../_deno_postgres.ts";

const dp = await loadDenoPostgres();
const ignore = typeof dp === "string";
if (typeof dp === "string") console.warn(dp);
const Client = typeof dp === "string" ? undefined! : dp.Client;

type DpClient = DenoPostgresClient & {
  queryObject<T = Record<string, unknown>>(query: string, args?: unknown[]): Promise<{ rows: T[] }>;
};

function test(name: string, fn: () => Promise<void>): void {
  Deno.test({ name, ignore, fn });
}

function dpPool(url: string, minSize: number, maxSize: number) {
  return new ConnectionPool<DpClient>({ driver: createDenoPostgresDriver<DpClient>(Client, url), minSize, maxSize });
}

const pidOf = async (conn: DpClient) =>
  (await conn.queryObject<{ pid: number }>("select pg_backend_pid() as pid")).rows[0].pid;

test("deno-postgres driver: transaction({ retries }) re-runs a serialization failure from the borrower's queryObject", () =>
  withTestDatabase(async (db) => {
    await using pool = dpPool(db.url, 1, 1);
    let attempts = 0;
    const result = await pool.transaction(async (conn) => {
      attempts++;
      if (attempts === 1) {
        await conn.queryObject("do $$ begin raise exception 'conflict' using errcode = '40001'; end $$");
      }
      return (await conn.queryObject<{ x: number }>("select 7 as x")).rows[0].x;
    }, { retries: 2, isolation: "serializable" });
    assert.equal(result, 7);
    assert.equal(attempts, 2);
  }));

test("deno-postgres driver: a NOTIFY for a returned session that ran LISTEN does not break its next borrower", () =>
  withTestDatabase(async (db) => {
    await using pool = dpPool(db.url, 1, 1);
    let pid: number;
    {
      await using conn = await pool.connection();
      await conn.queryObject("listen tidepool_channel");
      pid = await pidOf(conn);
    }
    const notifier = new pg.Client({ connectionString: db.url });
    await notifier.connect();
    try {
      for (let i = 0; i < 3; i++) await notifier.query(`notify tidepool_channel, 'n${i}'`);
      // The notifications reach the idle session's socket before the next borrower's statement.
      await notifier.query("select pg_sleep(0.05)");
    } finally {
      await notifier.end();
    }
    for (let i = 0; i < 3; i++) {
      await using conn = await pool.connection();
      assert.deepEqual((await conn.queryObject<{ x: number }>("select $1::int as x", [i])).rows, [{ x: i }]);
      assert.equal(await pidOf(conn), pid, "the same session, still usable");
    }
    assert.deepEqual((await pool.query("select 1 as x")).rows, [{ x: 1 }]);
  }));

test("deno-postgres driver: rowCount is null for a command without a count, as with node-postgres", () =>
  withTestDatabase(async (db) => {
    await using pool = dpPool(db.url, 1, 1);
    for (const sql of ["create table t (x int)", "set search_path = public", "begin", "commit"]) {
      const { rowCount } = await pool.query(sql);
      assert.equal(rowCount, null, `${sql}: rowCount ${rowCount}`);
    }
    assert.equal((await pool.query("insert into t values (1), (2)")).rowCount, 2);
    assert.equal((await pool.query("select * from t")).rowCount, 2);
  }));

test("deno-postgres driver: an idle connection the server ended leaves the pool at once, not at its next statement", () =>
  withTestDatabase(async (db) => {
    await using pool = dpPool(db.url, 0, 2);
    const a = await pool.getconn();
    const b = await pool.getconn();
    const killed = await pidOf(a);
    await pool.putconn(a);
    await pool.putconn(b);
    assert.equal(pool.getStats().poolSize, 2);
    await adminQuery("select pg_terminate_backend($1)", [killed]);
    const started = performance.now();
    await waitFor(() => pool.getStats().poolSize === 1, { timeout: 2_000, interval: 5 });
    const noticed = performance.now() - started;
    assert.equal(await backendCount(db.name), 1, "the pool's size matches the server's");
    assert.equal(pool.getStats().connectionsLost, 1);
    assert.ok(noticed < 1_000, `noticed after ${noticed.toFixed(0)} ms`);
  }));
