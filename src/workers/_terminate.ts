/**
 * Noticing `worker.terminate()`. Deno gives a MessagePort no close event and a
 * Worker no exit event, so without this the owner learns of a terminated
 * Worker only when its heartbeat lapses, and the requests it had queued would
 * keep starting until then. `share({ worker })` wraps that Worker's
 * `terminate` (an own property that calls the original) so its ports are
 * closed before the Worker goes.
 *
 * @module
 */

const hooks = new WeakMap<Worker, Set<() => void>>();

/**
 * Calls `fn` when `worker.terminate()` is called, before the Worker stops.
 *
 * @param worker The Worker to watch.
 * @param fn Called once per terminate; must not throw.
 * @returns Stops watching.
 */
export function onTerminate(worker: Worker, fn: () => void): () => void {
  let set = hooks.get(worker);
  if (set === undefined) {
    const callbacks = new Set<() => void>();
    set = callbacks;
    hooks.set(worker, callbacks);
    const terminate = worker.terminate;
    Object.defineProperty(worker, "terminate", {
      configurable: true,
      writable: true,
      value: function (this: Worker): void {
        for (const callback of [...callbacks]) callback();
        return terminate.call(this);
      },
    });
  }
  set.add(fn);
  return () => set.delete(fn);
}
