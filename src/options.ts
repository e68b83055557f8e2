/**
 * Options of {@linkcode ConnectionPool} and their validation.
 *
 * @module
 */
import type pg from "pg";
import type { BackoffOptions } from "./_backoff.ts";
import type { Driver } from "./driver.ts";
import type { ConnectionPool } from "./pool.ts";

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
  /** Connection string or `pg.ClientConfig`. Required unless `driver` is given. */
  conninfo?: string | pg.ClientConfig;
  /** A driver to use instead of node-postgres (tests, benchmarks, other drivers). */
  driver?: Driver<C>;
  /** Connections kept open. @default 4 (0 for NullConnectionPool) */
  minSize?: number;
  /** Most connections open at once. @default minSize (unbounded for NullConnectionPool) */
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
  /** Runs on each new connection before first use; a throw discards it. @default none */
  configure?: (conn: C) => Promise<void> | void;
  /** Runs on each returned connection; a throw discards it. @default none */
  reset?: (conn: C) => Promise<void> | void;
  /** Runs on checkout; a connection that fails it is discarded. @default none */
  check?: (conn: C) => Promise<void> | void;
  /** Which idle connection is handed out first: the most recently returned (`"lifo"`) or the longest idle. @default "lifo" */
  order?: "fifo" | "lifo";
  /** Warn with the borrower's stack when a connection stays out this long; 0 = off. @default 0 */
  leakDetectionThreshold?: number;
  /** Limit of one connection attempt, and of configure/reset/rollback/probes, in ms; 0 = none. @default 10000 */
  connectTimeout?: number;
  /** Reconnect backoff: start, growth and jitter. @default { initialDelay: 1000, multiplier: 2, jitter: 0.1 } */
  backoff?: BackoffOptions;
  /** `pool.query()` statements in flight on one connection (pipelining, drivers that support it); 1 = off. @default 16 */
  pipeline?: number;
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
]);

/** Checks one duration option: a finite number >= 0, or the default. */
export function duration(
  value: unknown,
  option: string,
  fallback: number,
  allowInfinity = false,
): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number") {
    throw new TypeError(
      `Invalid option '${option}': expected a number of milliseconds, got ${typeof value}`,
    );
  }
  if (
    Number.isNaN(value) || value < 0 ||
    (!allowInfinity && !Number.isFinite(value))
  ) {
    throw new RangeError(
      `Invalid option '${option}': expected a finite number >= 0, got ${value}`,
    );
  }
  return value;
}

/** Checks one count option: an integer >= `min`, or the default. */
export function count(
  value: unknown,
  option: string,
  fallback: number,
  min = 0,
  allowInfinity = false,
): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number") {
    throw new TypeError(
      `Invalid option '${option}': expected an integer, got ${typeof value}`,
    );
  }
  if (
    !(allowInfinity && value === Infinity) &&
    (!Number.isInteger(value) || value < min)
  ) {
    throw new RangeError(
      `Invalid option '${option}': expected an integer >= ${min}, got ${value}`,
    );
  }
  return value;
}

function fn(value: unknown, option: string): void {
  if (value !== undefined && typeof value !== "function") {
    throw new TypeError(
      `Invalid option '${option}': expected a function, got ${typeof value}`,
    );
  }
}

/**
 * Validates options and fills defaults. Throws `TypeError` for a wrong type or
 * unknown name, `RangeError` for a value out of range; the message names the option.
 */
export function resolveOptions(
  options: unknown,
  defaults: { minSize: number; maxSize?: number },
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
    if (typeof c !== "string" && (c === null || typeof c !== "object")) {
      throw new TypeError(
        "Invalid option 'conninfo': expected a string or a pg.ClientConfig object",
      );
    }
  } else if (
    typeof o.driver !== "object" || o.driver === null ||
    typeof (o.driver as Driver<object>).connect !== "function"
  ) {
    throw new TypeError("Invalid option 'driver': expected a Driver object");
  }
  const minSize = count(o.minSize, "minSize", defaults.minSize);
  const maxSize = count(
    o.maxSize,
    "maxSize",
    defaults.maxSize ?? Math.max(minSize, 1),
    0,
    true,
  );
  if (maxSize === 0) {
    throw new RangeError("Invalid option 'maxSize': must be at least 1");
  }
  if (maxSize < minSize) {
    throw new RangeError(
      `Invalid option 'maxSize': ${maxSize} is less than minSize ${minSize}`,
    );
  }
  if (o.name !== undefined && (typeof o.name !== "string" || o.name === "")) {
    throw new TypeError("Invalid option 'name': expected a non-empty string");
  }
  for (const f of ["reconnectFailed", "configure", "reset", "check"]) {
    fn(o[f], f);
  }
  if (o.order !== undefined && o.order !== "fifo" && o.order !== "lifo") {
    throw new TypeError(
      `Invalid option 'order': expected "fifo" or "lifo", got ${String(o.order)}`,
    );
  }
  const backoff = resolveBackoff(o.backoff);
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
    pipeline: count(o.pipeline, "pipeline", 16, 1),
  };
}

function resolveBackoff(value: unknown): Required<BackoffOptions> {
  if (value !== undefined && (value === null || typeof value !== "object")) {
    throw new TypeError("Invalid option 'backoff': expected an object");
  }
  const b = (value ?? {}) as Record<string, unknown>;
  for (const key of Object.keys(b)) {
    if (key !== "initialDelay" && key !== "multiplier" && key !== "jitter") {
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
  return {
    initialDelay: duration(b.initialDelay, "backoff.initialDelay", 1000),
    multiplier,
    jitter,
  };
}
