/**
 * The generic checks every option and argument goes through, and the one place
 * that picks the default driver. Depends on nothing else in `src/` but the
 * driver seam and the pg driver, so any file may import it without a circle.
 *
 * @module
 */
import type * as pg from "../drivers/pg_types.ts";
import type { Driver } from "../driver.ts";
import { createPgDriver } from "../drivers/pg.ts";
import type { ConninfoFunction } from "../drivers/pg_conninfo_fn.ts";
import type { PreparedStatementsOptions } from "../drivers/_statement_cache.ts";

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

/** Checks a callback option: a function or nothing. */
export function callback(value: unknown, option: string): void {
  if (value !== undefined && typeof value !== "function") {
    throw new TypeError(
      `Invalid option '${option}': expected a function, got ${typeof value}`,
    );
  }
}

/** Checks a pool's `name` option: a non-empty string or nothing. */
export function poolName(value: unknown): void {
  if (value !== undefined && (typeof value !== "string" || value === "")) {
    throw new TypeError("Invalid option 'name': expected a non-empty string");
  }
}

/** Checks a `driver` option: an object with `connect`. */
export function checkDriver(value: unknown): void {
  if (typeof value !== "object" || value === null || typeof (value as Driver<object>).connect !== "function") {
    throw new TypeError("Invalid option 'driver': expected a Driver object");
  }
}

/** True for what can be a conninfo: a string or a `pg.ClientConfig` object. */
export function isConninfo(value: unknown): value is string | pg.ClientConfig {
  return typeof value === "string" || (value !== null && typeof value === "object");
}

/**
 * The driver a pool uses when given none: node-postgres for the conninfo. The
 * only place a pool family picks a driver, so the pool core imports none.
 */
export function defaultDriver<C>(
  conninfo: string | pg.ClientConfig | ConninfoFunction,
  connectTimeout: number,
  preparedStatements?: PreparedStatementsOptions | false,
): Driver<C> {
  return createPgDriver(conninfo, { connectTimeout, preparedStatements }) as unknown as Driver<C>;
}
