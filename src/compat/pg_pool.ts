/**
 * `toPgPool`: a `pg.Pool` look-alike over a tidepool pool, for libraries that
 * take a `pg.Pool` (Kysely's `PostgresDialect`, Drizzle's `node-postgres`).
 *
 * @module
 */
import { EventEmitter } from "node:events";
import type * as pg from "../drivers/pg_types.ts";
import { ConnectionPool } from "../pool/connection_pool.ts";
import { PoolClosedError, PoolError, PoolTimeoutError } from "../errors.ts";
import { entryOf } from "../core/_entry.ts";
import type { RowShape } from "../driver.ts";

/**
 * A client lent by {@linkcode PgPool.connect}: the pool's own `pg.Client` (the
 * same object every time that connection is lent, as pg.Pool's), with a
 * `release(err?)` set for each checkout.
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
  /** The pool's `maxIdle` (ms): how long a connection above `minSize` may stay idle. */
  readonly idleTimeoutMillis: number;
  /** The pool's `maxLifetime`, in seconds. */
  readonly maxLifetimeSeconds: number;
  /** The pool's `allowExitOnIdle`. */
  readonly allowExitOnIdle: boolean;
  /** Always `Infinity`: tidepool retires connections by age (`maxLifetime`), not by use count. */
  readonly maxUses: number;
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
  /** Clients lent now: `expiredCount` reads their lifetimes. */
  readonly #lent = new Set<pg.Client>();
  /** `connect()` and `query()` calls not settled yet: `end()` lets them finish, as pg-pool does. */
  readonly #inflight = new Set<Promise<unknown>>();
  #ending = false;
  #ended: Promise<void> | undefined;

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

  /**
   * Lent clients past the pool's `maxLifetime`: each is closed, not kept, when
   * it is released (pg-pool's `expiredCount` for `maxLifetimeSeconds`).
   */
  get expiredCount(): number {
    const now = Date.now();
    let expired = 0;
    for (const conn of this.#lent) {
      const entry = entryOf(conn);
      if (entry !== undefined && now >= entry.expiresAt) expired++;
    }
    return expired;
  }

  /** pg.Pool's `options`, from the tidepool pool's current settings. */
  get options(): PgPoolOptions {
    return {
      max: this.#pool.maxSize,
      min: this.#pool.minSize,
      connectionTimeoutMillis: this.#pool.timeout,
      name: this.#pool.name,
      idleTimeoutMillis: this.#pool.maxIdle,
      maxLifetimeSeconds: this.#pool.maxLifetime / 1000,
      allowExitOnIdle: this.#pool.allowExitOnIdle,
      maxUses: Infinity,
    };
  }

  /** True once `end()` was called (or the tidepool pool was closed). */
  get ending(): boolean {
    return this.#ending || this.#pool.closed;
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
    const lent = this.#track(this.#connect());
    if (callback === undefined) return lent;
    lent.then(
      (client) => {
        // This checkout's own release: `client.release` is replaced at the client's next checkout.
        const release = client.release;
        callback(undefined, client, (err) => release(err));
      },
      (err) => callback(err, undefined, () => {}),
    );
  }

  #connect(): Promise<PgPoolClient> {
    if (this.#ending) return Promise.reject(endedError());
    return this.#pool.getconn().then(async (conn) => {
      if (typeof (conn as { query?: unknown }).query !== "function") {
        // A pool over another driver (deno-postgres): Kysely and Drizzle would fail deep inside.
        await this.#pool.putconn(conn);
        throw new TypeError(
          `Invalid pool for toPgPool: pool '${this.#pool.name}' lends connections without a pg-style query(); it needs the node-postgres driver`,
        );
      }
      return this.#lend(conn);
    }, (error) => {
      throw pgTimeout(error);
    });
  }

  /** Counts a call until it settles, for `end()`. */
  #track<T>(work: Promise<T>): Promise<T> {
    this.#inflight.add(work);
    const done = () => void this.#inflight.delete(work);
    work.then(done, done);
    return work;
  }

  /**
   * Runs one statement on a borrowed client and releases it. Unlike
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
  // pg.Pool's own overloads (minus Submittables), so the facade type-checks where a pg.Pool is expected.
  // deno-lint-ignore no-explicit-any
  query<R extends any[] = any[]>(
    text: pg.QueryArrayConfig,
    values?: unknown[],
  ): Promise<pg.QueryResult<R>>;
  /**
   * `query()` with SQL text or a query config (`{ text, values, rowMode, types, name }`).
   *
   * @param text SQL text or a query config.
   * @param values Parameters.
   * @returns The result.
   */
  // deno-lint-ignore no-explicit-any
  query<R extends pg.QueryResultRow = any>(
    text: string | pg.QueryConfig,
    values?: unknown[],
  ): Promise<pg.QueryResult<R>>;
  /**
   * pg-pool's callback form of `query()` with `rowMode: "array"`.
   *
   * @param config A query config with `rowMode: "array"`.
   * @param callback Called once with the result or the error.
   */
  // deno-lint-ignore no-explicit-any
  query<R extends any[] = any[]>(
    config: pg.QueryArrayConfig,
    callback: (err: Error, result: pg.QueryResult<R>) => void,
  ): void;
  /**
   * pg-pool's callback form of `query()` without parameters.
   *
   * @param text SQL text or a query config.
   * @param callback Called once with the result or the error.
   */
  // deno-lint-ignore no-explicit-any
  query<R extends pg.QueryResultRow = any>(
    text: string | pg.QueryConfig,
    callback: (err: Error, result: pg.QueryResult<R>) => void,
  ): void;
  /**
   * pg-pool's callback form of `query()`.
   *
   * @param text SQL text.
   * @param values Parameters.
   * @param callback Called once with the result or the error.
   */
  // deno-lint-ignore no-explicit-any
  query<R extends pg.QueryResultRow = any>(
    text: string,
    values: unknown[],
    callback: (err: Error, result: pg.QueryResult<R>) => void,
  ): void;
  query(
    text: string | pg.QueryConfig | pg.QueryArrayConfig,
    values?: unknown[] | PgQueryCallback | AnyQueryCallback,
    callback?: PgQueryCallback | AnyQueryCallback,
  ): Promise<pg.QueryResult> | void {
    if (typeof values === "function") {
      callback = values;
      values = undefined;
    }
    if (typeof text === "function") {
      // pg-pool's answer to query(callback): the callback gets the error (a promise would be left unsettled).
      const cb = text as PgQueryCallback;
      const error = new TypeError("Passing a function as the first parameter to pool.query is not supported");
      queueMicrotask(() => cb(error, undefined));
      return;
    }
    if (text !== null && typeof text === "object" && typeof (text as { submit?: unknown }).submit === "function") {
      const error = new TypeError(
        "Invalid argument 'text': pool.query() does not take a Submittable (Cursor, QueryStream); use connect() and client.query()",
      );
      if (callback === undefined) return Promise.reject(error);
      queueMicrotask(() => callback(error, undefined));
      return;
    }
    const result = this.#track(this.#query(text, values));
    if (callback === undefined) return result;
    const cb = callback;
    result.then((res) => cb(undefined, res), (err) => cb(err, undefined));
  }

  #query(text: string | pg.QueryConfig | pg.QueryArrayConfig, values: unknown[] | undefined): Promise<pg.QueryResult> {
    if (this.#ending) return Promise.reject(endedError());
    const config = typeof text === "string" ? undefined : text as pg.QueryConfig & { rowMode?: unknown };
    // A config with more than text, values, rowMode and types (a prepared statement's `name`, say) needs a
    // client of its own; the rest goes through pool.query(), pipelined where the pool pipelines.
    if (config !== undefined && !poolQueryable(config)) return this.#queryOnClient(config, values);
    const sql = config === undefined ? text as string : config.text;
    const params = values ?? config?.values;
    const shape: RowShape | undefined = config?.rowMode !== undefined || config?.types !== undefined
      ? { rowMode: config.rowMode as RowShape["rowMode"], types: config.types }
      : undefined;
    let result: Promise<unknown>;
    try {
      result = this.#pool.query(sql, params, shape);
    } catch (error) {
      return Promise.reject(error); // a bad argument (text not a string) rejects, as pg's does
    }
    return result.then((res) => res as pg.QueryResult, (error) => {
      throw pgTimeout(error);
    });
  }

  async #queryOnClient(text: pg.QueryConfig, values: unknown[] | undefined): Promise<pg.QueryResult> {
    const client = await this.connect();
    try {
      return await client.query(text, values);
    } finally {
      client.release();
    }
  }

  /**
   * Closes the tidepool pool, as pg-pool ends: new `connect()` and `query()`
   * calls are refused with {@linkcode PoolClosedError} at once, the calls made
   * before `end()` finish (a `query()` waiting for a connection still runs),
   * then `pool.close()` closes the connections (waiting up to its timeout for
   * clients still lent).
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
    const closed = this.#ended ??= this.#end();
    if (callback === undefined) return closed;
    closed.then(() => callback(), (err) => callback(err));
  }

  async #end(): Promise<void> {
    this.#ending = true;
    while (this.#inflight.size > 0) await Promise.allSettled(this.#inflight);
    await this.#pool.close();
  }

  #lend(conn: pg.Client): PgPoolClient {
    const client = conn as PgPoolClient;
    let released = false;
    const release = (err?: Error | boolean) => {
      if (released) {
        throw new PoolError(`Cannot release client: it was already released to pool '${this.#pool.name}'`);
      }
      released = true;
      this.#lent.delete(conn);
      // pg-pool's rule: any truthy argument closes the client.
      const discard = Boolean(err);
      this.emit("release", err instanceof Error ? err : undefined, client);
      if (discard) this.emit("remove", client);
      this.#pool.putconn(conn, { discard }).catch((error) => {
        if (this.listenerCount("error") > 0) this.emit("error", error, client);
      });
    };
    // The pg.Client itself, as pg-pool lends it, so libraries that key state by client (Kysely's
    // onCreateConnection) see one object per connection. Each checkout gets its own `release`: one kept
    // from an earlier lease throws instead of returning the next borrower's connection.
    client.release = release;
    this.#lent.add(conn);
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

/** What the implementation of the `query()` overloads takes as a callback (pg's types call it with `err: Error`). */
// deno-lint-ignore no-explicit-any
type AnyQueryCallback = (err: any, result: any) => void;

/** The start of pg-pool's `connect()` timeout message, which apps match. */
const CONNECT_TIMEOUT = "timeout exceeded when trying to connect";

/** A pool timeout in pg-pool's wording, which apps match; the pool's counts and the last connection error stay on. */
function pgTimeout(error: unknown): unknown {
  if (!(error instanceof PoolTimeoutError)) return error;
  return new PoolTimeoutError(`${CONNECT_TIMEOUT}: ${error.message}`, { cause: error.cause });
}

const POOL_QUERY_KEYS = new Set(["text", "values", "rowMode", "types"]);

/** Whether `pool.query()` can run this config: nothing in it beyond what it takes. */
function poolQueryable(config: pg.QueryConfig): boolean {
  if (typeof config !== "object" || config === null || typeof config.text !== "string") return false;
  for (const key of Object.keys(config)) {
    if (!POOL_QUERY_KEYS.has(key) && (config as unknown as Record<string, unknown>)[key] !== undefined) return false;
  }
  return true;
}

function endedError(): PoolClosedError {
  return new PoolClosedError("Cannot use a pool after calling end on the pool");
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (typeof value !== "object") return typeof value;
  return (value as object).constructor?.name ?? "an object";
}
