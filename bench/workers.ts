/**
 * Workers benchmark: 4 Workers run `select 1` through `attachPool(port)` on
 * ports from the owner's `pool.share()`, against the owner alone running the
 * same total number of tasks on `pool.query`. Same pool, same 8 connections:
 * the ratio is what the message channel costs.
 *
 * Until `mod.ts` exports `attachPool` (the Worker feature comes later) it
 * reports itself as skipped instead of failing the run.
 *
 * Run: `deno run -A tools/with_postgres.ts deno run -A bench/workers.ts`
 *
 * @module
 */

import { CONNECTIONS, databaseUrl } from "./_db_contenders.ts";
import { runFor } from "./_load.ts";
import { type BenchResult, emit, progress, QUICK } from "./_report.ts";
import { fmtMs, fmtNum, fmtRatioRange, median, percentileSorted, roundOrder } from "./_stats.ts";
import { type BenchPool, loadTidepool } from "./_tidepool.ts";
import { ask } from "./_ask.ts";

const WORKERS = 4;
const PER_WORKER = 16; // 64 tasks in all: enough to keep 8 connections busy
const ROUNDS = QUICK ? 1 : 5;
const DURATION_MS = QUICK ? 200 : 2_000;

interface Sample {
  qps: number;
  p50: number;
  p99: number;
}

async function runWorkers(workers: Worker[]): Promise<Sample> {
  const runs = await Promise.all(
    workers.map((w) => ask(w, { cmd: "run", concurrency: PER_WORKER, ms: DURATION_MS })),
  );
  // The windows overlap but do not start at the same instant; summing per-worker
  // rates is fair as long as each window is long next to that skew (~ms vs 2 s).
  const qps = runs.reduce((a, r) => a + (r.ops * 1000) / r.elapsedMs, 0);
  const all = Float64Array.from(runs.flatMap((r) => Array.from(r.latencies as Float64Array)))
    .sort();
  return { qps, p50: percentileSorted(all, 50), p99: percentileSorted(all, 99) };
}

async function runOwner(pool: BenchPool): Promise<Sample> {
  const run = await runFor(
    { query: () => pool.query("select 1") },
    WORKERS * PER_WORKER,
    DURATION_MS,
  );
  return {
    qps: (run.ops * 1000) / run.elapsedMs,
    p50: percentileSorted(run.latencies, 50),
    p99: percentileSorted(run.latencies, 99),
  };
}

/** Runs the Workers benchmark, or reports why it was skipped. */
export async function runWorkersBench(): Promise<BenchResult> {
  const name = "Workers (shared pool)";
  const method = [
    `${WORKERS} Workers x ${PER_WORKER} tasks of \`select 1\` through attachPool(pool.share()) vs the owner alone with ${
      WORKERS * PER_WORKER
    } tasks on pool.query; one pool of ${CONNECTIONS} connections.`,
    `${DURATION_MS} ms per side per round, ${ROUNDS} rounds, order alternating; medians over rounds.`,
  ];
  let tp;
  try {
    tp = await loadTidepool();
  } catch (e) {
    return { name, skipped: `tidepool not loadable (${(e as Error).message})`, method, tables: [] };
  }
  if (!tp.attachPool) {
    return { name, skipped: "Worker sharing not implemented yet", method, tables: [] };
  }
  const pool = new tp.ConnectionPool({
    conninfo: databaseUrl(),
    minSize: CONNECTIONS,
    maxSize: CONNECTIONS,
    name: "bench-workers",
  });
  await pool.open({ wait: true });
  const workers: Worker[] = [];
  const sides = ["owner alone", `${WORKERS} Workers`];
  const samples = new Map<string, Sample[]>(sides.map((s) => [s, []]));
  const ratios: number[] = [];
  try {
    for (let i = 0; i < WORKERS; i++) {
      const w = new Worker(new URL("./_worker.ts", import.meta.url), { type: "module" });
      workers.push(w);
      const port = pool.share!();
      await ask(w, { cmd: "attach", port }, [port]);
    }
    await runOwner(pool); // warm-up both paths
    await runWorkers(workers);
    for (let r = 0; r < ROUNDS; r++) {
      const round = new Map<string, Sample>();
      for (const side of roundOrder(sides, r)) {
        round.set(side, side === sides[0] ? await runOwner(pool) : await runWorkers(workers));
      }
      for (const [s, v] of round) samples.get(s)!.push(v);
      ratios.push(round.get(sides[1])!.qps / round.get(sides[0])!.qps);
      progress(`workers round ${r + 1}/${ROUNDS}`);
    }
    for (const w of workers) await ask(w, { cmd: "close" });
  } finally {
    for (const w of workers) w.terminate();
    await pool.close();
  }
  return {
    name,
    method,
    tables: [{
      title: `Workers: select 1, ${WORKERS * PER_WORKER} tasks, ${CONNECTIONS} connections`,
      columns: ["side", "q/s", "vs owner alone", "p50", "p99"],
      rows: sides.map((s) => {
        const v = samples.get(s)!;
        return [
          s,
          fmtNum(median(v.map((x) => x.qps))),
          s === sides[0] ? "1.00x" : fmtRatioRange(ratios),
          fmtMs(median(v.map((x) => x.p50))),
          fmtMs(median(v.map((x) => x.p99))),
        ];
      }),
    }],
  };
}

if (import.meta.main) await emit(await runWorkersBench());
