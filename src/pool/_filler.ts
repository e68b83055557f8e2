/**
 * Growing the pool (psycopg_pool's AddConnection, HikariCP's PoolEntryCreator):
 * connection attempts up to `minSize` and one growth at a time for waiters,
 * each on the job runner (at most `numWorkers` at once), retried with backoff;
 * the outage report (`reconnectFailed`, once per `reconnectTimeout`); and the
 * fail-fast memory of the last attempt. The pool decides what to do with a new
 * connection (`connected`); the filler never touches the idle list or waiters.
 *
 * @module
 */
import type { Logger } from "@logtape/logtape";
import { Backoff } from "./_backoff.ts";
import { FailFast } from "./_failfast.ts";
import { Jobs } from "./_jobs.ts";
import type { ResolvedOptions } from "./options.ts";
import type { PoolConnectError } from "../errors.ts";
import type { PoolCounters } from "../stats.ts";
import type { Timers } from "../_util/_timers.ts";
import { describeError } from "../_util/_log.ts";

/** What the filler needs of its pool. */
export interface FillerHost<C> {
  readonly name: string;
  readonly log: Logger;
  /** The pool's options, read at each use (`resize()` changes the sizes in place). */
  readonly options: ResolvedOptions;
  readonly timers: Timers;
  /** Whether each waiter may start its own attempt (`NullConnectionPool`), else one growth at a time. */
  readonly growPerWaiter: boolean;
  state(): "new" | "open" | "closed";
  /** Open connections (attempts apart). */
  size(): number;
  waiting(): number;
  counters(): PoolCounters;
  /** Opens one connection (connect + configure, bounded). */
  open(): Promise<C>;
  /** Closes a connection that opened after the pool closed. */
  close(conn: C): void;
  /** The drain generation an attempt starts in: a connection from an older one is stale. */
  epoch(): number;
  /** A new connection for the pool, opened in generation `epoch`. */
  connected(conn: C, epoch: number): void;
  /** The last attempt failed in a way waiting will not fix. */
  failedForGood(): void;
  /** Failures lasted `reconnectTimeout`: the app's `reconnectFailed`. */
  reconnectFailed(): void;
}

/** The pool's connection attempts. */
export class Filler<C> {
  readonly #host: FillerHost<C>;
  readonly #jobs: Jobs;
  readonly #failFast = new FailFast();
  /** Attempts in flight or waiting for their backoff; counted in the pool's size. */
  #pending = 0;
  /** Of #pending, the attempts waiting for their backoff timer (dropped by stop()). */
  #retrying = 0;
  /** Wakes one attempt sleeping in its backoff now (fail fast under demand): the timer is cancelled. */
  readonly #sleeping = new Set<() => void>();
  /** performance.now() when the last attempt started. */
  #lastAttemptAt = -Infinity;
  /** One growth beyond minSize at a time (psycopg_pool, HikariCP's spike rule). */
  #growing = false;
  #lastError: Error | undefined;
  /** When `reconnectFailed` was last called in the current outage; a connection that opens ends the outage. */
  #toldOutageAt: number | undefined;

  constructor(host: FillerHost<C>) {
    this.#host = host;
    this.#jobs = new Jobs(
      host.options.numWorkers,
      (error) =>
        host.log.error("Pool {pool}: background job failed: {error}", { pool: host.name, error: describeError(error) }),
    );
  }

  /** Attempts in flight or waiting for their backoff. */
  get pending(): number {
    return this.#pending;
  }

  /** The last attempt's error, until a connection opens: the `cause` of timeouts. */
  get lastError(): Error | undefined {
    return this.#lastError;
  }

  /** The error to refuse a request with while attempts fail for good, else undefined. */
  refusal(): PoolConnectError | undefined {
    return this.#failFast.refusal(this.#host.name);
  }

  /** Starts the attempts needed now: up to minSize, and one growth for waiters (one per waiter if the policy says). */
  maybeGrow(): void {
    const host = this.#host;
    if (host.state() !== "open") return;
    const { minSize, maxSize } = host.options;
    let size = host.size() + this.#pending;
    while (size < minSize) {
      this.#start(false);
      size++;
    }
    const waiting = host.waiting();
    if (waiting === 0 || size >= maxSize) return;
    if (host.growPerWaiter) {
      let missing = Math.min(waiting - this.#pending, maxSize - size); // waiters no attempt in flight serves
      while (missing-- > 0) this.#start(false);
    } else if (!this.#growing) {
      this.#growing = true;
      this.#start(true);
    }
  }

  /**
   * A request was refused while failing fast: demand shortens the backoff. With no attempt at all, one starts;
   * when every attempt sleeps and the last one started `initialDelay` ago or more, one wakes now, so a fixed
   * password heals a busy pool about a second after the fix.
   */
  refused(): void {
    if (this.#pending === 0 && this.#host.size() < this.#host.options.maxSize) this.#start(false);
    else if (
      this.#pending === this.#retrying &&
      performance.now() - this.#lastAttemptAt >= this.#host.options.backoff.initialDelay
    ) this.#sleeping.values().next().value?.();
  }

  /** The pool closed: attempts sleeping in their backoff are dropped (their timers went with the pool's). */
  stop(): void {
    this.#pending -= this.#retrying;
    this.#retrying = 0;
    this.#sleeping.clear();
  }

  #start(growing: boolean): void {
    this.#pending++;
    this.#jobs.run(() => this.#attempt(undefined, growing));
  }

  /** One connection attempt; on failure, retried with backoff. */
  async #attempt(backoff: Backoff | undefined, growing: boolean): Promise<void> {
    const host = this.#host;
    if (host.state() === "closed") {
      this.#pending--;
      return;
    }
    const started = this.#lastAttemptAt = performance.now();
    const epoch = host.epoch();
    let conn: C;
    try {
      conn = await host.open();
    } catch (error) {
      this.#failed(error, backoff, growing);
      return;
    }
    this.#pending--;
    this.#toldOutageAt = undefined;
    this.#failFast.succeeded();
    this.#lastError = undefined; // a timeout from now on is not about this outage
    const counters = host.counters();
    counters.connectionsNum++;
    counters.connectionsMs += performance.now() - started;
    if (host.state() === "closed") { // closed while connecting
      host.close(conn);
      return;
    }
    if (growing) this.#growing = false;
    host.connected(conn, epoch);
    this.maybeGrow();
  }

  #failed(error: unknown, backoff: Backoff | undefined, growing: boolean): void {
    const host = this.#host;
    if (host.state() === "closed") {
      this.#pending--;
      return;
    }
    host.counters().connectionsErrors++;
    this.#lastError = error instanceof Error ? error : new Error(String(error));
    if (this.#failFast.failed(error)) host.failedForGood();
    backoff ??= new Backoff(host.options.backoff, host.options.reconnectTimeout);
    if (backoff.expired()) {
      this.#pending--;
      if (growing) this.#growing = false;
      this.#giveUp(error);
      return;
    }
    const delay = backoff.next();
    host.log.warn("Pool {pool}: connection attempt failed, retrying in {delay} ms: {error}", {
      pool: host.name,
      delay: Math.round(delay),
      error: describeError(error),
    });
    this.#retrying++;
    const retry = () => {
      this.#sleeping.delete(wake);
      this.#retrying--;
      this.#jobs.run(() => this.#attempt(backoff, growing));
    };
    const timer = host.timers.after(delay, retry);
    const wake = () => {
      host.timers.cancel(timer);
      retry();
    };
    this.#sleeping.add(wake);
  }

  /**
   * Attempts started together give up together, and demand keeps starting new ones: the app is told once per
   * `reconnectTimeout` while the outage lasts, not once per attempt.
   */
  #giveUp(error: unknown): void {
    const host = this.#host;
    const now = performance.now();
    if (this.#toldOutageAt !== undefined && now - this.#toldOutageAt < host.options.reconnectTimeout) return;
    this.#toldOutageAt = now;
    host.log.error("Pool {pool}: giving up reconnecting after {timeout} ms: {error}", {
      pool: host.name,
      timeout: host.options.reconnectTimeout,
      error: describeError(error),
    });
    try {
      host.reconnectFailed();
    } catch (callbackError) {
      host.log.error("Pool {pool}: reconnectFailed threw: {error}", {
        pool: host.name,
        error: describeError(callbackError),
      });
    }
  }
}
