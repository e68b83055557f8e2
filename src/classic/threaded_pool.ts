/**
 * `ThreadedConnectionPool`: psycopg2.pool's pool meant for sharing.
 *
 * @module
 */
import type pg from "pg";
import { AbstractConnectionPool, type PoolKey } from "./abstract_pool.ts";
import { SharedPool, type ShareOptions } from "../shared/owner.ts";
import { classicInfo, classicShareOps } from "../shared/classic.ts";

/**
 * psycopg2's `ThreadedConnectionPool`: the same semantics as
 * `SimpleConnectionPool` (`getconn(key?)` never waits and throws
 * `PoolExhaustedError` at `maxconn`; `putconn(conn, key?, close?)`;
 * `closeall()`). psycopg2's version only adds a lock; in one isolate the event
 * loop already serialises every decision, so this is the class meant to be
 * shared with Workers, where each Worker borrows through the owner's
 * connections under one `maxconn` cap.
 *
 * @typeParam C The driver's connection type (`pg.Client` by default).
 * @example Borrow and return
 * ```ts
 * import { ThreadedConnectionPool } from "@tidepool/pg";
 * const pool = new ThreadedConnectionPool(2, 8, Deno.env.get("DATABASE_URL")!);
 * const conn = await pool.getconn();
 * await conn.query("select 1");
 * await pool.putconn(conn);
 * await pool.closeall();
 * ```
 */
export class ThreadedConnectionPool<C extends object = pg.Client> extends AbstractConnectionPool<C> {
  /** The ports lent to Workers by `share()`, made on first use. */
  #sharing: SharedPool<C> | undefined;

  /**
   * Returns the connection bound to `key`, or binds one (an idle one first,
   * else a new one while fewer than `maxconn` exist).
   *
   * @param key Binds the connection to this key; the same key gets the same connection until `putconn`.
   * @returns The driver's connection, also `AsyncDisposable`.
   * @throws {PoolExhaustedError} `maxconn` connections are in use, at once.
   * @throws {PoolClosedError} After `closeall()`.
   * @example
   * ```ts
   * import { ThreadedConnectionPool } from "@tidepool/pg";
   * const pool = new ThreadedConnectionPool(1, 4, Deno.env.get("DATABASE_URL")!);
   * {
   *   await using conn = await pool.getconn();
   *   await conn.query("select 1");
   * } // returned here
   * await pool.closeall();
   * ```
   */
  getconn(key?: PoolKey | null): Promise<C> {
    return this._getconn(key);
  }

  /**
   * Returns a connection: kept idle only while fewer than `minconn` are idle,
   * else closed; an open transaction is rolled back, a broken connection discarded.
   *
   * @param conn A connection from `getconn()`.
   * @param key The key it was taken with; omit to look it up.
   * @param close Close it instead of keeping it.
   * @returns Resolves when the connection is idle or closed.
   * @throws {PoolError} Not from this pool, not in use, or bound to another key.
   * @throws {PoolClosedError} After `closeall()`.
   * @example
   * ```ts
   * import { ThreadedConnectionPool } from "@tidepool/pg";
   * const pool = new ThreadedConnectionPool(1, 4, Deno.env.get("DATABASE_URL")!);
   * const conn = await pool.getconn("k");
   * await pool.putconn(conn, "k");
   * await pool.closeall();
   * ```
   */
  putconn(conn: C, key?: PoolKey | null, close: boolean = false): Promise<void> {
    return this._putconn(conn, key, close);
  }

  /**
   * Closes every connection, in use or not. Later calls throw `PoolClosedError`.
   *
   * @returns Resolves when every socket is closed.
   * @throws {PoolClosedError} Already closed.
   * @example
   * ```ts
   * import { ThreadedConnectionPool } from "@tidepool/pg";
   * const pool = new ThreadedConnectionPool(1, 4, Deno.env.get("DATABASE_URL")!);
   * await pool.closeall();
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
   * import { ThreadedConnectionPool } from "@tidepool/pg";
   * const pool = new ThreadedConnectionPool(1, 8, Deno.env.get("DATABASE_URL")!);
   * const worker = new Worker(new URL("./job.ts", import.meta.url), { type: "module" });
   * const port = pool.share({ worker });
   * worker.postMessage({ pool: port }, [port]); // the Worker calls attachPool(e.data.pool)
   * ```
   */
  share(options?: ShareOptions): MessagePort {
    this.#sharing ??= new SharedPool<C>(
      classicInfo(this),
      classicShareOps("classic", {
        getconn: (key) => this._getconn(key),
        putconn: (conn, key, close) => this._putconn(conn, key, close),
        driver: this.driver,
      }),
    );
    return this.#sharing.share(options);
  }

  /** Also tells attached Workers the pool closed (their next call throws `PoolClosedError`). */
  protected override async _closeall(): Promise<void> {
    try {
      await super._closeall();
    } finally {
      this.#sharing?.close();
    }
  }
}
