import { Deque } from "./_deque.ts";

/**
 * One queued request (psycopg_pool's `WaitingClient`). It settles exactly once:
 * handing it a value after it timed out or was aborted returns `false`, and the
 * caller keeps the connection for the next waiter or the idle queue.
 */
export class Waiter<T> {
  settled = false;
  readonly promise: Promise<T>;
  readonly enqueuedAt: number = performance.now();
  #resolve!: (value: T) => void;
  #reject!: (reason: unknown) => void;
  #cleanup: (() => void) | undefined = undefined;

  constructor() {
    this.promise = new Promise<T>((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
  }

  /** Called on settle, once: clears the waiter's timer and abort listener. */
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
 * FIFO queue of waiters, O(1) at both ends. Waiters that gave up stay in the
 * ring until they reach the front (lazy removal), so `size` counts only the
 * live ones.
 */
export class WaiterQueue<T> {
  readonly #queue = new Deque<Waiter<T>>();
  #live = 0;

  /** Live (unsettled) waiters. */
  get size(): number {
    return this.#live;
  }

  add(waiter: Waiter<T>): void {
    this.#queue.push(waiter);
    this.#live++;
  }

  /** A waiter settled on its own (timeout, abort): it no longer counts. */
  forget(): void {
    this.#live--;
  }

  /** Hands `value` to the oldest live waiter; false when none takes it. */
  serve(value: T): boolean {
    for (;;) {
      const waiter = this.#queue.shift();
      if (waiter === undefined) return false;
      if (waiter.settled) continue;
      this.#live--;
      if (waiter.resolve(value)) return true;
    }
  }

  /** Fails every live waiter with `reason`. */
  rejectAll(reason: () => unknown): void {
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
}
