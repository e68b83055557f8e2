/**
 * Kysely over `TidepoolDialect` (`@tidepool/pg/kysely`) against the real
 * server: parameters, commit, rollback, savepoints, streaming, session state
 * in `db.connection()`, and 30 concurrent transactions on a pool of 3.
 */
import assert from "node:assert/strict";
import * as kysely from "kysely";
import { type Kysely, sql } from "kysely";
import { ConnectionPool } from "../../mod.ts";
import { TidepoolDialect } from "../../src/compat/kysely.ts";
import { peakBackends } from "../_orm.ts";
import {
  itemNames,
  type ItemsDatabase,
  runsParameterizedQueries,
  sharedKyselyTests,
  withKyselyOver,
} from "../_kysely_cases.ts";

const withKysely = (
  fn: (db: Kysely<ItemsDatabase>, pool: ConnectionPool, appName: string) => Promise<void>,
  maxSize = 2,
) => withKyselyOver("kysely_dialect", (pool) => new TidepoolDialect({ pool }), fn, maxSize);

Deno.test("TidepoolDialect: bad options are TypeErrors naming them", () => {
  const pool = new ConnectionPool({ conninfo: "postgres://localhost/x" });
  assert.throws(() => new TidepoolDialect({ pool: undefined as never, kysely }), {
    name: "TypeError",
    message: /'pool'/,
  });
  assert.throws(() => new TidepoolDialect({ pool, kysely: {} as never }), { name: "TypeError", message: /'kysely'/ });
  assert.throws(() => new TidepoolDialect({ pool: { query() {} } as never }), { name: "TypeError", message: /'pool'/ });
  assert.throws(() => new TidepoolDialect({ pool, bogus: 1 } as never), { name: "TypeError", message: /'bogus'/ });
});

Deno.test("TidepoolDialect({ pool, kysely }) compiles with the application's own Kysely classes", () =>
  withKyselyOver("kysely_dialect_own", (pool) => new TidepoolDialect({ pool, kysely }), async (db) => {
    await runsParameterizedQueries(db);
  }));

Deno.test("Kysely over TidepoolDialect runs parameterized queries through pool.query (prepared)", () =>
  withKysely(async (db, pool) => {
    // Counts the statements that go through pool.query() rather than a borrowed connection.
    let viaQuery = 0;
    const query = pool.query.bind(pool);
    pool.query = ((...args: Parameters<typeof query>) => (viaQuery++, query(...args))) as typeof pool.query;
    await runsParameterizedQueries(db);
    assert.equal(viaQuery, 7, "every statement went through pool.query()");
    // The statement cache prepared the repeated select.
    const prepared = await pool.withConnection((c) =>
      c.query<{ statement: string }>("select statement from pg_prepared_statements where not from_sql")
    );
    assert.ok(prepared.rows.some((r: { statement: string }) => r.statement.includes(`"qty" > $1`)));
  }));

Deno.test("a Kysely transaction over TidepoolDialect commits on one connection", () =>
  withKysely(async (db, pool) => {
    const pids = await db.transaction().execute(async (trx) => {
      await trx.insertInto("items").values({ name: "a", qty: 1 }).execute();
      const one = await sql<{ pid: number }>`select pg_backend_pid() as pid`.execute(trx);
      await trx.insertInto("items").values({ name: "b", qty: 2 }).execute();
      const two = await sql<{ pid: number }>`select pg_backend_pid() as pid`.execute(trx);
      return [one.rows[0].pid, two.rows[0].pid];
    });
    assert.equal(pids[0], pids[1]);
    assert.deepEqual(await itemNames(db), ["a", "b"]);
    assert.equal(pool.getStats().returnsBad, 0);
  }));

sharedKyselyTests(" over TidepoolDialect", withKysely);

Deno.test("30 concurrent Kysely transactions over TidepoolDialect on maxSize 3 all commit, never more than 3 backends", () =>
  withKysely(async (db, pool, appName) => {
    const { result, peak } = await peakBackends(
      appName,
      () =>
        Promise.all(Array.from({ length: 30 }, (_, i) =>
          db.transaction().execute(async (trx) => {
            await trx.insertInto("items").values({ name: `t${i}`, qty: i }).execute();
            const row = await trx.selectFrom("items").select("qty").where("name", "=", `t${i}`)
              .executeTakeFirstOrThrow();
            return row.qty;
          }))),
    );
    assert.deepEqual(result, Array.from({ length: 30 }, (_, i) => i));
    assert.ok(peak >= 1 && peak <= 3, `saw ${peak} backends with maxSize 3`);
    const [{ n }] = await db.selectFrom("items").select((eb) => eb.fn.countAll<string>().as("n")).execute();
    assert.equal(Number(n), 30);
    assert.equal(pool.getStats().returnsBad, 0);
  }, 3));

Deno.test("30 concurrent Kysely queries over TidepoolDialect on maxSize 3 get their own rows", () =>
  withKysely(async (db, _pool, appName) => {
    const { result, peak } = await peakBackends(appName, () =>
      Promise.all(
        Array.from({ length: 30 }, (_, i) =>
          sql<{ n: number }>`select ${i}::int as n`.execute(db).then((r) => r.rows[0].n)),
      ));
    assert.deepEqual(result, Array.from({ length: 30 }, (_, i) => i));
    assert.ok(peak <= 3, `saw ${peak} backends with maxSize 3`);
  }, 3));

Deno.test("Kysely stream() over TidepoolDialect yields every row in chunks, in a transaction or not", () =>
  withKysely(async (db, pool) => {
    await db.insertInto("items").values(Array.from({ length: 25 }, (_, i) => ({ name: `s${i}`, qty: i }))).execute();
    const seen: number[] = [];
    for await (const row of db.selectFrom("items").select("qty").where("qty", ">=", 0).orderBy("qty").stream(7)) {
      seen.push(row.qty);
    }
    assert.deepEqual(seen, Array.from({ length: 25 }, (_, i) => i));
    const inTx = await db.transaction().execute(async (trx) => {
      const out: number[] = [];
      for await (const row of trx.selectFrom("items").select("qty").where("qty", "<", 5).orderBy("qty").stream(2)) {
        out.push(row.qty);
      }
      return out;
    });
    assert.deepEqual(inTx, [0, 1, 2, 3, 4]);
    const stats = pool.getStats();
    assert.equal(stats.poolAvailable, stats.poolSize);
  }));

Deno.test("Kysely stream() inside db.connection() after a statement that pinned the session still streams", () =>
  withKysely(async (db) => {
    await db.insertInto("items").values(Array.from({ length: 9 }, (_, i) => ({ name: `p${i}`, qty: i }))).execute();
    const seen = await db.connection().execute(async (conn) => {
      await sql`set application_name = 'stream_pinned'`.execute(conn); // pins the session, no transaction open
      const out: number[] = [];
      for await (const row of conn.selectFrom("items").select("qty").orderBy("qty").stream(4)) out.push(row.qty);
      // Still the same session afterwards, and no transaction left open.
      const a = (await sql<{ a: string }>`select current_setting('application_name') as a`.execute(conn)).rows[0].a;
      assert.equal(a, "stream_pinned");
      return out;
    });
    assert.deepEqual(seen, Array.from({ length: 9 }, (_, i) => i));
  }));

Deno.test("db.connection() over TidepoolDialect keeps one session after a statement that leaves session state", () =>
  withKysely(async (db) => {
    const got = await db.connection().execute(async (conn) => {
      await sql`set application_name = 'pinned_here'`.execute(conn);
      return (await sql<{ a: string }>`select current_setting('application_name') as a`.execute(conn)).rows[0].a;
    });
    assert.equal(got, "pinned_here");
  }));
