/**
 * withConnection(), query() and transaction(): commit, rollback, isolation,
 * read-only, and retries on serialization failures.
 */
import assert from "node:assert/strict";
import { ConnectionPool, PoolError } from "../../mod.ts";
import { withTestDatabase } from "../_db.ts";

const RAISE_40001 = "DO $$ BEGIN RAISE EXCEPTION 'conflict' USING ERRCODE = '40001'; END $$";

async function count(pool: ConnectionPool): Promise<number> {
  const { rows } = await pool.query<{ n: number }>("select count(*)::int as n from t");
  return rows[0].n;
}

Deno.test("withConnection() commits a transaction left open when fn succeeds", () =>
  withTestDatabase(async (db) => {
    await using pool = new ConnectionPool({ conninfo: db.url, minSize: 1 });
    await pool.query("create table t (x int)");
    const result = await pool.withConnection(async (conn) => {
      await conn.query("begin");
      await conn.query("insert into t values (1)");
      return "done";
    });
    assert.equal(result, "done");
    assert.equal(await count(pool), 1);
    assert.equal(pool.getStats().poolAvailable, 1);
  }));

Deno.test("withConnection() rolls back and rethrows when fn throws", () =>
  withTestDatabase(async (db) => {
    await using pool = new ConnectionPool({ conninfo: db.url, minSize: 1 });
    await pool.query("create table t (x int)");
    const boom = new Error("boom");
    await assert.rejects(
      pool.withConnection(async (conn) => {
        await conn.query("begin");
        await conn.query("insert into t values (1)");
        throw boom;
      }),
      (e) => e === boom,
    );
    assert.equal(await count(pool), 0);
    assert.equal(pool.getStats().returnsBad, 0);
    assert.equal(pool.getStats().poolAvailable, 1);
  }));

Deno.test("withConnection() rejects with PoolError when fn swallowed an error inside a transaction", () =>
  withTestDatabase(async (db) => {
    await using pool = new ConnectionPool({ conninfo: db.url, minSize: 1 });
    await pool.query("create table t (x int)");
    await assert.rejects(
      pool.withConnection(async (conn) => {
        await conn.query("begin");
        await conn.query("insert into t values (1)");
        await conn.query("select 1/0").catch(() => {});
      }),
      PoolError,
    );
    assert.equal(await count(pool), 0);
  }));

Deno.test("query() checks out, runs the statement with parameters, and returns the connection", () =>
  withTestDatabase(async (db) => {
    await using pool = new ConnectionPool({ conninfo: db.url, minSize: 1 });
    const { rows, rowCount, fields } = await pool.query<{ x: number }>("select $1::int as x", [41]);
    assert.deepEqual(rows, [{ x: 41 }]);
    assert.equal(rowCount, 1);
    assert.equal(fields[0].name, "x");
    assert.equal(pool.getStats().poolAvailable, 1);
    await assert.rejects(pool.query("select * from missing"), /does not exist/);
    assert.equal(pool.getStats().poolAvailable, 1, "returned after an error too");
  }));

Deno.test("transaction() wraps fn in BEGIN ... COMMIT", () =>
  withTestDatabase(async (db) => {
    await using pool = new ConnectionPool({ conninfo: db.url, minSize: 1 });
    await pool.query("create table t (x int)");
    const status = await pool.transaction(async (conn) => {
      await conn.query("insert into t values (1)");
      return conn.getTransactionStatus();
    });
    assert.equal(status, "T", "fn runs inside a transaction block");
    assert.equal(await count(pool), 1);
  }));

Deno.test("transaction() rolls back when fn throws", () =>
  withTestDatabase(async (db) => {
    await using pool = new ConnectionPool({ conninfo: db.url, minSize: 1 });
    await pool.query("create table t (x int)");
    await assert.rejects(
      pool.transaction(async (conn) => {
        await conn.query("insert into t values (1)");
        throw new Error("nope");
      }),
      /nope/,
    );
    assert.equal(await count(pool), 0);
    assert.equal(pool.getStats().poolAvailable, 1);
  }));

Deno.test("transaction() applies isolation and readOnly", () =>
  withTestDatabase(async (db) => {
    await using pool = new ConnectionPool({ conninfo: db.url, minSize: 1 });
    const settings = await pool.transaction(async (conn) => {
      const { rows } = await conn.query<{ iso: string; ro: string }>(
        "select current_setting('transaction_isolation') as iso, current_setting('transaction_read_only') as ro",
      );
      return rows[0];
    }, { isolation: "serializable", readOnly: true });
    assert.deepEqual(settings, { iso: "serializable", ro: "on" });
    const defaults = await pool.transaction(async (conn) => {
      const { rows } = await conn.query<{ iso: string; ro: string }>(
        "select current_setting('transaction_isolation') as iso, current_setting('transaction_read_only') as ro",
      );
      return rows[0];
    }, { isolation: "repeatable read" });
    assert.deepEqual(defaults, { iso: "repeatable read", ro: "off" });
    await assert.rejects(pool.transaction(() => {}, { isolation: "snapshot" as never }), TypeError);
  }));

Deno.test("transaction() re-runs fn on SQLSTATE 40001 up to `retries` times", () =>
  withTestDatabase(async (db) => {
    await using pool = new ConnectionPool({ conninfo: db.url, minSize: 1 });
    await pool.query("create table t (x int)");
    let runs = 0;
    const result = await pool.transaction(async (conn) => {
      runs++;
      await conn.query("insert into t values ($1)", [runs]);
      if (runs <= 2) await conn.query(RAISE_40001);
      return runs;
    }, { retries: 3 });
    assert.equal(result, 3);
    assert.equal(runs, 3);
    const { rows } = await pool.query<{ x: number }>("select x from t");
    assert.deepEqual(rows, [{ x: 3 }], "failed attempts were rolled back");
  }));

Deno.test("transaction() gives up after `retries` re-runs and rethrows the serialization failure", () =>
  withTestDatabase(async (db) => {
    await using pool = new ConnectionPool({ conninfo: db.url, minSize: 1 });
    let runs = 0;
    await assert.rejects(
      pool.transaction(async (conn) => {
        runs++;
        await conn.query(RAISE_40001);
      }, { retries: 2 }),
      (e: { code?: string }) => e.code === "40001",
    );
    assert.equal(runs, 3);
    runs = 0;
    await assert.rejects(pool.transaction(async (conn) => {
      runs++;
      await conn.query(RAISE_40001);
    }));
    assert.equal(runs, 1, "no retries by default");
  }));

Deno.test("transaction() retries a real serialization failure between two serializable transactions", () =>
  withTestDatabase(async (db) => {
    await using pool = new ConnectionPool({ conninfo: db.url, minSize: 2 });
    await pool.query("create table t (k text primary key, v int)");
    await pool.query("insert into t values ('a', 0), ('b', 0)");
    // Write skew: each reads both rows and writes the one the other read.
    const bothRead = Promise.withResolvers<void>();
    let reads = 0;
    let runs = 0;
    const skew = (key: string) =>
      pool.transaction(async (conn) => {
        runs++;
        await conn.query("select sum(v) from t");
        if (++reads === 2) bothRead.resolve();
        await bothRead.promise;
        await conn.query("update t set v = v + 1 where k = $1", [key]);
      }, { isolation: "serializable", retries: 3 });
    await Promise.all([skew("a"), skew("b")]);
    assert.ok(runs >= 3, `one side was re-run after a 40001 (runs: ${runs})`);
    const { rows } = await pool.query<{ k: string; v: number }>("select k, v from t order by k");
    assert.deepEqual(rows, [{ k: "a", v: 1 }, { k: "b", v: 1 }]);
  }));
