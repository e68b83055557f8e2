import assert from "node:assert/strict";
import { type Generated, Kysely, PostgresDialect, sql } from "kysely";
import { ConnectionPool, toPgPool } from "../../mod.ts";
import { waitFor, withTestDatabase } from "../_db.ts";
import { peakBackends, withAppName } from "../_orm.ts";

interface Database {
  items: { id: Generated<number>; name: string; qty: number };
}

async function withKysely(
  fn: (db: Kysely<Database>, pool: ConnectionPool, appName: string) => Promise<void>,
  maxSize = 2,
): Promise<void> {
  await withTestDatabase(async (tdb) => {
    const appName = `orm_kysely_${crypto.randomUUID().slice(0, 8)}`;
    const pool = new ConnectionPool({ conninfo: withAppName(tdb.url, appName), minSize: 1, maxSize });
    const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool: toPgPool(pool) }) });
    try {
      await sql`create table items (id serial primary key, name text not null, qty int not null)`.execute(db);
      // Start quiet: the first request may have started a second connection that is still opening, which
      // poolSize counts and poolAvailable does not; the tests compare the two.
      await waitFor(() => pool.getStats().poolAvailable === pool.getStats().poolSize);
      await fn(db, pool, appName);
    } finally {
      await db.destroy(); // ends the facade, which closes the pool
    }
    assert.equal(pool.closed, true);
  });
}

const names = async (db: Kysely<Database>) =>
  (await db.selectFrom("items").select("name").orderBy("name").execute()).map((r) => r.name);

Deno.test("Kysely through toPgPool runs parameterised queries", () =>
  withKysely(async (db) => {
    await db.insertInto("items").values([{ name: "apple", qty: 3 }, { name: "pear", qty: 1 }]).execute();
    const rows = await db.selectFrom("items").select(["name", "qty"]).where("qty", ">", 2).execute();
    assert.deepEqual(rows, [{ name: "apple", qty: 3 }]);
    const updated = await db.updateTable("items").set({ qty: 5 }).where("name", "=", "pear").executeTakeFirst();
    assert.equal(updated.numUpdatedRows, 1n);
    // A value that would be SQL if it were spliced in stays a parameter.
    await db.insertInto("items").values({ name: "'); drop table items; --", qty: 0 }).execute();
    assert.equal((await names(db)).length, 3);
  }));

Deno.test("a Kysely transaction commits", () =>
  withKysely(async (db, pool) => {
    await db.transaction().execute(async (trx) => {
      await trx.insertInto("items").values({ name: "a", qty: 1 }).execute();
      await trx.insertInto("items").values({ name: "b", qty: 2 }).execute();
    });
    assert.deepEqual(await names(db), ["a", "b"]);
    assert.equal(pool.getStats().returnsBad, 0);
  }));

Deno.test("a Kysely transaction that throws is rolled back and its connection kept", () =>
  withKysely(async (db, pool) => {
    await assert.rejects(
      db.transaction().execute(async (trx) => {
        await trx.insertInto("items").values({ name: "ghost", qty: 1 }).execute();
        throw new Error("handler failed");
      }),
      /handler failed/,
    );
    assert.deepEqual(await names(db), []);
    const stats = pool.getStats();
    assert.equal(stats.poolAvailable, stats.poolSize, "every connection is back and idle");
    assert.equal(stats.returnsBad, 0);
  }));

Deno.test("a rolled-back Kysely savepoint keeps the outer transaction's work", () =>
  withKysely(async (db) => {
    const trx = await db.startTransaction().execute();
    try {
      await trx.insertInto("items").values({ name: "outer", qty: 1 }).execute();
      const sp = await trx.savepoint("inner").execute();
      await sp.insertInto("items").values({ name: "inner", qty: 2 }).execute();
      await sp.rollbackToSavepoint("inner").execute();
      await trx.commit().execute();
    } catch (error) {
      await trx.rollback().execute();
      throw error;
    }
    assert.deepEqual(await names(db), ["outer"]);
  }));

Deno.test("many concurrent Kysely queries on a small pool never open more than maxSize backends", () =>
  withKysely(async (db, pool, appName) => {
    const { result, peak } = await peakBackends(appName, () =>
      Promise.all(
        Array.from({ length: 200 }, (_, i) =>
          sql<{ n: number }>`select ${i}::int as n, pg_sleep(0.002)`.execute(db).then((r) => r.rows[0].n)),
      ));
    assert.deepEqual(result, Array.from({ length: 200 }, (_, i) => i));
    assert.ok(peak >= 1 && peak <= 3, `saw ${peak} backends with maxSize 3`);
    assert.ok(pool.getStats().poolSize <= 3);
  }, 3));

Deno.test("Kysely's release(true) after a failed rollback discards the connection", () =>
  withKysely(async (db, pool, appName) => {
    const removed: unknown[] = [];
    toPgPool(pool).on("remove", (client) => removed.push(client));
    await assert.rejects(
      db.transaction().execute(async (trx) => {
        await trx.insertInto("items").values({ name: "lost", qty: 1 }).execute();
        // The session dies under the transaction, so Kysely's ROLLBACK fails too.
        await sql`select pg_terminate_backend(pg_backend_pid())`.execute(trx);
      }),
    );
    assert.equal(removed.length, 1, "Kysely released the client with release(true)");
    assert.deepEqual(await names(db), []);
    const { peak } = await peakBackends(appName, () => names(db));
    assert.ok(peak <= 2);
  }));
