/**
 * Cycle benchmark for `deno bench`: acquire+release with no I/O, pool of 8, at
 * 1 and 64 concurrent tasks. Each measured iteration runs a batch of ops so
 * the per-iteration timer overhead stays small next to the work.
 *
 * Run: `deno bench -A bench/cycle_bench.ts` (no database needed). `bench/cycle.ts`
 * is the alternating-rounds version that `bench/run.ts` reports from.
 *
 * @module
 */

import {
  type CycleContender,
  floor,
  genericPoolContender,
  pgPool,
  tarnPool,
  tidepool,
  timeOps,
} from "./_cycle_contenders.ts";

// Ops per measured iteration; `deno bench` reports time per iteration, so
// divide by this for ns/op (the bench names say so).
const BATCH = 64;

const contenders: CycleContender[] = [
  tidepool(),
  pgPool,
  tarnPool,
  genericPoolContender,
  floor,
];

// Pools are built once up front: top-level await keeps setup out of the timings.
const targets = await Promise.all(contenders.map((c) => c.create()));

for (const tasks of [1, 64]) {
  const group = `cycle, ${tasks} task${tasks > 1 ? "s" : ""}, ${BATCH} ops/iter`;
  contenders.forEach((c, i) => {
    Deno.bench({
      name: c.name,
      group,
      baseline: c.name === "tidepool",
      fn: async () => {
        await timeOps(targets[i], tasks, BATCH);
      },
    });
  });
}

// Close pools when the process ends so no timer keeps it alive.
globalThis.addEventListener("unload", () => {
  for (const t of targets) void t.close();
});
