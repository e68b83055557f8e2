/**
 * What `withConnection()` / `transaction()` (./transaction.ts) and deadlines
 * (./deadline.ts) need of a pool in this isolate: borrow and return through
 * the pool, run statements through its driver, watch a lease, cancel on the
 * server. A Worker's attached pool provides its own (src/workers/worker.ts).
 *
 * @module
 */
import type { Logger } from "@logtape/logtape";
import type { Driver } from "../driver.ts";
import { holdsLease, leaseOf, returnedInScope } from "../core/_entry.ts";
import { PoolTimeoutError } from "../errors.ts";
import type { PoolCounters } from "../stats.ts";
import { type DeadlineHost, underDeadline } from "./deadline.ts";
import { sqlState, type TransactionHost } from "./transaction.ts";

/** The pool a local host borrows from. */
export interface LocalPool<C, G> {
  readonly name: string;
  readonly log: Logger;
  readonly driver: Driver<C>;
  /** Bounds the pool's own COMMIT/ROLLBACK and cancels (`connectTimeout`). */
  readonly finishTimeout: number;
  getconn(options?: G): Promise<C>;
  putconn(conn: C): Promise<void>;
  /** The error for a lease that ended because the pool closed, or undefined while it is open. */
  closedError(): Error | undefined;
  counters(): PoolCounters;
}

/** The deadline and transaction hosts of a pool in this isolate. */
export function localHosts<C, G>(pool: LocalPool<C, G>): { deadlines: DeadlineHost<C>; tx: TransactionHost<C, G> } {
  const deadlines: DeadlineHost<C> = {
    run: (conn, deadline, work) => {
      const lease = leaseOf(conn); // the caller's: the watch ends with it (work may give conn back early)
      return underDeadline(pool.driver, conn, deadline, work, pool.finishTimeout, () => holdsLease(conn, lease));
    },
    pastDeadline: (deadline, cause) =>
      deadline.signal?.aborted ? deadline.signal.reason : new PoolTimeoutError(
        `The transaction passed its deadline of ${deadline.timeout} ms on pool '${pool.name}' and was rolled back`,
        cause === undefined ? undefined : { cause },
      ),
  };
  const tx: TransactionHost<C, G> = {
    deadlines,
    getconn: (options) => pool.getconn(options),
    putconn: (conn) => pool.putconn(conn),
    status: (conn) => pool.driver.status(conn),
    query: (conn, text) => pool.driver.query(conn, text),
    finishTimeout: pool.finishTimeout,
    leaseOf: (conn) => leaseOf(conn),
    holds: (conn, lease) => holdsLease(conn, lease),
    leaseEnded: (_conn, helper) => pool.closedError() ?? returnedInScope(helper),
    onRetry: (error, attempt, retries) => {
      pool.counters().transactionRetries++;
      pool.log.debug("Pool {pool}: retrying transaction after {code}: attempt {attempt} of {attempts}", {
        pool: pool.name,
        code: sqlState(error),
        attempt: attempt + 2, // the one about to start, 1-based
        attempts: retries + 1,
      });
    },
  };
  return { deadlines, tx };
}
