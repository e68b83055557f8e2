/**
 * Drizzle on a tidepool pool: `drizzle({ client: toPgPool(pool) })`. The
 * facade's class name ends in `Pool`, so Drizzle gives each transaction a
 * connection of its own, and tidepool rolls back whatever a failed one left.
 *
 * ```sh
 * DATABASE_URL=postgres://... deno run -A examples/drizzle.ts
 * ```
 *
 * @module
 */
import { asc, eq, sql } from "drizzle-orm";
import { drizzle } from "drizzle-orm/node-postgres";
import { integer, pgTable, serial, text } from "drizzle-orm/pg-core";
// In your app: import { ConnectionPool, toPgPool } from "@tidepool/pg";
import { ConnectionPool, toPgPool } from "../mod.ts";

const accounts = pgTable("drizzle_accounts", {
  id: serial().primaryKey(),
  owner: text().notNull(),
  balance: integer().notNull(),
});

const pool = new ConnectionPool({ conninfo: Deno.env.get("DATABASE_URL"), name: "drizzle", minSize: 1, maxSize: 4 });
const db = drizzle({ client: toPgPool(pool) });

try {
  // Fail at startup, in seconds, with the reason (wrong port, password, database) as the cause.
  await pool.open({ wait: true, timeout: 10_000 });
  await db.execute(sql`drop table if exists drizzle_accounts`);
  await db.execute(sql`create table drizzle_accounts (
    id serial primary key, owner text not null, balance int not null check (balance >= 0))`);
  await db.insert(accounts).values([{ owner: "ann", balance: 100 }, { owner: "bob", balance: 0 }]);

  const transfer = (from: string, to: string, amount: number) =>
    db.transaction(async (tx) => {
      await tx.update(accounts).set({ balance: sql`${accounts.balance} + ${amount}` }).where(eq(accounts.owner, to));
      await tx.update(accounts).set({ balance: sql`${accounts.balance} - ${amount}` }).where(eq(accounts.owner, from));
    });

  await transfer("ann", "bob", 30);
  console.log("committed: ann -> bob 30");
  try {
    await transfer("bob", "ann", 1_000); // violates the check: the whole transaction rolls back
  } catch (error) {
    // Drizzle wraps the driver's error ("Failed query: ...") and keeps it as `cause`.
    const cause = (error as Error).cause ?? error;
    console.log(`rolled back: ${(cause as Error).message}`);
  }

  // A nested transaction is a savepoint: rolling it back keeps the outer work.
  await db.transaction(async (tx) => {
    await tx.update(accounts).set({ balance: 71 }).where(eq(accounts.owner, "ann"));
    try {
      await tx.transaction(async (inner) => {
        await inner.delete(accounts);
        inner.rollback();
      });
    } catch {
      // inner.rollback() throws to unwind the savepoint
    }
  });
  console.log("savepoint rolled back, transaction committed");

  const rows = await db.select({ owner: accounts.owner, balance: accounts.balance }).from(accounts)
    .orderBy(asc(accounts.owner));
  console.log(`balances: ${rows.map((r) => `${r.owner}=${r.balance}`).join(" ")}`);
  await db.execute(sql`drop table drizzle_accounts`);
  const stats = pool.getStats();
  console.log(`pool: ${stats.poolSize} open, ${stats.poolAvailable} idle, ${stats.returnsBad} bad returns`);
} finally {
  await pool.close();
}
