/**
 * Queries a borrower left running when the pool closes their connection (an
 * un-awaited `conn.query()` inside `transaction()`, a connection returned
 * mid-statement). Closing fails them ("Connection terminated"); their promises
 * belong to code that stopped listening, and the caller was already told why
 * with a `PoolError`, so that rejection would reach nobody but Deno's
 * unhandled-rejection handler, which ends the process. The pool marks exactly
 * those errors, and one `unhandledrejection` listener lets marked ones pass;
 * any other rejection, and any marked one the code does await, is untouched.
 *
 * @module
 */

/** pg's Query objects, as far as this file reads them. */
interface PendingQuery {
  callback?: (error: unknown, result: unknown) => void;
}

const abandoned = new WeakSet<object>();
let listening = false;

function onUnhandled(event: PromiseRejectionEvent): void {
  const reason = event.reason;
  if (typeof reason === "object" && reason !== null && abandoned.has(reason)) event.preventDefault();
}

/**
 * Marks an error a borrower's statement failed with because the pool closed
 * its connection: left unhandled, it is let pass instead of ending the process.
 *
 * @param error The statement's error.
 */
export function markAbandoned(error: unknown): void {
  if (typeof error !== "object" || error === null) return;
  if (!listening) {
    listening = true;
    globalThis.addEventListener("unhandledrejection", onUnhandled);
  }
  abandoned.add(error);
}

/**
 * Marks the errors the given pg queries will fail with, before their
 * connection is closed, so that nothing the pool's cleanup starts rejects
 * unhandled.
 *
 * @param queries pg's active, queued and pipelined queries of one client.
 */
export function abandonQueries(queries: Iterable<unknown>): void {
  for (const query of queries) {
    const q = query as PendingQuery | null | undefined;
    const callback = q?.callback;
    if (typeof callback !== "function") continue;
    q!.callback = (error, result) => {
      markAbandoned(error);
      callback(error, result);
    };
  }
}
