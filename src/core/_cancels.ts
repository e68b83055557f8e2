/**
 * CancelRequests still on their way, per connection. A CancelRequest travels
 * on a connection of its own and cancels whatever the backend runs when it
 * lands, so a connection must not go to its next user (a borrower, the
 * pipelining lane) while one sent for it may still arrive: the return path
 * waits for them (bounded; past the bound the connection is discarded).
 *
 * @module
 */
import type { Driver } from "../driver.ts";
import { sleep } from "../_util/_timers.ts";

/** How often a connection whose statements are being cancelled is looked at again. */
const POLL_MS = 10;

const pending = new WeakMap<object, Set<Promise<unknown>>>();
/** Cancels in flight, all connections: the return path's fast check costs nothing while it is 0. */
let inFlight = 0;

/**
 * Sends a CancelRequest for the statement running on `conn` through the
 * driver, and remembers it until it completes.
 *
 * @param driver The pool's driver.
 * @param conn The connection whose statement to cancel.
 * @returns Settles when the request completed (the server closed its socket) or failed.
 */
export function sendCancel<C>(driver: Driver<C>, conn: C): Promise<void> {
  const sent = driver.cancel === undefined
    ? Promise.reject(new Error("the driver cannot cancel a statement"))
    : driver.cancel(conn);
  const key = conn as object;
  let set = pending.get(key);
  if (set === undefined) pending.set(key, set = new Set());
  set.add(sent);
  inFlight++;
  const done = () => {
    inFlight--;
    set.delete(sent);
    if (set.size === 0 && pending.get(key) === set) pending.delete(key);
  };
  sent.then(done, done);
  return sent;
}

/**
 * Whether a CancelRequest sent for `conn` has not completed yet.
 *
 * @param conn A connection.
 * @returns True while one is on its way.
 */
export function cancelPending(conn: unknown): boolean {
  return inFlight > 0 && pending.has(conn as object);
}

/**
 * Resolves when every CancelRequest sent for `conn` so far, and any sent
 * while waiting, has completed or failed.
 *
 * @param conn A connection.
 */
export async function cancelsSettled(conn: unknown): Promise<void> {
  for (let set = pending.get(conn as object); set !== undefined; set = pending.get(conn as object)) {
    await Promise.allSettled([...set]);
  }
}

/**
 * Cancels what runs on `conn` until nothing does or `until` (a `performance.now()` time) has passed: pipelined
 * statements run one after another on the server, and each CancelRequest stops only the one running then, so the
 * next would start as soon as it ended. For closing a connection whose backend must stop first (`close()` at its
 * deadline, capGroup's slot); callers bound the whole wait, since one CancelRequest may hang on its own.
 *
 * @param driver The pool's driver.
 * @param conn The connection.
 * @param until When to stop trying.
 */
export async function cancelUntilIdle<C>(driver: Driver<C>, conn: C, until: number): Promise<void> {
  while (driver.status(conn) === "active" && performance.now() < until) {
    await sendCancel(driver, conn).catch(() => {});
    await sleep(POLL_MS);
  }
}
