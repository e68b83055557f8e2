/**
 * `ConnectionPool`: psycopg_pool's pool for Deno.
 *
 * @module
 */
import type pg from "pg";
import type { Logger } from "@logtape/logtape";
import { Backoff } from "./_backoff.ts";
import { Deque } from "./_deque.ts";
import { attachEntry, Entry, entryOf } from "./_entry.ts";
import { type LeakDetector, leakDetector } from "./_leak.ts";
import { describeError, poolLogger } from "./_log.ts";
import { prepareForReuse } from "./_return_path.ts";
import { pipelinable, PipelineLane } from "./_pipeline.ts";
import { MAX_DELAY, sleep, Timers, within } from "./_timers.ts";
import { Waiter, WaiterQueue } from "./_waiters.ts";
import type { Driver, QueryResult } from "./driver.ts";
import { createPgDriver } from "./drivers/pg.ts";
import { PoolClosedError, PoolError, PoolTimeoutError, TooManyRequestsError } from "./errors.ts";
import { type ConnectionPoolOptions, count, duration, type ResolvedOptions, resolveOptions } from "./options.ts";
import { type PoolCounters, type PoolStats, zeroCounters } from "./stats.ts";
import { beginStatement, isRetryable, type TransactionOptions } from "./transaction.ts";
import { SharedPool, type ShareOptions } from "./shared/owner.ts";

/** A connection lent by a pool: the driver's own object, also `AsyncDisposable` (returns it). */
export type PooledConnection<C> = C & AsyncDisposable;

/** Options of `getconn()` / `connection()`. */
export interface GetconnOptions {
  /** Longest wait in ms. @default the pool's `timeout` */
  timeout?: number;
  /** Aborting rejects the request with the signal's reason. */
  signal?: AbortSignal;
}

/** Options of `open()`. */
export interface OpenOptions {
  /** Resolve only when `minSize` connections are ready. @default false */
  wait?: boolean;
  /** With `wait`, reject with `PoolTimeoutError` after this many ms. @default 30000 */
  timeout?: number;
}

/** Internal: how a pool subclass keeps connections (`NullConnectionPool` keeps none). */
export interface PoolPolicy {
  /** Whether a returned connection with no waiter stays idle. */
  keepIdle: boolean;
  /** Whether each waiter may start its own connection attempt (else one grow at a time). */
  growPerWaiter: boolean;
}

const MODERN: PoolPolicy = { keepIdle: true, growPerWaiter: false };
const RESOLVED: Promise<void> = Promise.resolve();
let poolCounter = 0;

type State = "new" | "open" | "closed";

/**
 * A pool of PostgreSQL connections with psycopg_pool's behaviour: `minSize`
 * connections kept warm by background workers, growth to `maxSize` on demand,
 * FIFO waiters with timeouts, rollback of dirty returns, `maxLifetime` and
 * `maxIdle`, reconnection with backoff, and stats.
 *
 * @typeParam C The driver's connection type (`pg.Client` by default).
 * @example Borrow a connection for a scope
 * ```ts
 * import { ConnectionPool } from "@tidepool/pg";
 * const pool = new ConnectionPool({ conninfo: Deno.env.get("DATABASE_URL"), minSize: 2, maxSize: 10 });
 * await pool.open({ wait: true });
 * {
 *   await using conn = await pool.connection();
 *   const { rows } = await conn.query("select 1 as x");
 *   console.log(rows[0].x);
 * }
 * await pool.close();
 * ```
 */
export class ConnectionPool<C extends object = pg.Client> {
  readonly #driver: Driver<C>;
  readonly #o: ResolvedOptions;
  readonly #name: string;
  readonly #policy: PoolPolicy;
  readonly #configure: ((conn: C) => Promise<void> | void) | undefined;
  readonly #reset: ((conn: C) => Promise<void> | void) | undefined;
  readonly #check: ((conn: C) => Promise<void> | void) | undefined;
  readonly #reconnectFailed: ((pool: ConnectionPool<C>) => void) | undefined;
  readonly #log: Logger;
  readonly #timers = new Timers();
  readonly #leaks: LeakDetector;

  #state: State = "new";
  /** Every open connection, whatever its state. */
  readonly #all = new Set<Entry<C>>();
  readonly #idle = new Deque<Entry<C>>();
  readonly #waiters = new WaiterQueue<C | Entry<C>>((waiter) => this.#timedOut(waiter));
  /** Callers of `wait()` / `open({wait})`, settled when `minSize` are ready. */
  readonly #readyWaiters = new Set<Waiter<void>>();
  /** Connection attempts in flight or waiting for their backoff; counted in the size. */
  #pending = 0;
  /** Of #pending, the attempts waiting for their backoff timer (dropped by close). */
  #retrying = 0;
  /** One growth beyond minSize at a time (psycopg_pool, HikariCP's spike rule). */
  #growing = false;
  /** Fewest idle connections seen since the last shrink: that many were not needed (maxIdle). */
  #idleLow = 0;
  #lastError: Error | undefined;
  /** When `reconnectFailed` was last called in the current outage; a connection that opens ends the outage. */
  #toldOutageAt: number | undefined;
  #counters: PoolCounters = zeroCounters();
  /** Background jobs and the loops running them (at most numWorkers). */
  readonly #jobs = new Deque<() => Promise<void>>();
  #runningWorkers = 0;
  /** Aborts connection attempts in flight when the pool closes. */
  readonly #closing = new AbortController();
  /** Closes under way, awaited by `close()` so no socket outlives the pool. */
  readonly #closes = new Set<Promise<void>>();
  /** close() waiting for the borrowed connections to come back. */
  #allReturned: Waiter<void> | undefined;
  /** The work of the first `close()`, returned to every later call. */
  #closeWork: Promise<void> | undefined;
  /** Where `pool.query()` statements are pipelined; undefined when `pipeline` is 1 or the driver cannot. */
  readonly #lane: PipelineLane<C> | undefined;
  /** The ports lent to Workers by `share()`, made on first use. */
  #sharing: SharedPool<C> | undefined;

  /**
   * Creates a pool. Does no I/O: connections open on `open()` or first use.
   *
   * @param options See {@linkcode ConnectionPoolOptions}.
   * @throws {TypeError} An option has the wrong type or an unknown name.
   * @throws {RangeError} An option is out of range (`maxSize < minSize`, negative duration, ...).
   */
  constructor(options: ConnectionPoolOptions<C>);
  /** @internal subclasses pass a policy and their defaults. */
  constructor(
    options: ConnectionPoolOptions<C>,
    policy: PoolPolicy,
    defaults: { minSize: number; maxSize?: number },
  );
  constructor(
    options: ConnectionPoolOptions<C>,
    policy: PoolPolicy = MODERN,
    defaults: { minSize: number; maxSize?: number } = { minSize: 4 },
  ) {
    this.#o = resolveOptions(options, defaults);
    this.#policy = policy;
    this.#name = this.#o.name ?? `pool-${++poolCounter}`;
    this.#driver = options.driver ??
      (createPgDriver(options.conninfo as string | pg.ClientConfig, {
        connectTimeout: this.#o.connectTimeout,
      }) as unknown as Driver<C>);
    this.#configure = options.configure;
    this.#reset = options.reset;
    this.#check = options.check;
    this.#reconnectFailed = options.reconnectFailed;
    this.#log = poolLogger(this.#name);
    this.#leaks = leakDetector(
      this.#o.leakDetectionThreshold,
      this.#timers,
      this.#log,
      this.#name,
    );
    this.#lane = this.#o.pipeline > 1 && this.#driver.setPipelined !== undefined
      ? new PipelineLane(this.#driver, this.#o.pipeline, {
        name: this.#name,
        timeout: () => this.#o.timeout,
        takeIdle: () => this.#lendIdle(),
        acquire: () => {
          const conn = this.getconn();
          this.#counters.requestsNum--; // the statements it serves were counted by query()
          return conn;
        },
        release: (conn) => this.putconn(conn),
        waiting: () => this.#waiters.size,
      })
      : undefined;
  }

  /**
   * A `check` callback that probes the connection with an empty query.
   *
   * @param conn A pg connection.
   * @example
   * ```ts
   * import { ConnectionPool } from "@tidepool/pg";
   * const pool = new ConnectionPool({ conninfo: "postgres://localhost/app", check: ConnectionPool.checkConnection });
   * ```
   */
  static async checkConnection(
    conn: { query(text: string): Promise<unknown> },
  ): Promise<void> {
    await conn.query("");
  }

  /**
   * A `reset` callback that runs `DISCARD ALL`: clears SET, temp tables,
   * prepared statements, LISTEN, advisory locks, and resets the role.
   *
   * @param conn A pg connection.
   * @example
   * ```ts
   * import { ConnectionPool } from "@tidepool/pg";
   * const pool = new ConnectionPool({ conninfo: "postgres://localhost/app", reset: ConnectionPool.discardAll });
   * ```
   */
  static async discardAll(
    conn: { query(text: string): Promise<unknown> },
  ): Promise<void> {
    await conn.query("DISCARD ALL");
    // DISCARD ALL also deallocates the statements node-postgres prepared for
    // named queries, but pg keeps their names and would skip the Parse next
    // time ("prepared statement ... does not exist"): forget them too.
    const cache = (conn as { connection?: { parsedStatements?: Record<string, unknown> } }).connection
      ?.parsedStatements;
    if (cache !== undefined) {
      for (const name of Object.keys(cache)) delete cache[name];
    }
  }

  /** The pool's name, used in logs, errors and metrics. */
  get name(): string {
    return this.#name;
  }
  /** Connections kept open. */
  get minSize(): number {
    return this.#o.minSize;
  }
  /** Most connections open at once. */
  get maxSize(): number {
    return this.#o.maxSize;
  }
  /** True once `close()` was called; a closed pool never reopens. */
  get closed(): boolean {
    return this.#state === "closed";
  }
  /** Default wait of `getconn()`, in ms. */
  get timeout(): number {
    return this.#o.timeout;
  }

  /**
   * Starts filling the pool to `minSize` in the background.
   *
   * @param options `wait: true` resolves only when `minSize` connections are ready.
   * @throws {PoolClosedError} The pool was closed.
   * @throws {PoolTimeoutError} With `wait`, not ready in `timeout`; the pool stays open and keeps filling.
   */
  async open(options: OpenOptions = {}): Promise<void> {
    if (this.#state === "closed") throw this.#closedError();
    if (this.#state === "new") {
      this.#state = "open";
      this.#log.debug("Pool {pool} opening to {target}", {
        pool: this.#name,
        target: this.#driver.description,
      });
      this.#startMaintenance();
      this.#maybeGrow();
    }
    if (options.wait) await this.wait({ timeout: options.timeout });
  }

  /**
   * Waits until `minSize` connections are ready.
   *
   * @param options `timeout` in ms (default 30000).
   * @throws {PoolTimeoutError} Not ready in time; `cause` is the last connection error. The pool stays open.
   */
  wait(options: { timeout?: number } = {}): Promise<void> {
    const timeout = duration(options.timeout, "timeout", 30_000);
    if (this.#state === "closed") return Promise.reject(this.#closedError());
    if (this.#state === "new") void this.open();
    if (this.#all.size >= this.#o.minSize) return RESOLVED;
    const waiter = new Waiter<void>();
    this.#readyWaiters.add(waiter);
    const timer = setTimeout(() => {
      waiter.reject(
        new PoolTimeoutError(
          `Pool '${this.#name}' not ready after ${timeout} ms: ${this.#counts()}`,
          {
            cause: this.#lastError,
          },
        ),
      );
    }, Math.min(timeout, MAX_DELAY));
    waiter.onSettle(() => {
      clearTimeout(timer);
      this.#readyWaiters.delete(waiter);
    });
    return waiter.promise;
  }

  /**
   * Borrows a connection: an idle one at once, else waits (FIFO) for one to be
   * returned or opened. Return it with `putconn()`, or use `connection()`.
   *
   * @param options `timeout` (ms) and an abort `signal`.
   * @returns The driver's connection, also `AsyncDisposable`.
   * @throws {PoolTimeoutError} None became free in time (message has the counts, `cause` the last connection error).
   * @throws {TooManyRequestsError} `maxWaiting` requests already wait.
   * @throws {PoolClosedError} The pool is closed.
   * @example
   * ```ts
   * import { ConnectionPool } from "@tidepool/pg";
   * const pool = new ConnectionPool({ conninfo: Deno.env.get("DATABASE_URL") });
   * const conn = await pool.getconn({ timeout: 1_000 });
   * try {
   *   await conn.query("select 1");
   * } finally {
   *   await pool.putconn(conn);
   * }
   * await pool.close();
   * ```
   */
  getconn(options?: GetconnOptions): Promise<PooledConnection<C>> {
    if (this.#state !== "open") {
      if (this.#state === "closed") return Promise.reject(this.#closedError());
      void this.open();
    }
    this.#counters.requestsNum++;
    if (options?.signal?.aborted) {
      this.#counters.requestsErrors++;
      return Promise.reject(options.signal.reason);
    }
    if (this.#check !== undefined) return this.#getconnChecked(options);
    const conn = this.#lendIdle();
    if (conn !== undefined) return Promise.resolve(conn as PooledConnection<C>);
    // The connection that frees first is lent inside #release and handed over
    // as is: one waiter, one promise, no async wrapper.
    return this.#enqueue(options, true) as Promise<PooledConnection<C>>;
  }

  /**
   * Borrows a connection for a scope: `await using conn = await pool.connection()`
   * returns it when the scope exits.
   *
   * @param options As for `getconn()`.
   * @example
   * ```ts
   * import { ConnectionPool } from "@tidepool/pg";
   * const pool = new ConnectionPool({ conninfo: Deno.env.get("DATABASE_URL") });
   * {
   *   await using conn = await pool.connection();
   *   await conn.query("select 1");
   * }
   * await pool.close();
   * ```
   */
  connection(options?: GetconnOptions): Promise<PooledConnection<C>> {
    return this.getconn(options);
  }

  /**
   * Returns a connection. An idle one goes back to the pool at once; an open or
   * failed transaction is rolled back (with a warning); a broken one, one still
   * running a query, or one whose rollback or `reset` fails is discarded and
   * replaced; one past `maxLifetime` is replaced.
   *
   * @param conn A connection from `getconn()`.
   * @throws {PoolError} The connection is not from this pool or was already returned.
   * @example
   * ```ts
   * import { ConnectionPool } from "@tidepool/pg";
   * const pool = new ConnectionPool({ conninfo: Deno.env.get("DATABASE_URL") });
   * const conn = await pool.getconn();
   * await pool.putconn(conn);
   * await pool.close();
   * ```
   */
  putconn(conn: C): Promise<void> {
    const entry = entryOf(conn);
    if (entry === undefined || entry.owner !== this) {
      return Promise.reject(
        new PoolError(
          `Cannot return connection: it is not from pool '${this.#name}'`,
        ),
      );
    }
    if (entry.state !== "in_use") {
      // close() closed it at its deadline while borrowed: the borrower's late return is no error.
      if (entry.state === "closed" && this.#state === "closed") return RESOLVED;
      return Promise.reject(
        new PoolError(
          `Cannot return connection: it was already returned to pool '${this.#name}'`,
        ),
      );
    }
    this.#leaks.returned(entry);
    const now = Date.now();
    this.#counters.usageMs += now - entry.lentAt;
    entry.state = "reserved";
    if (
      this.#state === "open" && this.#reset === undefined &&
      now < entry.expiresAt &&
      this.#driver.status(entry.conn) === "idle"
    ) {
      this.#release(entry, now);
      return RESOLVED;
    }
    return this.#returnSlow(entry);
  }

  /**
   * Runs `fn` with a connection; commits a transaction left open on success,
   * rolls back on throw, and always returns the connection.
   *
   * @param fn Work to do with the connection.
   * @returns What `fn` returns.
   * @throws Whatever `fn` throws; {@linkcode PoolError} when `fn` left a failed transaction.
   * @example
   * ```ts
   * import { ConnectionPool } from "@tidepool/pg";
   * const pool = new ConnectionPool({ conninfo: Deno.env.get("DATABASE_URL") });
   * const n = await pool.withConnection(async (conn) => (await conn.query("select 1 as n")).rows[0].n);
   * await pool.close();
   * ```
   */
  async withConnection<T>(
    fn: (conn: PooledConnection<C>) => Promise<T> | T,
    options?: GetconnOptions,
  ): Promise<T> {
    const conn = await this.getconn(options);
    try {
      const result = await fn(conn);
      await this.#finishTransaction(conn);
      return result;
    } catch (error) {
      await this.#rollbackQuietly(conn);
      throw error;
    } finally {
      await this.putconn(conn);
    }
  }

  /**
   * Runs one statement on a pooled connection. With `pipeline` > 1 (the
   * default) a statement that needs no session of its own may share a
   * connection with other `query()` statements in flight (pipelining); one that
   * could leave state behind (`BEGIN`, `COPY`, several statements) runs on a
   * connection of its own. An SQL error fails only its own statement.
   *
   * @param text SQL with `$1`-style placeholders.
   * @param params Values of the placeholders.
   * @returns The driver's result (`rows`, `rowCount`, `fields`).
   * @throws {ConnectionLostError} The connection was lost with the pipelined statement in flight: it may have run.
   * @throws {PoolTimeoutError} No connection or pipeline slot within the pool's `timeout`.
   * @example
   * ```ts
   * import { ConnectionPool } from "@tidepool/pg";
   * const pool = new ConnectionPool({ conninfo: Deno.env.get("DATABASE_URL") });
   * const { rows } = await pool.query("select $1::int as x", [1]);
   * await pool.close();
   * ```
   */
  query<R = Record<string, unknown>>(
    text: string,
    params?: unknown[],
  ): Promise<QueryResult<R>> {
    if (this.#lane !== undefined && pipelinable(text)) {
      this.#counters.requestsNum++;
      return this.#lane.query(text, params) as Promise<QueryResult<R>>;
    }
    return this.#queryAlone(text, params);
  }

  /** `query()` on a connection of its own. */
  async #queryAlone<R>(text: string, params?: unknown[]): Promise<QueryResult<R>> {
    const conn = await this.getconn();
    try {
      return await this.#driver.query(conn, text, params) as QueryResult<R>;
    } finally {
      await this.putconn(conn);
    }
  }

  /**
   * Runs `fn` inside BEGIN ... COMMIT; rolls back on throw. Re-runs `fn` on a
   * serialization failure or deadlock (SQLSTATE 40001, 40P01) up to `retries`
   * times, each on a fresh transaction after a short jittered pause.
   *
   * @param fn The transaction's work; may run more than once with `retries`.
   * @param options `isolation`, `readOnly`, `retries` (default 0).
   * @returns What `fn` returns.
   * @example
   * ```ts
   * import { ConnectionPool } from "@tidepool/pg";
   * const pool = new ConnectionPool({ conninfo: Deno.env.get("DATABASE_URL") });
   * await pool.transaction(async (conn) => {
   *   await conn.query("select 1");
   * }, { isolation: "serializable", retries: 3 });
   * await pool.close();
   * ```
   */
  async transaction<T>(
    fn: (conn: PooledConnection<C>) => Promise<T> | T,
    options: TransactionOptions = {},
  ): Promise<T> {
    const begin = beginStatement(options);
    const retries = count(options.retries, "retries", 0);
    for (let attempt = 0;; attempt++) {
      const conn = await this.getconn();
      try {
        await this.#driver.query(conn, begin);
        const result = await fn(conn);
        await this.#finishTransaction(conn, true);
        return result;
      } catch (error) {
        await this.#rollbackQuietly(conn);
        if (attempt >= retries || !isRetryable(error)) throw error;
        this.#log.debug("Pool {pool}: retrying transaction after {code}", {
          pool: this.#name,
          code: (error as { code?: string }).code,
        });
      } finally {
        await this.putconn(conn);
      }
      await sleep((5 + Math.random() * 20) * 2 ** Math.min(attempt, 6));
    }
  }

  /**
   * Probes every idle connection; broken ones are discarded (counted in
   * `connectionsLost`) and replaced.
   *
   * @example
   * ```ts
   * import { ConnectionPool } from "@tidepool/pg";
   * const pool = new ConnectionPool({ conninfo: Deno.env.get("DATABASE_URL") });
   * await pool.check();
   * await pool.close();
   * ```
   */
  async check(): Promise<void> {
    if (this.#state === "closed") throw this.#closedError();
    const entries = this.#idle.drain();
    for (const entry of entries) entry.state = "reserved";
    await Promise.all(entries.map(async (entry) => {
      try {
        // A blackholed socket never answers: bound the probe like a connection attempt.
        await within(
          this.#driver.ping(entry.conn),
          this.#o.connectTimeout,
          () => new PoolTimeoutError(`The probe of pool '${this.#name}' got no answer in ${this.#o.connectTimeout} ms`),
        );
      } catch (error) {
        this.#failedCheck(entry, error);
        return;
      }
      this.#release(entry);
    }));
    this.#maybeGrow();
  }

  /**
   * Changes `minSize` and `maxSize`. Growing starts new connections; shrinking
   * closes idle connections above the new maximum (in-use ones close when returned).
   *
   * @param minSize New minimum.
   * @param maxSize New maximum (default: `minSize`).
   * @throws {RangeError} As for the constructor's options.
   * @example
   * ```ts
   * import { ConnectionPool } from "@tidepool/pg";
   * const pool = new ConnectionPool({ conninfo: Deno.env.get("DATABASE_URL"), minSize: 1 });
   * await pool.resize(2, 20);
   * await pool.close();
   * ```
   */
  resize(minSize: number, maxSize: number = minSize): Promise<void> {
    // Bad arguments throw at the call, like the constructor's options; a closed pool rejects.
    const min = count(minSize, "minSize", 0);
    const max = count(maxSize, "maxSize", min, 0, true);
    if (max === 0) {
      throw new RangeError("Invalid option 'maxSize': must be at least 1");
    }
    if (max < min) {
      throw new RangeError(
        `Invalid option 'maxSize': ${max} is less than minSize ${min}`,
      );
    }
    if (this.#state === "closed") return Promise.reject(this.#closedError());
    this.#o.minSize = min;
    this.#o.maxSize = max;
    while (this.#all.size + this.#pending > max && this.#idle.length > 0) {
      this.#discard(this.#idle.shift()!);
    }
    this.#maybeGrow();
    this.#notifyReady(); // a lower minSize may already be met
    return RESOLVED;
  }

  /**
   * Current values and counters (psycopg_pool's `get_stats()`).
   *
   * @example
   * ```ts
   * import { ConnectionPool } from "@tidepool/pg";
   * const pool = new ConnectionPool({ conninfo: Deno.env.get("DATABASE_URL") });
   * console.log(pool.getStats().poolSize);
   * ```
   */
  getStats(): PoolStats {
    return {
      poolMin: this.#o.minSize,
      poolMax: this.#o.maxSize,
      poolSize: this.#all.size + this.#pending,
      poolAvailable: this.#idle.length,
      requestsWaiting: this.#waiters.size + (this.#lane?.waiting() ?? 0),
      ...this.#counters,
    };
  }

  /**
   * Like `getStats()`, and resets the counters.
   *
   * @example
   * ```ts
   * import { ConnectionPool } from "@tidepool/pg";
   * const pool = new ConnectionPool({ conninfo: Deno.env.get("DATABASE_URL") });
   * const stats = pool.popStats();
   * ```
   */
  popStats(): PoolStats {
    const stats = this.getStats();
    this.#counters = zeroCounters();
    return stats;
  }

  /**
   * Closes the pool: waiters get `PoolClosedError`, idle connections close,
   * connection attempts stop. Connections still out are closed when returned;
   * after `timeout` ms any still out are closed anyway, so no socket outlives
   * the pool.
   *
   * @param options `timeout` in ms to wait for borrowed connections (default 5000).
   * @example
   * ```ts
   * import { ConnectionPool } from "@tidepool/pg";
   * const pool = new ConnectionPool({ conninfo: Deno.env.get("DATABASE_URL") });
   * await pool.close({ timeout: 1_000 });
   * ```
   */
  close(options: { timeout?: number } = {}): Promise<void> {
    const timeout = duration(options.timeout, "timeout", 5_000);
    // A second close() (a shutdown handler and `await using`) waits for the first one's work.
    return this.#closeWork ??= this.#close(timeout);
  }

  async #close(timeout: number): Promise<void> {
    this.#state = "closed";
    this.#log.debug("Pool {pool} closing", { pool: this.#name });
    this.#closing.abort(this.#closedError());
    this.#timers.cancelAll();
    this.#pending -= this.#retrying;
    this.#retrying = 0;
    this.#waiters.rejectAll(() => this.#closedError()); // also stops the deadline timer
    this.#lane?.close();
    for (const waiter of this.#readyWaiters) waiter.reject(this.#closedError());
    for (const entry of this.#idle.drain()) this.#discard(entry);
    if (this.#all.size > 0) { // borrowed or being returned: #all holds no closed entry
      const returned = this.#allReturned = new Waiter<void>();
      const timer = setTimeout(() => returned.resolve(), Math.min(timeout, MAX_DELAY));
      returned.onSettle(() => clearTimeout(timer));
      await returned.promise;
      for (const entry of this.#all) {
        this.#log.warn(
          "Pool {pool}: closing a connection still borrowed after {timeout} ms",
          {
            pool: this.#name,
            timeout,
          },
        );
        this.#discard(entry);
      }
    }
    await this.#settleCloses();
    this.#sharing?.close(); // after the Workers' leases came back or were closed
  }

  /**
   * A port through which a Worker borrows this pool's connections: pass it to
   * `attachPool(port)` inside the Worker (transfer it). One port per Worker;
   * every isolate shares this pool's `maxSize`. See {@linkcode ShareOptions}
   * for how a dead Worker's connections come back.
   *
   * @param options `heartbeatTimeout` (ms, default 5000) and the `worker`, for a faster reclaim on its `error` event.
   * @returns The port to transfer to the Worker.
   * @throws {PoolClosedError} The pool is closed.
   * @example
   * ```ts
   * import { ConnectionPool } from "@tidepool/pg";
   * const pool = new ConnectionPool({ conninfo: Deno.env.get("DATABASE_URL"), maxSize: 8 });
   * const worker = new Worker(new URL("./job.ts", import.meta.url), { type: "module" });
   * const port = pool.share({ worker });
   * worker.postMessage({ pool: port }, [port]); // the Worker calls attachPool(e.data.pool)
   * ```
   */
  share(options?: ShareOptions): MessagePort {
    this.#sharing ??= new SharedPool<C>(this, {
      flavor: "pool",
      acquire: (request) => this.getconn(request),
      release: (conn) => this.putconn(conn),
      query: (conn, text, params) => this.#driver.query(conn, text, params),
      status: (conn) => this.#driver.status(conn),
    });
    return this.#sharing.share(options);
  }

  /** `await using pool = new ConnectionPool(...)` closes it at scope exit. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /** What `Deno.inspect(pool)` and `console.log(pool)` show: no secrets. */
  [Symbol.for("Deno.customInspect")](): string {
    return `${this.constructor.name} ${Deno.inspect(this.toJSON())}`;
  }

  /**
   * A summary without secrets, for logs and `JSON.stringify`.
   *
   * @example
   * ```ts
   * import { ConnectionPool } from "@tidepool/pg";
   * const pool = new ConnectionPool({ conninfo: "postgres://u:secret@localhost/db" });
   * console.log(JSON.stringify(pool)); // no "secret" in it
   * ```
   */
  toJSON(): {
    name: string;
    target: string;
    state: string;
    minSize: number;
    maxSize: number;
    size: number;
    idle: number;
    waiting: number;
  } {
    return {
      name: this.#name,
      target: this.#driver.description,
      state: this.#state,
      minSize: this.#o.minSize,
      maxSize: this.#o.maxSize,
      size: this.#all.size + this.#pending,
      idle: this.#idle.length,
      waiting: this.#waiters.size,
    };
  }

  /** @internal Age of the oldest waiter, in ms, for invariant checks in tests. */
  oldestWaiterAge(): number {
    return this.#waiters.oldestAge(Date.now());
  }

  // ---- checkout -------------------------------------------------------------

  /** Pops a usable idle connection; expired ones met on the way are replaced. */
  #takeIdle(now: number): Entry<C> | undefined {
    for (;;) {
      const entry = this.#o.order === "fifo" ? this.#idle.shift() : this.#idle.pop();
      if (entry === undefined) return undefined;
      if (now < entry.expiresAt && !entry.lost) {
        if (this.#idle.length < this.#idleLow) this.#idleLow = this.#idle.length;
        return entry;
      }
      entry.state = "reserved";
      this.#discard(entry);
    }
  }

  /** An idle connection lent at once (getconn's fast path, and the pipelining lane's), or undefined. */
  #lendIdle(): C | undefined {
    if (this.#state !== "open" || this.#check !== undefined || this.#idle.length === 0) return undefined;
    const now = Date.now();
    const entry = this.#takeIdle(now);
    if (entry === undefined) return undefined;
    this.#lend(entry, now);
    return entry.conn;
  }

  #lend(entry: Entry<C>, now: number, origin?: string): void {
    entry.state = "in_use";
    entry.lentAt = now;
    this.#leaks.lent(entry as Entry<unknown>, origin);
  }

  /** Checkout with a `check` callback: each candidate is probed, failures discarded, within one deadline. */
  async #getconnChecked(options: GetconnOptions | undefined): Promise<PooledConnection<C>> {
    const timeout = this.#requestTimeout(options);
    const deadline = performance.now() + timeout;
    const origin = this.#leaks.capture(); // before the first await, while the borrower is on the stack
    for (;;) {
      const entry = this.#takeIdle(Date.now()) ??
        await this.#enqueue(
          { timeout: Math.max(0, deadline - performance.now()), signal: options?.signal },
          false,
          timeout,
        );
      if (this.#state === "closed") {
        this.#discard(entry);
        throw this.#closedError();
      }
      entry.state = "reserved";
      const left = deadline - performance.now();
      if (left <= 0) {
        this.#release(entry);
        this.#counters.requestsErrors++;
        throw this.#timeoutError(timeout);
      }
      try {
        // The callback shares the request's deadline: a check that hangs must not make getconn hang.
        await within(
          Promise.resolve(this.#check!(entry.conn)),
          left,
          () => new PoolTimeoutError("check() did not finish in time"),
        );
      } catch (error) {
        this.#failedCheck(entry, error);
        continue;
      }
      if (this.closed || (entry.state as string) === "closed") {
        // close() ran during the check: the pool is gone, whatever the check said.
        this.#discard(entry);
        throw this.#closedError();
      }
      this.#lend(entry, Date.now(), origin);
      return entry.conn as PooledConnection<C>;
    }
  }

  /** A probe or `check` callback failed: the connection was lost (connectionsLost); replace it. */
  #failedCheck(entry: Entry<C>, error: unknown): void {
    this.#counters.connectionsLost++;
    this.#log.warn("Pool {pool}: discarding a connection that failed check: {error}", {
      pool: this.#name,
      error: describeError(error),
    });
    this.#discard(entry);
  }

  #requestTimeout(options: GetconnOptions | undefined): number {
    return options?.timeout === undefined ? this.#o.timeout : duration(options.timeout, "timeout", 0);
  }

  /**
   * Queues a request until a connection is handed to it, its deadline passes,
   * or its signal aborts. With `lend`, it resolves with the connection already
   * lent; without, with the entry (the checked path lends after its check).
   */
  #enqueue(options: GetconnOptions | undefined, lend: true): Promise<C>;
  #enqueue(options: GetconnOptions | undefined, lend: false, reported: number): Promise<Entry<C>>;
  #enqueue(options: GetconnOptions | undefined, lend: boolean, reported?: number): Promise<C | Entry<C>> {
    if (this.#state === "closed") return Promise.reject(this.#closedError());
    let timeout: number;
    try {
      timeout = this.#requestTimeout(options);
    } catch (error) {
      return Promise.reject(error);
    }
    if (this.#o.maxWaiting > 0 && this.#waiters.size >= this.#o.maxWaiting) {
      this.#counters.requestsErrors++;
      return Promise.reject(
        new TooManyRequestsError(
          `Pool '${this.#name}' refused a request: ${this.#o.maxWaiting} requests already waiting (maxWaiting); ${this.#counts()}`,
        ),
      );
    }
    const waiter = new Waiter<C | Entry<C>>(Date.now());
    waiter.deadline = waiter.enqueuedAt + timeout;
    waiter.timeout = reported ?? timeout;
    waiter.lend = lend;
    waiter.origin = this.#leaks.capture();
    this.#counters.requestsQueued++;
    this.#waiters.add(waiter);
    const signal = options?.signal;
    if (signal !== undefined) {
      const onAbort = () => {
        if (waiter.reject(signal.reason)) {
          this.#waiters.forget();
          this.#counters.requestsErrors++;
          this.#counters.requestsWaitMs += Date.now() - waiter.enqueuedAt;
        }
      };
      signal.addEventListener("abort", onAbort, { once: true });
      waiter.onSettle(() => signal.removeEventListener("abort", onAbort));
    }
    this.#maybeGrow();
    return waiter.promise;
  }

  /** A queued request reached its deadline (the queue already dropped it). */
  #timedOut(waiter: Waiter<C | Entry<C>>): void {
    if (waiter.reject(this.#timeoutError(waiter.timeout))) {
      this.#counters.requestsErrors++;
      this.#counters.requestsWaitMs += Date.now() - waiter.enqueuedAt;
    }
  }

  /** Hands a ready connection to the oldest waiter, or makes it idle. */
  #release(entry: Entry<C>, now: number = Date.now()): void {
    if (this.#state === "closed") {
      this.#discard(entry);
      return;
    }
    const waiter = this.#waiters.take();
    if (waiter !== undefined) {
      this.#counters.requestsWaitMs += now - waiter.enqueuedAt;
      if (waiter.lend) {
        this.#lend(entry, now, waiter.origin);
        waiter.resolve(entry.conn);
      } else {
        entry.state = "reserved";
        waiter.resolve(entry);
      }
      return;
    }
    if (
      !this.#policy.keepIdle || this.#all.size + this.#pending > this.#o.maxSize
    ) {
      this.#discard(entry);
      return;
    }
    entry.state = "idle";
    this.#idle.push(entry);
  }

  // ---- return ---------------------------------------------------------------

  async #returnSlow(entry: Entry<C>): Promise<void> {
    if (this.#state === "closed") return this.#discard(entry);
    if (
      !(await prepareForReuse(this.#driver, entry.conn, this.#reset, this.#log, this.#name, this.#o.connectTimeout))
    ) {
      this.#counters.returnsBad++;
      return this.#discard(entry);
    }
    if (Date.now() >= entry.expiresAt) {
      this.#log.debug("Pool {pool}: replacing a connection past maxLifetime", { pool: this.#name });
      return this.#discard(entry);
    }
    this.#release(entry);
  }

  /** `began`: the pool opened the transaction, so anything but open/idle means it did not commit. */
  async #finishTransaction(conn: C, began = false): Promise<void> {
    const status = this.#driver.status(conn);
    const failed = "The transaction failed and was rolled back: an error inside it was caught and ignored";
    if (status === "intrans") {
      // pg rejects a failed query before ReadyForQuery ('E') arrives, so a
      // failed transaction can still look open here; PostgreSQL then answers
      // COMMIT with a ROLLBACK tag and no error.
      const result = await this.#driver.query(conn, "COMMIT");
      if (result.command === "ROLLBACK") throw new PoolError(failed);
    } else if (status === "inerror") throw new PoolError(failed);
    else if (began && status !== "idle") {
      // Lost after fn's last statement: no COMMIT can run, and returning would report a lost write as done.
      throw new PoolError(
        `The transaction did not commit: the connection is ${
          status === "active" ? "still running a query" : "closed or broken"
        }`,
      );
    }
  }

  async #rollbackQuietly(conn: C): Promise<void> {
    const status = this.#driver.status(conn);
    if (status !== "intrans" && status !== "inerror") return;
    try {
      await this.#driver.rollback(conn);
    } catch {
      // The return path sees the connection's state and discards it.
    }
  }

  // ---- growth, loss and shrinking -------------------------------------------

  /** Starts the connection attempts needed now: up to minSize, and one growth for waiters. */
  #maybeGrow(): void {
    if (this.#state !== "open") return;
    const { minSize, maxSize } = this.#o;
    let size = this.#all.size + this.#pending;
    while (size < minSize) {
      this.#startConnect(false);
      size++;
    }
    const waiting = this.#waiters.size;
    if (waiting === 0 || size >= maxSize) return;
    if (this.#policy.growPerWaiter) {
      // One attempt per waiter not already served by an attempt in flight.
      let missing = Math.min(waiting - this.#pending, maxSize - size);
      while (missing-- > 0) this.#startConnect(false);
    } else if (!this.#growing) {
      this.#growing = true;
      this.#startConnect(true);
    }
  }

  #startConnect(growing: boolean): void {
    this.#pending++;
    this.#run(() => this.#connectJob(undefined, growing));
  }

  /** Runs a background job on one of at most numWorkers loops. */
  #run(job: () => Promise<void>): void {
    this.#jobs.push(job);
    if (this.#runningWorkers < this.#o.numWorkers) {
      this.#runningWorkers++;
      void this.#workerLoop();
    }
  }

  async #workerLoop(): Promise<void> {
    try {
      for (
        let job = this.#jobs.shift();
        job !== undefined;
        job = this.#jobs.shift()
      ) {
        try {
          await job();
        } catch (error) {
          this.#log.error("Pool {pool}: background job failed: {error}", {
            pool: this.#name,
            error: describeError(error),
          });
        }
      }
    } finally {
      this.#runningWorkers--;
    }
  }

  /** One connection attempt (psycopg_pool's AddConnection); on failure, retries with backoff. */
  async #connectJob(
    attempt: Backoff | undefined,
    growing: boolean,
  ): Promise<void> {
    if (this.#state === "closed") {
      this.#pending--;
      return;
    }
    const started = performance.now();
    let conn: C;
    try {
      conn = await this.#connectOne();
    } catch (error) {
      this.#connectFailed(error, attempt, growing);
      return;
    }
    this.#pending--;
    this.#toldOutageAt = undefined;
    this.#counters.connectionsNum++;
    this.#counters.connectionsMs += performance.now() - started;
    if (this.closed) { // closed while connecting
      this.#track(this.#driver.close(conn));
      return;
    }
    const entry = this.#adopt(conn);
    if (growing) this.#growing = false;
    this.#release(entry);
    this.#notifyReady();
    this.#maybeGrow();
  }

  async #connectOne(): Promise<C> {
    const conn = await this.#driver.connect(this.#closing.signal);
    if (this.#configure !== undefined) {
      try {
        // Part of the attempt: a configure that hangs must not hold a worker and a slot forever.
        await within(
          Promise.resolve(this.#configure(conn)),
          this.#o.connectTimeout,
          () => new PoolTimeoutError(`configure did not finish in ${this.#o.connectTimeout} ms`),
        );
        if (this.#driver.status(conn) !== "idle") {
          throw new PoolError("configure left the connection not idle");
        }
      } catch (error) {
        await this.#driver.close(conn);
        throw new PoolError(
          `configure failed for a new connection of pool '${this.#name}'`,
          { cause: error },
        );
      }
    }
    return conn;
  }

  #connectFailed(
    error: unknown,
    attempt: Backoff | undefined,
    growing: boolean,
  ): void {
    if (this.#state === "closed") {
      this.#pending--;
      return;
    }
    this.#counters.connectionsErrors++;
    this.#lastError = error instanceof Error ? error : new Error(String(error));
    attempt ??= new Backoff(this.#o.backoff, this.#o.reconnectTimeout);
    if (attempt.expired()) {
      this.#pending--;
      if (growing) this.#growing = false;
      // Attempts started together give up together, and demand keeps starting new ones:
      // tell the app once per reconnectTimeout while the outage lasts, not once per attempt.
      const now = performance.now();
      if (this.#toldOutageAt !== undefined && now - this.#toldOutageAt < this.#o.reconnectTimeout) return;
      this.#toldOutageAt = now;
      this.#log.error(
        "Pool {pool}: giving up reconnecting after {timeout} ms: {error}",
        {
          pool: this.#name,
          timeout: this.#o.reconnectTimeout,
          error: describeError(error),
        },
      );
      try {
        this.#reconnectFailed?.(this);
      } catch (callbackError) {
        this.#log.error("Pool {pool}: reconnectFailed threw: {error}", {
          pool: this.#name,
          error: describeError(callbackError),
        });
      }
      return;
    }
    const delay = attempt.next();
    this.#log.warn(
      "Pool {pool}: connection attempt failed, retrying in {delay} ms: {error}",
      {
        pool: this.#name,
        delay: Math.round(delay),
        error: describeError(error),
      },
    );
    this.#retrying++;
    this.#timers.after(delay, () => {
      this.#retrying--;
      this.#run(() => this.#connectJob(attempt, growing));
    });
  }

  /** Takes a fresh connection under the pool's care. */
  #adopt(conn: C): Entry<C> {
    // Jitter the lifetime down 5-10% so connections opened together do not all expire together.
    // maxLifetime 0 = no limit, as maxIdle 0 is no shrinking (HikariCP's meaning too).
    const lifetime = this.#o.maxLifetime === 0 ? Infinity : this.#o.maxLifetime * (1 - 0.05 - Math.random() * 0.05);
    const entry = new Entry<C>(conn, this, Date.now() + lifetime);
    attachEntry(entry);
    this.#all.add(entry);
    this.#driver.watch(conn, (error) => this.#onLost(entry, error));
    // Beyond a timer's range (~24.8 days) the checks on checkout and return are enough.
    if (lifetime <= MAX_DELAY) {
      entry.expiryTimer = this.#timers.after(lifetime, () => {
        entry.expiryTimer = undefined;
        if (entry.state !== "idle") return; // a borrowed one is replaced on return
        this.#idle.remove(entry);
        entry.state = "reserved";
        this.#log.debug(
          "Pool {pool}: replacing an idle connection past maxLifetime",
          { pool: this.#name },
        );
        this.#discard(entry);
      });
    }
    return entry;
  }

  /** The socket of a connection died by itself. An idle one is replaced before anyone borrows it. */
  #onLost(entry: Entry<C>, error: Error | undefined): void {
    entry.lost = true;
    if (entry.state !== "idle") return; // borrowed: its borrower sees the error; the return path discards it
    this.#idle.remove(entry);
    entry.state = "reserved";
    this.#counters.connectionsLost++;
    this.#log.warn("Pool {pool}: an idle connection was lost: {error}", {
      pool: this.#name,
      error: error ? describeError(error) : "connection ended",
    });
    this.#discard(entry);
  }

  /** Closes a connection for good and starts a replacement if the pool needs one. */
  #discard(entry: Entry<C>): Promise<void> {
    if (entry.state === "closed") return RESOLVED;
    entry.state = "closed";
    this.#all.delete(entry);
    this.#timers.cancel(entry.expiryTimer);
    this.#leaks.returned(entry as Entry<unknown>);
    const closed = this.#track(this.#driver.close(entry.conn));
    if (this.#state === "open") this.#maybeGrow();
    else if (this.#all.size === 0) {
      this.#allReturned?.resolve();
    }
    return closed;
  }

  #track(closing: Promise<void>): Promise<void> {
    const p = closing.catch(() => {}).finally(() => this.#closes.delete(p));
    this.#closes.add(p);
    return p;
  }

  async #settleCloses(): Promise<void> {
    while (this.#closes.size > 0 || this.#pending > 0) {
      if (this.#closes.size > 0) await Promise.all(this.#closes);
      else await sleep(5); // an attempt is finishing its abort
    }
  }

  #startMaintenance(): void {
    const { maxIdle } = this.#o;
    if (maxIdle <= 0) return;
    // psycopg_pool's ShrinkPool: connections that stayed idle through a whole
    // maxIdle period were not needed, whatever the order. Judging by each
    // connection's own idle time would never shrink a FIFO pool under light
    // steady load, which touches every connection in turn.
    this.#idleLow = this.#idle.length;
    this.#timers.every(maxIdle, () => {
      let surplus = Math.min(this.#idleLow, this.#all.size + this.#pending - this.#o.minSize);
      while (surplus-- > 0 && this.#idle.length > 0) {
        const entry = this.#idle.shift()!; // the front has been idle longest, in either order
        entry.state = "reserved";
        this.#log.debug("Pool {pool}: closing a connection not needed for {maxIdle} ms", { pool: this.#name, maxIdle });
        this.#discard(entry);
      }
      this.#idleLow = this.#idle.length;
    });
  }

  #notifyReady(): void {
    if (this.#all.size < this.#o.minSize) return;
    for (const waiter of this.#readyWaiters) waiter.resolve();
  }

  #counts(): string {
    const size = this.#all.size + this.#pending;
    const idle = this.#idle.length;
    let inUse = 0;
    for (const e of this.#all) if (e.state === "in_use") inUse++;
    return `size ${size} (max ${this.#o.maxSize}), idle ${idle}, in use ${inUse}, waiting ${this.#waiters.size}`;
  }

  #timeoutError(timeout: number): PoolTimeoutError {
    return new PoolTimeoutError(
      `Couldn't get a connection from pool '${this.#name}' after ${timeout} ms: ${this.#counts()}`,
      { cause: this.#lastError },
    );
  }

  #closedError(): PoolClosedError {
    return new PoolClosedError(`Pool '${this.#name}' is closed`);
  }
}
