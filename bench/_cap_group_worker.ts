/**
 * Worker side of `bench/cap_group.ts`: one isolate with its own pool (on a
 * capGroup, or a static maxSize), or attached to the owner's pool (`share()`),
 * running timed query loops on request.
 *
 * Messages in: `{ cmd: "open", url, maxSize, group? }`, `{ cmd: "attach", port }`,
 * `{ cmd: "run", concurrency, ms, text }`, `{ cmd: "first", text }` (one timed statement), `{ cmd: "close" }`. Out: `{ ok }`, a run
 * result `{ ops, elapsedMs, p99, connections }` (its own pool's size at the end), or `{ error }`.
 *
 * @module
 */

/// <reference lib="deno.worker" />

import { attachPool, ConnectionPool } from "../mod.ts";
import { runFor } from "./_load.ts";
import { percentileSorted } from "./_stats.ts";

let pool: { query(text: string): Promise<unknown>; close(): Promise<void> } | undefined;
/** This isolate's own pool (not an attached one), to report how many connections it used. */
let own: ConnectionPool | undefined;

self.onmessage = async (e: MessageEvent) => {
  try {
    const m = e.data;
    if (m.cmd === "open") {
      const p = new ConnectionPool({
        conninfo: m.url,
        maxSize: m.maxSize,
        minSize: 0,
        capGroup: m.group,
        pipeline: m.pipeline, // bench (a) turns pipelining off; undefined = the pool's default
        name: `bench-${m.group ?? "static"}`,
      });
      await p.open();
      pool = own = p;
    } else if (m.cmd === "attach") {
      pool = await attachPool(m.port);
    } else if (m.cmd === "run") {
      const p = pool!;
      const run = await runFor({ query: () => p.query(m.text) }, m.concurrency, m.ms);
      self.postMessage({
        ops: run.ops,
        elapsedMs: run.elapsedMs,
        p99: percentileSorted(run.latencies, 99),
        connections: own?.getStats().poolSize ?? 0,
      });
      return;
    } else if (m.cmd === "first") {
      // One statement, timed: how long an isolate arriving late waits for its first connection.
      const t0 = performance.now();
      await pool!.query(m.text);
      self.postMessage({ ms: performance.now() - t0 });
      return;
    } else if (m.cmd === "close") {
      await pool?.close();
      pool = undefined;
    }
    self.postMessage({ ok: m.cmd });
  } catch (err) {
    self.postMessage({ error: String(err) });
  }
};
