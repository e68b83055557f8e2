import { PoolError } from "../errors.ts";

/**
 * Per-connection state. Each connection is in exactly one state, and the pool
 * moves it; maintenance only touches `reserved` entries, so it never races a
 * borrower (HikariCP's bag).
 *
 * - `idle`: in the idle queue, ready to lend.
 * - `in_use`: lent to a borrower.
 * - `reserved`: out of the idle queue for the pool's own work (rollback, reset,
 *   check, handing to a waiter).
 * - `closed`: discarded; never lent again.
 */
export type EntryState = "idle" | "in_use" | "reserved" | "closed";

/**
 * The moves a connection may make. `closed` is final; every other state may go
 * to any other one (a return may go straight back to idle, a checkout straight
 * to in_use), but never to itself: a move to the state a connection is already
 * in means two parts of the pool believe they own it.
 */
const MOVES: Readonly<Record<EntryState, Readonly<Record<EntryState, boolean>>>> = {
  idle: { idle: false, in_use: true, reserved: true, closed: true },
  in_use: { idle: true, in_use: false, reserved: true, closed: true },
  reserved: { idle: true, in_use: true, reserved: false, closed: true },
  closed: { idle: false, in_use: false, reserved: false, closed: false },
};

/** The owner a connection goes back to; `putconn` on it is what `await using` calls. */
export interface Owner<C> {
  putconn(conn: C): Promise<void>;
}

/** A pooled connection and its bookkeeping. */
export class Entry<C> {
  #state: EntryState = "reserved";
  /** Set when the socket died by itself (server terminated it, network cut). */
  lost = false;
  /**
   * Counts the times the connection was lent: the id of the current lease. A
   * return through `await using` carries the lease it was made for, so a stale
   * one (the connection went back and was lent again) is told apart from the
   * current borrower's.
   */
  lease = 0;
  /**
   * Date.now() when lent, for usage stats. The pool's clock for entries is
   * Date.now(): half the cost of performance.now() on the checkout path, and a
   * difference of two whole-ms readings is still an unbiased measure of usage.
   */
  lentAt = 0;
  /** Timer of the leak warning or of the expiry job. */
  leakTimer: number | undefined = undefined;
  expiryTimer: number | undefined = undefined;

  /** Neighbours in the pool's idle list (see `pool/_idle.ts`), so removal from it is O(1). */
  idlePrev: Entry<C> | undefined = undefined;
  idleNext: Entry<C> | undefined = undefined;

  constructor(
    readonly conn: C,
    readonly owner: Owner<C>,
    /** Date.now() after which the connection is replaced. */
    readonly expiresAt: number,
  ) {}

  /** The connection's state; only {@linkcode Entry.moveTo} changes it. */
  get state(): EntryState {
    return this.#state;
  }

  /**
   * The one place a connection's state changes, for both pool families.
   *
   * @throws {PoolError} On a move {@linkcode MOVES} does not allow: a bug in the pool, never the caller's fault.
   */
  moveTo(next: EntryState): void {
    if (!MOVES[this.#state][next]) {
      throw new PoolError(`Internal error: a connection cannot move from ${this.#state} to ${next}`);
    }
    this.#state = next;
  }
}

/** Where a connection's entry is kept: a non-enumerable symbol on the connection. */
export const ENTRY: unique symbol = Symbol("tidepool.entry");

/**
 * Ties a connection to its entry, and makes it `AsyncDisposable` so that
 * `await using conn = await pool.connection()` returns it. Done once per
 * connection, so checkout allocates nothing.
 *
 * The disposer is a getter: `await using` reads `[Symbol.asyncDispose]` when
 * the declaration runs, right after checkout, so the function it gets is bound
 * to that lease. Only `await using` (or whoever reads it) pays for the closure.
 */
export function attachEntry<C extends object>(entry: Entry<C>): void {
  Object.defineProperty(entry.conn, ENTRY, {
    value: entry,
    writable: true,
    configurable: true,
  });
  // Always the pool's: a driver's own disposer (closing the connection) would lose the slot.
  Object.defineProperty(entry.conn, Symbol.asyncDispose, {
    configurable: true,
    get(this: C): () => Promise<void> {
      return leaseReturn(this);
    },
  });
}

/**
 * A function that returns `conn` to its pool if, when called, the connection is
 * still on the lease it is on now; else it rejects with `PoolError` and
 * changes nothing (the connection went back and was lent again meanwhile: that
 * return belongs to its new borrower).
 */
function leaseReturn<C>(conn: C): () => Promise<void> {
  const entry = entryOf(conn);
  if (entry === undefined) return resolved;
  const lease = entry.lease;
  return () => {
    if (entry.lease === lease) return entry.owner.putconn(conn);
    return Promise.reject(
      new PoolError(
        "Cannot return connection: this lease already ended (it was returned, then lent to another borrower)",
      ),
    );
  };
}

/**
 * Whether `conn` is still lent on `lease` (see {@linkcode Entry.lease}): false
 * once it was returned, even if it was lent again since. The pool's scoped
 * helpers (`withConnection`, `transaction`) check it before they commit and
 * return, so a callback that returned the connection itself never has them
 * commit or return another borrower's session.
 */
export function holdsLease<C>(conn: C, lease: number): boolean {
  const entry = entryOf(conn);
  return entry !== undefined && entry.lease === lease && entry.state === "in_use";
}

/** The current lease of a lent connection (0 for a connection no pool made). */
export function leaseOf<C>(conn: C): number {
  return entryOf(conn)?.lease ?? 0;
}

/** The error of a scoped helper whose callback returned the connection itself. */
export function returnedInScope(helper: string): PoolError {
  return new PoolError(
    `${helper}: the callback returned the connection itself (putconn); the pool returns it after the callback`,
  );
}

function resolved(): Promise<void> {
  return Promise.resolve();
}

/** The entry of a connection, or undefined for a connection no pool made. */
export function entryOf<C>(conn: C): Entry<C> | undefined {
  // A connection may be a function (postgres.js's `sql` is one).
  if (conn === null || (typeof conn !== "object" && typeof conn !== "function")) return undefined;
  return (conn as { [ENTRY]?: Entry<C> })[ENTRY];
}
