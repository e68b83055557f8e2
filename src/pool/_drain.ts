/**
 * `pool.drain()` bookkeeping (psycopg_pool 3.3): which connections are stale
 * (opened before the drain, possibly with old credentials), and the callers
 * waiting for the pool to be refilled with fresh ones. The pool closes a stale
 * connection instead of making it idle, so a borrowed one is replaced when it
 * comes back and nobody is ever handed a stale one after the drain started.
 *
 * @module
 */
import { Waiter } from "./_waiters.ts";

/** A caller of `drain()`: resolved once `done()` holds. */
interface DrainWaiter {
  readonly waiter: Waiter<void>;
  readonly done: () => boolean;
}

/** Stale connections and the callers of `drain()` waiting for them to be replaced. */
export class Drain<E> {
  readonly #stale = new Set<E>();
  readonly #waiters = new Set<DrainWaiter>();
  /** Bumped by each drain: a connection attempt started before the bump opens a stale connection. */
  epoch = 0;

  /** Marks every current connection stale and starts a new epoch. */
  start(entries: Iterable<E>): void {
    this.epoch++;
    for (const entry of entries) this.#stale.add(entry);
  }

  /** Marks one connection stale (it was opened by an attempt started before the drain). */
  markStale(entry: E): void {
    this.#stale.add(entry);
  }

  /** True for a connection to close instead of reusing; free while no drain is under way. */
  isStale(entry: E): boolean {
    return this.#stale.size > 0 && this.#stale.has(entry);
  }

  /** Stale connections not closed yet. */
  get pending(): number {
    return this.#stale.size;
  }

  /** A connection was closed; re-checks the waiting drains. */
  closed(entry: E): void {
    this.#stale.delete(entry);
    this.changed();
  }

  /** The pool changed (a connection opened or closed): re-checks the waiting drains. */
  changed(): void {
    for (const { waiter, done } of [...this.#waiters]) if (done()) waiter.resolve();
  }

  /**
   * Resolves once `done()` holds, re-checked on every change; rejects with
   * `onTimeout()` after `timeoutMs`, or with the error given to `close()`.
   */
  until(done: () => boolean, timeoutMs: number, onTimeout: () => Error): Promise<void> {
    if (done()) return Promise.resolve();
    const entry: DrainWaiter = { waiter: new Waiter<void>(), done };
    this.#waiters.add(entry);
    entry.waiter.expireAfter(timeoutMs, (w) => w.reject(onTimeout()), () => this.#waiters.delete(entry));
    return entry.waiter.promise;
  }

  /** The pool closed: every waiting drain rejects with `error`. */
  close(error: () => unknown): void {
    for (const { waiter } of [...this.#waiters]) waiter.reject(error());
    this.#stale.clear();
  }
}
