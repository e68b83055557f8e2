/**
 * Worker side of `bench/workers.ts`: attaches to the owner's pool through the
 * port it is sent, then runs timed `select 1` loops on request.
 *
 * Messages in: `{ cmd: "attach", port }`, `{ cmd: "run", concurrency, ms }`,
 * `{ cmd: "close" }`. Out: `{ ok: "attached" }`, a run result, `{ ok: "closed" }`,
 * or `{ error }`.
 *
 * @module
 */

/// <reference lib="deno.worker" />

import type { BenchPool } from "./_tidepool.ts";
import { loadTidepool } from "./_tidepool.ts";
import { runFor } from "./_load.ts";

let pool: BenchPool | undefined;

self.onmessage = async (e: MessageEvent) => {
  try {
    const msg = e.data;
    if (msg.cmd === "attach") {
      const { attachPool } = await loadTidepool();
      if (!attachPool) throw new Error("mod.ts does not export attachPool");
      pool = await attachPool(msg.port);
      self.postMessage({ ok: "attached" });
    } else if (msg.cmd === "run") {
      const p = pool!;
      const run = await runFor(
        { query: () => p.query("select 1") },
        msg.concurrency,
        msg.ms,
      );
      // Transfer the latency buffer instead of copying it.
      self.postMessage(
        { ops: run.ops, elapsedMs: run.elapsedMs, latencies: run.latencies },
        [run.latencies.buffer as ArrayBuffer],
      );
    } else if (msg.cmd === "close") {
      await pool?.close();
      self.postMessage({ ok: "closed" });
    }
  } catch (err) {
    self.postMessage({ error: String(err) });
  }
};
