import type { Logger } from "@logtape/logtape";
import type { Driver } from "../driver.ts";
import { describeError } from "../_util/_log.ts";
import { within } from "../_util/_timers.ts";
import { cancelsSettled } from "./_cancels.ts";

/**
 * Makes a returned connection safe for the next borrower, the one return path
 * every pool shares: a broken connection, or one still running a query or
 * COPY, cannot be reused; an open or failed transaction is rolled back with a
 * warning; then `reset` runs. Returns false when the connection must be
 * discarded (the caller counts it in `returnsBad` and replaces it).
 * `timeoutMs` (the pool's connectTimeout; 0 = none) bounds the rollback and `reset` together.
 */
export async function prepareForReuse<C>(
  driver: Driver<C>,
  conn: C,
  reset: ((conn: C) => Promise<void> | void) | undefined,
  log: Logger,
  poolName: string,
  timeoutMs: number,
): Promise<boolean> {
  // A ROLLBACK or reset on a socket that stopped answering would make putconn hang:
  // past the bound the connection is discarded (closing it fails what is still running).
  try {
    return await within(clean(driver, conn, reset, log, poolName), timeoutMs, () => new Error("timed out"));
  } catch {
    log.warn("Pool {pool}: cleaning a returned connection took over {timeout} ms, discarding it", {
      pool: poolName,
      timeout: timeoutMs,
    });
    return false;
  }
}

async function clean<C>(
  driver: Driver<C>,
  conn: C,
  reset: ((conn: C) => Promise<void> | void) | undefined,
  log: Logger,
  poolName: string,
): Promise<boolean> {
  // A CancelRequest still on its way would cancel the next user's statement: wait for it (within the bound).
  await cancelsSettled(conn);
  const status = driver.status(conn);
  if (status === "broken" || status === "active") {
    log.warn("Pool {pool}: discarding a connection returned {status}", {
      pool: poolName,
      status: status === "broken" ? "closed or broken" : "with a query still running",
    });
    return false;
  }
  if (status === "intrans" || status === "inerror") {
    log.warn("Pool {pool}: rolling back a connection returned {status}", {
      pool: poolName,
      status: status === "intrans" ? "inside a transaction" : "inside a failed transaction",
    });
    try {
      await driver.rollback(conn);
    } catch (error) {
      log.warn("Pool {pool}: rollback failed, discarding the connection: {error}", {
        pool: poolName,
        error: describeError(error),
      });
      return false;
    }
  }
  if (reset === undefined) return true;
  try {
    await reset(conn);
    if (driver.status(conn) !== "idle") throw new Error("reset left the connection not idle");
  } catch (error) {
    log.warn("Pool {pool}: reset failed, discarding the connection: {error}", {
      pool: poolName,
      error: describeError(error),
    });
    return false;
  }
  return true;
}
