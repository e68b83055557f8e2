/**
 * Run by `tests/query/unawaited_query_test.ts` in a child `deno run` (an
 * unhandled rejection would end the test runner): statements a borrower does
 * not await inside `transaction()` / `withConnection()`, with the pg driver and
 * deno-postgres, and then waits until the pool has closed those connections.
 * Prints one JSON line of what each call rejected with; dying instead shows
 * as a non-zero exit code and no JSON line.
 *
 * @module
 */
import { ConnectionPool, createDenoPostgresDriver, type DenoPostgresClient } from "../../mod.ts";
import { loadDenoPostgres } from "../_deno_postgres.ts";

const url = Deno.args[0];
const results: Record<string, string> = {};

type Conn = { query?(text: string): Promise<unknown>; queryObject?(text: string): Promise<unknown> };
const run = (conn: Conn, text: string) => conn.query ? conn.query(text) : conn.queryObject!(text);

async function scenarios(label: string, pool: ConnectionPool<Conn & object>): Promise<void> {
  const calls: Record<string, () => Promise<unknown>> = {
    "transaction, nothing awaited": () =>
      pool.transaction((conn) => {
        void run(conn, "select pg_sleep(0.2)");
      }),
    "transaction, the last statements not awaited": () =>
      pool.transaction(async (conn) => {
        await run(conn, "select 1");
        void run(conn, "select pg_sleep(0.2)");
        void run(conn, "select 2");
      }),
    "withConnection, not awaited": () =>
      pool.withConnection((conn) => {
        void run(conn, "select pg_sleep(0.2)");
      }),
  };
  for (const [name, call] of Object.entries(calls)) {
    try {
      await call();
      results[`${label}: ${name}`] = "resolved";
    } catch (error) {
      results[`${label}: ${name}`] = `${(error as Error).name}: ${(error as Error).message}`;
    }
  }
  // The discarded connections are closed (their statements failed) before the pool is idle again.
  const deadline = performance.now() + 5_000;
  while (pool.getStats().returnsBad < 3 || pool.getStats().poolSize > pool.getStats().poolAvailable) {
    if (performance.now() > deadline) throw new Error(`${label}: the pool did not settle`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  await pool.close();
}

await scenarios("pg", new ConnectionPool<Conn & object>({ conninfo: url, minSize: 0, maxSize: 1 }) as never);
const dp = await loadDenoPostgres();
if (typeof dp !== "string") {
  const driver = createDenoPostgresDriver<DenoPostgresClient>(dp.Client, url);
  await scenarios("deno-postgres", new ConnectionPool({ driver, minSize: 0, maxSize: 1 }) as never);
}
// Past the statements' own end: a rejection of theirs would have surfaced by now.
await new Promise((resolve) => setTimeout(resolve, 300));
console.log(JSON.stringify(results));
