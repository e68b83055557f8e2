/**
 * `ConnectionPool`: psycopg_pool's pool for Deno.
 *
 * @module
 */
import type * as pg from "../drivers/pg_types.ts";
import type { Logger } from "@logtape/logtape";
import { Drain } from "./_drain.ts";
import { Maintenance } from "./_maintenance.ts";
import type { DeadlineHost, DeadlineOptions } from "../query/deadline.ts";
import { poolerDriver, resolvePooler } from "../query/_pooler.ts";
import { IdleList } from "./_idle.ts";
import { Connections, inspectPool } from "../core/_connections.ts";
import { type Entry, entryOf } from "../core/_entry.ts";
import { Filler } from "./_filler.ts";
import { type LeakDetector, leakDetector } from "./_leak.ts";
import { describeError, poolLogger } from "../_util/_log.ts";
import { prepareForReuse } from "../core/_return_path.ts";
import { cancelPending, cancelUntilIdle } from "../core/_cancels.ts";
import { PipelineLane } from "../query/_pipeline.ts";
import { QueryRouter } from "../query/_router.ts";
import { localHosts } from "../query/_local_host.ts";
import { Timers, within } from "../_util/_timers.ts";
import { Waiter, WaiterQueue } from "./_waiters.ts";
import { offAbort, onAbort } from "../_util/_abort.ts";
import { type Driver, FORGET_SESSION, type ForgetsSession, type QueryResult } from "../driver.ts";
import type { RowShape } from "../driver.ts";
import { lastErrorSuffix, PoolClosedError, PoolError, PoolTimeoutError, TooManyRequestsError } from "../errors.ts";
import {
  checkSizes,
  type ConnectionPoolOptions,
  type GetconnOptions,
  type OpenOptions,
  type PooledConnection,
  type PoolPolicy,
  type PutconnOptions,
  type ResolvedOptions,
  resolveOptions,
} from "./options.ts";
import { count, defaultDriver, duration } from "../_util/_validate.ts";
import { type PoolCounters, type PoolStats, zeroCounters } from "../stats.ts";
import {
  transaction as runTransaction,
  type TransactionHost,
  type TransactionOptions,
  withConnection as runWithConnection,
} from "../query/transaction.ts";
import { poolInfo, SharedPool, type ShareOptions } from "../workers/owner.ts";
import { CapGroupMember } from "../cap_group/_member.ts";
import type { PreparedStatementsOptions } from "../drivers/_statement_cache.ts";

const MODERN: PoolPolicy = { keepIdle: true, growPerWaiter: false };
const RESOLVED: Promise<void> = Promise.resolve();
/** Past close()'s timeout, how long closes may still finish cleanly before their sockets are destroyed. */
const CLOSE_GRACE_MS = 100;
/** Longest close() waits, at its deadline, for the cancels of statements still running (ms). */
const CLOSE_CANCEL_MS = 1_000;
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
  readonly #options: ResolvedOptions;
  readonly #name: string;
  readonly #policy: PoolPolicy;
  readonly #reset: ((conn: C) => Promise<void> | void) | undefined;
  readonly #check: ((conn: C) => Promise<void> | void) | undefined;
  readonly #reconnectFailed: ((pool: ConnectionPool<C>) => void) | undefined;
  readonly #log: Logger;
  readonly #timers = new Timers();
  readonly #leaks: LeakDetector;

  #state: State = "new";
  /** Opening, adopting, discarding and closing connections (src/core/_connections.ts). */
  readonly #connections: Connections<C>;
  /** Every open connection, whatever its state (the lifecycle's set). */
  readonly #all: Set<Entry<C>>;
  readonly #idle = new IdleList<C>();
  readonly #waiters = new WaiterQueue<C | Entry<C>>((waiter) => this.#timedOut(waiter));
  /** Callers of `wait()` / `open({wait})`, settled when `minSize` are ready. */
  readonly #readyWaiters = new Set<Waiter<void>>();
  /** Connection attempts: growth, backoff, the outage report, fail fast. */
  readonly #filler: Filler<C>;
  /** Expiry, keepalive and shrinking, as small jobs on the pool's timers. */
  readonly #maintenance: Maintenance<C>;
  #counters: PoolCounters = zeroCounters();
  /** Connections `drain()` marked for replacement, and the drains waiting for the refill. */
  readonly #drain = new Drain<Entry<C>>();
  /** close() waiting for the borrowed connections to come back. */
  #allReturned: Waiter<void> | undefined;
  /** The work of the first `close()`, returned to every later call. */
  #closeWork: Promise<void> | undefined;
  /** Where `pool.query()` statements are pipelined; undefined when `pipeline` is 1 or the driver cannot. */
  readonly #lane: PipelineLane<C> | undefined;
  /** The ports lent to Workers by `share()`, made on first use. */
  #sharing: SharedPool<C> | undefined;
  /** What `withConnection()` / `transaction()` run against (src/query/transaction.ts). */
  readonly #transactions: TransactionHost<PooledConnection<C>, GetconnOptions | undefined>;
  /** Statements under a deadline (query, withConnection, transaction): cancelled on the server past it. */
  readonly #deadlines: DeadlineHost<C>;
  /** Where `query()` statements run: pipelined, alone, or alone under a deadline. */
  readonly #router: QueryRouter<C>;
  /** The connection budget shared with other isolates (`capGroup`); it wraps #driver. */
  readonly #cap: CapGroupMember | undefined;

  /**
   * Creates a pool. Does no I/O: connections open on `open()` or first use.
   *
   * @param options See {@linkcode ConnectionPoolOptions}.
   * @throws {TypeError} An option has the wrong type or an unknown name.
   * @throws {RangeError} An option is out of range (`maxSize < minSize`, negative duration, ...).
   */
  constructor(options: ConnectionPoolOptions<C>);
  /** @internal @ignore Subclasses pass a policy and their defaults. */
  constructor(
    options: ConnectionPoolOptions<C>,
    policy: PoolPolicy,
    defaults: { minSize: number; maxSize?: number; pipeline?: number },
  );
  /** @ignore The implementation: hidden from the docs like the internal overload. */
  constructor(
    options: ConnectionPoolOptions<C>,
    policy: PoolPolicy = MODERN,
    defaults: { minSize: number; maxSize?: number; pipeline?: number } = { minSize: 4 },
  ) {
    this.#options = resolveOptions(options, defaults);
    this.#policy = policy;
    this.#name = this.#options.name ?? `pool-${++poolCounter}`;
    const prepared = this.#preparedFor(options.driver !== undefined);
    const driver = options.driver ?? defaultDriver<C>(options.conninfo!, this.#options.connectTimeout, prepared);
    // Behind a transaction pooler every connection the driver opens checks its statements (src/query/_pooler.ts).
    const checked = resolvePooler(this.#options.pooler, options.reset === ConnectionPool.discardAll)
      ? poolerDriver(driver)
      : driver;
    this.#cap = this.#options.capGroup === undefined ? undefined : new CapGroupMember(
      this.#options.capGroup,
      this.#options.maxSize,
      this.#options.minSize,
      {
        shedIdle: (evenMinSize) => this.#shedIdle(evenMinSize),
        clampMinSize: (minSize) => void this.resize(minSize, this.#options.maxSize).catch(() => {}),
        waiting: () => this.#waiters.size,
        log: poolLogger(this.#name),
        pool: this.#name,
      },
    );
    // Every connect reserves a group slot first; every close frees it once the socket closed.
    this.#driver = this.#cap?.wrap(checked) ?? checked;
    this.#reset = options.reset;
    this.#check = options.check;
    this.#reconnectFailed = options.reconnectFailed;
    this.#log = poolLogger(this.#name);
    this.#connections = new Connections<C>({
      driver: this.#driver,
      name: this.#name,
      log: this.#log,
      configure: options.configure,
      connectTimeout: this.#options.connectTimeout,
    });
    this.#all = this.#connections.all;
    this.#filler = new Filler<C>({
      name: this.#name,
      log: this.#log,
      options: this.#options,
      timers: this.#timers,
      growPerWaiter: policy.growPerWaiter,
      state: () => this.#state,
      size: () => this.#all.size,
      waiting: () => this.#waiters.size,
      counters: () => this.#counters,
      open: () => this.#connections.open(),
      close: (conn) => void this.#connections.close(conn),
      epoch: () => this.#drain.epoch,
      connected: (conn, epoch) => this.#connected(conn, epoch),
      failedForGood: () => this.#refuseWaiters(),
      reconnectFailed: () => this.#reconnectFailed?.(this),
    });
    this.#maintenance = new Maintenance<C>({
      name: this.#name,
      log: this.#log,
      options: this.#options,
      timers: this.#timers,
      idle: this.#idle,
      isOpen: () => this.#state === "open",
      size: () => this.#poolSize(),
      ping: (conn) => this.#driver.ping(conn),
      release: (entry) => this.#makeAvailable(entry),
      discard: (entry) => void this.#discard(entry),
      failed: (entry, error) => this.#failedCheck(entry, error),
    });
    const hosts = localHosts<PooledConnection<C>, GetconnOptions | undefined>({
      name: this.#name,
      log: this.#log,
      driver: this.#driver as Driver<PooledConnection<C>>, // a lent connection is the driver's own object
      finishTimeout: this.#options.connectTimeout,
      getconn: (options) => this.getconn(options),
      putconn: (conn) => this.putconn(conn),
      closedError: () => this.closed ? this.#closedError() : undefined,
      counters: () => this.#counters,
    });
    this.#deadlines = hosts.deadlines;
    this.#transactions = hosts.tx;
    this.#leaks = leakDetector(
      this.#options.leakDetectionThreshold,
      this.#timers,
      this.#log,
      this.#name,
    );
    this.#lane = this.#options.pipeline > 1 && this.#driver.setPipelined !== undefined
      ? new PipelineLane(this.#driver, this.#options.pipeline, {
        name: this.#name,
        timeout: () => this.#options.timeout,
        takeIdle: () => this.#lendIdle(),
        acquire: () => {
          const conn = this.getconn();
          this.#counters.requestsNum--; // the statements it serves were counted by query()
          return conn;
        },
        release: (conn) => this.putconn(conn),
        waiting: () => this.#waiters.size,
        // With a capGroup, only while the group has a free slot: growth is an opportunity, never a wait on others.
        canGrow: () =>
          this.#state === "open" && this.#poolSize() < this.#options.maxSize &&
          (this.#cap?.hasRoom() ?? true),
        tooMany: () => this.#overMaxWaiting(),
        timeoutError: (timeout, detail) => this.#timeoutError(timeout, detail),
        yieldSoon: this.#cap === undefined ? undefined : () => this.#cap!.contended(),
      })
      : undefined;
    this.#router = new QueryRouter<C>({
      driver: this.#driver,
      deadlines: this.#deadlines,
      lane: this.#lane,
      getconn: (options) => this.getconn(options),
      putconn: (conn) => this.putconn(conn),
      counted: () => void this.#counters.requestsNum++,
    });
  }

  /**
   * The statement cache the default driver gets: off behind a transaction pooler unless asked for (a prepared
   * statement lives in one server session; PgBouncer >= 1.21 with `max_prepared_statements` keeps them).
   */
  #preparedFor(customDriver: boolean): PreparedStatementsOptions | false | undefined {
    const given = this.#options.preparedStatements;
    if (customDriver && given !== undefined) {
      throw new TypeError(
        "Invalid option 'preparedStatements': with 'driver', set it on the driver: createPgDriver(conninfo, { preparedStatements })",
      );
    }
    return given ?? (this.#options.pooler === "transaction" ? false : undefined);
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
   * prepared statements, LISTEN, advisory locks, and resets the role. On a
   * `pg.Client` it also undoes the borrower's JS-side changes: type parsers
   * (`setTypeParser`) and event listeners added since the pool adopted the
   * connection (after `configure`) are dropped.
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
    // The driver forgets what it cached about the session (pg: prepared statement names, and the type
    // parsers and listeners the borrower added).
    (conn as ForgetsSession)[FORGET_SESSION]?.();
  }

  /** The pool's name, used in logs, errors and metrics. */
  get name(): string {
    return this.#name;
  }
  /** Connections kept open. */
  get minSize(): number {
    return this.#options.minSize;
  }
  /** Most connections open at once. */
  get maxSize(): number {
    return this.#options.maxSize;
  }
  /** True once `close()` was called; a closed pool never reopens. */
  get closed(): boolean {
    return this.#state === "closed";
  }
  /** Default wait of `getconn()`, in ms. */
  get timeout(): number {
    return this.#options.timeout;
  }
  /** Longest life of a connection, in ms (`maxLifetime`). */
  get maxLifetime(): number {
    return this.#options.maxLifetime;
  }
  /** Longest idle time of a connection above `minSize`, in ms (`maxIdle`). */
  get maxIdle(): number {
    return this.#options.maxIdle;
  }
  /** Whether idle sockets let the process exit (`allowExitOnIdle`). */
  get allowExitOnIdle(): boolean {
    return this.#options.allowExitOnIdle;
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
      this.#maintenance.start();
      this.#cap?.start(); // joins the group now, so its figures show before the first connection
      this.#filler.maybeGrow();
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
    if (this.#all.size >= this.#options.minSize) return RESOLVED;
    const waiter = new Waiter<void>();
    this.#readyWaiters.add(waiter);
    waiter.expireAfter(
      timeout,
      (w) =>
        w.reject(
          new PoolTimeoutError(
            `Pool '${this.#name}' not ready after ${Math.round(timeout)} ms: ${this.#counts()}${
              lastErrorSuffix(this.#filler.lastError)
            }`,
            { cause: this.#filler.lastError },
          ),
        ),
      () => this.#readyWaiters.delete(waiter),
    );
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
    // Validated once, whether or not a connection is idle: a bad timeout is a bug to surface now.
    let timeout = this.#options.timeout;
    if (options?.timeout !== undefined) {
      try {
        timeout = duration(options.timeout, "timeout", 0);
      } catch (error) {
        return Promise.reject(error);
      }
    }
    if (this.#check !== undefined) return this.#getconnChecked(timeout, options?.signal);
    const conn = this.#lendIdle();
    if (conn !== undefined) return Promise.resolve(conn as PooledConnection<C>);
    // The connection that frees first is lent inside #makeAvailable and handed over
    // as is: one waiter, one promise, no async wrapper.
    return this.#enqueue(timeout, options?.signal, true) as Promise<PooledConnection<C>>;
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
   * replaced; one past `maxLifetime` is replaced. With `{ discard: true }` it is
   * closed and replaced whatever its state.
   *
   * @param conn A connection from `getconn()`.
   * @param options `discard: true` closes the connection instead of keeping it.
   * @throws {PoolError} The connection is not from this pool or was already returned.
   * @example
   * ```ts
   * import { ConnectionPool } from "@tidepool/pg";
   * const pool = new ConnectionPool({ conninfo: Deno.env.get("DATABASE_URL") });
   * const conn = await pool.getconn();
   * await pool.putconn(conn);
   * const suspect = await pool.getconn();
   * await pool.putconn(suspect, { discard: true }); // closed; the pool opens a replacement
   * await pool.close();
   * ```
   */
  putconn(conn: C, options?: PutconnOptions): Promise<void> {
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
    entry.moveTo("reserved");
    if (options?.discard === true) return this.#discard(entry);
    if (this.#cap?.yieldOnReturn()) return this.#discard(entry); // the capGroup needs the slot elsewhere
    if (
      this.#state === "open" && this.#reset === undefined &&
      now < entry.expiresAt &&
      this.#driver.status(entry.conn) === "idle" && !cancelPending(entry.conn)
    ) {
      this.#makeAvailable(entry, now);
      return RESOLVED;
    }
    return this.#returnSlow(entry);
  }

  /**
   * Runs `fn` with a connection; commits a transaction left open on success,
   * rolls back on throw, and always returns the connection.
   *
   * @param fn Work to do with the connection.
   * @param options One deadline for the wait and `fn`: `timeout` (ms) and/or `signal`. Past it the statement
   *   running is cancelled on the server (57014) and a transaction left open is rolled back, never committed.
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
  withConnection<T>(
    fn: (conn: PooledConnection<C>) => Promise<T> | T,
    options?: GetconnOptions,
  ): Promise<T> {
    return runWithConnection(this.#transactions, fn, options);
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
   * @param options One deadline for the wait and the statement: `timeout` (ms) and/or an abort `signal`. Past it
   *   a running statement is cancelled on the server and the call rejects with its error (code 57014); the
   *   connection is kept. Still waiting for a connection: `PoolTimeoutError` (or the signal's reason). A call
   *   with a deadline is never pipelined: it runs on a connection of its own, since the cancel would stop
   *   whatever runs on that connection.
   *   `rowMode` and `types` as in pg's query config (what `toPgPool`'s `query()` passes).
   * @returns The driver's result (`rows`, `rowCount`, `fields`).
   * @throws {ConnectionLostError} The connection was lost with the pipelined statement in flight: it may have run.
   * @throws {PoolTimeoutError} No connection or pipeline slot within the pool's `timeout`.
   * @throws {TypeError} / {RangeError} `timeout` or `signal` is invalid (the message names it).
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
    options?: DeadlineOptions & RowShape,
  ): Promise<QueryResult<R>> {
    return this.#router.query<R>(text, params, options);
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
  transaction<T>(
    fn: (conn: PooledConnection<C>) => Promise<T> | T,
    options: TransactionOptions = {},
  ): Promise<T> {
    return runTransaction(this.#transactions, fn, options);
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
    const entries = this.#idle.takeAll();
    await Promise.all(entries.map(async (entry) => {
      try {
        // A blackholed socket never answers: bound the probe like a connection attempt.
        await within(
          this.#driver.ping(entry.conn),
          this.#options.connectTimeout,
          () =>
            new PoolTimeoutError(
              `The probe of pool '${this.#name}' got no answer in ${this.#options.connectTimeout} ms`,
            ),
        );
      } catch (error) {
        this.#failedCheck(entry, error);
        return;
      }
      this.#makeAvailable(entry);
    }));
    this.#filler.maybeGrow();
  }

  /**
   * Replaces every connection (psycopg_pool 3.3's `drain()`): idle ones are
   * closed now, borrowed ones when they come back, and attempts already under
   * way open connections that are closed too. New connections are opened
   * meanwhile (with a `conninfo` function, from its current result), so
   * requests keep being served. Use it after rotating credentials.
   *
   * @param options `timeout` in ms (default: the pool's `timeout`).
   * @returns Resolves when no connection from before the drain is left and the pool is back at `minSize`.
   * @throws {PoolTimeoutError} Not done in time (a borrower holds an old connection, the server is down); the
   *   replacement goes on.
   * @throws {PoolClosedError} The pool is or gets closed.
   * @example Rotate a password
   * ```ts
   * import { ConnectionPool } from "@tidepool/pg";
   * let password = "old";
   * const pool = new ConnectionPool({ conninfo: () => `postgres://app:${password}@localhost/app` });
   * password = "new"; // after ALTER ROLE app PASSWORD 'new'
   * await pool.drain();
   * await pool.close();
   * ```
   */
  drain(options: { timeout?: number } = {}): Promise<void> {
    const timeout = duration(options.timeout, "timeout", this.#options.timeout);
    if (this.#state === "closed") return Promise.reject(this.#closedError());
    if (this.#state === "new") void this.open();
    this.#drain.start(this.#all);
    this.#lane?.retire(); // lane connections are borrowed: replaced on return, like any other
    for (const entry of this.#idle.takeAll()) {
      this.#discard(entry);
    }
    this.#filler.maybeGrow();
    return this.#drain.until(
      () => this.#drain.pending === 0 && this.#all.size >= this.#options.minSize,
      timeout,
      () =>
        new PoolTimeoutError(
          `Pool '${this.#name}' not drained after ${timeout} ms: ${this.#drain.pending} old connections left; ${this.#counts()}`,
          { cause: this.#filler.lastError },
        ),
    );
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
    checkSizes(min, max);
    if (this.#state === "closed") return Promise.reject(this.#closedError());
    this.#options.minSize = this.#cap?.resizeMin(min) ?? min; // a capGroup keeps maxSize - 1 warm in all
    this.#options.maxSize = max;
    while (this.#poolSize() > max && this.#idle.length > 0) {
      this.#discard(this.#idle.shift()!);
    }
    this.#filler.maybeGrow();
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
      poolMin: this.#options.minSize,
      poolMax: this.#options.maxSize,
      poolSize: this.#poolSize(),
      poolAvailable: this.#idle.length,
      requestsWaiting: this.#waiters.size + (this.#lane?.waiting() ?? 0),
      ...this.#counters,
      ...this.#cap?.stats(),
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
   * the pool: a statement still running on one is first cancelled on the
   * server (a CancelRequest; up to 1 s more), so it does not keep running
   * there after close() returned. A write still running then is cancelled
   * and rolls back, unless its COMMIT already got through.
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
    // Everything below is bounded by this deadline (plus a grace for clean closes): then sockets are destroyed.
    const deadline = performance.now() + timeout + CLOSE_GRACE_MS;
    this.#state = "closed";
    this.#log.debug("Pool {pool} closing", { pool: this.#name });
    this.#connections.abort(this.#closedError());
    this.#timers.cancelAll();
    this.#filler.stop();
    this.#waiters.rejectAll(() => this.#closedError()); // also stops the deadline timer
    this.#lane?.close();
    for (const waiter of this.#readyWaiters) waiter.reject(this.#closedError());
    this.#drain.close(() => this.#closedError());
    for (const entry of this.#idle.takeAll()) this.#discard(entry);
    if (this.#all.size > 0) { // borrowed or being returned: #all holds no closed entry
      const returned = this.#allReturned = new Waiter<void>();
      returned.expireAfter(timeout, (w) => w.resolve()); // at the deadline the rest is closed anyway
      await returned.promise;
      await this.#cancelRunning();
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
    await this.#connections.settle(deadline);
    await this.#cap?.close(); // after every connection closed, so the group got each slot back
    this.#sharing?.close(); // after the Workers' leases came back or were closed
  }

  /**
   * At close()'s deadline: statements still running are cancelled on the server before their sockets are
   * destroyed; a closed socket alone leaves a statement running there until it next writes to the client.
   * Bounded by {@linkcode CLOSE_CANCEL_MS}: a cancel that cannot get through does not hold close() up.
   */
  async #cancelRunning(): Promise<void> {
    const cancels: Promise<void>[] = [];
    const until = performance.now() + CLOSE_CANCEL_MS;
    for (const entry of this.#all) {
      if (this.#driver.cancel !== undefined && this.#driver.status(entry.conn) === "active") {
        cancels.push(cancelUntilIdle(this.#driver, entry.conn, until));
      }
    }
    if (cancels.length === 0) return;
    this.#log.warn("Pool {pool}: cancelling {n} statements still running at the close deadline", {
      pool: this.#name,
      n: cancels.length,
    });
    await within(Promise.all(cancels), CLOSE_CANCEL_MS, () => new Error("cancel timed out")).catch(() => {});
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
    this.#sharing ??= new SharedPool<C>(poolInfo(this, this.#options.connectTimeout), {
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
    return inspectPool(this);
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
    connecting: number;
    idle: number;
    waiting: number;
    hosts?: Record<string, number>;
  } {
    return this.#connections.summary<ReturnType<ConnectionPool<C>["toJSON"]>>({
      name: this.#name,
      target: this.#driver.description,
      state: this.#state,
      minSize: this.#options.minSize,
      maxSize: this.#options.maxSize,
      // One meaning of size everywhere (errors, inspect, JSON): open connections; attempts apart.
      size: this.#all.size,
      connecting: this.#filler.pending,
      idle: this.#idle.length,
      waiting: this.#waiters.size,
    });
  }

  // ---- checkout -------------------------------------------------------------

  /** Pops a usable idle connection; expired ones met on the way are replaced. */
  #takeIdle(now: number): Entry<C> | undefined {
    for (;;) {
      const entry = this.#options.order === "fifo" ? this.#idle.shift() : this.#idle.pop();
      if (entry === undefined) return undefined;
      if (now < entry.expiresAt && !entry.lost) {
        this.#maintenance.lent();
        return entry;
      }
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
    if (this.#options.allowExitOnIdle) this.#driver.setRef?.(entry.conn, true); // its borrower awaits it
    entry.moveTo("in_use");
    entry.lease++;
    entry.lentAt = now;
    this.#leaks.lent(entry as Entry<unknown>, origin);
  }

  /** Checkout with a `check` callback: each candidate is probed, failures discarded, within one deadline. */
  async #getconnChecked(timeout: number, signal: AbortSignal | undefined): Promise<PooledConnection<C>> {
    const deadline = performance.now() + timeout;
    const origin = this.#leaks.capture(); // before the first await, while the borrower is on the stack
    for (;;) {
      const entry = this.#takeIdle(Date.now()) ??
        await this.#enqueue(Math.max(0, deadline - performance.now()), signal, false, timeout);
      if (this.#state === "closed") {
        this.#discard(entry);
        throw this.#closedError();
      }
      const left = deadline - performance.now();
      if (left <= 0) {
        this.#makeAvailable(entry);
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
        // Same rule as configure/reset: never lend a connection the callback left in a transaction.
        if (this.#driver.status(entry.conn) !== "idle") throw new PoolError("check left the connection not idle");
      } catch (error) {
        this.#failedCheck(entry, error);
        continue;
      }
      if (this.closed || entry.state === "closed") {
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

  /**
   * Queues a request until a connection is handed to it, its deadline passes,
   * or its signal aborts. With `lend`, it resolves with the connection already
   * lent; without, with the entry (the checked path lends after its check).
   * `timeout` is already validated by `getconn()`.
   */
  #enqueue(timeout: number, signal: AbortSignal | undefined, lend: true): Promise<C>;
  #enqueue(timeout: number, signal: AbortSignal | undefined, lend: false, reported: number): Promise<Entry<C>>;
  #enqueue(timeout: number, signal: AbortSignal | undefined, lend: boolean, reported?: number): Promise<C | Entry<C>> {
    if (this.#state === "closed") return Promise.reject(this.#closedError());
    if (signal?.aborted) { // aborted during an earlier round of #getconnChecked
      this.#counters.requestsErrors++;
      return Promise.reject(signal.reason);
    }
    const refusal = this.#all.size === 0 ? this.#filler.refusal() : undefined;
    if (refusal !== undefined) return this.#refuse(refusal);
    const tooMany = this.#overMaxWaiting();
    if (tooMany !== undefined) return Promise.reject(tooMany);
    const waiter = new Waiter<C | Entry<C>>(Date.now());
    waiter.deadline = waiter.enqueuedAt + timeout;
    waiter.timeout = reported ?? timeout;
    waiter.lend = lend;
    waiter.origin = this.#leaks.capture();
    this.#counters.requestsQueued++;
    this.#waiters.add(waiter);
    if (signal !== undefined) {
      const aborted = () => {
        if (waiter.reject(signal.reason)) {
          this.#waiters.remove(waiter);
          this.#counters.requestsErrors++;
          this.#counters.requestsWaitMs += Date.now() - waiter.enqueuedAt;
        }
      };
      onAbort(signal, aborted);
      waiter.onSettle(() => offAbort(signal, aborted));
    }
    this.#filler.maybeGrow();
    return waiter.promise;
  }

  /**
   * Fail fast: refuses a request that would wait for a connection that cannot open; keeps an attempt going.
   * Demand shortens the backoff: when every attempt sleeps and the last one started `initialDelay` ago or
   * more, one wakes now, so a fixed password heals a busy pool about a second after the fix.
   */
  #refuse(refusal: Error): Promise<never> {
    this.#counters.requestsErrors++;
    this.#filler.refused();
    return Promise.reject(refusal);
  }

  /**
   * Fail fast: an attempt failed in a way waiting will not fix, so every queued request is refused now, but
   * only when nothing could serve them: a connection out (borrowed, being returned) may come back, so while
   * one exists requests wait within their timeout, the attempt's error as their `cause`.
   */
  #refuseWaiters(): void {
    if (this.#all.size > 0) return;
    const refusal = this.#filler.refusal();
    if (refusal === undefined || this.#waiters.size === 0) return;
    this.#counters.requestsErrors += this.#waiters.size;
    this.#waiters.rejectAll(() => this.#filler.refusal());
  }

  /** `TooManyRequestsError` (counted) when `maxWaiting` requests already wait, pipelined statements included. */
  #overMaxWaiting(): TooManyRequestsError | undefined {
    if (this.#options.maxWaiting <= 0) return undefined;
    if (this.#waiters.size + (this.#lane?.waiting() ?? 0) < this.#options.maxWaiting) return undefined;
    this.#counters.requestsErrors++;
    return new TooManyRequestsError(
      `Pool '${this.#name}' refused a request: ${this.#options.maxWaiting} requests already waiting (maxWaiting); ${this.#counts()}`,
    );
  }

  /** A queued request reached its deadline (the queue already dropped it). */
  #timedOut(waiter: Waiter<C | Entry<C>>): void {
    if (waiter.reject(this.#timeoutError(waiter.timeout))) {
      this.#counters.requestsErrors++;
      this.#counters.requestsWaitMs += Date.now() - waiter.enqueuedAt;
    }
  }

  /** Hands a ready connection to the oldest waiter, or makes it idle. */
  #makeAvailable(entry: Entry<C>, now: number = Date.now()): void {
    if (this.#state === "closed" || this.#drain.isStale(entry)) {
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
        waiter.resolve(entry);
      }
      return;
    }
    if (
      !this.#policy.keepIdle || this.#poolSize() > this.#options.maxSize
    ) {
      this.#discard(entry);
      return;
    }
    if (this.#options.allowExitOnIdle) this.#driver.setRef?.(entry.conn, false); // an idle socket keeps nobody waiting
    this.#idle.push(entry);
  }

  // ---- return ---------------------------------------------------------------

  async #returnSlow(entry: Entry<C>): Promise<void> {
    if (this.#state === "closed") return this.#discard(entry);
    if (
      !(await prepareForReuse(
        this.#driver,
        entry.conn,
        this.#reset,
        this.#log,
        this.#name,
        this.#options.connectTimeout,
      ))
    ) {
      this.#counters.returnsBad++;
      return this.#discard(entry);
    }
    if (Date.now() >= entry.expiresAt) {
      this.#log.debug("Pool {pool}: replacing a connection past maxLifetime", { pool: this.#name });
      return this.#discard(entry);
    }
    this.#makeAvailable(entry);
  }

  // ---- growth, loss and shrinking -------------------------------------------

  /** A new connection from the filler: adopted, and handed to a waiter or made idle. */
  #connected(conn: C, epoch: number): void {
    const entry = this.#adopt(conn);
    if (epoch !== this.#drain.epoch) this.#drain.markStale(entry); // started before a drain: old credentials
    this.#makeAvailable(entry);
    this.#notifyReady();
    this.#drain.changed();
  }

  /** Takes a fresh connection under the pool's care. */
  #adopt(conn: C): Entry<C> {
    // Jitter the lifetime down 5-10% so connections opened together do not all expire together.
    // maxLifetime 0 = no limit, as maxIdle 0 is no shrinking (HikariCP's meaning too).
    const lifetime = this.#options.maxLifetime === 0
      ? Infinity
      : this.#options.maxLifetime * (1 - 0.05 - Math.random() * 0.05);
    const entry = this.#connections.adopt(conn, this, Date.now() + lifetime, (lost) => this.#onLostIdle(lost));
    this.#maintenance.expireAfter(entry, lifetime);
    return entry;
  }

  /** An idle connection's socket died by itself: replace it before anyone borrows it. */
  #onLostIdle(entry: Entry<C>): void {
    this.#idle.remove(entry);
    this.#counters.connectionsLost++;
    this.#discard(entry);
  }

  /** Closes a connection for good and starts a replacement if the pool needs one. */
  #discard(entry: Entry<C>): Promise<void> {
    if (entry.state === "closed") return RESOLVED;
    this.#timers.cancel(entry.expiryTimer);
    this.#leaks.returned(entry as Entry<unknown>);
    const closed = this.#connections.discard(entry);
    this.#drain.closed(entry);
    this.#refuseWaiters(); // the last connection that could have come back is gone
    if (this.#state === "open") this.#filler.maybeGrow();
    else if (this.#all.size === 0) {
      this.#allReturned?.resolve();
    }
    return closed;
  }

  /** A waiter in another isolate of the capGroup needs room: close one idle connection above minSize (or at it). */
  #shedIdle(evenMinSize = false): boolean {
    if (this.#state !== "open" || (!evenMinSize && this.#poolSize() <= this.#options.minSize)) {
      return false;
    }
    const entry = this.#idle.shift(); // the front has been idle longest, in either order
    if (entry === undefined) return false;
    this.#discard(entry);
    return true;
  }

  #notifyReady(): void {
    if (this.#all.size < this.#options.minSize) return;
    for (const waiter of this.#readyWaiters) waiter.resolve();
  }

  /** psycopg_pool's pool size: open connections and the attempts under way, what `maxSize` bounds. */
  #poolSize(): number {
    return this.#all.size + this.#filler.pending;
  }

  /** Open connections (`size`) and attempts (`connecting`) counted apart: an attempt in flight is not a connection. */
  #counts(): string {
    const idle = this.#idle.length;
    let inUse = 0;
    for (const e of this.#all) if (e.state === "in_use") inUse++;
    return `size ${this.#all.size} (max ${this.#options.maxSize}), connecting ${this.#filler.pending}, idle ${idle}, in use ${inUse}, waiting ${this.#waiters.size}${
      this.#cap?.describe() ?? ""
    }`;
  }

  #timeoutError(timeout: number, detail = ""): PoolTimeoutError {
    return new PoolTimeoutError(
      `Couldn't get a connection from pool '${this.#name}' after ${Math.round(timeout)} ms${detail}: ${this.#counts()}${
        lastErrorSuffix(this.#filler.lastError)
      }`,
      { cause: this.#filler.lastError },
    );
  }

  #closedError(): PoolClosedError {
    return new PoolClosedError(`Pool '${this.#name}' is closed`);
  }
}
