/**
 * Kysely on a tidepool pool: `toPgPool(pool)` is the `pg.Pool` that Kysely's
 * `PostgresDialect` expects, so every query, transaction and savepoint runs on
 * a connection lent by tidepool (its timeouts, rollback of dirty returns and
 * stats hold).
 *
 * ```sh
 * DATABASE_URL=postgres://... deno run -A examples/kysely.ts
 * ```
 *
 * @module
 */
import { type Generated, Kysely, PostgresDialect, sql } from "kysely";
// In your app: import { ConnectionPool, toPgPool } from "@tidepool/pg";
import { ConnectionPool, toPgPool } from "../mod.ts";

interface Database {
  kysely_accounts: { id: Generated<number>; owner: string; balance: number };
}

const pool = new ConnectionPool({ conninfo: Deno.env.get("DATABASE_URL"), name: "kysely", minSize: 1, maxSize: 4 });
const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool: toPgPool(pool) }) });

try {
  // Fail at startup, in seconds, with the reason (wrong port, password, database) as the cause.
  await pool.open({ wait: true, timeout: 10_000 });
  await sql`drop table if exists kysely_accounts`.execute(db);
  await sql`create table kysely_accounts (
    id serial primary key, owner text not null, balance int not null check (balance >= 0))`.execute(db);
  await db.insertInto("kysely_accounts").values([{ owner: "ann", balance: 100 }, { owner: "bob", balance: 0 }])
    .execute();

  const transfer = (from: string, to: string, amount: number) =>
    db.transaction().execute(async (trx) => {
      await trx.updateTable("kysely_accounts").set((eb) => ({ balance: eb("balance", "+", amount) }))
        .where("owner", "=", to).execute();
      await trx.updateTable("kysely_accounts").set((eb) => ({ balance: eb("balance", "-", amount) }))
        .where("owner", "=", from).execute();
    });

  await transfer("ann", "bob", 30);
  console.log("committed: ann -> bob 30");
  try {
    await transfer("bob", "ann", 1_000); // violates the check: the whole transaction rolls back
  } catch (error) {
    console.log(`rolled back: ${(error as Error).message}`);
  }

  // A savepoint rolled back inside a transaction that commits.
  const trx = await db.startTransaction().execute();
  try {
    await trx.updateTable("kysely_accounts").set({ balance: 71 }).where("owner", "=", "ann").execute();
    const sp = await trx.savepoint("oops").execute();
    await sp.deleteFrom("kysely_accounts").execute();
    await sp.rollbackToSavepoint("oops").execute();
    await trx.commit().execute();
  } catch (error) {
    await trx.rollback().execute();
    throw error;
  }
  console.log("savepoint rolled back, transaction committed");

  const rows = await db.selectFrom("kysely_accounts").select(["owner", "balance"]).orderBy("owner").execute();
  console.log(`balances: ${rows.map((r) => `${r.owner}=${r.balance}`).join(" ")}`);
  await sql`drop table kysely_accounts`.execute(db);
  const stats = pool.getStats();
  console.log(`pool: ${stats.poolSize} open, ${stats.poolAvailable} idle, ${stats.returnsBad} bad returns`);
} finally {
  await db.destroy(); // ends the pg.Pool facade, which closes the tidepool pool
}
