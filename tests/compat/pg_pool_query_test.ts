/**
 * The facade's `query()` (what Drizzle calls outside transactions) runs
 * through `pool.query()`, so it is pipelined like any `pool.query()`, with
 * pg's `rowMode` and `types` kept.
 */
import assert from "node:assert/strict";
import type pg from "pg";
import { ConnectionPool, toPgPool } from "../../mod.ts";
import { adminQuery, withTestDatabase } from "../_db.ts";

/** Counts calls of `pool.query()`, the route the facade must take. */
function countPoolQueries(pool: ConnectionPool): { readonly calls: number } {
  const counter = { calls: 0 };
  const original = pool.query.bind(pool);
  pool.query = ((...args: Parameters<typeof original>) => {
    counter.calls++;
    return original(...args);
  }) as typeof pool.query;
  return counter;
}

Deno.test("toPgPool query() runs through pool.query(), with rowMode and types, and pipelines on one connection", () =>
  withTestDatabase(async (db) => {
    const pool = new ConnectionPool({ conninfo: db.url, minSize: 1, maxSize: 1, pipeline: 16 });
    const pgPool = toPgPool(pool);
    const counter = countPoolQueries(pool);
    try {
      await pool.open({ wait: true });
      // Duplicate column names survive only in array mode; the per-query parser sees every text value.
      const arrays = await pgPool.query({
        text: "select $1::int as a, 'x'::text as a",
        values: [1],
        rowMode: "array",
        types: { getTypeParser: () => (v: string) => `<${v}>` },
      } as pg.QueryArrayConfig);
      assert.deepEqual(arrays.rows, [["<1>", "<x>"]]);
      assert.deepEqual(arrays.fields.map((f) => f.name), ["a", "a"]);
      const objects = await pgPool.query<{ n: number }>("select $1::int as n", [2]);
      assert.deepEqual(objects.rows, [{ n: 2 }]);
      assert.equal(counter.calls, 2);
      // 32 concurrent calls on one connection: each its own rows, and the server saw them in one session at once.
      const pids = await Promise.all(
        Array.from(
          { length: 32 },
          (_, i) =>
            pgPool.query(
              {
                text: "select $1::int as i, pg_backend_pid() as pid",
                values: [i],
                rowMode: "array",
              } as pg.QueryArrayConfig,
            ),
        ),
      );
      assert.deepEqual(pids.map((r) => r.rows[0][0]), Array.from({ length: 32 }, (_, i) => i));
      assert.equal(new Set(pids.map((r) => r.rows[0][1])).size, 1);
      assert.equal(counter.calls, 34);
      const [{ n }] = await adminQuery<{ n: number }>(
        "select count(*)::int as n from pg_stat_activity where datname = $1 and backend_type = 'client backend'",
        [db.name],
      );
      assert.equal(n, 1, "one server session served them all");
      // A prepared statement's name needs a client of its own: it still runs, not through pool.query().
      const named = await pgPool.query({ name: "facade_named", text: "select $1::int as n", values: [3] });
      assert.deepEqual(named.rows, [{ n: 3 }]);
      assert.equal(counter.calls, 34);
    } finally {
      await pgPool.end();
    }
  }));
