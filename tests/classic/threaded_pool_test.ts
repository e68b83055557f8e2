import assert from "node:assert/strict";
import type pg from "pg";
import { PoolClosedError, PoolError, PoolExhaustedError, ThreadedConnectionPool } from "../../mod.ts";
import { backendCount, waitFor, withTestDatabase } from "../_db.ts";

Deno.test("ThreadedConnectionPool validates its arguments like SimpleConnectionPool", () => {
  assert.throws(() => new ThreadedConnectionPool(-1, 2, "postgres://u@h/db"), {
    name: "RangeError",
    message: /'minconn'/,
  });
  assert.throws(() => new ThreadedConnectionPool(2, 1, "postgres://u@h/db"), {
    name: "RangeError",
    message: /'maxconn'/,
  });
  const pool = new ThreadedConnectionPool(1, 3, "postgres://u@h/db");
  assert.deepEqual([pool.minconn, pool.maxconn, pool.closed], [1, 3, false]);
});

Deno.test("ThreadedConnectionPool: keyed getconn, exhaustion at maxconn without waiting, minconn kept on return", () =>
  withTestDatabase(async (db) => {
    const pool = new ThreadedConnectionPool(1, 2, db.url);
    try {
      const a = await pool.getconn("a");
      assert.equal(await pool.getconn("a"), a);
      const b = await pool.getconn("b");
      const started = performance.now();
      await assert.rejects(pool.getconn("c"), (e) => e instanceof PoolExhaustedError && e instanceof PoolError);
      assert.ok(performance.now() - started < 50);
      await assert.rejects(pool.putconn(a, "b"), PoolError);
      await pool.putconn(a, "a");
      await pool.putconn(b, "b");
      await waitFor(async () => (await backendCount(db.name)) === 1, { message: "only minconn kept" });
    } finally {
      await pool.closeall();
    }
    await assert.rejects(pool.getconn(), PoolClosedError);
  }));

Deno.test("ThreadedConnectionPool serves many concurrent tasks within maxconn", () =>
  withTestDatabase(async (db) => {
    const pool = new ThreadedConnectionPool(2, 4, db.url);
    try {
      await pool.open();
      let peak = 0;
      // Each task retries on PoolExhaustedError (psycopg2 code does the same: the pool never waits).
      const task = async (i: number): Promise<number> => {
        for (;;) {
          let conn: pg.Client;
          try {
            conn = await pool.getconn();
          } catch (e) {
            if (!(e instanceof PoolExhaustedError)) throw e;
            await new Promise((resolve) => setTimeout(resolve, 5));
            continue;
          }
          try {
            peak = Math.max(peak, pool.toJSON().used);
            const { rows } = await conn.query("select $1::int as i", [i]);
            return rows[0].i;
          } finally {
            await pool.putconn(conn);
          }
        }
      };
      const results = await Promise.all(Array.from({ length: 20 }, (_, i) => task(i)));
      assert.deepEqual(results, Array.from({ length: 20 }, (_, i) => i));
      assert.ok(peak <= 4, `peak ${peak}`);
      await waitFor(async () => (await backendCount(db.name)) === 2, { message: "back to minconn" });
    } finally {
      await pool.closeall();
    }
  }));
