/** Longest setTimeout delay: beyond 2^31-1 ms a timer fires at once instead of never. */
export const MAX_DELAY = 2_147_483_647;

/**
 * The pool's timers. Each is unref'd, so a pool never keeps a process alive,
 * and tracked, so `close()` can clear every one and Deno's op sanitizer stays
 * quiet. There are few of them (one per connection's expiry, per retry, per
 * periodic job), so plain timers are simpler than a heap and cost nothing on
 * the checkout path.
 */
export class Timers {
  readonly #live = new Set<number>();

  /** Runs `fn` once after `delay` ms unless cancelled; returns the timer id. */
  after(delay: number, fn: () => void): number {
    // Deno returns a number; the type says Node's Timeout because npm types are loaded.
    const id = setTimeout(() => {
      this.#live.delete(id);
      fn();
    }, Math.min(Math.max(0, delay), MAX_DELAY)) as unknown as number;
    Deno.unrefTimer(id);
    this.#live.add(id);
    return id;
  }

  /** Runs `fn` every `period` ms; the next run is scheduled before `fn` works. */
  every(period: number, fn: () => void): void {
    this.after(period, () => {
      this.every(period, fn);
      fn();
    });
  }

  cancel(id: number | undefined): void {
    if (id === undefined) return;
    clearTimeout(id);
    this.#live.delete(id);
  }

  cancelAll(): void {
    for (const id of this.#live) clearTimeout(id);
    this.#live.clear();
  }
}

/**
 * A promise that resolves after `ms`, cleared on abort. Unlike the pool's own
 * timers it keeps the process alive: somebody awaits it.
 */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(id);
      reject(signal!.reason);
    };
    const id = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/**
 * Settles like `promise`, or rejects with `onTimeout()` after `ms`: a bound on
 * a callback or a probe that may hang (a blackholed socket), so no wait of the
 * pool is without one. The timer is cleared either way.
 */
export function within<T>(promise: Promise<T>, ms: number, onTimeout: () => Error): Promise<T> {
  if (!(ms > 0) || ms === Infinity) return promise; // 0 = no limit, as for connectTimeout
  let timer: number | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(onTimeout()), Math.min(Math.max(0, ms), MAX_DELAY)) as unknown as number;
  });
  return Promise.race([promise, expired]).finally(() => clearTimeout(timer));
}
