/**
 * `SimpleConnectionPool`: psycopg2.pool's pool for code that does not share it.
 *
 * @module
 */
import type * as pg from "../drivers/pg_types.ts";
import { AbstractConnectionPool, type PoolKey } from "./abstract_pool.ts";
import type { PooledConnection } from "../pool/options.ts";
import type { ShareOptions } from "../workers/owner.ts";

/**
 * psycopg2's `SimpleConnectionPool`: `getconn(key?)`, `putconn(conn, key?,
 * close?)` and `closeall()` over the key-based core. It never waits: with
 * `maxconn` connections in use, `getconn()` throws `PoolExhaustedError`. A
 * returned connection stays open only while fewer than `minconn` are idle.
 *
 * JS runs one isolate's code on one thread, so this pool is as safe for
 * concurrent async tasks as psycopg2's `ThreadedConnectionPool` is for
 * threads; use `ThreadedConnectionPool` for the class meant to be shared with
 * Workers.
 *
 * @typeParam C The driver's connection type (`pg.Client` by default).
 * @example The psycopg2 tutorial flow
 * ```ts
 * import { SimpleConnectionPool } from "@tidepool/pg";
 * const pool = new SimpleConnectionPool(1, 20, Deno.env.get("DATABASE_URL")!);
 * const conn = await pool.getconn();
 * const { rows } = await conn.query("select 1 as x");
 * await pool.putconn(conn);
 * await pool.closeall();
 * ```
 */
export class SimpleConnectionPool<C extends object = pg.Client> extends AbstractConnectionPool<C> {
  /**
   * Returns the connection bound to `key`, or binds one (an idle one first,
   * else a new one while fewer than `maxconn` exist). Opens the pool first if
   * `open()` was not called.
   *
   * @param key Binds the connection to this key; the same key gets the same connection until `putconn`.
   * @returns The driver's connection, also `AsyncDisposable`.
   * @throws {PoolExhaustedError} `maxconn` connections are in use ("connection pool exhausted"), at once.
   * @throws {PoolClosedError} After `closeall()`.
   * @example
   * ```ts
   * import { SimpleConnectionPool } from "@tidepool/pg";
   * const pool = new SimpleConnectionPool(0, 2, Deno.env.get("DATABASE_URL")!);
   * const a = await pool.getconn("job-1");
   * console.log(a === await pool.getconn("job-1")); // true
   * await pool.putconn(a, "job-1");
   * await pool.closeall();
   * ```
   */
  getconn(key?: PoolKey | null): Promise<PooledConnection<C>> {
    return this._getconn(key) as Promise<PooledConnection<C>>;
  }

  /**
   * Returns a connection: kept idle only while fewer than `minconn` are idle,
   * else closed. An open or failed transaction is rolled back first; a
   * closed or broken connection is discarded.
   *
   * @param conn A connection from `getconn()`.
   * @param key The key it was taken with; omit to look it up.
   * @param close Close it instead of keeping it.
   * @returns Resolves when the connection is idle or closed.
   * @throws {PoolError} Not from this pool, not in use (returned twice), or bound to another key.
   * @throws {PoolClosedError} After `closeall()`.
   * @example
   * ```ts
   * import { SimpleConnectionPool } from "@tidepool/pg";
   * const pool = new SimpleConnectionPool(1, 5, Deno.env.get("DATABASE_URL")!);
   * const conn = await pool.getconn();
   * await pool.putconn(conn, undefined, true); // close it instead of keeping it
   * await pool.closeall();
   * ```
   */
  putconn(conn: C, key?: PoolKey | null, close: boolean = false): Promise<void> {
    return this._putconn(conn, key, close);
  }

  /**
   * Closes every connection, in use or not. Later calls on the pool throw
   * `PoolClosedError`.
   *
   * @returns Resolves when every socket is closed.
   * @throws {PoolClosedError} Already closed.
   * @example
   * ```ts
   * import { SimpleConnectionPool } from "@tidepool/pg";
   * const pool = new SimpleConnectionPool(1, 5, Deno.env.get("DATABASE_URL")!);
   * await pool.open();
   * await pool.closeall();
   * console.log(pool.closed); // true
   * ```
   */
  closeall(): Promise<void> {
    return this._closeall();
  }

  /**
   * A port through which a Worker borrows this pool's connections: pass it to
   * `attachPool(port)` inside the Worker (transfer it). One port per Worker;
   * `maxconn` caps every isolate together; a Worker's `getconn()` throws `PoolExhaustedError` when it is reached.
   *
   * @param options `heartbeatTimeout` (ms, default 5000) and the `worker`, for a faster reclaim on its `error` event.
   * @returns The port to transfer to the Worker.
   * @throws {PoolClosedError} After `closeall()`.
   * @example
   * ```ts
   * import { SimpleConnectionPool } from "@tidepool/pg";
   * const pool = new SimpleConnectionPool(1, 8, Deno.env.get("DATABASE_URL")!);
   * const worker = new Worker(new URL("./job.ts", import.meta.url), { type: "module" });
   * const port = pool.share({ worker });
   * worker.postMessage({ pool: port }, [port]); // the Worker calls attachPool(e.data.pool)
   * ```
   */
  share(options?: ShareOptions): MessagePort {
    return this._share("classic", options);
  }
}
