/**
 * The seam between the pool core and a PostgreSQL driver. The pool core never
 * imports a driver: everything it needs from a connection goes through here, so
 * a second driver is one new file under `src/drivers/`.
 *
 * @module
 */

/**
 * A connection's transaction state as the pool sees it, read without a round trip.
 *
 * - `idle`: connected, no transaction open: safe to hand to the next borrower.
 * - `intrans`: inside a transaction block: roll back before reuse.
 * - `inerror`: inside a failed transaction block: roll back before reuse.
 * - `active`: a query or COPY is still running: cannot be reused, discard.
 * - `broken`: closed, lost or never connected: discard.
 */
export type ConnectionStatus =
  | "idle"
  | "intrans"
  | "inerror"
  | "active"
  | "broken";

/**
 * The status a ReadyForQuery byte stands for (`I` idle, `T` in a transaction,
 * `E` in a failed one); anything else (no ReadyForQuery yet) is `"broken"`.
 * Shared by drivers that read the byte off the wire or from their client.
 *
 * @param byte The transaction status letter, or null.
 * @returns The pool's name for it.
 * @example
 * ```ts
 * import { statusOfReadyByte } from "./driver.ts";
 * statusOfReadyByte("T"); // "intrans"
 * ```
 */
export function statusOfReadyByte(byte: string | null | undefined): ConnectionStatus {
  switch (byte) {
    case "I":
      return "idle";
    case "T":
      return "intrans";
    case "E":
      return "inerror";
    default:
      return "broken";
  }
}

/** Result of {@linkcode Driver.query}: the subset every driver can give. */
export interface QueryResult<R = Record<string, unknown>> {
  /** Rows as objects keyed by column name. */
  rows: R[];
  /** Rows affected or returned; `null` when the command reports none. */
  rowCount: number | null;
  /** Column descriptions. */
  fields: { name: string; dataTypeID: number }[];
  /** The command tag's verb ("SELECT", "COMMIT", "ROLLBACK", ...) when the driver reports it. */
  command?: string;
}

/**
 * How a statement's rows come back, as pg's query config says it: for callers
 * written against pg.Pool (`toPgPool` passes them to `pool.query()`).
 *
 * @example Rows as arrays, dates left as text
 * ```ts
 * import { ConnectionPool, type RowShape } from "@tidepool/pg";
 * const pool = new ConnectionPool({ conninfo: Deno.env.get("DATABASE_URL") });
 * const shape: RowShape = { rowMode: "array", types: { getTypeParser: () => (v: string) => v } };
 * const { rows } = await pool.query("select 1 as a, now() as a", [], shape);
 * await pool.close();
 * ```
 */
export interface RowShape {
  /** `"array"`: each row is an array of its column values in order, so duplicate column names keep both. @default rows as objects */
  rowMode?: "array";
  /** pg's type parsers for this statement (`{ getTypeParser(oid, format) }`). @default the connection's */
  types?: unknown;
}

/**
 * What the pool needs from a driver. `C` is the driver's own connection object,
 * handed to borrowers as is.
 *
 * @example A driver that wraps node-postgres
 * ```ts
 * import { createPgDriver } from "@tidepool/pg";
 * const driver = createPgDriver("postgres://user@localhost/db");
 * ```
 */
export interface Driver<C> {
  /**
   * Opens one connection. Must settle soon after `signal` aborts (connect
   * timeout, pool closing), leaving no socket behind.
   */
  connect(signal: AbortSignal): Promise<C>;
  /** Closes a connection; never rejects, never hangs longer than `timeoutMs`. */
  close(conn: C, timeoutMs?: number): Promise<void>;
  /** The connection's state, synchronously and without I/O. */
  status(conn: C): ConnectionStatus;
  /** Runs ROLLBACK. Rejects if the connection cannot do it. */
  rollback(conn: C): Promise<void>;
  /**
   * Asks the server to cancel the statement running on `conn` (PostgreSQL's
   * CancelRequest) and resolves once the server took the request; rejects when
   * it could not be delivered. Optional: without it a statement past its
   * deadline is stopped by closing its connection.
   */
  cancel?(conn: C): Promise<void>;
  /**
   * Whether the connection's socket keeps the process alive (`allowExitOnIdle`
   * unrefs idle ones). Optional: without it the option has no effect.
   */
  setRef?(conn: C, ref: boolean): void;
  /** A cheap round trip proving the connection is alive. */
  ping(conn: C): Promise<void>;
  /**
   * Runs a statement (used by `pool.query`, `transaction` and the Worker channel). `shape` is pg's
   * `rowMode` and `types` (from `pool.query()`'s options, which `toPgPool` fills): only given when set,
   * and a driver without them may ignore it.
   */
  query(conn: C, text: string, params?: unknown[], shape?: RowShape): Promise<QueryResult>;
  /**
   * Registers `onLost`, called once when the connection dies by itself (server
   * terminated it, socket cut) so the pool can drop it while it is idle.
   */
  watch(conn: C, onLost: (error: Error | undefined) => void): void;
  /**
   * Optional: switches a connection between one statement at a time (`false`,
   * how every borrower gets it) and pipelined (`true`: `query()` may be called
   * again before earlier calls settle; results come back in order, and an
   * error fails only its own statement). The pool calls it only while the
   * connection is idle and not lent. A driver without it never pipelines.
   */
  setPipelined?(conn: C, on: boolean): void;
  /** Text that identifies the target without secrets, for logs and errors. */
  readonly description: string;
  /**
   * The server a connection is on, as `host:port` (no secrets), when the
   * target is a host list; shown in `pool.toJSON().hosts`.
   */
  hostOf?(conn: C): string | undefined;
}

/**
 * Where a driver puts, on each connection it opens, how to forget what it
 * caches client-side about the server session (pg: the names of prepared
 * statements, and the type parsers and listeners added since adoption), so `ConnectionPool.discardAll` can keep the client in step
 * with `DISCARD ALL` without knowing the driver. Not part of the public API.
 */
export const FORGET_SESSION: unique symbol = Symbol("tidepool.forgetSession");

/** A connection that may carry its driver's {@linkcode FORGET_SESSION}. */
export interface ForgetsSession {
  [FORGET_SESSION]?: () => void;
}
