/**
 * `NullConnectionPool`: the pool API without keeping connections.
 *
 * @module
 */
import type * as pg from "../drivers/pg_types.ts";
import { ConnectionPool } from "./connection_pool.ts";
import type { ConnectionPoolOptions } from "./options.ts";

/**
 * psycopg_pool's `NullConnectionPool`: the same API as {@linkcode ConnectionPool},
 * but no idle connections: each request opens a connection and each return
 * closes it (or hands it straight to a waiter). `maxSize` still bounds the open
 * connections and queues requests beyond it; it is unbounded by default.
 * Useful where the server side already pools (PgBouncer) or in tests.
 * `pool.query()` is not pipelined here unless `pipeline` is set above 1.
 *
 * @example
 * ```ts
 * import { NullConnectionPool } from "@tidepool/pg";
 * const pool = new NullConnectionPool({ conninfo: Deno.env.get("DATABASE_URL"), maxSize: 5 });
 * await pool.query("select 1");
 * await pool.close();
 * ```
 */
export class NullConnectionPool<C extends object = pg.Client> extends ConnectionPool<C> {
  /**
   * Creates a pool that keeps no idle connections. Does no I/O.
   *
   * @param options As for `ConnectionPool`; `minSize` must be 0 (its default here).
   * @throws {RangeError} `minSize` is not 0, or another option is out of range.
   * @throws {TypeError} An option has the wrong type or an unknown name.
   */
  constructor(options: ConnectionPoolOptions<C>) {
    if (options?.minSize !== undefined && options.minSize !== 0) {
      throw new RangeError(
        `Invalid option 'minSize': NullConnectionPool keeps no connections, got ${options.minSize}`,
      );
    }
    super(options, { keepIdle: false, growPerWaiter: true }, {
      minSize: 0,
      maxSize: Infinity,
      // One statement per connection, like every other request here: pipelining would keep connections
      // open and shared, which is what a caller choosing this pool does not want. `pipeline` turns it on.
      pipeline: 1,
    });
  }
}
