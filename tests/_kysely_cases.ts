/**
 * Kysely test cases shared by the two ways to run Kysely on tidepool
 * (`PostgresDialect` over `toPgPool`, and `TidepoolDialect`): the same
 * table, the same setup and the same checks, written once.
 *
 * @module
 */
import assert from "node:assert/strict";
import { type Dialect, type Generated, Kysely, sql } from "kysely";
import { ConnectionPool } from "../mod.ts";
import { waitFor, withTestDatabase } from "./_db.ts";
import { withAppName } from "./_orm.ts";

/** The one table the cases use. */
export interface ItemsDatabase {
  items: { id: Generated<number>; name: string; qty: number };
}

/**
 * Runs `fn` with Kysely over `dialect(pool)` on a fresh database with an empty `items` table; `db.destroy()` must
 * close the pool.
 *
 * @example
 * ```ts
 * await withKyselyOver("k", (pool) => new PostgresDialect({ pool: toPgPool(pool) }), async (db) => {});
 * ```
 */
export async function withKyselyOver(
  prefix: string,
  dialect: (pool: ConnectionPool) => Dialect,
  fn: (db: Kysely<ItemsDatabase>, pool: ConnectionPool, appName: string) => Promise<void>,
  maxSize = 2,
): Promise<void> {
  await withTestDatabase(async (tdb) => {
    const appName = `${prefix}_${crypto.randomUUID().slice(0, 8)}`;
    const pool = new ConnectionPool({ conninfo: withAppName(tdb.url, appName), minSize: 1, maxSize });
    const db = new Kysely<ItemsDatabase>({ dialect: dialect(pool) });
    try {
      await sql`create table items (id serial primary key, name text not null, qty int not null)`.execute(db);
      // Start quiet: the first request may have started a second connection that is still opening, which
      // poolSize counts and poolAvailable does not; the tests compare the two.
      await waitFor(() => pool.getStats().poolAvailable === pool.getStats().poolSize);
      await fn(db, pool, appName);
    } finally {
      await db.destroy();
    }
    assert.equal(pool.closed, true);
  });
}

/** The names in `items`, sorted. @example `await itemNames(db)` */
export const itemNames = async (db: Kysely<ItemsDatabase>): Promise<string[]> =>
  (await db.selectFrom("items").select("name").orderBy("name").execute()).map((r) => r.name);

/** Inserts, selects with a parameter, updates; a value that would be SQL if spliced in stays a parameter. @example `await runsParameterizedQueries(db)` */
export async function runsParameterizedQueries(db: Kysely<ItemsDatabase>): Promise<void> {
  await db.insertInto("items").values([{ name: "apple", qty: 3 }, { name: "pear", qty: 1 }]).execute();
  for (let i = 0; i < 3; i++) {
    const rows = await db.selectFrom("items").select(["name", "qty"]).where("qty", ">", 2).execute();
    assert.deepEqual(rows, [{ name: "apple", qty: 3 }]);
  }
  const updated = await db.updateTable("items").set({ qty: 5 }).where("name", "=", "pear").executeTakeFirst();
  assert.equal(updated.numUpdatedRows, 1n);
  await db.insertInto("items").values({ name: "'); drop table items; --", qty: 0 }).execute();
  assert.equal((await itemNames(db)).length, 3);
}

/** A transaction whose callback throws is rolled back and every connection is back, idle and kept. @example `await rollsBackAndKeepsConnection(db, pool)` */
export async function rollsBackAndKeepsConnection(db: Kysely<ItemsDatabase>, pool: ConnectionPool): Promise<void> {
  await assert.rejects(
    db.transaction().execute(async (trx) => {
      await trx.insertInto("items").values({ name: "ghost", qty: 1 }).execute();
      throw new Error("handler failed");
    }),
    /handler failed/,
  );
  assert.deepEqual(await itemNames(db), []);
  const stats = pool.getStats();
  assert.equal(stats.poolAvailable, stats.poolSize, "every connection is back and idle");
  assert.equal(stats.returnsBad, 0);
}

/** A savepoint rolled back keeps the outer work; one released keeps its own. @example `await savepointsKeepOuterWork(db)` */
export async function savepointsKeepOuterWork(db: Kysely<ItemsDatabase>): Promise<void> {
  const trx = await db.startTransaction().execute();
  try {
    await trx.insertInto("items").values({ name: "outer", qty: 1 }).execute();
    const sp = await trx.savepoint("inner").execute();
    await sp.insertInto("items").values({ name: "inner", qty: 2 }).execute();
    await sp.rollbackToSavepoint("inner").execute();
    const kept = await trx.savepoint("kept").execute();
    await kept.insertInto("items").values({ name: "kept", qty: 3 }).execute();
    await kept.releaseSavepoint("kept").execute();
    await trx.commit().execute();
  } catch (error) {
    await trx.rollback().execute();
    throw error;
  }
  assert.deepEqual(await itemNames(db), ["kept", "outer"]);
}

/**
 * Registers the cases both dialects share, named with `over` (" over TidepoolDialect", or "" for the original names).
 *
 * @example
 * ```ts
 * sharedKyselyTests("", withKysely);
 * ```
 */
export function sharedKyselyTests(
  over: string,
  withKysely: (fn: (db: Kysely<ItemsDatabase>, pool: ConnectionPool) => Promise<void>) => Promise<void>,
): void {
  Deno.test(`a Kysely transaction${over} that throws is rolled back and its connection kept`, () =>
    withKysely((db, pool) => rollsBackAndKeepsConnection(db, pool)));
  Deno.test(`a rolled-back Kysely savepoint${over} keeps the outer transaction's work`, () =>
    withKysely((db) => savepointsKeepOuterWork(db)));
}
