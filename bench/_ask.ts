/**
 * One request/reply with a bench Worker.
 *
 * @module
 */

// deno-lint-ignore no-explicit-any
export type Msg = any;

/** Sends one message and waits for the worker's next reply; rejects on `{ error }`. */
export function ask(w: Worker, msg: Msg, transfer: Transferable[] = []): Promise<Msg> {
  return new Promise((resolve, reject) => {
    w.onmessage = (e) => e.data?.error ? reject(new Error(e.data.error)) : resolve(e.data);
    w.onerror = (e) => {
      e.preventDefault();
      reject(new Error(`worker failed: ${e.message}`));
    };
    w.postMessage(msg, transfer);
  });
}
