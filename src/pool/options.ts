/**
 * `ConnectionPool`'s option types and their validation (this file does not
 * import the pool, so validating options loads nothing else of it).
 *
 * @module
 */
import type * as pg from "../drivers/pg_types.ts";
import type { BackoffOptions } from "./_backoff.ts";
import type { Driver } from "../driver.ts";
import type { ConninfoFunction } from "../drivers/pg_conninfo_fn.ts";
// Types only (erased at run time): the callbacks name the pool they are given.
import type { ConnectionPool } from "./connection_pool.ts";
import { resolvePooler } from "../query/_pooler.ts";
import {
  type PreparedStatementsOptions,
  resolvePreparedStatements,
  type StatementCacheConfig,
} from "../drivers/_statement_cache.ts";
import { callback, checkDriver, count, duration, isConninfo, poolName } from "../_util/_validate.ts";

/** A connection lent by a pool: the driver's own object, also `AsyncDisposable` (returns it). */
export type PooledConnection<C> = C & AsyncDisposable;

/**
 * Options of a {@linkcode ConnectionPool}. Every duration is in milliseconds.
 * Unknown option names are refused with a `TypeError`, so a typo never goes
 * unnoticed.
 *
 * @example A pool of 4 to 10 connections
 * ```ts
 * import type { ConnectionPoolOptions } from "@tidepool/pg";
 * const options: ConnectionPoolOptions = {
 *   conninfo: "postgres://app@localhost/app",
 *   minSize: 4,
 *   maxSize: 10,
 *   timeout: 5_000,
 * };
 * ```
 */
export interface ConnectionPoolOptions<C extends object = pg.Client> {
  /**
   * Connection string or `pg.ClientConfig`, or a function (sync or async) returning one, called for every new
   * connection (rotating passwords, IAM tokens); it shares `connectTimeout` with the attempt, its errors are
   * connection errors and its result is never logged. Required unless `driver` is given.
   */
  conninfo?: string | pg.ClientConfig | ConninfoFunction;
  /** A driver to use instead of node-postgres (tests, benchmarks, other drivers). */
  driver?: Driver<C>;
  /**
   * Connections kept open. @default 4, or `maxSize` when that is below 4 (0 for NullConnectionPool)
   */
  minSize?: number;
  /**
   * Most connections open at once. @default minSize, or 10 when minSize is 0 (unbounded for NullConnectionPool)
   */
  maxSize?: number;
  /** Name used in logs, errors and metrics. @default "pool-1", "pool-2", ... */
  name?: string;
  /** Longest wait of `getconn`/`connection` for a connection, in ms. @default 30000 */
  timeout?: number;
  /** Requests allowed to queue; 0 = unbounded. @default 0 */
  maxWaiting?: number;
  /** A connection is replaced after this long (jittered down 5-10%); 0 = never. @default 3600000 */
  maxLifetime?: number;
  /** Idle connections above minSize are closed after this long; 0 = never. @default 600000 */
  maxIdle?: number;
  /** Give up re-filling after failures for this long, then call `reconnectFailed`. @default 300000 */
  reconnectTimeout?: number;
  /** Called when re-filling gave up after `reconnectTimeout`. @default none */
  reconnectFailed?: (pool: ConnectionPool<C>) => void;
  /** Concurrent background connection attempts. @default 3 */
  numWorkers?: number;
  // The callbacks' parameters are NoInfer: C comes from `driver` (else pg.Client), never from a
  // callback such as `ConnectionPool.discardAll`, whose `{ query(): Promise<unknown> }` would become C.
  /** Runs on each new connection before first use; a throw discards it. @default none */
  configure?: (conn: NoInfer<C>) => Promise<void> | void;
  /** Runs on each returned connection; a throw discards it. @default none */
  reset?: (conn: NoInfer<C>) => Promise<void> | void;
  /** Runs on checkout; a connection that fails it is discarded. @default none */
  check?: (conn: NoInfer<C>) => Promise<void> | void;
  /** Which idle connection is handed out first: the most recently returned (`"lifo"`) or the longest idle. @default "lifo" */
  order?: "fifo" | "lifo";
  /** Warn with the borrower's stack when a connection stays out this long; 0 = off. @default 0 */
  leakDetectionThreshold?: number;
  /** Limit of one connection attempt, and of configure/reset/rollback/probes, in ms; 0 = none. @default 10000 */
  connectTimeout?: number;
  /** Reconnect backoff: start, growth, jitter and ceiling. @default { initialDelay: 1000, multiplier: 2, jitter: 0.1, maxDelay: 4000 } */
  backoff?: BackoffOptions;
  /**
   * Probe idle connections this often (one at a time, never a borrowed one) and replace dead ones, so a
   * connection silently dropped by a firewall or NAT is found before a borrower gets it; 0 = off. @default 0
   */
  keepaliveInterval?: number;
  /** When nothing is borrowed or waiting, the pool's sockets do not keep the process alive (pg-pool's option). @default false */
  allowExitOnIdle?: boolean;
  /**
   * `"transaction"` when `conninfo` points at PgBouncer, Supavisor or RDS Proxy in transaction mode: named prepared
   * statements and statements that leave session state (`SET` without `LOCAL`, `LISTEN`, session advisory locks,
   * temp tables without `ON COMMIT DROP`, `WITH HOLD` cursors, `PREPARE`, `DISCARD`) are refused with a `TypeError`,
   * and `reset: ConnectionPool.discardAll` is refused. @default undefined (a direct connection)
   */
  pooler?: "transaction";
  /**
   * `pool.query()` statements in flight on one connection (pipelining, drivers that support it); 1 = off.
   * A call with a deadline (`timeout`/`signal`) is never pipelined. With `reset` set the default is 1: statements
   * pipelined together share one session, and no check of their text can prove that none of them changes it (a
   * function may call `set_config`); an explicit `pipeline > 1` with `reset` isolates borrowers from each other,
   * not pipelined statements. @default 16 (1 for NullConnectionPool, and when `reset` is set)
   */
  pipeline?: number;
  /**
   * Share one budget of `maxSize` server connections with the pools of the
   * same name in the other isolates of this process (`deno serve --parallel`,
   * Workers). Each isolate keeps its own sockets. @default none
   */
  capGroup?: string;
  /**
   * The statement cache of the default pg driver: parameterized statements are prepared server-side and reused
   * per connection (`max` kept, least recently used deallocated; prepared from the use after `after`); `false`
   * turns it off. Off behind `pooler: "transaction"` unless given. With `driver`, set it on `createPgDriver`.
   * See docs/statement_cache.md. @default { max: 100, after: 1 }
   */
  preparedStatements?: PreparedStatementsOptions | false;
}

/** Options of `getconn()` / `connection()`. */
export interface GetconnOptions {
  /** Longest wait in ms. @default the pool's `timeout` */
  timeout?: number;
  /** Aborting rejects the request with the signal's reason. */
  signal?: AbortSignal;
}

/** Options of `putconn()`. */
export interface PutconnOptions {
  /**
   * Close the connection instead of keeping it, and open a replacement if the
   * pool needs one (psycopg2's `putconn(conn, close=True)`, pg-pool's
   * `release(err)`): for a connection the borrower no longer trusts.
   * @default false
   */
  discard?: boolean;
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

/** Options after defaults, as the pool core uses them. */
export interface ResolvedOptions {
  minSize: number;
  maxSize: number;
  name: string | undefined;
  timeout: number;
  maxWaiting: number;
  maxLifetime: number;
  maxIdle: number;
  reconnectTimeout: number;
  numWorkers: number;
  order: "fifo" | "lifo";
  leakDetectionThreshold: number;
  connectTimeout: number;
  backoff: Required<BackoffOptions>;
  pipeline: number;
  keepaliveInterval: number;
  allowExitOnIdle: boolean;
  pooler: "transaction" | undefined;
  capGroup: string | undefined;
  preparedStatements: StatementCacheConfig | undefined;
}

/** Every option name `ConnectionPool` accepts; anything else is a TypeError. */
export const OPTION_NAMES: ReadonlySet<string> = new Set([
  "conninfo",
  "driver",
  "minSize",
  "maxSize",
  "name",
  "timeout",
  "maxWaiting",
  "maxLifetime",
  "maxIdle",
  "reconnectTimeout",
  "reconnectFailed",
  "numWorkers",
  "configure",
  "reset",
  "check",
  "order",
  "leakDetectionThreshold",
  "connectTimeout",
  "backoff",
  "pipeline",
  "keepaliveInterval",
  "allowExitOnIdle",
  "pooler",
  "capGroup",
  "preparedStatements",
]);

/** The rule `minSize <= maxSize`, `maxSize >= 1`, shared by the constructor and `resize()`. */
export function checkSizes(minSize: number, maxSize: number): void {
  if (maxSize === 0) {
    throw new RangeError("Invalid option 'maxSize': must be at least 1");
  }
  if (maxSize < minSize) {
    throw new RangeError(
      `Invalid option 'maxSize': ${maxSize} is less than minSize ${minSize}`,
    );
  }
}

/**
 * Validates options and fills defaults. Throws `TypeError` for a wrong type or
 * unknown name, `RangeError` for a value out of range; the message names the option.
 */
export function resolveOptions(
  options: unknown,
  defaults: { minSize: number; maxSize?: number; pipeline?: number },
): ResolvedOptions {
  if (options === undefined) options = {};
  if (
    options === null || typeof options !== "object" || Array.isArray(options)
  ) {
    throw new TypeError("Invalid options: expected an object");
  }
  const o = options as Record<string, unknown>;
  for (const key of Object.keys(o)) {
    if (!OPTION_NAMES.has(key)) throw new TypeError(`Unknown option '${key}'`);
  }
  if (o.driver === undefined) {
    const c = o.conninfo;
    if (c === undefined) {
      throw new TypeError(
        "Invalid option 'conninfo': required when no 'driver' is given",
      );
    }
    if (typeof c !== "function" && !isConninfo(c)) {
      throw new TypeError(
        "Invalid option 'conninfo': expected a string, a pg.ClientConfig object or a function",
      );
    }
  } else checkDriver(o.driver);
  const { minSize, maxSize } = resolveSizes(o.minSize, o.maxSize, defaults);
  poolName(o.name);
  for (const f of ["reconnectFailed", "configure", "reset", "check"]) {
    callback(o[f], f);
  }
  if (o.order !== undefined && o.order !== "fifo" && o.order !== "lifo") {
    throw new TypeError(
      `Invalid option 'order': expected "fifo" or "lifo", got ${String(o.order)}`,
    );
  }
  const backoff = resolveBackoff(o.backoff);
  if (o.allowExitOnIdle !== undefined && typeof o.allowExitOnIdle !== "boolean") {
    throw new TypeError(`Invalid option 'allowExitOnIdle': expected a boolean, got ${typeof o.allowExitOnIdle}`);
  }
  if (o.capGroup !== undefined) {
    if (typeof o.capGroup !== "string") {
      throw new TypeError(`Invalid option 'capGroup': expected a string, got ${typeof o.capGroup}`);
    }
    if (o.capGroup === "") throw new RangeError("Invalid option 'capGroup': must not be empty");
  }
  return {
    minSize,
    maxSize,
    name: o.name as string | undefined,
    timeout: duration(o.timeout, "timeout", 30_000),
    maxWaiting: count(o.maxWaiting, "maxWaiting", 0),
    maxLifetime: duration(o.maxLifetime, "maxLifetime", 3_600_000),
    maxIdle: duration(o.maxIdle, "maxIdle", 600_000),
    reconnectTimeout: duration(o.reconnectTimeout, "reconnectTimeout", 300_000),
    numWorkers: count(o.numWorkers, "numWorkers", 3, 1),
    order: (o.order as "fifo" | "lifo" | undefined) ?? "lifo",
    leakDetectionThreshold: duration(
      o.leakDetectionThreshold,
      "leakDetectionThreshold",
      0,
    ),
    connectTimeout: duration(o.connectTimeout, "connectTimeout", 10_000),
    backoff,
    // With `reset`, pipelined statements would share a session the reset is meant to isolate: off unless asked.
    pipeline: count(o.pipeline, "pipeline", o.reset === undefined ? defaults.pipeline ?? 16 : 1, 1),
    keepaliveInterval: duration(o.keepaliveInterval, "keepaliveInterval", 0),
    allowExitOnIdle: o.allowExitOnIdle === true,
    pooler: resolvePooler(o.pooler),
    capGroup: o.capGroup as string | undefined,
    preparedStatements: resolvePreparedStatements(o.preparedStatements),
  };
}

/** `maxSize` when only `minSize: 0` is given: pg.Pool's default `max`. */
export const DEFAULT_MAX_WHEN_MIN_ZERO = 10;

/**
 * The size rule (README, "Pool size"): with neither set, `minSize` and
 * `maxSize` take the pool's defaults; with only `maxSize`, `minSize` is the
 * default capped at `maxSize` (so `{ maxSize: 2 }` is a pool of up to 2, not
 * an error about a minSize the user never set); with only `minSize`,
 * `maxSize` equals it (psycopg_pool), except `minSize: 0`, which gets
 * pg.Pool's `max` of 10 instead of a silent pool of one.
 */
export function resolveSizes(
  min: unknown,
  max: unknown,
  defaults: { minSize: number; maxSize?: number },
): { minSize: number; maxSize: number } {
  const maxGiven = count(max, "maxSize", -1, 0, true);
  const minSize = count(
    min,
    "minSize",
    maxGiven >= 0 ? Math.min(defaults.minSize, maxGiven) : defaults.minSize,
  );
  const maxSize = maxGiven >= 0 ? maxGiven : defaults.maxSize ?? (minSize === 0 ? DEFAULT_MAX_WHEN_MIN_ZERO : minSize);
  checkSizes(minSize, maxSize);
  return { minSize, maxSize };
}

function resolveBackoff(value: unknown): Required<BackoffOptions> {
  if (value !== undefined && (value === null || typeof value !== "object")) {
    throw new TypeError("Invalid option 'backoff': expected an object");
  }
  const b = (value ?? {}) as Record<string, unknown>;
  for (const key of Object.keys(b)) {
    if (key !== "initialDelay" && key !== "multiplier" && key !== "jitter" && key !== "maxDelay") {
      throw new TypeError(`Unknown option 'backoff.${key}'`);
    }
  }
  const multiplier = duration(b.multiplier, "backoff.multiplier", 2);
  if (multiplier < 1) {
    throw new RangeError(
      "Invalid option 'backoff.multiplier': must be at least 1",
    );
  }
  const jitter = duration(b.jitter, "backoff.jitter", 0.1);
  if (jitter > 1) {
    throw new RangeError(
      "Invalid option 'backoff.jitter': must be between 0 and 1",
    );
  }
  const initialDelay = duration(b.initialDelay, "backoff.initialDelay", 1000);
  // The ceiling never lowers a start delay given above it: `initialDelay: 10_000` alone keeps meaning 10 s.
  const maxDelay = duration(b.maxDelay, "backoff.maxDelay", Math.max(4000, initialDelay));
  if (maxDelay < initialDelay) {
    throw new RangeError("Invalid option 'backoff.maxDelay': must be at least backoff.initialDelay");
  }
  return { initialDelay, multiplier, jitter, maxDelay };
}
