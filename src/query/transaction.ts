/**
 * The only implementation of `withConnection()` and `transaction()`: BEGIN,
 * COMMIT or ROLLBACK, the "did not commit" checks and retries. It is written
 * against {@linkcode TransactionHost}, which a local pool (its driver) and a
 * Worker's attached pool (its `RemoteConnection`s) both provide, so the two
 * cannot drift apart.
 *
 * @module
 */
import { type Deadline, type DeadlineHost, deadlineOf } from "./deadline.ts";
import { endsSession, serverError } from "./_server_error.ts";
import type { ConnectionStatus } from "../driver.ts";
import { ConnectionLostError, PoolError, PoolTimeoutError } from "../errors.ts";
import { sleep, within } from "../_util/_timers.ts";
import { count, duration } from "../_util/_validate.ts";

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
  /**
   * Re-runs on serialization failure / deadlock (SQLSTATE 40001, 40P01), read from the error's `code` or, for
   * deno-postgres, `fields.code`. Each re-run counts in `getStats().transactionRetries` and logs its attempt number
   * (debug). @default 0
   */
  retries?: number;
  /**
   * Base of the pause before a re-run, in ms: before attempt n + 1 the pause is a random value between
   * `retryDelay` and `5 × retryDelay`, doubled for each attempt up to 64 times (the default gives 5-25 ms, then
   * 10-50 ms, ... up to 320-1600 ms). The randomness spreads out transactions that conflicted with each other.
   * 0 re-runs at once. @default 5
   */
  retryDelay?: number;
  /**
   * One deadline in ms for the whole call: the wait for a connection, every
   * attempt and the COMMIT. A statement running at the deadline is cancelled on
   * the server; a transaction is never committed past it. On a Worker's
   * attached pool it bounds only the waits for a connection. @default none
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
/** The names `transaction()` accepts: any other is refused, so a typo (`retry`) never goes unnoticed. */
const TRANSACTION_OPTIONS: ReadonlySet<string> = new Set([
  "isolation",
  "readOnly",
  "retries",
  "retryDelay",
  "timeout",
  "signal",
]);
/** What `withConnection()` accepts unless its host says otherwise. */
const CONNECTION_OPTIONS: ReadonlySet<string> = new Set(["timeout", "signal"]);

/** Refuses option names `helper` does not know, naming them (a TypeError, as the pool's constructor does). */
function checkNames(options: unknown, known: ReadonlySet<string>, helper: string): void {
  if (options === undefined || options === null || typeof options !== "object") return;
  const unknown = Object.keys(options).filter((name) => !known.has(name));
  if (unknown.length === 0) return;
  throw new TypeError(
    `Unknown option${unknown.length > 1 ? "s" : ""} ${unknown.map((n) => `'${n}'`).join(", ")} of ${helper}(): ` +
      `expected ${[...known].join(", ")}`,
  );
}

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
  const code = sqlState(error);
  return code !== undefined && RETRYABLE.has(code);
}

/**
 * The server's SQLSTATE of an error: `code` (node-postgres), or `fields.code` (deno-postgres, whose errors from a
 * borrower's own `queryObject` never pass through the driver).
 */
export function sqlState(error: unknown): string | undefined {
  const e = error as { code?: unknown; fields?: { code?: unknown } } | null;
  const code = e?.code ?? e?.fields?.code;
  return typeof code === "string" ? code : undefined;
}

/** What the transaction helpers need from a pool: borrow, return, and run a statement on a borrowed connection. */
export interface TransactionHost<K, G = unknown> {
  getconn(options?: G): Promise<K>;
  /** Gives the connection back; the pool's return path discards it when it is not idle. */
  putconn(conn: K): Promise<void>;
  /** The connection's state after its last statement, without a round trip. */
  status(conn: K): ConnectionStatus;
  query(conn: K, text: string): Promise<{ command?: string }>;
  /** Bound (ms) of the COMMIT/ROLLBACK the pool runs itself; 0 = none. */
  readonly finishTimeout: number;
  /** Told before a retry (stats, a debug log): `attempt` failed (0 = the first), of `retries` + 1 allowed. */
  onRetry?(error: unknown, attempt: number, retries: number): void;
  /** Option names `withConnection()` accepts. @default timeout, signal */
  readonly connectionOptions?: ReadonlySet<string>;
  /** Deadlines on the work (local pools); without it `timeout`/`signal` bound only the wait for a connection. */
  readonly deadlines?: DeadlineHost<K>;
  /** A token for the lease `conn` is lent on now (taken right after `getconn`). */
  leaseOf(conn: K): number;
  /** Whether `conn` is still lent on `lease`: false once it went back (even if lent again since). */
  holds(conn: K, lease: number): boolean;
  /** What a helper throws when `conn` no longer holds its lease after `fn`: the pool closed, or `fn` returned it. */
  leaseEnded(conn: K, helper: "withConnection" | "transaction"): Error;
}

const FAILED = "The transaction failed and was rolled back: an error inside it was caught and ignored";

const COMMIT_UNKNOWN =
  "The connection was lost during COMMIT (no answer, or the server ended the session): whether the transaction committed is unknown";

/**
 * Whether a failed COMMIT may still have committed: no answer from the server (the connection was lost), or
 * the server ended the session (class 08, 57 but a cancel, FATAL) while the COMMIT waited, e.g. for a synchronous replica, when
 * the commit is already made locally. A COMMIT the server refused (a deferred constraint, 40001) rolled back.
 */
function commitOutcomeUnknown(error: unknown): boolean {
  if (error instanceof FinishTimeout) return false; // says so itself
  const answer = serverError(error);
  // 57014 (the COMMIT cancelled at the deadline) is the server's word that it rolled back: the deadline path's.
  return answer === undefined || (endsSession(answer) && answer.code !== "57014");
}

/** Marks the error of a COMMIT/ROLLBACK that got no answer: the connection is busy, no ROLLBACK can follow. */
class FinishTimeout extends PoolTimeoutError {}

/**
 * Runs `fn` with a connection; commits a transaction `fn` left open, rolls back
 * on throw, always gives the connection back.
 */
export async function withConnection<K, T, G>(
  host: TransactionHost<K, G>,
  fn: (conn: K) => Promise<T> | T,
  options?: G,
): Promise<T> {
  checkNames(options, host.connectionOptions ?? CONNECTION_OPTIONS, "withConnection");
  // No timeout or signal (or a host without deadlines): the path of old, nothing allocated.
  const deadline = host.deadlines === undefined ? undefined : deadlineOf(options);
  const conn = await host.getconn(deadline === undefined ? options : deadline.waitOptions() as G);
  if (deadline === undefined) return await onLease(host, conn, () => fn(conn), "withConnection");
  const phase = { committing: false };
  return await settleBy(
    onLease(host, conn, () => underDeadline(host, conn, deadline, fn, false, phase), "withConnection"),
    deadline,
    phase,
    () => pastDeadline(host, deadline),
  );
}

/**
 * Runs `fn` inside BEGIN ... COMMIT on one connection; rolls back on throw;
 * re-runs on SQLSTATE 40001/40P01 up to `retries` times after a short
 * jittered pause.
 */
export async function transaction<K, T>(
  host: TransactionHost<K>,
  fn: (conn: K) => Promise<T> | T,
  options: TransactionOptions = {},
): Promise<T> {
  checkNames(options, TRANSACTION_OPTIONS, "transaction");
  const begin = beginStatement(options);
  const retries = count(options.retries, "retries", 0);
  const retryDelay = duration(options.retryDelay, "retryDelay", 5);
  const deadline = deadlineOf(options);
  const phase = { committing: false };
  const attempts = transactionAttempts(host, fn, begin, retries, retryDelay, deadline, phase);
  if (deadline === undefined) return await attempts;
  return await settleBy(attempts, deadline, phase, () => pastDeadline(host, deadline));
}

/** `transaction()`'s attempts: one deadline covers them all, the pauses between them included. */
async function transactionAttempts<K, T>(
  host: TransactionHost<K>,
  fn: (conn: K) => Promise<T> | T,
  begin: string,
  retries: number,
  retryDelay: number,
  deadline: Deadline | undefined,
  phase: Phase,
): Promise<T> {
  for (let attempt = 0;; attempt++) {
    const conn = await host.getconn(deadline?.waitOptions());
    const work = async (c: K) => {
      await host.query(c, begin);
      return await fn(c);
    };
    try {
      return await onLease(
        host,
        conn,
        () =>
          deadline === undefined || host.deadlines === undefined
            ? work(conn)
            : underDeadline(host, conn, deadline, work, true, phase),
        "transaction",
      );
    } catch (error) {
      if (attempt >= retries || !isRetryable(error)) throw error;
      // No attempt starts past the deadline, nor a pause that would end past it: the last failure is the cause.
      const pause = retryDelay * (1 + Math.random() * 4) * 2 ** Math.min(attempt, 6);
      if (deadline !== undefined && (deadline.passed || deadline.left() < pause)) {
        throw pastDeadline(host, deadline, error);
      }
      host.onRetry?.(error, attempt, retries);
      if (pause > 0) await sleep(pause);
    }
  }
}

/** The error of a call past its deadline: the pool's (a `PoolTimeoutError`, or the signal's reason). */
function pastDeadline<K>(host: TransactionHost<K, never>, deadline: Deadline, cause?: unknown): unknown {
  if (host.deadlines !== undefined) return host.deadlines.pastDeadline(deadline, cause);
  if (deadline.signal?.aborted) return deadline.signal.reason;
  return new PoolTimeoutError(
    `The transaction passed its deadline of ${deadline.timeout} ms and was rolled back`,
    cause === undefined ? undefined : { cause },
  );
}

/** Where a call under a deadline is: its COMMIT runs (bounded by the deadline's own watch) or not. */
interface Phase {
  committing: boolean;
}

/** How long past its deadline a call waits for its own work to settle before it rejects anyway. */
const SETTLE_GRACE_MS = 250;

/**
 * Settles like `run`, but never much later than the deadline: `fn` may await something other than the database
 * (a timer, a fetch) where no cancel reaches it. Past the deadline, `run` gets {@linkcode SETTLE_GRACE_MS} to settle
 * (a cancelled statement's 57014 arrives within a round trip), then the call rejects with `error()`. `run` goes on
 * holding its connection until `fn` settles, then rolls back and gives it back: nothing commits past the deadline.
 * A COMMIT already running at the deadline is left to the deadline's watch.
 */
function settleBy<T>(run: Promise<T>, deadline: Deadline, phase: Phase, error: () => unknown): Promise<T> {
  if (deadline.unbounded) return run;
  const { promise, resolve, reject } = Promise.withResolvers<T>();
  let grace: number | undefined;
  const disarm = deadline.onExpire(() => {
    // A COMMIT in flight is not cut short here: its outcome comes from the deadline's watch (rolled back, or
    // unknown when the server never answers), never a guess.
    grace = setTimeout(() => phase.committing || reject(error()), SETTLE_GRACE_MS) as unknown as number;
  });
  run.then(resolve, reject).finally(() => {
    disarm();
    clearTimeout(grace);
  });
  return promise;
}

/**
 * One use of a borrowed connection by `withConnection` / `transaction`: runs
 * `work`, then commits what it left open (`helper` "transaction": the pool
 * opened it, so anything else means it did not commit), rolls back on throw,
 * and gives the connection back. `work` may return the connection itself: then
 * nothing is committed, rolled back or returned on the next borrower's lease.
 */
async function onLease<K, T>(
  host: TransactionHost<K, never>,
  conn: K,
  work: () => Promise<T> | T,
  helper: "withConnection" | "transaction",
): Promise<T> {
  const lease = host.leaseOf(conn);
  try {
    const result = await work();
    if (!host.holds(conn, lease)) throw host.leaseEnded(conn, helper);
    await finish(host, conn, helper === "transaction");
    return result;
  } catch (error) {
    if (!(error instanceof FinishTimeout) && host.holds(conn, lease)) await rollbackQuietly(host, conn);
    throw error;
  } finally {
    if (host.holds(conn, lease)) await host.putconn(conn);
  }
}

/**
 * Runs `fn` under the call's deadline. A transaction still open when the
 * deadline passed (`began`: the pool opened one) is refused with the host's
 * past-deadline error, so the caller rolls it back instead of committing.
 */
async function underDeadline<K, T>(
  host: TransactionHost<K, never>,
  conn: K,
  deadline: Deadline,
  fn: (conn: K) => Promise<T> | T,
  began: boolean,
  phase: Phase,
): Promise<T> {
  const deadlines = host.deadlines!;
  const lease = host.leaseOf(conn);
  // The COMMIT runs under the deadline too, so past it the COMMIT is cancelled (a deferred trigger, a slow
  // synchronous replica) and nothing commits after the deadline; onLease's finish() then finds nothing open.
  let committing = false;
  let committed = false;
  let outcome: { value: T; expired: boolean };
  try {
    outcome = await deadlines.run(conn, deadline, async () => {
      const value = await fn(conn);
      if (!deadline.passed && host.holds(conn, lease)) {
        committing = phase.committing = true;
        await finish(host, conn, began);
        committed = true;
      }
      return value;
    });
  } catch (error) {
    // The COMMIT failed past the deadline (and not as a COMMIT known to have rolled back).
    if (committing && deadline.passed && !(error instanceof PoolError && error.message === FAILED)) {
      // The server answered the cancelled COMMIT (57014): the transaction rolled back. No answer (the connection
      // was closed at the deadline's grace, or lost): whether it committed cannot be known, and the error says so.
      if (sqlState(error) !== undefined && host.status(conn) !== "broken") {
        throw deadlines.pastDeadline(deadline, error);
      }
      throw new PoolError(
        "The COMMIT was still running at the deadline and got no answer: whether the transaction committed is unknown",
        { cause: error },
      );
    }
    // A statement the deadline cancelled rejects like a deadline passed between statements: one error type,
    // the server's 57014 as its cause.
    if (deadline.timedOut && sqlState(error) === "57014") throw deadlines.pastDeadline(deadline, error);
    throw error;
  }
  const { value, expired } = outcome;
  // Past the deadline the call fails, whatever `fn` returned then: one rule for both helpers.
  if (expired && !committed) throw deadlines.pastDeadline(deadline);
  return value;
}

/** `began`: the pool opened the transaction, so anything but open/idle means it did not commit. */
async function finish<K>(host: TransactionHost<K, never>, conn: K, began: boolean): Promise<void> {
  const status = host.status(conn);
  if (status === "intrans") {
    // pg rejects a failed query before ReadyForQuery ('E') arrives, so a
    // failed transaction can still look open here; PostgreSQL then answers
    // COMMIT with a ROLLBACK tag and no error.
    const result = await bounded(host, conn, "COMMIT").catch((error: unknown) => {
      throw commitOutcomeUnknown(error) ? new ConnectionLostError(COMMIT_UNKNOWN, { cause: error }) : error;
    });
    if (result.command === "ROLLBACK") throw new PoolError(FAILED);
  } else if (status === "inerror") throw new PoolError(FAILED);
  else if (began && status !== "idle") {
    // Lost after fn's last statement: no COMMIT can run, and returning would report a lost write as done.
    throw new PoolError(
      `The transaction did not commit: the connection is ${
        status === "active" ? "still running a query" : "closed or broken"
      }`,
    );
  }
}

async function rollbackQuietly<K>(host: TransactionHost<K, never>, conn: K): Promise<void> {
  const status = host.status(conn);
  if (status !== "intrans" && status !== "inerror") return;
  try {
    await bounded(host, conn, "ROLLBACK");
  } catch {
    // The return path sees the connection's state and discards it.
  }
}

/**
 * COMMIT or ROLLBACK within `finishTimeout`: on a link gone silent it would
 * wait forever. Past the bound the statement is still running, so the return
 * path discards the connection; a COMMIT's outcome is then unknown.
 */
function bounded<K>(host: TransactionHost<K, never>, conn: K, statement: "COMMIT" | "ROLLBACK") {
  return within(
    host.query(conn, statement),
    host.finishTimeout,
    () =>
      new FinishTimeout(
        `${statement} got no answer in ${host.finishTimeout} ms (connectTimeout): the connection is discarded` +
          (statement === "COMMIT" ? " and whether the transaction committed is unknown" : ""),
      ),
  );
}
