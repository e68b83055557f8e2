/**
 * Error classes thrown by the pools. Every pool error is a {@linkcode PoolError}.
 *
 * @module
 */

/**
 * Base class of every error a pool throws about itself (not about SQL).
 *
 * @example Catching any pool error
 * ```ts
 * import { PoolError } from "@tidepool/pg";
 * try {
 *   throw new PoolError("connection is not from this pool");
 * } catch (e) {
 *   if (e instanceof PoolError) console.log(e.message);
 * }
 * ```
 */
export class PoolError extends Error {
  /**
   * Creates a pool error.
   *
   * @param message What went wrong, sentence case, details after a colon.
   * @param options `cause`: the underlying error (a driver error, the last connection error).
   */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "PoolError";
  }
}

/**
 * No connection became available within the timeout. The message carries the
 * pool's counts and `cause` is the last connection error, if any, so that
 * "database down" and "pool too small" read differently.
 *
 * @example
 * ```ts
 * import { PoolTimeoutError } from "@tidepool/pg";
 * const e = new PoolTimeoutError("couldn't get a connection after 1000 ms");
 * console.log(e.name); // "PoolTimeoutError"
 * ```
 */
export class PoolTimeoutError extends PoolError {
  /**
   * Creates a timeout error.
   *
   * @param message What timed out and the pool's counts.
   * @param options `cause`: the last connection error, if any.
   */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "PoolTimeoutError";
  }
}

/**
 * The pool is closed (or was closed while the request waited).
 *
 * @example
 * ```ts
 * import { PoolClosedError } from "@tidepool/pg";
 * console.log(new PoolClosedError("the pool 'main' is closed").name);
 * ```
 */
export class PoolClosedError extends PoolError {
  /**
   * Creates a closed-pool error.
   *
   * @param message Which pool is closed.
   * @param options Optional cause.
   */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "PoolClosedError";
  }
}

/**
 * `maxWaiting` requests already wait: the request is refused at once.
 *
 * @example
 * ```ts
 * import { TooManyRequestsError } from "@tidepool/pg";
 * console.log(new TooManyRequestsError("too many requests waiting").name);
 * ```
 */
export class TooManyRequestsError extends PoolError {
  /**
   * Creates a too-many-requests error.
   *
   * @param message The pool and its limit.
   * @param options Optional cause.
   */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "TooManyRequestsError";
  }
}

/**
 * A classic (psycopg2-style) pool has `maxconn` connections in use and does
 * not wait: the message is psycopg2's, "connection pool exhausted".
 *
 * @example
 * ```ts
 * import { PoolExhaustedError } from "@tidepool/pg";
 * console.log(new PoolExhaustedError().message); // "connection pool exhausted"
 * ```
 */
export class PoolExhaustedError extends PoolError {
  /**
   * Creates an exhausted-pool error.
   *
   * @param message Defaults to psycopg2's text.
   * @param options Optional cause.
   */
  constructor(message = "connection pool exhausted", options?: ErrorOptions) {
    super(message, options);
    this.name = "PoolExhaustedError";
  }
}

/**
 * The connection running a pipelined `pool.query()` statement was lost (server
 * terminated it, socket cut) while the statement was in flight. The statement
 * may or may not have run on the server, so the pool never retries it: the
 * caller decides. `cause` is the driver's error. Only the statements that were
 * on that connection fail; the pool replaces it.
 *
 * @example Telling a lost connection from an SQL error
 * ```ts
 * import { ConnectionLostError } from "@tidepool/pg";
 * const e = new ConnectionLostError("lost", { cause: new Error("Connection terminated unexpectedly") });
 * if (e instanceof ConnectionLostError) console.log("may have run:", e.message);
 * ```
 */
export class ConnectionLostError extends PoolError {
  /**
   * Creates a lost-connection error.
   *
   * @param message Which pool, and that the statement may have run.
   * @param options `cause`: the driver's error.
   */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "ConnectionLostError";
  }
}

/**
 * The pool cannot connect for a reason waiting will not fix (wrong password,
 * missing database, unknown host, TLS verification failure) and has no idle
 * connection: the request is refused at once instead of waiting out its
 * `timeout`. `cause` is the driver's error; the message carries its text,
 * without the password. The pool keeps retrying in the background, so fixing
 * the cause heals it without a restart.
 *
 * @example
 * ```ts
 * import { PoolConnectError } from "@tidepool/pg";
 * const e = new PoolConnectError("cannot connect: password authentication failed");
 * console.log(e.name); // "PoolConnectError"
 * ```
 */
export class PoolConnectError extends PoolError {
  /**
   * Creates a connect error.
   *
   * @param message The pool and the cause's text.
   * @param options `cause`: the driver's connection error.
   */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "PoolConnectError";
  }
}

/** Longest connection-error text carried in a pool error's message. */
const MAX_CAUSE_TEXT = 300;

/**
 * `"; last connection error: <text>"` for a pool error's message, or `""`
 * without one: so that "database down" (the cause is in the message) and
 * "pool too small" read differently without digging into `cause`. The text
 * comes from the driver, which scrubs its errors of the password.
 *
 * @param error The last connection error, if any.
 * @returns The suffix, on one line, at most about 300 characters.
 * @example
 * ```ts
 * const m = `Couldn't get a connection${lastErrorSuffix(new Error("password authentication failed"))}`;
 * ```
 */
export function lastErrorSuffix(error: unknown): string {
  if (error === undefined) return "";
  const parts: string[] = [];
  for (let e: unknown = error, depth = 0; e !== undefined && depth < 3; depth++) {
    const message = e instanceof Error ? e.message : String(e);
    const code = (e as { code?: unknown })?.code;
    parts.push(typeof code === "string" && code !== "" ? `${message} (${code})` : message);
    e = e instanceof Error ? e.cause : undefined;
  }
  let text = parts.filter((p) => p !== "").join(": ").replace(/\s+/g, " ").trim();
  if (text.length > MAX_CAUSE_TEXT) text = `${text.slice(0, MAX_CAUSE_TEXT - 3)}...`;
  return text === "" ? "" : `; last connection error: ${text}`;
}

/**
 * No server of a conninfo's host list gave a session: each was down or did
 * not fit `target_session_attrs` (a read-only server for `read-write`, ...).
 * The message names each host tried and why (never a password); `cause` is
 * the last host's error.
 *
 * @example
 * ```ts
 * import { HostsExhaustedError } from "@tidepool/pg";
 * const e = new HostsExhaustedError("No server accepted a session", ["h1:5432", "h2:5432"]);
 * console.log(e.hosts); // ["h1:5432", "h2:5432"]
 * ```
 */
export class HostsExhaustedError extends PoolError {
  /** The hosts tried, as `host:port`, in order. */
  readonly hosts: string[];
  /**
   * Why each attempt failed, in order (passwords scrubbed): the driver's error for a host that gave no session,
   * an `Error` saying how the server did not fit for one that did. Empty when not known (e.g. across a Worker).
   */
  readonly reasons: readonly Error[];

  /**
   * Creates the error.
   *
   * @param message The hosts tried and why each was refused.
   * @param hosts The hosts tried, as `host:port`.
   * @param options `cause`: the last host's error; `reasons`: each attempt's error.
   */
  constructor(message: string, hosts: string[], options?: ErrorOptions & { reasons?: readonly Error[] }) {
    super(message, options);
    this.name = "HostsExhaustedError";
    this.hosts = hosts;
    this.reasons = options?.reasons ?? [];
  }
}
