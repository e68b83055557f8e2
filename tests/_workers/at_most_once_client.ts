/**
 * A Worker for `tests/workers/at_most_once_test.ts`: queues many
 * `pool.query()` writes on the owner and reports, per call, what it was told
 * (done, or failed and how), so the test can compare with the rows the server
 * committed.
 *
 * @module
 */
/// <reference lib="deno.worker" />
import { type AttachedPool, attachPool, ConnectionLostError, PoolClosedError } from "../../mod.ts";
import { serveCommands } from "./_commands.ts";

let pool: AttachedPool | undefined;
let calls: Promise<PromiseSettledResult<unknown>[]> | undefined;

serveCommands({
  async attach(m) {
    pool = await attachPool(m.port as MessagePort);
    return "attached";
  },
  /** Starts `n` pool.query calls at once and answers without waiting for them. */
  queue(m) {
    calls = Promise.allSettled(
      Array.from({ length: m.n as number }, (_, i) => pool!.query(m.text as string, [i])),
    );
    return "queued";
  },
  /** Borrows a connection (a lease) and starts `n` statements on it at once, without waiting for them. */
  async queueOnLease(m) {
    const conn = await pool!.getconn();
    calls = Promise.allSettled(Array.from({ length: m.n as number }, (_, i) => conn.query(m.text as string, [i])));
    return "queued";
  },
  /** Detaches while the queued calls wait, then reports what each call was told. */
  async closeAndCount() {
    await pool!.close();
    return count(await calls!);
  },
  /** Blocks the event loop for `ms` (past the owner's heartbeatTimeout), then reports what each call was told. */
  async spinAndCount(m) {
    const end = performance.now() + (m.ms as number);
    while (performance.now() < end) { /* blocked */ }
    return count(await calls!);
  },
});

/** How many calls completed, failed with PoolClosedError, were lost (may have run), or failed otherwise. */
function count(
  settled: PromiseSettledResult<unknown>[],
): { done: number; closed: number; lost: number; other: string[] } {
  const done = settled.filter((s) => s.status === "fulfilled").length;
  const failed = settled.filter((s): s is PromiseRejectedResult => s.status === "rejected").map((s) => s.reason);
  const closed = failed.filter((e) => e instanceof PoolClosedError).length;
  const lost = failed.filter((e) => e instanceof ConnectionLostError).length;
  const other = failed.filter((e) => !(e instanceof PoolClosedError) && !(e instanceof ConnectionLostError))
    .map(String);
  return { done, closed, lost, other };
}
