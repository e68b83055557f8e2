/**
 * `PersistentConnectionPool`: psycopg2.pool's one-connection-per-thread pool,
 * per isolate here.
 *
 * @module
 */
import type * as pg from "../drivers/pg_types.ts";
import { PoolError } from "../errors.ts";
import { AbstractConnectionPool, type PoolKey } from "./abstract_pool.ts";
import type { PooledConnection } from "../pool/options.ts";
import type { ShareOptions } from "../workers/owner.ts";

/** The key of the isolate that owns the pool (psycopg2 keys by thread id). */
const THIS_ISOLATE: unique symbol = Symbol("tidepool.this-isolate");

/**
 * psycopg2's `PersistentConnectionPool`: `getconn()` takes no key; each
 * isolate always gets its own one connection until it puts it back (psycopg2
 * keys by thread id; the key here is the isolate). In one isolate, repeated
 * `getconn()` returns the same connection until `putconn()`.
 *
 * @typeParam C The driver's connection type (`pg.Client` by default).
 * @example The same connection until it is put back
 * ```ts
 * import { PersistentConnectionPool } from "@tidepool/pg";
 * const pool = new PersistentConnectionPool(1, 4, Deno.env.get("DATABASE_URL")!);
 * const a = await pool.getconn();
 * console.log(a === await pool.getconn()); // true
 * await pool.putconn(); // puts back this isolate's connection
 * await pool.closeall();
 * ```
 */
export class PersistentConnectionPool<C extends object = pg.Client> extends AbstractConnectionPool<C> {
  /**
   * Returns this isolate's connection, binding one if it holds none.
   *
   * @returns The driver's connection, also `AsyncDisposable`.
   * @throws {PoolExhaustedError} `maxconn` isolates hold a connection.
   * @throws {PoolClosedError} After `closeall()`.
   * @example
   * ```ts
   * import { PersistentConnectionPool } from "@tidepool/pg";
   * const pool = new PersistentConnectionPool(0, 4, Deno.env.get("DATABASE_URL")!);
   * const conn = await pool.getconn();
   * await pool.putconn(conn);
   * await pool.closeall();
   * ```
   */
  getconn(): Promise<PooledConnection<C>> {
    return this.getconnFor(THIS_ISOLATE) as Promise<PooledConnection<C>>;
  }

  /**
   * Puts back this isolate's connection: kept idle only while fewer than
   * `minconn` are idle, else closed; an open transaction is rolled back.
   *
   * @param conn The connection; omit (or pass `undefined`) for the one this isolate holds.
   * @param close Close it instead of keeping it.
   * @returns Resolves when the connection is idle or closed.
   * @throws {PoolError} This isolate holds no connection, or `conn` is not the one it holds.
   * @throws {PoolClosedError} After `closeall()`.
   * @example
   * ```ts
   * import { PersistentConnectionPool } from "@tidepool/pg";
   * const pool = new PersistentConnectionPool(1, 4, Deno.env.get("DATABASE_URL")!);
   * await pool.getconn();
   * await pool.putconn(undefined, true); // close this isolate's connection
   * await pool.closeall();
   * ```
   */
  putconn(conn?: C, close: boolean = false): Promise<void> {
    return this.putconnFor(THIS_ISOLATE, conn, close);
  }

  /**
   * Closes every connection, in use or not. Later calls throw `PoolClosedError`.
   *
   * @returns Resolves when every socket is closed.
   * @throws {PoolClosedError} Already closed.
   * @example
   * ```ts
   * import { PersistentConnectionPool } from "@tidepool/pg";
   * const pool = new PersistentConnectionPool(1, 4, Deno.env.get("DATABASE_URL")!);
   * await pool.closeall();
   * ```
   */
  closeall(): Promise<void> {
    return this._closeall();
  }

  /**
   * A port through which a Worker borrows this pool's connections: pass it to
   * `attachPool(port)` inside the Worker (transfer it). One port per Worker;
   * `maxconn` caps every isolate together, and each attached Worker gets its own one connection.
   *
   * @param options `heartbeatTimeout` (ms, default 5000) and the `worker`, for a faster reclaim on its `error` event.
   * @returns The port to transfer to the Worker.
   * @throws {PoolClosedError} After `closeall()`.
   * @example
   * ```ts
   * import { PersistentConnectionPool } from "@tidepool/pg";
   * const pool = new PersistentConnectionPool(1, 8, Deno.env.get("DATABASE_URL")!);
   * const worker = new Worker(new URL("./job.ts", import.meta.url), { type: "module" });
   * const port = pool.share({ worker });
   * worker.postMessage({ pool: port }, [port]); // the Worker calls attachPool(e.data.pool)
   * ```
   */
  share(options?: ShareOptions): MessagePort {
    return this._share("persistent", options);
  }

  /** A Worker's key binds it to its own connection, as `getconn()` does for this isolate. */
  protected override getconnForShare(key: PoolKey | undefined): Promise<C> {
    return this.getconnFor(key!);
  }

  /** A Worker's `putconn()` returns the connection bound to its key. */
  protected override putconnForShare(key: PoolKey | undefined, conn: C | undefined, close: boolean): Promise<void> {
    return this.putconnFor(key!, conn, close);
  }

  /**
   * `getconn()` for a given isolate key. The owner of a pool shared with
   * Workers calls it with one key per Worker, so each Worker gets its own
   * connection; `getconn()` uses the key of the isolate that owns the pool.
   *
   * @param isolateKey The isolate asking.
   * @returns That isolate's connection.
   */
  protected getconnFor(isolateKey: PoolKey): Promise<C> {
    return this._getconn(isolateKey);
  }

  /**
   * `putconn()` for a given isolate key (see `getconnFor`).
   *
   * @param isolateKey The isolate returning.
   * @param conn Its connection, or `undefined` for the one bound to the key.
   * @param close Close it instead of keeping it.
   * @returns Resolves when the connection is idle or closed.
   */
  protected putconnFor(isolateKey: PoolKey, conn: C | undefined, close: boolean): Promise<void> {
    if (conn === undefined && !this.closed) {
      conn = this._used.get(isolateKey);
      if (conn === undefined) {
        return Promise.reject(
          new PoolError(`Cannot return connection: this isolate holds none in pool '${this.name}'`),
        );
      }
    }
    return this._putconn(conn as C, isolateKey, close);
  }
}
