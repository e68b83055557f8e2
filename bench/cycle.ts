/**
 * Cycle benchmark, script form (what `bench/run.ts` uses): acquire+release with
 * no I/O, pool of 8, at 1 and 64 concurrent tasks.
 *
 * Every contender runs N ops per round; the order rotates and flips each round;
 * we report the median ns/op and the median of per-round ratios against
 * tidepool. "tidepool (A/A)" is a second, identical tidepool pool: its ratio
 * shows how much of any difference is just noise.
 *
 * Run: `deno run -A bench/cycle.ts` (no database needed).
 *
 * @module
 */

import {
  type CycleContender,
  type CycleTarget,
  floor,
  genericPoolContender,
  pgPool,
  POOL_SIZE,
  tarnPool,
  tidepool,
  timeOps,
} from "./_cycle_contenders.ts";
import { type BenchResult, emit, npmVersion, progress, QUICK, type Table } from "./_report.ts";
import { fmtNum, fmtRatioRange, median, roundOrder } from "./_stats.ts";

const TASKS = [1, 64];
const ROUNDS = QUICK ? 2 : 9;
// Each contender gets its own N, sized in warm-up to take ~TARGET_MS per round:
// long enough to swamp timer resolution and GC blips, yet a slow peer (tarn is
// ~30x slower than the floor) cannot stretch the run past a minute.
const TARGET_MS = QUICK ? 20 : 200;
const WARMUP_OPS = QUICK ? 2_000 : 20_000;
const BASELINE = "tidepool";

const contenders: CycleContender[] = [
  tidepool(BASELINE),
  tidepool("tidepool (A/A)"),
  pgPool,
  tarnPool,
  genericPoolContender,
  floor,
];

/** Runs the cycle benchmark and returns its tables. */
export async function runCycle(): Promise<BenchResult> {
  const targets = new Map<string, CycleTarget>();
  for (const c of contenders) targets.set(c.name, await c.create());
  const tables: Table[] = [];
  try {
    for (const tasks of TASKS) {
      // Warm-up: let the JIT settle every contender before anything counts, and
      // size its N from the second (warmer) pass.
      const ops = new Map<string, number>();
      for (const c of contenders) {
        await timeOps(targets.get(c.name)!, tasks, WARMUP_OPS);
        const ns = await timeOps(targets.get(c.name)!, tasks, WARMUP_OPS);
        const n = Math.round((TARGET_MS * 1e6) / ns);
        ops.set(c.name, Math.min(2_000_000, Math.max(WARMUP_OPS, n)));
      }
      const ns = new Map<string, number[]>(contenders.map((c) => [c.name, []]));
      const ratios = new Map<string, number[]>(contenders.map((c) => [c.name, []]));
      for (let r = 0; r < ROUNDS; r++) {
        const round = new Map<string, number>();
        for (const c of roundOrder(contenders, r)) {
          round.set(c.name, await timeOps(targets.get(c.name)!, tasks, ops.get(c.name)!));
        }
        for (const [name, v] of round) {
          ns.get(name)!.push(v);
          ratios.get(name)!.push(v / round.get(BASELINE)!);
        }
        progress(`cycle tasks=${tasks} round ${r + 1}/${ROUNDS}`);
      }
      tables.push({
        title: `Cycle: acquire+release, ${tasks} task${tasks > 1 ? "s" : ""}, pool of ${POOL_SIZE}`,
        columns: [
          "contender",
          "ops/round",
          "ns/op (median)",
          "vs tidepool (median of rounds, min-max)",
        ],
        rows: contenders.map((c) => [
          c.name,
          fmtNum(ops.get(c.name)!),
          fmtNum(median(ns.get(c.name)!), 0),
          fmtRatioRange(ratios.get(c.name)!),
        ]),
        notes: [
          "Ratio = contender ns/op / tidepool ns/op in the same round; below 1.00x is faster than tidepool.",
        ],
      });
    }
  } finally {
    for (const t of targets.values()) await t.close();
  }
  return {
    name: "Cycle (no I/O)",
    method: [
      `Pools of ${POOL_SIZE}, filled before timing; fake connections (bench/_fake_driver.ts), no I/O.`,
      `Each contender runs N acquire+release ops per round (N sized in warm-up to ~${TARGET_MS} ms, split over the tasks); ${ROUNDS} rounds after warm-up.`,
      "Contender order rotates by one and flips every round; ns/op is the median over rounds.",
      "tidepool (A/A) is a second identical tidepool pool: its ratio is the noise floor of this table.",
      "pg-pool runs with `min: 8, max: 8` (fixed size like the others; below min it arms an idle timer per release).",
      "floor = the same async wrapper around one `await` of a resolved promise: the harness cost.",
    ],
    tables,
    versions: {
      "pg-pool": await npmVersion("pg-pool"),
      tarn: await npmVersion("tarn"),
      "generic-pool": await npmVersion("generic-pool"),
    },
  };
}

if (import.meta.main) await emit(await runCycle());
