/**
 * Abort listeners in O(1) per callback, however many share one signal.
 *
 * `EventTarget.removeEventListener` searches the signal's listener list, so N
 * queued requests sharing one `AbortSignal` (a request-scoped or server-wide
 * signal) cost O(N²) to clean up: 40k waiters blocked the event loop for
 * 12 s. Here each signal gets ONE listener, holding a Set of callbacks.
 *
 * @module
 */

interface Subscribers {
  readonly callbacks: Set<() => void>;
  readonly listener: () => void;
}

const bySignal = new WeakMap<AbortSignal, Subscribers>();

/**
 * Calls `callback` once when `signal` aborts, unless {@linkcode offAbort} ran first.
 * The signal must not be aborted yet (check `signal.aborted` first).
 */
export function onAbort(signal: AbortSignal, callback: () => void): void {
  let subscribers = bySignal.get(signal);
  if (subscribers === undefined) {
    const callbacks = new Set<() => void>();
    const listener = () => {
      // The entry stays until every callback ran, so a callback's offAbort on another one (not run yet) still
      // forgets it; deleting from a Set while iterating it skips what was deleted.
      for (const cb of callbacks) {
        callbacks.delete(cb);
        cb();
      }
      bySignal.delete(signal);
    };
    subscribers = { callbacks, listener };
    bySignal.set(signal, subscribers);
    signal.addEventListener("abort", listener, { once: true });
  }
  subscribers.callbacks.add(callback);
}

/** Forgets a callback given to {@linkcode onAbort}; the signal's listener goes when its last callback does. */
export function offAbort(signal: AbortSignal, callback: () => void): void {
  const subscribers = bySignal.get(signal);
  if (subscribers === undefined) return;
  subscribers.callbacks.delete(callback);
  if (subscribers.callbacks.size === 0) {
    bySignal.delete(signal);
    signal.removeEventListener("abort", subscribers.listener);
  }
}

/**
 * Settles like `promise`, or rejects with the signal's reason when `signal` aborts first
 * (through {@linkcode onAbort}: O(1) however many waits share the signal).
 */
export function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  const { promise: aborted, reject } = Promise.withResolvers<never>();
  const abort = () => reject(signal.reason);
  onAbort(signal, abort);
  return Promise.race([promise, aborted]).finally(() => offAbort(signal, abort));
}
