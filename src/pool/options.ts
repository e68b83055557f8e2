/**
 * Validation of `ConnectionPool`'s options (the option interface lives beside
 * the class in `pool.ts`, so this file does not import the pool).
 *
 * @module
 */
import type { BackoffOptions } from "./_backoff.ts";
import { resolvePooler } from "../query/_pooler.ts";
import { callback, checkDriver, count, duration, isConninfo, poolName } from "../_util/_validate.ts";

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
