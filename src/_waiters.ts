import { Deque } from "./_deque.ts";

import { MAX_DELAY } from "./_timers.ts";

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

  /** Hands the waiter a value; false if it already gave up. */
  resolve(value: T): boolean {
    if (this.settled) return false;
    this.settled = true;
    this.#cleanup?.();
    this.#resolve(value);
    return true;
  }

  /** Fails the waiter; false if it already settled. */
  reject(reason: unknown): boolean {
    if (this.settled) return false;
    this.settled = true;
    this.#cleanup?.();
    this.#reject(reason);
    return true;
  }
}

/**
 * FIFO queue of waiters, O(1) at both ends, with ONE timer for every waiter's
 * deadline: a `setTimeout` costs ~5 µs in Deno, more than the rest of a queued
 * checkout, so the queue arms a single timer for the earliest deadline and
 * re-arms it when it fires. Waiters that gave up stay in the ring until they
 * reach the front or the timer sweeps (lazy removal), so `size` counts only the
 * live ones. While no waiter is live the timer is unref'd: an idle pool never
 * keeps the process alive.
 */
export class WaiterQueue<T> {
  #queue = new Deque<Waiter<T>>();
  #live = 0;
  #timer: number | undefined = undefined;
  #timerAt = Infinity;
  #timerRef = false;
  readonly #onTimeout: (waiter: Waiter<T>) => void;

  /** @param onTimeout Fails a waiter whose deadline passed (the queue has already dropped it). */
  constructor(onTimeout: (waiter: Waiter<T>) => void) {
    this.#onTimeout = onTimeout;
  }

  /** Live (unsettled) waiters. */
  get size(): number {
    return this.#live;
  }

  add(waiter: Waiter<T>): void {
    this.#queue.push(waiter);
    this.#live++;
    if (waiter.deadline < this.#timerAt) this.#arm(waiter.deadline);
    else if (!this.#timerRef && this.#timer !== undefined) {
      Deno.refTimer(this.#timer);
      this.#timerRef = true;
    }
  }

  /** A waiter settled on its own (abort): it no longer counts. */
  forget(): void {
    if (--this.#live === 0) this.#unref();
  }

  /** Removes and returns the oldest live waiter, for the caller to resolve at once. */
  take(): Waiter<T> | undefined {
    for (;;) {
      const waiter = this.#queue.shift();
      if (waiter === undefined) return undefined;
      if (waiter.settled) continue;
      if (--this.#live === 0) this.#unref();
      return waiter;
    }
  }

  /** Fails every live waiter with `reason` and stops the timer. */
  rejectAll(reason: () => unknown): void {
    this.#disarm();
    for (const waiter of this.#queue.drain()) {
      if (!waiter.settled) {
        this.#live--;
        waiter.reject(reason());
      }
    }
  }

  /** Age in ms of the oldest live waiter (0 when none), for invariant checks. */
  oldestAge(now: number): number {
    for (const waiter of this.#queue.toArray()) {
      if (!waiter.settled) return now - waiter.enqueuedAt;
    }
    return 0;
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

  /** Times out every waiter past its deadline, drops settled ones, re-arms for the next deadline. */
  #sweep(): void {
    this.#timer = undefined;
    this.#timerAt = Infinity;
    const now = Date.now();
    const keep = new Deque<Waiter<T>>();
    const expired: Waiter<T>[] = [];
    let next = Infinity;
    for (const waiter of this.#queue.drain()) {
      if (waiter.settled) continue;
      // Timers may fire up to a millisecond early: count that as due. A deadline
      // further away than the whole wait means the wall clock stepped back:
      // the timer (monotonic) has run, so the wait is over.
      if (waiter.deadline <= now + 1 || waiter.deadline - now > waiter.timeout) expired.push(waiter);
      else {
        keep.push(waiter);
        if (waiter.deadline < next) next = waiter.deadline;
      }
    }
    this.#queue = keep;
    if (next !== Infinity) this.#arm(next);
    // Each expired waiter still counts while it is failed, so its message shows it waiting.
    this.#live = keep.length + expired.length;
    for (const waiter of expired) {
      this.#onTimeout(waiter);
      if (--this.#live === 0) this.#unref();
    }
  }
}
