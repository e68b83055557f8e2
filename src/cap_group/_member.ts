/**
 * A pool's membership in a cap group: one connection budget shared by the
 * pools of several isolates (`capGroup` option).
 *
 * The pool sees the group through a driver wrapper ({@linkcode CapGroupMember.wrap}):
 * `connect()` first reserves a slot (waiting for one if the group is full) and
 * `close()` gives the slot back once the connection has finished closing. So a
 * slot is counted from before the socket opens until after it closed, and the
 * server never sees more than `maxSize` backends of the group. Reserving is a
 * compare-and-swap in shared memory; messages only find the table and wake
 * waiters. The pool's checkout path does not touch the group at all.
 *
 * @module
 */
import { cancelUntilIdle } from "../core/_cancels.ts";
import { wrapDriver } from "../core/_wrap_driver.ts";
import type { Logger } from "@logtape/logtape";
import type { Driver } from "../driver.ts";
import { PoolClosedError, PoolError } from "../errors.ts";
import { Timers, within } from "../_util/_timers.ts";
import { GroupChannel } from "./_discovery.ts";
import { hash32, MAX_ROWS, type Row, SlotTable } from "./_slot_table.ts";
import { untilAborted } from "../_util/_abort.ts";
import { forgetTable } from "./_process_marker.ts";

/** Heartbeat period: each member writes the time into its row this often. */
export const HEARTBEAT_MS = 1_000;
/**
 * A member silent this long is taken for dead and its slots go back to the
 * group. Generous, so a busy event loop does not lose its connections: an
 * isolate that is gone gives its slots back within STALE_MS + HEARTBEAT_MS (6 s).
 */
export const STALE_MS = 5_000;
/** While attempts wait for a slot: how often they look again, and ask the others for room. */
const POLL_MS = 25;
const POKE_EVERY = 10;
/** How often a backend of the group checks, while a statement runs, that its client is still there (ms). */
const CLIENT_CHECK_MS = 1_000;
/** Longest wait for a running statement to stop before its connection closes (when the close names no bound). */
const CANCEL_MS = 5_000;

/** What the group needs from its pool. */
export interface CapGroupHooks {
  /**
   * Closes one idle connection above minSize to make room; false if there is none.
   * With `evenMinSize`, one at minSize too (the group is over its budget).
   */
  shedIdle(evenMinSize?: boolean): boolean;
  /** The group could not fit this pool's whole minSize: lower it to `minSize`. */
  clampMinSize(minSize: number): void;
  /** Requests waiting in this pool now (shown in the other members' stats). */
  waiting(): number;
  log: Logger;
  pool: string;
}

/** The group's figures in `getStats()`. */
export interface CapGroupStats {
  /** Server connections held by every pool of the group (open, opening or closing). */
  groupSize: number;
  /** The group's budget (every member's `maxSize`). */
  groupMax: number;
  /** Requests waiting in the group's other pools (as they last published it, at most 1 s old). */
  groupWaiting: number;
}

interface SlotWaiter {
  ticket: number;
  resolve(): void;
  reject(error: unknown): void;
}

/** One pool's membership in a cap group. Starts on the first connection attempt. */
export class CapGroupMember {
  readonly #group: string;
  readonly #max: number;
  #minSize: number;
  readonly #hooks: CapGroupHooks;
  readonly #timers = new Timers();
  #target = 0;
  #channel: GroupChannel | undefined;
  #joining: Promise<void> | undefined;
  #table: SlotTable | undefined;
  #row: Row | undefined;
  /** Fatal: this pool cannot be in the group (different maxSize or target). */
  #error: Error | undefined;
  /** Slots this member holds, as it counts them itself (kept across a reclaim). */
  #held = 0;
  /** Idle connections being closed to make room for a waiter elsewhere. */
  #shedding = 0;
  /** Attempts waiting for a slot, oldest ticket first. */
  readonly #queue: SlotWaiter[] = [];
  #polling = false;
  #closed = false;

  /**
   * @param group The capGroup name (validated by the options).
   * @param maxSize The group's budget; every member must pass the same.
   * @param minSize This pool's minSize, counted against the budget.
   * @throws {RangeError} `maxSize` is not finite.
   */
  constructor(group: string, maxSize: number, minSize: number, hooks: CapGroupHooks) {
    if (!Number.isInteger(maxSize) || maxSize > 0x7fff_ffff) {
      throw new RangeError(
        `Invalid option 'capGroup': the group's budget is maxSize, which must be a finite integer, got ${maxSize}`,
      );
    }
    this.#group = group;
    this.#max = maxSize;
    this.#minSize = minSize;
    this.#hooks = hooks;
  }

  /** `driver` with a slot reserved before each connect and released after each close. */
  wrap<C>(driver: Driver<C>): Driver<C> {
    this.#target = hash32(driver.description);
    // The connections holding a slot. A connection may be closed twice (close({ timeout })
    // forces a running close past its deadline): the first close to finish frees its slot, once.
    const holding = new WeakSet<object>();
    const ending = new WeakMap<object, Promise<void>>();
    const connect: Driver<C>["connect"] = async (signal) => {
      await this.#acquire(signal);
      let conn: C;
      try {
        conn = await driver.connect(signal);
      } catch (error) {
        this.#freeSlot(); // a failed attempt leaves no socket behind (the Driver contract)
        throw error;
      }
      holding.add(conn as object);
      await this.#watchClient(driver, conn);
      return conn;
    };
    const close: Driver<C>["close"] = async (conn, timeoutMs) => {
      const first = ending.get(conn as object);
      if (first !== undefined) {
        // A forced close: the socket goes now, and the slot still waits for the first close's cancel.
        await driver.close(conn, timeoutMs).catch(() => {});
        return first;
      }
      const done = this.#end(driver, conn, timeoutMs).finally(() => {
        if (holding.delete(conn as object)) this.#freeSlot();
      });
      ending.set(conn as object, done);
      return done;
    };
    return wrapDriver(driver, { connect, close });
  }

  /**
   * Closes `conn` so that its backend is gone when this resolves. pg's `end()`
   * destroys the socket under a running statement and the backend runs on,
   * a server connection the group no longer counts. Stopped first, the
   * statement ends, and the close is a goodbye that the server answers by
   * closing the socket once its backend has left `pg_stat_activity`.
   */
  async #end<C>(driver: Driver<C>, conn: C, timeoutMs: number | undefined): Promise<void> {
    if (driver.status(conn) === "active" && driver.cancel !== undefined) {
      const ms = timeoutMs ?? CANCEL_MS;
      const stopped = cancelUntilIdle(driver, conn, ms > 0 ? performance.now() + ms : Infinity); // 0: no limit
      await within(stopped, ms, () => new Error("cancel timed out")).catch(() => {});
    }
    await driver.close(conn, timeoutMs);
  }

  /**
   * Asks the server to notice a client that went away mid-statement (a
   * terminated Worker, whose sockets the runtime closes): the backend then
   * stops within CLIENT_CHECK_MS, long before the dead member's slots are
   * reclaimed (STALE_MS), instead of running on outside the group's count.
   * Best effort: PostgreSQL < 14 lacks the setting, a transaction pooler's
   * guard refuses SET, and `reset: discardAll` undoes it on the first return.
   */
  async #watchClient<C>(driver: Driver<C>, conn: C): Promise<void> {
    const text = `set client_connection_check_interval = ${CLIENT_CHECK_MS}`;
    // A guard may throw at the call rather than reject: either way the pool goes on without it.
    await Promise.resolve().then(() => driver.query(conn, text)).catch(() => {});
  }

  /**
   * The pool got a connection back: whether to close it rather than reuse
   * it, so that the group gets the slot. Yes while the group is over its
   * budget, and when another member's waiting attempt is owed room: one that
   * holds no slot, or two fewer than this member (so busy members even out to
   * within one connection). Two atomic loads when nobody waits.
   */
  yieldOnReturn(): boolean {
    const table = this.#table;
    if (table === undefined || this.#closed || !table.contended()) return false;
    const row = this.#ensureRow();
    if (row === undefined || !table.claimShed(row, true)) return false;
    this.#shedding++;
    return true;
  }

  /**
   * The pool's `resize()`: its share of the warm connections, clamped like
   * at join (the members keep at most `maxSize - 1` warm together).
   *
   * @returns The minSize the pool may keep.
   */
  resizeMin(minSize: number): number {
    const table = this.#table;
    const row = this.#row;
    if (table === undefined || row === undefined || !table.owns(row)) {
      this.#minSize = minSize; // counted at join
      return Math.min(minSize, this.#max - 1);
    }
    this.#minSize = minSize;
    const granted = table.setMin(row, minSize);
    if (granted < minSize) {
      this.#hooks.log.warn(
        "capGroup {group}: pool {pool} resized to minSize {asked}, kept {granted}: the group's pools together keep at most maxSize - 1 = {limit} connections warm",
        { group: this.#group, pool: this.#hooks.pool, asked: minSize, granted, limit: this.#max - 1 },
      );
    }
    return granted;
  }

  /** Joins the group in the background (the pool opened); connection attempts wait for it. */
  start(): void {
    if (this.#closed) return;
    this.#join().catch(() => {}); // close() during the join: the attempts waiting for it see the error
  }

  /**
   * Whether another member may be owed room (an isolate waits for a slot, or the group is over budget): a
   * pipelining lane then gives its connections back as they drain instead of keeping them, so that the return
   * path's fairness rule ({@linkcode CapGroupMember.yieldOnReturn}) gets to see them.
   */
  contended(): boolean {
    const table = this.#table;
    return table !== undefined && !this.#closed && table.contended();
  }

  /** A slot is free in the group right now (so a new connection would not wait for another isolate). */
  hasRoom(): boolean {
    const table = this.#table;
    return table !== undefined && table.used < table.max;
  }

  /** The group's figures, for `getStats()`. */
  stats(): CapGroupStats {
    const table = this.#table;
    if (table === undefined) return { groupSize: this.#held, groupMax: this.#max, groupWaiting: 0 };
    return { groupSize: table.used, groupMax: table.max, groupWaiting: table.waitingElsewhere(this.#row) };
  }

  /** The group's figures for an error message: why a pool under its own maxSize may still wait. */
  describe(): string {
    const s = this.stats();
    return `; capGroup '${this.#group}': ${s.groupSize} of ${s.groupMax} connections held, ${s.groupWaiting} waiting elsewhere`;
  }

  /** Leaves the group: call after every connection of the pool has closed. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#timers.cancelAll();
    const closed = new PoolClosedError(`Pool '${this.#hooks.pool}' is closed`);
    for (const w of this.#queue.splice(0)) w.reject(closed);
    if (this.#table !== undefined && this.#row !== undefined) {
      if (this.#held > 0) {
        this.#hooks.log.warn("capGroup {group}: leaving with {held} slots held", {
          group: this.#group,
          held: this.#held,
        });
      }
      this.#table.leave(this.#row);
      if (this.#table.queued > 0) this.#channel?.poke();
      // The last member: a pool joining later must not wait for an answer nobody can give.
      if (this.#table.members() === 0) forgetTable(this.#group);
    }
    await this.#channel?.close(closed);
  }

  // ---- joining --------------------------------------------------------------

  #join(): Promise<void> {
    return this.#joining ??= (async () => {
      this.#channel = new GroupChannel(this.#group, () => this.#onPoke(), (other) => this.#merge(other));
      const table = await this.#channel.find(() => SlotTable.create(this.#max, this.#target));
      if (this.#closed) return;
      this.#table = table;
      this.#enter(table);
      if (this.#error !== undefined) return;
      this.#timers.every(HEARTBEAT_MS, () => this.#tick());
    })();
  }

  /** Takes a row (again, after a reclaim) and counts the slots this member already holds. */
  #enter(table: SlotTable): void {
    const joined = table.join(this.#max, this.#target, this.#minSize, Date.now());
    if (typeof joined === "string") {
      this.#error = new PoolError(
        joined === "maxSize"
          ? `capGroup '${this.#group}': pool '${this.#hooks.pool}' has maxSize ${this.#max} but the group's budget is ${table.max}; every pool of a capGroup must use the same maxSize`
          : joined === "target"
          ? `capGroup '${this.#group}': pool '${this.#hooks.pool}' connects to another server or database than the group's first pool; one capGroup caps one target`
          : `capGroup '${this.#group}' is full: ${MAX_ROWS} pools are members already`,
      );
      this.#hooks.log.error("{error}", { error: this.#error.message });
      for (const w of this.#queue.splice(0)) w.reject(this.#error);
      return;
    }
    this.#row = joined.row;
    // A fresh row has no shed recorded: a close under way that was one ends as a plain release there.
    this.#shedding = 0;
    if (joined.minSize < this.#minSize) {
      this.#hooks.log.warn(
        "capGroup {group}: minSize of pool {pool} lowered from {asked} to {granted}: the group's pools together keep at most maxSize - 1 = {limit} connections warm",
        {
          group: this.#group,
          pool: this.#hooks.pool,
          asked: this.#minSize,
          granted: joined.minSize,
          limit: this.#max - 1,
        },
      );
      this.#hooks.clampMinSize(joined.minSize);
    }
    // After a reclaim: count what is still open. Beyond the cap, close idle ones to get back under it.
    for (let n = 0; n < this.#held; n++) {
      if (!table.forceReserve(joined.row, false)) table.forceReserve(joined.row, true);
    }
    if (this.#queue.length > 0) table.setQueue(joined.row, this.#queue.length, this.#queue[0].ticket);
    // Beyond the cap, close idle ones now; borrowed ones close as they come back (yieldOnReturn).
    this.#makeRoom();
  }

  /**
   * Two tables for one group (two isolates each thought they were first): move
   * to the one with the lower id, counting the slots held here there too.
   */
  #merge(other: SlotTable): void {
    const table = this.#table;
    if (table === undefined || this.#closed || this.#error !== undefined) return;
    this.#hooks.log.warn("capGroup {group}: pool {pool} found a second slot table for the group; moving to it", {
      group: this.#group,
      pool: this.#hooks.pool,
    });
    if (this.#row !== undefined) table.leave(this.#row);
    this.#row = undefined;
    this.#table = other;
    this.#channel!.switchTo(other);
    this.#enter(other);
    this.#retry();
  }

  /** The row, taken again if other members reclaimed it while this isolate was silent. */
  #ensureRow(): Row | undefined {
    const table = this.#table;
    if (table === undefined || this.#error !== undefined || this.#closed) return undefined;
    if (this.#row !== undefined && table.owns(this.#row)) return this.#row;
    this.#hooks.log.warn(
      "capGroup {group}: pool {pool} was silent over {stale} ms (blocked event loop?) and its slots were reclaimed; joining again",
      { group: this.#group, pool: this.#hooks.pool, stale: STALE_MS },
    );
    this.#enter(table);
    return this.#row;
  }

  // ---- slots ----------------------------------------------------------------

  async #acquire(signal: AbortSignal): Promise<void> {
    if (this.#closed) throw new PoolClosedError(`Pool '${this.#hooks.pool}' is closed`);
    if (this.#table === undefined) await untilAborted(this.#join(), signal);
    signal.throwIfAborted();
    const table = this.#table!;
    const row = this.#ensureRow();
    if (row === undefined) throw this.#error ?? new PoolClosedError(`Pool '${this.#hooks.pool}' is closed`);
    if (this.#queue.length === 0 && table.tryReserve(row)) {
      this.#held++;
      return;
    }
    const { promise, resolve, reject } = Promise.withResolvers<void>();
    const waiter: SlotWaiter = { ticket: table.nextTicket(), resolve, reject };
    this.#queue.push(waiter);
    table.setQueue(row, 1, this.#queue[0].ticket);
    const onAbort = () => {
      const at = this.#queue.indexOf(waiter);
      if (at < 0) return;
      this.#queue.splice(at, 1);
      const r = this.#ensureRow(); // the table may have changed (a merge) since this attempt queued
      if (r !== undefined) this.#table!.setQueue(r, -1, this.#queue[0]?.ticket ?? 0);
      reject(signal.reason);
    };
    signal.addEventListener("abort", onAbort, { once: true });
    this.#channel!.poke(); // the others may have idle connections to close for us
    this.#retry();
    this.#poll(0);
    try {
      await promise;
    } finally {
      signal.removeEventListener("abort", onAbort);
    }
  }

  /** Serves the waiting attempts in ticket order while slots are free. */
  #retry(): void {
    const table = this.#table;
    while (this.#queue.length > 0) {
      const row = this.#ensureRow();
      if (row === undefined || !table!.tryReserve(row)) return;
      const waiter = this.#queue.shift()!;
      table!.setQueue(row, -1, this.#queue[0]?.ticket ?? 0);
      this.#held++;
      waiter.resolve();
    }
  }

  /** Looks again every POLL_MS while attempts wait; pokes may come from isolates that free a slot too. */
  #poll(round: number): void {
    if (this.#polling || this.#queue.length === 0) return;
    this.#polling = true;
    this.#timers.after(POLL_MS, () => {
      this.#polling = false;
      this.#retry();
      if (this.#queue.length === 0) return;
      if ((round + 1) % POKE_EVERY === 0) this.#channel?.poke();
      this.#poll(round + 1);
    });
  }

  #freeSlot(): void {
    if (this.#held === 0) return; // closed after a fatal join error: nothing was reserved
    const table = this.#table!;
    // Rejoin first (after a reclaim, #enter counts #held slots again, this one included), then give this one back.
    const row = this.#ensureRow();
    this.#held--;
    if (row === undefined) return;
    const shed = this.#shedding > 0;
    if (shed) this.#shedding--;
    table.release(row, shed);
    if (table.queued > 0) {
      this.#retry();
      this.#channel?.poke();
    }
  }

  /** Another member released a slot or waits for room. */
  #onPoke(): void {
    if (this.#queue.length > 0) this.#retry();
    this.#makeRoom();
  }

  /** Closes idle connections while waiters elsewhere need room (each claimed, so members do not all close one). */
  #makeRoom(): void {
    const table = this.#table;
    const row = this.#ensureRow();
    if (table === undefined || row === undefined) return;
    const over = table.used > table.max;
    // A member waiting itself has nothing idle to give, unless the group is over its budget.
    if (this.#queue.length > 0 && !over) return;
    while (table.claimShed(row)) {
      if (this.#hooks.shedIdle(over)) this.#shedding++;
      else {
        table.unclaimShed(row);
        return;
      }
    }
  }

  #tick(): void {
    const table = this.#table!;
    const row = this.#ensureRow();
    if (row === undefined) return;
    const now = Date.now();
    table.beat(row, now);
    table.setWaiting(row, this.#hooks.waiting());
    if (table.reclaimStale(now, STALE_MS) > 0) {
      this.#hooks.log.warn("capGroup {group}: reclaimed the slots of a member silent over {stale} ms", {
        group: this.#group,
        stale: STALE_MS,
      });
      this.#retry();
      this.#channel?.poke();
    }
    this.#makeRoom();
  }
}
