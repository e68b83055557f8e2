/**
 * The connection lifecycle every pool family shares: open (connect, then
 * `configure`, bounded by `connectTimeout` and by the pool closing), adopt
 * (tie a connection to its {@linkcode Entry} and watch its socket), lost,
 * discard, and closing: `settle()` resolves once every attempt in flight has
 * finished and every socket is closed, awaited (no polling) and bounded by a
 * deadline past which running closes are forced.
 *
 * What stays in the pools is policy: which connection to lend, when to grow,
 * keys, counters and logs of their own.
 *
 * @module
 */
import type { Logger } from "@logtape/logtape";
import { untilAborted } from "../_util/_abort.ts";
import { attachEntry, Entry, type Owner } from "./_entry.ts";
import { describeError } from "../_util/_log.ts";
import { within } from "../_util/_timers.ts";
import type { Driver } from "../driver.ts";
import { PoolError, PoolTimeoutError } from "../errors.ts";

/** What a lifecycle needs from its pool. */
export interface ConnectionsOptions<C> {
  driver: Driver<C>;
  /** The pool's name, for messages and logs. */
  name: string;
  log: Logger;
  /** Runs on each new connection; a throw (or leaving it not idle) discards it. */
  configure: ((conn: C) => Promise<void> | void) | undefined;
  /** Bound of `configure`, in ms (the driver bounds its own connect); 0 = none. */
  connectTimeout: number;
}

const RESOLVED: Promise<void> = Promise.resolve();
/** How long a close forced at the deadline may take: the driver destroys the socket after this many ms. */
const FORCE_MS = 1;

/** The connections of one pool, from their opening to their closing. */
export class Connections<C extends object> {
  /** Every adopted connection not yet discarded, whatever its state. */
  readonly all: Set<Entry<C>> = new Set();
  readonly #options: ConnectionsOptions<C>;
  readonly #closing = new AbortController();
  /** Connection attempts in flight, awaited by `settle()`. */
  readonly #attempts = new Set<Promise<unknown>>();
  /** Closes under way and their connection, to force them past the deadline. */
  readonly #closes = new Map<Promise<void>, C>();

  constructor(options: ConnectionsOptions<C>) {
    this.#options = options;
  }

  /**
   * A pool's `toJSON()` summary with, when the driver tells (a host list), the
   * open connections per `host:port` under `hosts`, so a failover shows; the
   * one copy both pool families use.
   */
  summary<T extends { hosts?: Record<string, number> }>(summary: T): T {
    const hosts = this.hosts();
    if (hosts !== undefined) summary.hosts = hosts;
    return summary;
  }

  /** Open connections per `host:port`, when the driver tells (a host list); `undefined` otherwise. */
  hosts(): Record<string, number> | undefined {
    const hostOf = this.#options.driver.hostOf?.bind(this.#options.driver);
    if (hostOf === undefined) return undefined;
    let hosts: Record<string, number> | undefined;
    for (const entry of this.all) {
      const host = hostOf(entry.conn);
      if (host !== undefined) (hosts ??= {})[host] = (hosts[host] ?? 0) + 1;
    }
    return hosts;
  }

  /** Aborted by `abort()` (the pool closing): connection attempts stop. */
  get signal(): AbortSignal {
    return this.#closing.signal;
  }

  /**
   * Opens one connection: the driver connects, then `configure` runs, within
   * `connectTimeout` and until the pool closes. A connection `configure`
   * fails, or leaves not idle, is closed. Tracked: `settle()` waits for it.
   *
   * @throws {PoolError} `configure` failed or timed out (`cause` says which); driver errors as they are.
   */
  open(): Promise<C> {
    return this.attempt(() => this.#open());
  }

  /** Runs a connection attempt (`open()`, or a hook around it) so that `settle()` waits for it. */
  attempt<T>(run: () => Promise<T>): Promise<T> {
    const attempt = Promise.resolve().then(run); // a hook that throws at once rejects instead
    const tracked = attempt.then(() => {}, () => {}).finally(() => this.#attempts.delete(tracked));
    this.#attempts.add(tracked);
    return attempt;
  }

  /**
   * Runs a connect hook (an overridden classic `connect()`), bounded like `open()`: past twice `connectTimeout`, or
   * when the pool closes, the attempt fails; a connection the hook still delivers later is closed.
   */
  attemptBounded(run: () => Promise<C>): Promise<C> {
    return this.attempt(() => {
      const hook = Promise.resolve().then(run);
      let abandoned = false;
      hook.then((conn) => {
        if (abandoned) void this.close(conn);
      }, () => {});
      // Twice connectTimeout: the default connect() is a connect then a configure, each bounded by it, and their
      // own errors (which name the part that hung) must win over this outer bound.
      const limit = this.#options.connectTimeout * 2;
      return within(
        untilAborted(hook, this.#closing.signal),
        limit,
        () => new PoolTimeoutError(`connect() did not finish in ${limit} ms (twice connectTimeout)`),
      ).catch((error) => {
        abandoned = true;
        throw error;
      });
    });
  }

  async #open(): Promise<C> {
    const { driver, configure, connectTimeout } = this.#options;
    const conn = await driver.connect(this.#closing.signal);
    if (configure === undefined) return conn;
    try {
      // Part of the attempt: a configure that hangs must hold neither a slot nor close().
      await within(
        untilAborted(Promise.resolve(configure(conn)), this.#closing.signal),
        connectTimeout,
        () => new PoolTimeoutError(`configure did not finish in ${connectTimeout} ms`),
      );
      if (driver.status(conn) !== "idle") throw new PoolError("configure left the connection not idle");
    } catch (error) {
      await this.close(conn);
      throw new PoolError(`configure failed for a new connection of pool '${this.#options.name}'`, { cause: error });
    }
    return conn;
  }

  /**
   * Takes a fresh connection under the pool's care: attaches its entry (once:
   * checkout allocates nothing) and watches its socket. `onLostIdle` runs when
   * it dies by itself while idle; a borrowed one is only marked `lost` (its
   * borrower sees the error, the return path discards it).
   */
  adopt(conn: C, owner: Owner<C>, expiresAt: number, onLostIdle: (entry: Entry<C>) => void): Entry<C> {
    const entry = new Entry<C>(conn, owner, expiresAt);
    attachEntry(entry);
    this.all.add(entry);
    this.#options.driver.watch(conn, (error) => {
      entry.lost = true;
      if (entry.state !== "idle") return;
      this.#options.log.warn("Pool {pool}: an idle connection was lost: {error}", {
        pool: this.#options.name,
        error: error === undefined ? "connection ended" : describeError(error),
      });
      onLostIdle(entry);
    });
    return entry;
  }

  /** Closes an adopted connection for good (once: a second call does nothing). */
  discard(entry: Entry<C>): Promise<void> {
    if (entry.state === "closed") return RESOLVED;
    if (entry.state === "idle") {
      throw new PoolError("Internal error: an idle connection must leave the idle list before it is discarded");
    }
    entry.moveTo("closed");
    this.all.delete(entry);
    return this.close(entry.conn);
  }

  /** Closes a connection (adopted or not); tracked until its socket is closed. Never rejects. */
  close(conn: C): Promise<void> {
    const closing = this.#options.driver.close(conn).catch(() => {}).finally(() => this.#closes.delete(closing));
    this.#closes.set(closing, conn);
    return closing;
  }

  /** Stops connection attempts in flight: they close what they opened and reject. */
  abort(reason: Error): void {
    this.#closing.abort(reason);
  }

  /**
   * Resolves once no attempt is in flight and every close has finished.
   * Past `deadline` (a `performance.now()` time) closes still running are
   * forced: a socket on a silent link is destroyed instead of waiting for the
   * driver's own close limit.
   */
  async settle(deadline = Infinity): Promise<void> {
    while (this.#attempts.size > 0 || this.#closes.size > 0) {
      const all = Promise.allSettled([...this.#attempts, ...this.#closes.keys()]);
      if (deadline === Infinity) {
        await all;
        continue;
      }
      const left = deadline - performance.now();
      // `all` never rejects: a rejection is the bound passing.
      if (left > 0 && await within(all, left, () => new Error()).then(() => true, () => false)) continue;
      const forced = [...this.#closes.values()].map((conn) =>
        this.#options.driver.close(conn, FORCE_MS).catch(() => {})
      );
      await Promise.allSettled([all, ...forced]);
    }
  }
}

/** What `Deno.inspect(pool)` shows for either pool family: its class name and its secret-free `toJSON()`. */
export function inspectPool(pool: { toJSON(): unknown }): string {
  return `${pool.constructor.name} ${Deno.inspect(pool.toJSON())}`;
}
