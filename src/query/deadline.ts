/**
 * Deadlines on statements: one deadline (a `timeout` and/or an abort
 * `signal`) for the wait and the work. Past it, the statement running on the
 * connection is cancelled on the server through the driver (PostgreSQL's
 * CancelRequest for pg), so the caller sees the server's 57014 and the
 * connection can be reused; when the cancel fails the connection is closed,
 * so nothing keeps running under a borrower that has gone.
 *
 * @module
 */
import type { Driver } from "../driver.ts";
import { PoolError } from "../errors.ts";
import { duration } from "../_util/_validate.ts";
import { MAX_DELAY } from "../_util/_timers.ts";
import { offAbort, onAbort } from "../_util/_abort.ts";
import { cancelsSettled, sendCancel } from "../core/_cancels.ts";

/**
 * A deadline for a call: `timeout` in ms from the call and/or an abort `signal`.
 *
 * @example A query cancelled on the server after 2 s or when the request goes away
 * ```ts
 * import { ConnectionPool, type DeadlineOptions } from "@tidepool/pg";
 * const pool = new ConnectionPool({ conninfo: Deno.env.get("DATABASE_URL") });
 * const options: DeadlineOptions = { timeout: 2_000, signal: AbortSignal.timeout(5_000) };
 * await pool.query("select pg_sleep(1)", [], options);
 * await pool.close();
 * ```
 */
export interface DeadlineOptions {
  /** Longest time for the whole call (wait and statements), in ms. @default the pool's `timeout` for the wait, none for the statements */
  timeout?: number;
  /** Aborting cancels the call: the wait rejects with the signal's reason, a running statement is cancelled on the server. */
  signal?: AbortSignal;
}

/** Validates `timeout`/`signal` like the pool's options: TypeError/RangeError naming the option. */
function deadlineOptions(options: unknown): DeadlineOptions {
  if (options === undefined) return {};
  if (options === null || typeof options !== "object") {
    throw new TypeError("Invalid options: expected an object");
  }
  const { timeout, signal } = options as { timeout?: unknown; signal?: unknown };
  if (signal !== undefined && !(signal instanceof AbortSignal)) {
    throw new TypeError(`Invalid option 'signal': expected an AbortSignal, got ${typeof signal}`);
  }
  return { timeout: timeout === undefined ? undefined : duration(timeout, "timeout", 0), signal };
}

/**
 * The call's deadline, or `undefined` when `options` sets neither `timeout`
 * nor `signal`: the fast path allocates nothing. Validates like
 * {@linkcode deadlineOptions}.
 */
export function deadlineOf(options: unknown): Deadline | undefined {
  if (options === undefined) return undefined;
  if (typeof options === "object" && options !== null) {
    const { timeout, signal } = options as { timeout?: unknown; signal?: unknown };
    if (timeout === undefined && signal === undefined) return undefined;
  }
  return new Deadline(deadlineOptions(options));
}

/**
 * What a pool that supports deadlines gives the transaction helpers
 * (src/query/transaction.ts): a local pool does, a Worker's attached pool does not.
 */
export interface DeadlineHost<K> {
  /** Runs `work` on the borrowed `conn` under `deadline` ({@linkcode underDeadline} with the pool's driver). */
  run<T>(conn: K, deadline: Deadline, work: () => Promise<T>): Promise<{ value: T; expired: boolean }>;
  /** The error of a transaction still open at its deadline, which is rolled back. */
  pastDeadline(deadline: Deadline, cause?: unknown): unknown;
}

/** One call's deadline, started when the call starts. */
export class Deadline {
  readonly #at: number;
  readonly signal: AbortSignal | undefined;
  readonly timeout: number | undefined;

  constructor(options: DeadlineOptions) {
    this.timeout = options.timeout;
    this.signal = options.signal;
    this.#at = options.timeout === undefined ? Infinity : performance.now() + options.timeout;
  }

  /** True once the `timeout` has passed (an abort alone does not count). */
  get timedOut(): boolean {
    return performance.now() >= this.#at;
  }

  /** True when neither a timeout nor a signal bounds the call. */
  get unbounded(): boolean {
    return this.#at === Infinity && this.signal === undefined;
  }

  /** True once the timeout has passed or the signal aborted. */
  get passed(): boolean {
    return this.signal?.aborted === true || performance.now() >= this.#at;
  }

  /** Options for the wait: what is left of the timeout (or the pool's default) and the signal. */
  waitOptions(): { timeout?: number; signal?: AbortSignal } {
    return {
      timeout: this.#at === Infinity ? undefined : Math.max(0, this.#at - performance.now()),
      signal: this.signal,
    };
  }

  /** Calls `fn` once when the deadline passes or the signal aborts; returns the disarm function. */
  onExpire(fn: () => void): () => void {
    let done = false;
    const fire = () => {
      if (done) return;
      done = true;
      disarm();
      fn();
    };
    let timer: number | undefined;
    if (this.#at !== Infinity) {
      timer = setTimeout(fire, Math.min(Math.max(0, this.#at - performance.now()), MAX_DELAY)) as unknown as number;
    }
    // Many calls may share one signal (request- or server-wide): _abort.ts keeps their cleanup O(1).
    const signal = this.signal;
    const disarm = () => {
      done = true;
      clearTimeout(timer);
      if (signal !== undefined) offAbort(signal, fire);
    };
    if (signal?.aborted) fire();
    else if (signal !== undefined) onAbort(signal, fire);
    return disarm;
  }
}

/** How often, past the deadline, the connection is looked at for a statement to cancel. */
const WATCH_MS = 10;
/** A statement still running this long after its cancel request gets another one. */
const RESEND_MS = 200;

/**
 * Watches a borrowed connection while `work` runs. From the deadline (or the
 * abort) until `work` settles, any statement running on the connection is
 * cancelled on the server, the one running at the deadline and any started
 * after it, so neither a statement nor a transaction outlives the deadline by
 * more than a cancel's round trip. When a cancel cannot be delivered, or a
 * statement still runs `graceMs` after the deadline, the connection is closed
 * (the pool discards it on return) and the call rejects with a
 * {@linkcode PoolError}.
 *
 * `held` says whether the caller still holds `conn` (its lease): once `work`
 * gave the connection back, its next borrower's statements are not this
 * deadline's, so the watch stops for good and never cancels nor closes.
 *
 * @returns What `work` settles with, and whether the deadline passed while it ran.
 */
export async function underDeadline<C, T>(
  driver: Driver<C>,
  conn: C,
  deadline: Deadline,
  work: () => Promise<T>,
  graceMs: number,
  held: () => boolean = () => true,
): Promise<{ value: T; expired: boolean }> {
  if (deadline.unbounded) return { value: await work(), expired: false };
  // Started before the deadline is armed, so a signal already aborted finds the statement running.
  const settled = work().then(
    (value) => ({ ok: true as const, value }),
    (error: unknown) => ({ ok: false as const, error }),
  );
  const grace = graceMs > 0 ? graceMs : 5_000;
  let expiredAt: number | undefined;
  let cancelled = false;
  let lastCancelAt = -Infinity;
  let watcher: number | undefined;
  let giveUp!: (reason: unknown) => void;
  const gaveUp = new Promise<{ gaveUp: unknown }>((resolve) => giveUp = (reason) => resolve({ gaveUp: reason }));
  let released = false;
  const watch = () => {
    if (released || !held()) { // given back early: disarm, the connection is another borrower's now
      released = true;
      clearInterval(watcher);
      return;
    }
    if (driver.status(conn) !== "active") return; // between statements: nothing runs on the server
    const now = performance.now();
    if (now - expiredAt! >= grace) {
      giveUp(new Error(`a statement was still running ${grace} ms after the deadline`));
    } else if (now - lastCancelAt >= RESEND_MS) {
      lastCancelAt = now;
      cancelled = true;
      sendCancel(driver, conn).catch((error) => {
        if (held()) giveUp(error);
      });
    }
  };
  const disarm = deadline.onExpire(() => {
    expiredAt = performance.now();
    watch();
    if (!released) watcher = setInterval(watch, WATCH_MS) as unknown as number;
  });
  try {
    let first = await Promise.race([settled, gaveUp]);
    disarm();
    clearInterval(watcher);
    // Never close a connection lent to someone else: then only wait for `work`.
    if ("gaveUp" in first && !held()) first = await settled;
    if ("gaveUp" in first) {
      await driver.close(conn, 1_000); // stops the statement's client side; the pool discards the connection
      await settled;
      throw new PoolError("Cannot cancel the statement past its deadline; the connection was closed", {
        cause: first.gaveUp,
      });
    }
    // A statement that finished just before a cancel landed: let every request sent (not only the last, which a
    // slower earlier one may outlive) complete before reuse, or a late one would cancel the next user's statement.
    if (cancelled) await cancelsSettled(conn);
    if (!first.ok) throw first.error;
    return { value: first.value, expired: expiredAt !== undefined };
  } finally {
    disarm();
    clearInterval(watcher);
  }
}
