/**
 * Kysely's `PostgresDialect` over `toPgPool`: what it needs beyond queries,
 * namely one client object per connection (its per-connection hooks) and
 * `db.destroy()` closing the pool.
 */
import assert from "node:assert/strict";
import { Kysely, PostgresDialect, sql } from "kysely";
import { ConnectionPool, toPgPool } from "../../mod.ts";
import { backendCount, waitFor, withTestDatabase } from "../_db.ts";

for (const maxSize of [1, 2]) {
  Deno.test(`Kysely's onCreateConnection runs once per connection through toPgPool (maxSize ${maxSize})`, () =>
    withTestDatabase(async (tdb) => {
      const pool = new ConnectionPool({ conninfo: tdb.url, minSize: 0, maxSize, timeout: 5_000 });
      let created = 0;
      const db = new Kysely<Record<string, never>>({
        dialect: new PostgresDialect({
          pool: toPgPool(pool),
          // A session-scoped setup: a second run on the same connection fails ("relation already exists").
          onCreateConnection: async (connection) => {
            created++;
            await connection.executeQuery(sql`create temp table session_marks (n int)`.compile(db));
          },
        }),
      });
      try {
        // Sequential and concurrent queries: each runs on a connection whose hook already ran, or runs it once.
        for (let i = 0; i < 5; i++) {
          await sql`insert into session_marks values (${i})`.execute(db);
        }
        await Promise.all(
          Array.from({ length: 10 }, (_, i) => sql`insert into session_marks values (${i})`.execute(db)),
        );
        const opened = pool.getStats().connectionsNum;
        assert.ok(opened >= 1 && opened <= maxSize, `opened ${opened}`);
        assert.equal(created, opened, "the hook ran once per server connection, not once per lease");
        const { rows } = await sql<{ n: number }>`select count(*)::int as n from session_marks`.execute(db);
        assert.ok(rows[0].n >= 1);
        // No lease was left behind: every connection is back and idle.
        await waitFor(() => pool.getStats().poolAvailable === pool.getStats().poolSize);
      } finally {
        await db.destroy();
      }
      assert.equal(pool.closed, true);
    }));
}

// Kysely (0.29) calls its driver's destroy() only once the driver was initialised by a first query, so a
// Kysely that never ran one cannot end the facade: whoever made the tidepool pool closes it. The documented
// pattern (db.destroy(), then pool.close(), or `await using pool`) closes every session whatever ran.
for (const ranQuery of [false, true]) {
  Deno.test(`db.destroy() then pool.close() leaves no session open (${ranQuery ? "after a query" : "no query run"})`, () =>
    withTestDatabase(async (tdb) => {
      const pool = new ConnectionPool({ conninfo: tdb.url, minSize: 3, maxSize: 3 });
      await pool.open({ wait: true });
      const db = new Kysely<Record<string, never>>({ dialect: new PostgresDialect({ pool: toPgPool(pool) }) });
      if (ranQuery) await sql`select 1`.execute(db);
      assert.equal(await backendCount(tdb.name), 3);
      await db.destroy();
      assert.equal(pool.closed, ranQuery, "Kysely ends the pool only once it used it");
      await pool.close();
      await waitFor(async () => (await backendCount(tdb.name)) === 0, { message: "every session closed" });
    }));
}
