/**
 * Transaction options and the BEGIN statement built from them.
 *
 * @module
 */

/** Isolation levels PostgreSQL accepts. */
export type IsolationLevel =
  | "read uncommitted"
  | "read committed"
  | "repeatable read"
  | "serializable";

/**
 * Options of `pool.transaction()`.
 *
 * @example A serializable transaction retried on conflicts
 * ```ts
 * import type { TransactionOptions } from "@tidepool/pg";
 * const options: TransactionOptions = { isolation: "serializable", retries: 3 };
 * ```
 */
export interface TransactionOptions {
  /** Isolation level. @default the server's default (read committed) */
  isolation?: IsolationLevel;
  /** Start a READ ONLY transaction. @default false */
  readOnly?: boolean;
  /** Re-runs on serialization failure / deadlock (SQLSTATE 40001, 40P01). @default 0 */
  retries?: number;
  /**
   * One deadline in ms for the whole call: the wait for a connection, every
   * attempt and the COMMIT. A statement running at the deadline is cancelled on
   * the server; a transaction is never committed past it. @default none
   */
  timeout?: number;
  /** Aborting cancels the call like the deadline passing. @default none */
  signal?: AbortSignal;
}

const LEVELS = new Set([
  "read uncommitted",
  "read committed",
  "repeatable read",
  "serializable",
]);
const RETRYABLE = new Set(["40001", "40P01"]);

/** The BEGIN statement for `options`; throws TypeError for an unknown isolation level. */
export function beginStatement(options: TransactionOptions): string {
  let sql = "BEGIN";
  if (options.isolation !== undefined) {
    const level = String(options.isolation).toLowerCase();
    if (!LEVELS.has(level)) {
      throw new TypeError(
        `Invalid option 'isolation': expected one of ${[...LEVELS].join(", ")}, got ${String(options.isolation)}`,
      );
    }
    sql += ` ISOLATION LEVEL ${level.toUpperCase()}`;
  }
  if (options.readOnly !== undefined && typeof options.readOnly !== "boolean") {
    throw new TypeError("Invalid option 'readOnly': expected a boolean");
  }
  if (options.readOnly) sql += " READ ONLY";
  return sql;
}

/** True for errors worth re-running the whole transaction for. */
export function isRetryable(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" && RETRYABLE.has(code);
}
