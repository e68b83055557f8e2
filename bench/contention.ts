/**
 * Contention benchmark: 80 tasks share 8 connections, each query holds its
 * connection ~1 ms (`select pg_sleep(0.001)`), so ~90% of tasks are always
 * queued. Measures the queue wait (checkout call to connection in hand) and
 * fairness: how evenly completed ops spread over the tasks. A FIFO queue gives
 * every task about the same count; a LIFO or racy one starves some.
 *
 * Run: `deno run -A tools/with_postgres.ts deno run -A bench/contention.ts`
 *
 * @module
 */

import { CONNECTIONS, databaseUrl, openPgPool, openTidepool } from "./_db_contenders.ts";
import type { PgClientLike } from "./_db_contenders.ts";
import { forDuration } from "./_load.ts";
import { type BenchResult, emit, progress, QUICK } from "./_report.ts";
import { fmtMs, fmtNum, fmtRatioRange, median, percentileSorted, roundOrder, stddev } from "./_stats.ts";

const TASKS = 80;
const SQL = "select pg_sleep(0.001)";
const ROUNDS = QUICK ? 1 : 5;
// 3 s holds ~150-250 ops per task: enough that a spread of a few ops is real.
const DURATION_MS = QUICK ? 300 : 3_000;

/** Checkout and return split apart, so the wait can be timed alone. */
interface Borrower {
  name: string;
  acquire(): Promise<PgClientLike>;
  release(c: PgClientLike): Promise<void> | void;
  close(): Promise<void>;
}

interface Run {
  qps: number;
  waits: Float64Array;
  perTask: number[];
}

async function runContention(b: Borrower, ms: number): Promise<Run> {
  const waits: number[] = [];
  const perTask = new Array<number>(TASKS).fill(0);
  const elapsed = await forDuration(TASKS, ms, async (task, open) => {
    const t = performance.now();
    const c = await b.acquire();
    const waited = performance.now() - t;
    try {
      await c.query(SQL);
    } finally {
      await b.release(c);
    }
    if (!open()) return;
    waits.push(waited);
    perTask[task]++;
  });
  return { qps: (waits.length * 1000) / elapsed, waits: Float64Array.from(waits).sort(), perTask };
}

/** Runs the contention benchmark. */
export async function runContentionBench(): Promise<BenchResult> {
  const url = databaseUrl();
  const tp = await openTidepool(url, "bench-contention");
  const pgp = await openPgPool(url);
  const borrowers: Borrower[] = [
    { name: "tidepool", acquire: () => tp.getconn(), release: (c) => tp.putconn(c), close: () => tp.close() },
    { name: "pg.Pool", acquire: () => pgp.connect(), release: (c) => c.release(), close: () => pgp.end() },
  ];
  const stats = new Map(borrowers.map((b) => [b.name, {
    qps: [] as number[],
    ratio: [] as number[],
    p50: [] as number[],
    p99: [] as number[],
    min: [] as number[],
    max: [] as number[],
    sd: [] as number[],
  }]));
  try {
    for (const b of borrowers) await runContention(b, QUICK ? 50 : 500); // warm-up
    for (let r = 0; r < ROUNDS; r++) {
      const round = new Map<string, number>();
      for (const b of roundOrder(borrowers, r)) {
        const run = await runContention(b, DURATION_MS);
        const s = stats.get(b.name)!;
        round.set(b.name, run.qps);
        s.qps.push(run.qps);
        s.p50.push(percentileSorted(run.waits, 50));
        s.p99.push(percentileSorted(run.waits, 99));
        s.min.push(Math.min(...run.perTask));
        s.max.push(Math.max(...run.perTask));
        s.sd.push(stddev(run.perTask));
      }
      for (const [name, q] of round) stats.get(name)!.ratio.push(q / round.get("tidepool")!);
      progress(`contention round ${r + 1}/${ROUNDS}`);
    }
  } finally {
    for (const b of borrowers) await b.close();
  }
  return {
    name: "Contention (80 tasks, 8 connections)",
    method: [
      `${TASKS} tasks loop getconn -> \`${SQL}\` -> putconn on ${CONNECTIONS} connections for ${DURATION_MS} ms per contender per round; ${ROUNDS} rounds, order alternating.`,
      "Queue wait = time from the checkout call until the connection is in hand.",
      "Fairness = completed ops per task in one round: min, max and standard deviation (lower spread is fairer). Medians over rounds.",
      "pg.Pool is used through connect()/release() with `min: 8, max: 8` (fixed size like tidepool), defaults otherwise.",
    ],
    tables: [{
      title: `Contention: ${TASKS} tasks on ${CONNECTIONS} connections, ${SQL}`,
      columns: [
        "contender",
        "q/s",
        "vs tidepool",
        "wait p50",
        "wait p99",
        "ops/task min",
        "ops/task max",
        "ops/task stddev",
      ],
      rows: borrowers.map((b) => {
        const s = stats.get(b.name)!;
        return [
          b.name,
          fmtNum(median(s.qps)),
          fmtRatioRange(s.ratio),
          fmtMs(median(s.p50)),
          fmtMs(median(s.p99)),
          fmtNum(median(s.min)),
          fmtNum(median(s.max)),
          fmtNum(median(s.sd), 1),
        ];
      }),
    }],
  };
}

if (import.meta.main) await emit(await runContentionBench());
