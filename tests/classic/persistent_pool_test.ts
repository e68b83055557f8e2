import assert from "node:assert/strict";
import type pg from "pg";
import { PersistentConnectionPool, PoolClosedError, PoolError, SimpleConnectionPool } from "../../mod.ts";
import { adminQuery, backendCount, waitFor, withTestDatabase } from "../_db.ts";

async function backendPid(conn: pg.Client): Promise<number> {
  const { rows } = await conn.query("select pg_backend_pid() as pid");
  return rows[0].pid;
}

Deno.test("PersistentConnectionPool.getconn() returns the same connection until putconn()", () =>
  withTestDatabase(async (db) => {
    const pool = new PersistentConnectionPool(0, 4, db.url);
    try {
      const a = await pool.getconn();
      assert.equal(await pool.getconn(), a);
      const [b, c] = await Promise.all([pool.getconn(), pool.getconn()]);
      assert.equal(b, a);
      assert.equal(c, a);
      assert.equal(await backendCount(db.name), 1, "one isolate holds one connection");
      const pid = await backendPid(a);
      await pool.putconn(a);
      // minconn 0: returned and closed, so the next getconn binds a new one.
      await waitFor(async () =>
        (await adminQuery("select 1 from pg_stat_activity where pid = $1", [pid])).length === 0
      );
      const d = await pool.getconn();
      assert.notEqual(d, a);
      assert.equal(await pool.getconn(), d);
      await pool.putconn(); // no argument: this isolate's connection
      await assert.rejects(pool.putconn(), (e) => e instanceof PoolError && /holds none/.test(e.message));
    } finally {
      await pool.closeall();
    }
  }));

Deno.test("PersistentConnectionPool.putconn() rolls back, keeps minconn idle, and closes on request", () =>
  withTestDatabase(async (db) => {
    const pool = new PersistentConnectionPool(1, 2, db.url);
    try {
      const conn = await pool.getconn();
      await conn.query("begin");
      await conn.query("create table t (x int)");
      await pool.putconn(conn);
      assert.equal(conn.getTransactionStatus(), "I");
      const again = await pool.getconn();
      assert.equal(again, conn, "the kept idle connection is lent again");
      await assert.rejects(again.query("select * from t"), /does not exist/);
      await pool.putconn(again, true);
      await assert.rejects(again.query("select 1"));
      assert.equal(await backendCount(db.name), 0);
    } finally {
      await pool.closeall();
    }
  }));

Deno.test("PersistentConnectionPool.putconn() of a connection this isolate does not hold rejects with PoolError", () =>
  withTestDatabase(async (db) => {
    const pool = new PersistentConnectionPool(0, 2, db.url);
    const other = new SimpleConnectionPool(0, 1, db.url);
    try {
      const mine = await pool.getconn();
      const foreign = await other.getconn();
      await assert.rejects(pool.putconn(foreign), PoolError);
      await other.putconn(foreign);
      await pool.putconn(mine);
      await assert.rejects(pool.putconn(mine), PoolError);
    } finally {
      await other.closeall();
      await pool.closeall();
    }
    await assert.rejects(pool.getconn(), PoolClosedError);
    await assert.rejects(pool.putconn(), PoolClosedError);
  }));
