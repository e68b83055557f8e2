import assert from "node:assert/strict";
import { type Kysely, PostgresDialect, sql } from "kysely";
import { type ConnectionPool, toPgPool } from "../../mod.ts";
import { peakBackends } from "../_orm.ts";
import {
  itemNames,
  type ItemsDatabase,
  runsParameterizedQueries,
  sharedKyselyTests,
  withKyselyOver,
} from "../_kysely_cases.ts";

type Database = ItemsDatabase;

const withKysely = (fn: (db: Kysely<Database>, pool: ConnectionPool, appName: string) => Promise<void>, maxSize = 2) =>
  // db.destroy() ends the facade, which closes the pool.
  withKyselyOver("orm_kysely", (pool) => new PostgresDialect({ pool: toPgPool(pool) }), fn, maxSize);

const names = itemNames;

Deno.test("Kysely through toPgPool runs parameterised queries", () => withKysely((db) => runsParameterizedQueries(db)));

Deno.test("a Kysely transaction commits", () =>
  withKysely(async (db, pool) => {
    await db.transaction().execute(async (trx) => {
      await trx.insertInto("items").values({ name: "a", qty: 1 }).execute();
      await trx.insertInto("items").values({ name: "b", qty: 2 }).execute();
    });
    assert.deepEqual(await names(db), ["a", "b"]);
    assert.equal(pool.getStats().returnsBad, 0);
  }));

sharedKyselyTests("", withKysely);

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
