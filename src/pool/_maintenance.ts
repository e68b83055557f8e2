/**
 * The pool's maintenance, as small named jobs on the pool's timers (psycopg_pool's
 * MaintenanceTask; each periodic one reschedules itself before it works):
 *
 * - `expire`: an idle connection past `maxLifetime` is replaced;
 * - `keepalive`: every `keepaliveInterval`, the idle connections are probed one at a time (`_keepalive.ts`);
 * - `shrink`: every `maxIdle`, connections that stayed idle through the whole period above `minSize` close.
 *
 * Every job follows one shape: take the entry out of the idle list (so nobody borrows it meanwhile), probe it or
 * not, then keep it (`release`) or close it (`discard`). A borrowed connection is never touched: it is checked on
 * return instead.
 *
 * @module
 */
import type { Logger } from "@logtape/logtape";
import type { Entry } from "../core/_entry.ts";
import type { IdleList } from "./_idle.ts";
import { startKeepalive } from "./_keepalive.ts";
import type { ResolvedOptions } from "./options.ts";
import { PoolTimeoutError } from "../errors.ts";
import { MAX_DELAY, type Timers, within } from "../_util/_timers.ts";

/** What maintenance needs of its pool. */
export interface MaintenanceHost<C> {
  readonly name: string;
  readonly log: Logger;
  readonly options: ResolvedOptions;
  readonly timers: Timers;
  readonly idle: IdleList<C>;
  isOpen(): boolean;
  /** Open connections and attempts, as the sizes count them. */
  size(): number;
  /** Probes a connection (an empty query). */
  ping(conn: C): Promise<void>;
  /** Keeps a checked connection: to a waiter, or idle again. */
  release(entry: Entry<C>): void;
  /** Closes a connection for good (the pool starts a replacement if it needs one). */
  discard(entry: Entry<C>): void;
  /** A probe failed: the connection was lost. */
  failed(entry: Entry<C>, error: unknown): void;
}

/** The maintenance jobs of one pool. */
export class Maintenance<C> {
  readonly #host: MaintenanceHost<C>;
  /** Fewest idle connections seen since the last shrink: that many were not needed (maxIdle). */
  #idleLow = 0;

  constructor(host: MaintenanceHost<C>) {
    this.#host = host;
  }

  /** Starts the periodic jobs (when the pool opens). */
  start(): void {
    const { keepaliveInterval, maxIdle } = this.#host.options;
    if (keepaliveInterval > 0) {
      startKeepalive(this.#host.timers, keepaliveInterval, () => this.#host.idle.toArray(), (e) => this.#keepalive(e));
    }
    if (maxIdle <= 0) return;
    this.#idleLow = this.#host.idle.length;
    this.#host.timers.every(maxIdle, () => this.#shrink(maxIdle));
  }

  /** A connection left the idle list for a borrower: the low-water mark the shrink job reads. */
  lent(): void {
    const idle = this.#host.idle.length;
    if (idle < this.#idleLow) this.#idleLow = idle;
  }

  /**
   * The expiry job of a new connection: when its lifetime ends while it is idle, it is replaced (a borrowed
   * one is replaced on return). Beyond a timer's range (~24.8 days) the checks on checkout and return suffice.
   */
  expireAfter(entry: Entry<C>, lifetime: number): void {
    if (lifetime > MAX_DELAY) return;
    entry.expiryTimer = this.#host.timers.after(lifetime, () => {
      entry.expiryTimer = undefined;
      if (!this.#host.idle.remove(entry)) return;
      this.#host.log.debug("Pool {pool}: replacing an idle connection past maxLifetime", { pool: this.#host.name });
      this.#host.discard(entry);
    });
  }

  /** Keepalive probe of one idle connection, out of the idle list meanwhile so nobody borrows it. */
  async #keepalive(entry: Entry<C>): Promise<void> {
    const host = this.#host;
    if (!host.isOpen() || !host.idle.remove(entry)) return;
    const { connectTimeout } = host.options;
    try {
      await within(
        host.ping(entry.conn),
        connectTimeout,
        () => new PoolTimeoutError(`The keepalive probe got no answer in ${connectTimeout} ms`),
      );
    } catch (error) {
      host.failed(entry, error);
      return;
    }
    host.release(entry);
  }

  /**
   * psycopg_pool's ShrinkPool: connections that stayed idle through a whole maxIdle period were not needed,
   * whatever the order. Judging by each connection's own idle time would never shrink a FIFO pool under light
   * steady load, which touches every connection in turn.
   */
  #shrink(maxIdle: number): void {
    const host = this.#host;
    let surplus = Math.min(this.#idleLow, host.size() - host.options.minSize);
    while (surplus-- > 0 && host.idle.length > 0) {
      const entry = host.idle.shift()!; // the front has been idle longest, in either order
      host.log.debug("Pool {pool}: closing a connection not needed for {maxIdle} ms", { pool: host.name, maxIdle });
      host.discard(entry);
    }
    this.#idleLow = host.idle.length;
  }
}
