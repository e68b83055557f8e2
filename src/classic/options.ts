/**
 * Constructor arguments of the classic (psycopg2-style) pools and their validation.
 *
 * @module
 */
import type * as pg from "../drivers/pg_types.ts";
import type { Driver } from "../driver.ts";
import { callback, checkDriver, count, defaultDriver, duration, isConninfo, poolName } from "../_util/_validate.ts";

/**
 * The options-object form of a classic pool's third argument, for what
 * psycopg2's positional `dsn` cannot say: a custom driver, a name for logs,
 * and per-connection hooks. A plain `pg.ClientConfig` is also accepted as the
 * third argument; an object is read as these options when it has `conninfo`
 * or `driver`.
 *
 * @typeParam C The driver's connection type (`pg.Client` by default).
 * @example A named pool with a configure hook
 * ```ts
 * import { SimpleConnectionPool } from "@tidepool/pg";
 * import type pg from "pg";
 * const pool = new SimpleConnectionPool(1, 5, {
 *   conninfo: Deno.env.get("DATABASE_URL"),
 *   name: "reports",
 *   configure: async (conn: pg.Client) => {
 *     await conn.query("set statement_timeout = 5000");
 *   },
 * });
 * ```
 */
export interface ClassicPoolOptions<C extends object = pg.Client> {
  /** Connection string or `pg.ClientConfig`. Required unless `driver` is given. */
  conninfo?: string | pg.ClientConfig;
  /** A driver to use instead of node-postgres (tests, other drivers). */
  driver?: Driver<C>;
  /** Name used in logs and errors. @default "classic-1", "classic-2", ... */
  name?: string;
  /** Runs on each new connection before first use; a throw discards it. @default none */
  configure?: (conn: NoInfer<C>) => Promise<void> | void;
  /** Runs on each connection kept on `putconn`; a throw discards it. @default none */
  reset?: (conn: NoInfer<C>) => Promise<void> | void;
  /** Limit of one connection attempt (with `configure`), and of the return path's rollback/reset, in ms; 0 = none. @default 10000 */
  connectTimeout?: number;
}

/** Constructor arguments after validation. */
export interface ResolvedClassicArgs<C> {
  minconn: number;
  maxconn: number;
  driver: Driver<C>;
  name: string | undefined;
  configure: ((conn: C) => Promise<void> | void) | undefined;
  reset: ((conn: C) => Promise<void> | void) | undefined;
  /** Bound of a connection attempt, configure, and the pool's own rollback/reset, in ms; 0 = none. */
  connectTimeout: number;
}

const KNOWN = new Set(["conninfo", "driver", "name", "configure", "reset", "connectTimeout"]);

/**
 * Validates `(minconn, maxconn, conninfo | options)`. Throws `TypeError` for a
 * wrong type or unknown option, `RangeError` for a value out of range; the
 * message names the parameter.
 */
export function resolveClassicArgs<C extends object>(
  minconn: unknown,
  maxconn: unknown,
  target: unknown,
): ResolvedClassicArgs<C> {
  const min = requiredCount(minconn, "minconn", 0);
  const max = requiredCount(maxconn, "maxconn", 1);
  if (max < min) {
    throw new RangeError(`Invalid argument 'maxconn': ${max} is less than minconn ${min}`);
  }
  const options = asOptions<C>(target);
  for (const key of Object.keys(options)) {
    if (!KNOWN.has(key)) throw new TypeError(`Unknown option '${key}'`);
  }
  for (const hook of ["configure", "reset"] as const) callback(options[hook], hook);
  poolName(options.name);
  const connectTimeout = duration(options.connectTimeout, "connectTimeout", 10_000);
  let driver = options.driver;
  if (driver === undefined) {
    const c = options.conninfo;
    if (!isConninfo(c)) {
      throw new TypeError("Invalid argument 'conninfo': expected a string, a pg.ClientConfig or an options object");
    }
    driver = defaultDriver<C>(c, connectTimeout);
  } else checkDriver(driver);
  return {
    minconn: min,
    maxconn: max,
    driver,
    name: options.name,
    configure: options.configure,
    reset: options.reset,
    connectTimeout,
  };
}

/** psycopg2 requires both counts: no default, and the message names the parameter. */
function requiredCount(value: unknown, name: string, min: number): number {
  if (value === undefined) {
    throw new TypeError(`Invalid argument '${name}': expected an integer, got undefined`);
  }
  return count(value, name, 0, min);
}

/** The third argument as options: a string or a `pg.ClientConfig` becomes `{ conninfo }`. */
function asOptions<C extends object>(target: unknown): ClassicPoolOptions<C> {
  if (typeof target === "string") return { conninfo: target };
  if (target === null || typeof target !== "object" || Array.isArray(target)) {
    throw new TypeError(
      `Invalid argument 'conninfo': expected a string, a pg.ClientConfig or an options object, got ${
        target === null ? "null" : typeof target
      }`,
    );
  }
  if ("conninfo" in target || "driver" in target) return target as ClassicPoolOptions<C>;
  return { conninfo: target as pg.ClientConfig };
}
