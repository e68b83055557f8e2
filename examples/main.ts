/**
 * tidepool's main demo: a pool of 5 connections serving 200 concurrent
 * requests, a PoolTimeoutError on purpose, and the pool's stats.
 *
 * ```sh
 * deno task example          # boots an embedded PostgreSQL when DATABASE_URL is unset
 * DATABASE_URL=postgres://... deno run -A examples/main.ts
 * ```
 *
 * @module
 */
import { ConnectionPool, PoolTimeoutError } from "../mod.ts";

const url = Deno.env.get("DATABASE_URL");
if (!url) {
  console.error("DATABASE_URL is not set: run `deno task example` to use an embedded PostgreSQL");
  Deno.exit(1);
}

const pool = new ConnectionPool({ conninfo: url, name: "demo", minSize: 5, maxSize: 5, timeout: 10_000 });

try {
  console.log(`Opening pool '${pool.name}' with ${pool.minSize} connections...`);
  let started = performance.now();
  await pool.open({ wait: true, timeout: 10_000 });
  console.log(`  ready in ${(performance.now() - started).toFixed(0)} ms\n`);

  console.log("Firing 200 concurrent requests through 5 connections...");
  started = performance.now();
  const results = await Promise.all(
    Array.from({ length: 200 }, (_, i) =>
      pool.query<{ doubled: number; pid: number }>(
        "select $1::int * 2 as doubled, pg_backend_pid() as pid",
        [i],
      )),
  );
  const elapsed = performance.now() - started;
  const correct = results.every((r, i) => r.rows[0].doubled === i * 2);
  const backends = new Set(results.map((r) => r.rows[0].pid));
  console.log(
    `  200 answers in ${elapsed.toFixed(0)} ms, all correct: ${correct}, served by ${backends.size} server processes\n`,
  );

  console.log("Holding all 5 connections, then asking for a 6th with a 200 ms timeout...");
  const held = await Promise.all(Array.from({ length: 5 }, () => pool.getconn()));
  try {
    await pool.getconn({ timeout: 200 });
    console.log("  unexpected: got a connection");
  } catch (error) {
    if (!(error instanceof PoolTimeoutError)) throw error;
    console.log(`  ${error.name}: ${error.message}`);
  } finally {
    for (const conn of held) await pool.putconn(conn);
  }

  const answer = await pool.transaction(async (conn) => {
    const { rows } = await conn.query<{ answer: number }>("select 6 * 7 as answer");
    return rows[0].answer;
  });
  console.log(`  ...and the pool carries on: a transaction returned ${answer}\n`);

  console.log("Pool stats:");
  // Durations are fractional ms; whole ms read better in a table.
  const stats = Object.fromEntries(Object.entries(pool.getStats()).map(([k, v]) => [k, Math.round(v)]));
  console.table(stats);
} finally {
  await pool.close();
  console.log(`Pool '${pool.name}' closed.`);
}
