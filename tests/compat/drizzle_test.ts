import assert from "node:assert/strict";
import { asc, eq, gt, sql } from "drizzle-orm";
import { drizzle, type NodePgDatabase } from "drizzle-orm/node-postgres";
import { integer, pgTable, serial, text } from "drizzle-orm/pg-core";
import { ConnectionPool, toPgPool } from "../../mod.ts";
import { waitFor, withTestDatabase } from "../_db.ts";
import { backendPid } from "../_pool_helpers.ts";
import { peakBackends, withAppName } from "../_orm.ts";

const items = pgTable("items", {
  id: serial().primaryKey(),
  name: text().notNull(),
  qty: integer().notNull(),
});

async function withDrizzle(
  fn: (db: NodePgDatabase, pool: ConnectionPool, appName: string) => Promise<void>,
  maxSize = 2,
): Promise<void> {
  await withTestDatabase(async (tdb) => {
    const appName = `orm_drizzle_${crypto.randomUUID().slice(0, 8)}`;
    const pool = new ConnectionPool({ conninfo: withAppName(tdb.url, appName), minSize: 1, maxSize });
    const db = drizzle({ client: toPgPool(pool) });
    try {
      await db.execute(sql`create table items (id serial primary key, name text not null, qty int not null)`);
      // Start quiet: the first request may have started a second connection that is still opening, which
      // poolSize counts and poolAvailable does not; the tests compare the two.
      await waitFor(() => pool.getStats().poolAvailable === pool.getStats().poolSize);
      await fn(db, pool, appName);
    } finally {
      await pool.close();
    }
  });
}

const names = async (db: NodePgDatabase) =>
  (await db.select({ name: items.name }).from(items).orderBy(asc(items.name))).map((r) => r.name);

Deno.test("Drizzle through toPgPool runs parameterised queries", () =>
  withDrizzle(async (db) => {
    await db.insert(items).values([{ name: "apple", qty: 3 }, { name: "pear", qty: 1 }]);
    assert.deepEqual(await db.select({ name: items.name, qty: items.qty }).from(items).where(gt(items.qty, 2)), [
      { name: "apple", qty: 3 },
    ]);
    const updated = await db.update(items).set({ qty: 5 }).where(eq(items.name, "pear")).returning({ qty: items.qty });
    assert.deepEqual(updated, [{ qty: 5 }]);
    // A prepared statement with a placeholder (Drizzle passes a query config with rowMode "array").
    const byName = db.select({ qty: items.qty }).from(items).where(eq(items.name, sql.placeholder("name"))).prepare(
      "items_by_name",
    );
    assert.deepEqual(await byName.execute({ name: "apple" }), [{ qty: 3 }]);
    await db.insert(items).values({ name: "'); drop table items; --", qty: 0 });
    assert.equal((await names(db)).length, 3);
  }));

Deno.test("a Drizzle transaction commits on its own connection", () =>
  withDrizzle(async (db, pool) => {
    await db.transaction(async (tx) => {
      await tx.insert(items).values({ name: "a", qty: 1 });
      await tx.insert(items).values({ name: "b", qty: 2 });
      // Drizzle gave the transaction a connection of its own: the pool lent one.
      assert.equal(pool.getStats().poolAvailable, pool.getStats().poolSize - 1);
    });
    assert.deepEqual(await names(db), ["a", "b"]);
  }));

Deno.test("a Drizzle transaction that throws is rolled back and its connection kept", () =>
  withDrizzle(async (db, pool) => {
    await assert.rejects(
      db.transaction(async (tx) => {
        await tx.insert(items).values({ name: "ghost", qty: 1 });
        throw new Error("handler failed");
      }),
      /handler failed/,
    );
    assert.deepEqual(await names(db), []);
    const stats = pool.getStats();
    assert.equal(stats.poolAvailable, stats.poolSize);
    assert.equal(stats.returnsBad, 0);
  }));

Deno.test("a rolled-back nested Drizzle transaction (savepoint) keeps the outer one's work", () =>
  withDrizzle(async (db) => {
    await db.transaction(async (tx) => {
      await tx.insert(items).values({ name: "outer", qty: 1 });
      await assert.rejects(
        tx.transaction(async (inner) => {
          await inner.insert(items).values({ name: "inner", qty: 2 });
          inner.rollback();
        }),
      );
    });
    assert.deepEqual(await names(db), ["outer"]);
  }));

Deno.test("many concurrent Drizzle queries and transactions on a small pool never open more than maxSize backends", () =>
  withDrizzle(async (db, pool, appName) => {
    const { result, peak } = await peakBackends(appName, () =>
      Promise.all(
        Array.from({ length: 200 }, (_, i) =>
          i % 10 === 0
            ? db.transaction(async (tx) => {
              await tx.insert(items).values({ name: `t${i}`, qty: i });
              return i;
            })
            : db.execute<{ n: number }>(sql`select ${i}::int as n, pg_sleep(0.002)`).then((r) => r.rows[0].n)),
      ));
    assert.deepEqual(result, Array.from({ length: 200 }, (_, i) => i));
    assert.ok(peak >= 1 && peak <= 3, `saw ${peak} backends with maxSize 3`);
    assert.equal((await names(db)).length, 20);
    assert.ok(pool.getStats().poolSize <= 3);
  }, 3));

Deno.test("Drizzle: a connection killed in a transaction is discarded; release(err) on the facade discards too", () =>
  withDrizzle(async (db, pool) => {
    await assert.rejects(
      db.transaction(async (tx) => {
        await tx.insert(items).values({ name: "lost", qty: 1 });
        await tx.execute(sql`select pg_terminate_backend(pg_backend_pid())`);
      }),
    );
    // Drizzle's ROLLBACK failed and it released the client plainly: the pool saw it broken.
    await waitFor(() => pool.getStats().returnsBad === 1, { message: "the broken connection was not discarded" });
    assert.deepEqual(await names(db), []);
    const pgPool = toPgPool(pool);
    const client = await pgPool.connect();
    const pid = await backendPid(client);
    client.release(new Error("discard me"));
    const next = await pgPool.connect();
    assert.notEqual(await backendPid(next), pid);
    next.release();
  }));
