import { MAX_DELAY } from "../_util/_timers.ts";

/** The waiters that share one timeout value, in deadline order (see WaiterQueue). */
interface Group<T> {
  readonly timeout: number;
  head: Waiter<T> | undefined;
  tail: Waiter<T> | undefined;
}

/**
 * One queued request (psycopg_pool's `WaitingClient`). It settles exactly once:
 * handing it a value after it timed out or was aborted returns `false`, and the
 * caller keeps the connection for the next waiter or the idle queue.
 */
export class Waiter<T> {
  settled = false;
  readonly promise: Promise<T>;
  /**
   * Date.now() when queued, passed in so the caller reads the clock once.
   * Waiters use Date.now(): a clock read is the largest cost of a queued
   * checkout here (performance.now() ~160 ns, Date.now() ~80 ns), and the
   * sweep below guards against the wall clock stepping back.
   */
  readonly enqueuedAt: number;
  /** Date.now() after which a queued waiter times out (Infinity: never). */
  deadline = Infinity;
  /** The wait the request asked for, in ms, for the timeout message. */
  timeout = 0;
  /** Whether the pool lends the connection before resolving (else it resolves with its entry). */
  lend = false;
  /** The borrower's stack when leak detection is on, captured while it is still on the stack. */
  origin: string | undefined = undefined;
  /**
   * Links of the queue's two intrusive lists (FIFO order, and deadline order
   * within its timeout group): a waiter that gives up is unlinked in O(1) and
   * nothing keeps it (or its promise and reason) alive afterwards.
   */
  prev: Waiter<T> | undefined = undefined;
  next: Waiter<T> | undefined = undefined;
  groupPrev: Waiter<T> | undefined = undefined;
  groupNext: Waiter<T> | undefined = undefined;
  /** The timeout group it is linked in; undefined once out of the queue. */
  group: Group<T> | undefined = undefined;
  #resolve!: (value: T) => void;
  #reject!: (reason: unknown) => void;
  #cleanup: (() => void) | undefined = undefined;

  constructor(enqueuedAt: number = Date.now()) {
    this.enqueuedAt = enqueuedAt;
    this.promise = new Promise<T>((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
  }

  /** Called on settle, once: clears what the waiter holds (a timer, an abort listener). */
  onSettle(cleanup: () => void): void {
    this.#cleanup = cleanup;
  }

  /**
   * The one wait-with-timeout of the pool's own waits (`wait()`, `close()`, `drain()`): after `ms` (capped at
   * a timer's range) `expire` settles the waiter unless it settled first; the timer is cleared either way, and
   * `cleanup` runs once on settle (it replaces an `onSettle` callback).
   */
  expireAfter(ms: number, expire: (waiter: Waiter<T>) => void, cleanup?: () => void): void {
    const timer = setTimeout(() => expire(this), Math.min(Math.max(0, ms), MAX_DELAY));
    this.onSettle(() => {
      clearTimeout(timer);
      cleanup?.();
    });
  }

  /** Hands the waiter a value; false if it already gave up. */
  resolve(value: T): boolean {
    if (this.settled) return false;
    this.settled = true;
    this.#runCleanup();
    this.#resolve(value);
    return true;
  }

  /** Fails the waiter; false if it already settled. */
  reject(reason: unknown): boolean {
    if (this.settled) return false;
    this.settled = true;
    this.#runCleanup();
    this.#reject(reason);
    return true;
  }

  #runCleanup(): void {
    const cleanup = this.#cleanup;
    if (cleanup === undefined) return;
    this.#cleanup = undefined; // drop the closure (and what it captured) now
    cleanup();
  }
}

/**
 * FIFO queue of waiters with ONE timer for every waiter's deadline: a
 * `setTimeout` costs ~5 µs in Deno, more than the rest of a queued checkout,
 * so the queue arms a single timer for the earliest deadline and re-arms it
 * when it fires.
 *
 * Every operation is O(1) per waiter (enqueue, serve, abort, timeout):
 *
 * - Waiters are linked in an intrusive doubly linked list (serve order), so a
 *   waiter that gives up is unlinked at once with `remove()` and frees its
 *   memory, however long the queue.
 * - Waiters are also linked in one list per distinct `timeout` value: within
 *   such a group, deadlines grow with enqueue order, so the sweep pops only
 *   the expired heads and the next deadline is the smallest group head. The
 *   cost of a sweep is the number of expired waiters plus the number of
 *   distinct timeouts seen since the last sweep (a handful in practice).
 *
 * While the queue is empty the timer is unref'd (not cleared, so a busy pool
 * that empties and refills its queue does not pay a setTimeout each time): an
 * idle pool never keeps the process alive.
 */
export class WaiterQueue<T> {
  #head: Waiter<T> | undefined = undefined;
  #tail: Waiter<T> | undefined = undefined;
  #length = 0;
  /** Waiters being failed by a sweep: they still count, so their own timeout message shows them waiting. */
  #failing = 0;
  /** Groups by timeout; an empty one stays until the next sweep, so a queue that empties and refills reuses it. */
  readonly #groups = new Map<number, Group<T>>();
  /** The group of the last add: almost every request uses the pool's one timeout, so this skips the Map lookup. */
  #lastGroup: Group<T> | undefined = undefined;
  #timer: number | undefined = undefined;
  #timerAt = Infinity;
  #timerRef = false;
  readonly #onTimeout: (waiter: Waiter<T>) => void;

  /** @param onTimeout Fails a waiter whose deadline passed (the queue has already unlinked it). */
  constructor(onTimeout: (waiter: Waiter<T>) => void) {
    this.#onTimeout = onTimeout;
  }

  /** Waiters in the queue. */
  get size(): number {
    return this.#length + this.#failing;
  }

  add(waiter: Waiter<T>): void {
    waiter.prev = this.#tail;
    waiter.next = undefined;
    if (this.#tail === undefined) this.#head = waiter;
    else this.#tail.next = waiter;
    this.#tail = waiter;
    this.#length++;
    this.#linkGroup(waiter);
    if (waiter.deadline < this.#timerAt) this.#arm(waiter.deadline);
    else if (!this.#timerRef && this.#timer !== undefined) {
      Deno.refTimer(this.#timer);
      this.#timerRef = true;
    }
  }

  /** Unlinks a waiter that gave up (aborted); a no-op when it is no longer queued. */
  remove(waiter: Waiter<T>): void {
    if (waiter.group === undefined) return;
    this.#unlink(waiter);
  }

  /** Removes and returns the oldest waiter still waiting, for the caller to resolve at once. */
  take(): Waiter<T> | undefined {
    for (;;) {
      const waiter = this.#head;
      if (waiter === undefined) return undefined;
      this.#unlink(waiter);
      if (!waiter.settled) return waiter; // settled ones only if a caller forgot remove()
    }
  }

  /** Fails every waiter with `reason` and stops the timer. */
  rejectAll(reason: () => unknown): void {
    this.#disarm();
    for (let waiter = this.take(); waiter !== undefined; waiter = this.take()) {
      waiter.reject(reason());
    }
  }

  /** Inserts into its timeout group, keeping deadline order (a step back from the tail at most, in practice). */
  #linkGroup(waiter: Waiter<T>): void {
    let group = this.#lastGroup;
    if (group === undefined || group.timeout !== waiter.timeout) {
      group = this.#groups.get(waiter.timeout);
      if (group === undefined) {
        group = { timeout: waiter.timeout, head: undefined, tail: undefined };
        this.#groups.set(waiter.timeout, group);
      }
      this.#lastGroup = group;
    }
    waiter.group = group;
    let after = group.tail;
    while (after !== undefined && after.deadline > waiter.deadline) after = after.groupPrev;
    waiter.groupPrev = after;
    waiter.groupNext = after === undefined ? group.head : after.groupNext;
    if (after === undefined) group.head = waiter;
    else after.groupNext = waiter;
    if (waiter.groupNext === undefined) group.tail = waiter;
    else waiter.groupNext.groupPrev = waiter;
  }

  #unlink(waiter: Waiter<T>): void {
    if (waiter.prev === undefined) this.#head = waiter.next;
    else waiter.prev.next = waiter.next;
    if (waiter.next === undefined) this.#tail = waiter.prev;
    else waiter.next.prev = waiter.prev;
    const group = waiter.group!;
    if (waiter.groupPrev === undefined) group.head = waiter.groupNext;
    else waiter.groupPrev.groupNext = waiter.groupNext;
    if (waiter.groupNext === undefined) group.tail = waiter.groupPrev;
    else waiter.groupNext.groupPrev = waiter.groupPrev;
    waiter.prev =
      waiter.next =
      waiter.groupPrev =
      waiter.groupNext =
      waiter.group =
        undefined;
    if (--this.#length === 0) this.#unref();
  }

  #arm(at: number): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timerAt = at;
    this.#timerRef = true;
    // Deno returns a number; the type says Node's Timeout because npm types are loaded.
    this.#timer = setTimeout(
      () => this.#sweep(),
      Math.min(Math.max(0, at - Date.now()), MAX_DELAY),
    ) as unknown as number;
  }

  #disarm(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#timerAt = Infinity;
  }

  #unref(): void {
    if (this.#timerRef && this.#timer !== undefined) {
      Deno.unrefTimer(this.#timer);
      this.#timerRef = false;
    }
  }

  /** Times out the waiters past their deadline (the heads of each group), re-arms for the next deadline. */
  #sweep(): void {
    this.#timer = undefined;
    this.#timerAt = Infinity;
    const now = Date.now();
    const expired: Waiter<T>[] = [];
    let next = Infinity;
    for (const group of this.#groups.values()) {
      if (group.head === undefined) { // emptied since the last sweep
        this.#groups.delete(group.timeout); // deleting while iterating a Map is safe
        if (this.#lastGroup === group) this.#lastGroup = undefined;
        continue;
      }
      for (let waiter = group.head; waiter !== undefined; waiter = group.head) {
        // Timers may fire up to a millisecond early: count that as due. A deadline
        // further away than the whole wait means the wall clock stepped back:
        // the timer (monotonic) has run, so the wait is over.
        if (waiter.deadline <= now + 1 || waiter.deadline - now > waiter.timeout) {
          expired.push(waiter);
          this.#unlink(waiter);
        } else {
          if (waiter.deadline < next) next = waiter.deadline;
          break;
        }
      }
    }
    if (next !== Infinity) this.#arm(next);
    this.#failing += expired.length;
    for (const waiter of expired) {
      this.#onTimeout(waiter);
      this.#failing--;
    }
  }
}
