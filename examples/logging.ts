/**
 * Turning on tidepool's logs with LogTape.
 *
 * ```sh
 * DATABASE_URL=postgres://... deno run -A examples/logging.ts
 * ```
 *
 * tidepool logs through `@logtape/logtape` under the category
 * `["tidepool", <pool name>]` and is silent until the application configures
 * LogTape: a library never prints on its own. Configure the parent category
 * `["tidepool"]` for every pool, or `["tidepool", "orders"]` for one. Levels:
 * `debug` for the pool's life (open, close, connections replaced after
 * `maxLifetime` or `maxIdle`, transaction retries), `warning` for what a
 * borrower or the network did wrong (a connection returned inside a
 * transaction, a lost connection, a failed attempt and its retry delay, a
 * leaked connection with the borrower's stack), `error` when re-filling gives
 * up. Passwords never appear in any of them.
 *
 * @module
 */
import { configure, getConsoleSink, reset } from "@logtape/logtape";
// In your app: import { ConnectionPool } from "@tidepool/pg";
import { ConnectionPool } from "../mod.ts";

await configure({
  sinks: { console: getConsoleSink() },
  loggers: [
    // Everything tidepool says, from debug up. Use "warning" in production.
    { category: ["tidepool"], lowestLevel: "debug", sinks: ["console"] },
    // LogTape's own notices (e.g. about its configuration).
    { category: ["logtape", "meta"], lowestLevel: "warning", sinks: ["console"] },
  ],
});

const pool = new ConnectionPool({
  conninfo: Deno.env.get("DATABASE_URL"),
  name: "logging-demo",
  minSize: 1,
  // Warn when a connection stays borrowed longer than this (0 = off).
  leakDetectionThreshold: 200,
});
await pool.open({ wait: true, timeout: 10_000 }); // debug: "Pool logging-demo opening to postgres://..."

const { rows } = await pool.query("select version() as version");
console.log(String(rows[0].version).split(" ").slice(0, 2).join(" "));

// A borrower that forgets its transaction: the pool rolls it back on return and warns.
const conn = await pool.getconn();
await conn.query("begin");
// Held past leakDetectionThreshold: a warning with the stack of the getconn() call above.
await new Promise((resolve) => setTimeout(resolve, 400));
await pool.putconn(conn);

await pool.close(); // debug: "Pool logging-demo closing"
await reset(); // flush and detach the sinks
