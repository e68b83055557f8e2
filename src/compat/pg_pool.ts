/**
 * `toPgPool`: a `pg.Pool` look-alike over a tidepool pool, for libraries that
 * take a `pg.Pool` (Kysely's `PostgresDialect`, Drizzle's `node-postgres`).
 *
 * @module
 */
import { EventEmitter } from "node:events";
import type pg from "pg";
import { ConnectionPool } from "../pool/connection_pool.ts";
import { PoolError } from "../errors.ts";

/**
 * A client lent by {@linkcode PgPool.connect}: a handle for one lease over the pool's own
 * `pg.Client`, with `release(err?)`.
 */
export type PgPoolClient = pg.PoolClient;

/** `pg.Pool`'s `options`, read from the tidepool pool (no connection settings, so no password). */
export interface PgPoolOptions {
  /** The pool's `maxSize`. */
  readonly max: number;
  /** The pool's `minSize`. */
  readonly min: number;
  /** The pool's `timeout`: the longest wait in `connect()`, in ms. */
  readonly connectionTimeoutMillis: number;
  /** The pool's name. */
  readonly name: string;
}

/** Callback of `connect(callback)`: pg-pool's `(err, client, done)`. */
export type PgConnectCallback = (
  err: Error | undefined,
  client: PgPoolClient | undefined,
  done: (release?: Error | boolean) => void,
) => void;

/** Callback of `query(..., callback)`: pg-pool's `(err, result)`. */
export type PgQueryCallback = (err: Error | undefined, result: pg.QueryResult | undefined) => void;

const facades = new WeakMap<ConnectionPool<pg.Client>, PgPool>();

/**
 * A `pg.Pool` look-alike over a tidepool {@linkcode ConnectionPool}: every
 * connection it lends comes from, and goes back to, the tidepool pool, so the
 * pool's limits, timeouts, rollback of dirty returns and stats all hold. Made
 * by {@linkcode toPgPool}. Its class name ends in `Pool` because Drizzle only
 * gives a transaction a connection of its own when the client's class name
 * contains "Pool".
 *
 * Events (an `EventEmitter`): `connect` (a connection this facade has not lent
 * before), `acquire` (each `connect()`), `release` (`(err, client)` on each
 * release), `remove` (a client released with an error, so closed), `error`
 * (returning a connection failed in the background; emitted only when
 * somebody listens, so it never crashes the process). Connections the
 * tidepool pool replaces by itself (lost, expired) emit nothing.
 *
 * @example
 * ```ts
 * import { ConnectionPool, toPgPool } from "@tidepool/pg";
 * const pgPool = toPgPool(new ConnectionPool({ conninfo: Deno.env.get("DATABASE_URL") }));
 * const client = await pgPool.connect();
 * try {
 *   await client.query("select 1");
 * } finally {
 *   client.release();
 * }
 * await pgPool.end();
 * ```
 */
export class PgPool extends EventEmitter {
  readonly #pool: ConnectionPool<pg.Client>;
  readonly #seen = new WeakSet<pg.Client>();

  /**
   * Wraps a pool. Prefer {@linkcode toPgPool}, which checks its argument and
   * returns one facade per pool.
   *
   * @param pool The tidepool pool of `pg.Client` connections.
   */
  constructor(pool: ConnectionPool<pg.Client>) {
    super();
    this.#pool = pool;
  }

  /** The tidepool pool underneath. */
  get pool(): ConnectionPool<pg.Client> {
    return this.#pool;
  }

  /** Open connections, idle or lent (`getStats().poolSize`). */
  get totalCount(): number {
    return this.#pool.getStats().poolSize;
  }

  /** Idle connections (`getStats().poolAvailable`). */
  get idleCount(): number {
    return this.#pool.getStats().poolAvailable;
  }

  /** Requests waiting for a connection (`getStats().requestsWaiting`). */
  get waitingCount(): number {
    return this.#pool.getStats().requestsWaiting;
  }

  /** pg.Pool's `options`, from the tidepool pool's current settings. */
  get options(): PgPoolOptions {
    return {
      max: this.#pool.maxSize,
      min: this.#pool.minSize,
      connectionTimeoutMillis: this.#pool.timeout,
      name: this.#pool.name,
    };
  }

  /** True once `end()` was called (or the tidepool pool was closed). */
  get ending(): boolean {
    return this.#pool.closed;
  }

  /** True once the pool is closed. */
  get ended(): boolean {
    return this.#pool.closed;
  }

  /**
   * Borrows a client. Release it exactly once: `release()` returns it (an open
   * transaction is rolled back by the pool), `release(err)` or `release(true)`
   * closes it and the pool opens a replacement if it needs one. A second
   * `release()` throws {@linkcode PoolError} and returns nothing.
   *
   * @param callback pg-pool's callback form, `(err, client, done)`; without it a promise.
   * @returns The client (promise form).
   * @throws {PoolTimeoutError} No connection became free within the pool's `timeout`.
   * @throws {PoolClosedError} The pool is closed.
   * @throws {TypeError} The pool's connections are not `pg.Client`s (another driver).
   * @example
   * ```ts
   * import { ConnectionPool, toPgPool } from "@tidepool/pg";
   * const pgPool = toPgPool(new ConnectionPool({ conninfo: Deno.env.get("DATABASE_URL") }));
   * const client = await pgPool.connect();
   * client.release();
   * await pgPool.end();
   * ```
   */
  connect(): Promise<PgPoolClient>;
  /**
   * pg-pool's callback form of `connect()`: `callback(err, client, done)`; `done(err?)` releases.
   *
   * @param callback Called once with the client or the error.
   */
  connect(callback: PgConnectCallback): void;
  connect(callback?: PgConnectCallback): Promise<PgPoolClient> | void {
    const lent = this.#pool.getconn().then(async (conn) => {
      if (typeof (conn as { query?: unknown }).query !== "function") {
        // A pool over another driver (deno-postgres): Kysely and Drizzle would fail deep inside.
        await this.#pool.putconn(conn);
        throw new TypeError(
          `Invalid pool for toPgPool: pool '${this.#pool.name}' lends connections without a pg-style query(); it needs the node-postgres driver`,
        );
      }
      return this.#lend(conn);
    });
    if (callback === undefined) return lent;
    lent.then(
      (client) => callback(undefined, client, (err) => client.release(err)),
      (err) => callback(err, undefined, () => {}),
    );
  }

  /**
   * Runs one statement on a borrowed client and returns the client. Unlike
   * pg-pool, an SQL error does not close the connection: the pool's return
   * path keeps it when it is idle and discards it when it is broken.
   *
   * @param text SQL text, or a query config (`{ text, values, rowMode, types, name }`).
   * @param values Parameters, or the callback.
   * @param callback pg-pool's callback form, `(err, result)`; without it a promise.
   * @returns The result (promise form).
   * @throws {TypeError} `text` is a Submittable (`Cursor`, `QueryStream`): use `connect()` for those.
   * @example
   * ```ts
   * import { ConnectionPool, toPgPool } from "@tidepool/pg";
   * const pgPool = toPgPool(new ConnectionPool({ conninfo: Deno.env.get("DATABASE_URL") }));
   * const { rows } = await pgPool.query("select $1::int as x", [1]);
   * await pgPool.end();
   * ```
   */
  // deno-lint-ignore no-explicit-any
  query<R extends Record<string, any> = any>(
    text: string | pg.QueryConfig,
    values?: unknown[],
  ): Promise<pg.QueryResult<R>>;
  /**
   * pg-pool's callback form of `query()` without parameters.
   *
   * @param text SQL text or a query config.
   * @param callback Called once with the result or the error.
   */
  query(text: string | pg.QueryConfig, callback: PgQueryCallback): void;
  /**
   * pg-pool's callback form of `query()`.
   *
   * @param text SQL text or a query config.
   * @param values Parameters.
   * @param callback Called once with the result or the error.
   */
  query(text: string | pg.QueryConfig, values: unknown[] | undefined, callback: PgQueryCallback): void;
  query(
    text: string | pg.QueryConfig,
    values?: unknown[] | PgQueryCallback,
    callback?: PgQueryCallback,
  ): Promise<pg.QueryResult> | void {
    if (typeof values === "function") {
      callback = values;
      values = undefined;
    }
    if (text !== null && typeof text === "object" && typeof (text as { submit?: unknown }).submit === "function") {
      const error = new TypeError(
        "Invalid argument 'text': pool.query() does not take a Submittable (Cursor, QueryStream); use connect() and client.query()",
      );
      if (callback === undefined) return Promise.reject(error);
      queueMicrotask(() => callback(error, undefined));
      return;
    }
    const result = this.#query(text, values);
    if (callback === undefined) return result;
    const cb = callback;
    result.then((res) => cb(undefined, res), (err) => cb(err, undefined));
  }

  async #query(text: string | pg.QueryConfig, values: unknown[] | undefined): Promise<pg.QueryResult> {
    const client = await this.connect();
    try {
      return await client.query(text, values);
    } finally {
      client.release();
    }
  }

  /**
   * Closes the tidepool pool (`pool.close()`): waiters get `PoolClosedError`,
   * connections are closed.
   *
   * @param callback pg-pool's callback form; without it a promise.
   * @example
   * ```ts
   * import { ConnectionPool, toPgPool } from "@tidepool/pg";
   * const pgPool = toPgPool(new ConnectionPool({ conninfo: Deno.env.get("DATABASE_URL") }));
   * await pgPool.end();
   * ```
   */
  end(): Promise<void>;
  /**
   * pg-pool's callback form of `end()`.
   *
   * @param callback Called once the pool is closed.
   */
  end(callback: (err?: Error) => void): void;
  end(callback?: (err?: Error) => void): Promise<void> | void {
    const closed = this.#pool.close();
    if (callback === undefined) return closed;
    closed.then(() => callback(), (err) => callback(err));
  }

  #lend(conn: pg.Client): PgPoolClient {
    let released = false;
    const release = (err?: Error | boolean) => {
      if (released) {
        throw new PoolError(`Cannot release client: it was already released to pool '${this.#pool.name}'`);
      }
      released = true;
      // pg-pool's rule: any truthy argument closes the client.
      const discard = Boolean(err);
      this.emit("release", err instanceof Error ? err : undefined, client);
      if (discard) this.emit("remove", client);
      this.#pool.putconn(conn, { discard }).catch((error) => {
        if (this.listenerCount("error") > 0) this.emit("error", error, client);
      });
    };
    const stale = () => {
      throw new PoolError(`Cannot use client: it was released to pool '${this.#pool.name}'`);
    };
    // One handle per lease, not the shared pg.Client: a `release()` kept past its lease must not
    // return the next borrower's connection (pg-pool has that gap). Everything but `release`
    // (and `query`, refused once released) reads and writes through to the pg.Client.
    const client = new Proxy(conn, {
      get(target, key) {
        if (key === "release") return release;
        if (key === "query" && released) return stale;
        return Reflect.get(target, key, target);
      },
      set(target, key, value) {
        return Reflect.set(target, key, value, target);
      },
    }) as PgPoolClient;
    if (!this.#seen.has(conn)) {
      this.#seen.add(conn);
      this.emit("connect", client);
    }
    this.emit("acquire", client);
    return client;
  }
}

/**
 * Wraps a tidepool pool of `pg.Client` connections in a `pg.Pool` look-alike,
 * for Kysely's `PostgresDialect` and Drizzle's `node-postgres`. The same pool
 * always gives the same facade. `end()` on the facade closes the pool.
 *
 * @param pool A {@linkcode ConnectionPool} or `NullConnectionPool` using the node-postgres driver.
 * @returns The facade.
 * @throws {TypeError} `pool` is not a tidepool `ConnectionPool`.
 * @example Kysely and Drizzle
 * ```ts ignore
 * import { ConnectionPool, toPgPool } from "@tidepool/pg";
 * import { Kysely, PostgresDialect } from "kysely";
 * import { drizzle } from "drizzle-orm/node-postgres";
 * const pool = new ConnectionPool({ conninfo: Deno.env.get("DATABASE_URL"), maxSize: 10 });
 * const db = new Kysely<Record<string, never>>({ dialect: new PostgresDialect({ pool: toPgPool(pool) }) });
 * const orm = drizzle({ client: toPgPool(pool) });
 * ```
 */
export function toPgPool(pool: ConnectionPool<pg.Client>): PgPool {
  if (!(pool instanceof ConnectionPool)) {
    throw new TypeError(
      `Invalid argument 'pool': toPgPool takes a tidepool ConnectionPool or NullConnectionPool, got ${describe(pool)}`,
    );
  }
  let facade = facades.get(pool);
  if (facade === undefined) {
    facade = new PgPool(pool);
    facades.set(pool, facade);
  }
  return facade;
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (typeof value !== "object") return typeof value;
  return (value as object).constructor?.name ?? "an object";
}
