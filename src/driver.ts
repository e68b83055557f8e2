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
  /** A cheap round trip proving the connection is alive. */
  ping(conn: C): Promise<void>;
  /** Runs a statement (used by `pool.query`, `transaction` and the Worker channel). */
  query(conn: C, text: string, params?: unknown[]): Promise<QueryResult>;
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
}
