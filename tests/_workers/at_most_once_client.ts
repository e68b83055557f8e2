/**
 * A Worker for `tests/workers/at_most_once_test.ts`: queues many
 * `pool.query()` writes on the owner and reports, per call, what it was told
 * (done, or failed and how), so the test can compare with the rows the server
 * committed.
 *
 * @module
 */
/// <reference lib="deno.worker" />
import { type AttachedPool, attachPool, PoolClosedError } from "../../mod.ts";
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

/** How many calls completed, failed with PoolClosedError, or failed otherwise (by name). */
function count(settled: PromiseSettledResult<unknown>[]): { done: number; closed: number; other: string[] } {
  const done = settled.filter((s) => s.status === "fulfilled").length;
  const closed = settled.filter((s) => s.status === "rejected" && s.reason instanceof PoolClosedError).length;
  const other = settled.filter((s) => s.status === "rejected" && !(s.reason instanceof PoolClosedError))
    .map((s) => String((s as PromiseRejectedResult).reason));
  return { done, closed, other };
}
