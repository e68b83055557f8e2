/**
 * App-shaped work, same run, 8 connections per contender: a point select by
 * primary key (64 tasks), a 3-table join with a parameter (64 tasks) and a
 * pgbench-like transaction (update, select, update, insert; 16 tasks), for
 * tidepool, pg.Pool, postgres.js, Kysely over each of them and Drizzle over
 * toPgPool and pg.Pool. Rounds alternate the order; a ratio is the median of
 * the per-round ratios.
 *
 * Run: `deno run -A tools/with_postgres.ts deno run -A bench/app.ts`
 *
 * @module
 */

import {
  ACCOUNTS,
  type AppContender,
  type AppTarget,
  type Args,
  drizzlePgPool,
  drizzleTidepool,
  kyselyPgPool,
  kyselyPostgresJs,
  kyselyTidepool,
  pgPoolApp,
  postgresJsApp,
  setUpSchema,
  TELLERS,
  tidepool,
  tidepoolUnprepared,
  truncateHistory,
} from "./_app_contenders.ts";
import { databaseUrl } from "./_db_contenders.ts";
import { runFor } from "./_load.ts";
import { type BenchResult, emit, npmVersion, progress, QUICK, type Table } from "./_report.ts";
import { fmtNum, fmtRatioRange, median, roundOrder } from "./_stats.ts";

const ROUNDS = QUICK ? 1 : 5;
const DURATION_MS = QUICK ? 150 : 1_000;

type Workload = "point" | "join" | "transaction";
const WORKLOADS: { key: Workload; title: string; tasks: number }[] = [
  { key: "point", title: "point select by primary key", tasks: 64 },
  { key: "join", title: "3-table join with a parameter", tasks: 64 },
  { key: "transaction", title: "pgbench-like transaction", tasks: 16 },
];

const CONTENDERS: AppContender[] = [
  tidepool,
  tidepoolUnprepared,
  pgPoolApp,
  postgresJsApp,
  kyselyTidepool,
  kyselyPgPool,
  kyselyPostgresJs,
  drizzleTidepool,
  drizzlePgPool,
];

/** The same-run ratios the issue sets targets for: [label, numerator, denominator, target per workload]. */
const RATIOS: [string, string, string, Partial<Record<Workload, number>>][] = [
  ["tidepool vs postgres.js", "tidepool", "postgres.js", { point: 1.2, join: 1.0, transaction: 1.05 }],
  ["tidepool vs pg.Pool", "tidepool", "pg.Pool", { transaction: 1.05 }],
  ["tidepool: cache on vs off", "tidepool", "tidepool preparedStatements:false", {}],
  ["Kysely: tidepool vs postgres.js", "Kysely / tidepool", "Kysely / postgres.js", {
    point: 1.0,
    join: 1.0,
    transaction: 1.0,
  }],
  ["Kysely: tidepool vs pg.Pool", "Kysely / tidepool", "Kysely / pg.Pool", { point: 1.3 }],
  ["Drizzle: toPgPool vs pg.Pool", "Drizzle / toPgPool", "Drizzle / pg.Pool", {
    point: 1.3,
    join: 1.0,
    transaction: 1.0,
  }],
];

/** Random arguments; the same sequence shape for every contender. */
function args(): Args {
  const aid = 1 + Math.floor(Math.random() * ACCOUNTS);
  const tid = 1 + Math.floor(Math.random() * TELLERS);
  return { aid, tid, bid: (tid - 1) % 10 + 1, delta: Math.floor(Math.random() * 10_001) - 5_000 };
}

async function timed(target: AppTarget, workload: Workload, tasks: number, ms: number): Promise<number> {
  const run = await runFor({ query: () => target[workload](args()) }, tasks, ms);
  return (run.ops * 1000) / run.elapsedMs;
}

/** Runs the app-shaped comparison. */
export async function runApp(): Promise<BenchResult> {
  const url = databaseUrl();
  await setUpSchema(url);
  const qps = new Map<string, number[]>();
  const perRound = new Map<string, Map<string, number>[]>();
  for (const w of WORKLOADS) {
    perRound.set(w.key, []);
    const targets = new Map<string, AppTarget>();
    try {
      for (const c of CONTENDERS) {
        targets.set(c.name, await c.create(url));
        await timed(targets.get(c.name)!, w.key, w.tasks, QUICK ? 50 : 300); // warm-up: JIT, plans, caches
      }
      for (let r = 0; r < ROUNDS; r++) {
        const round = new Map<string, number>();
        for (const c of roundOrder(CONTENDERS, r)) {
          if (w.key === "transaction") await truncateHistory(url);
          const q = await timed(targets.get(c.name)!, w.key, w.tasks, DURATION_MS);
          round.set(c.name, q);
          const key = `${w.key}/${c.name}`;
          qps.set(key, [...(qps.get(key) ?? []), q]);
        }
        perRound.get(w.key)!.push(round);
        progress(`app ${w.key} round ${r + 1}/${ROUNDS}`);
      }
    } finally {
      for (const t of targets.values()) await t.close().catch(() => {});
    }
  }
  const ratioOf = (w: Workload, num: string, den: string) => perRound.get(w)!.map((r) => r.get(num)! / r.get(den)!);
  const tables: Table[] = [
    {
      title: `Throughput, q/s (transactions/s for the transaction), median of ${ROUNDS} rounds, 8 connections each`,
      columns: ["contender", ...WORKLOADS.map((w) => `${w.title} (${w.tasks} tasks)`)],
      rows: CONTENDERS.map((c) => [c.name, ...WORKLOADS.map((w) => fmtNum(median(qps.get(`${w.key}/${c.name}`)!)))]),
    },
    {
      title: "Same-run ratios (median of per-round ratios, min-max; target in brackets)",
      columns: ["comparison", ...WORKLOADS.map((w) => w.title)],
      rows: RATIOS.map(([label, num, den, targets]) => [
        label,
        ...WORKLOADS.map((w) =>
          `${fmtRatioRange(ratioOf(w.key, num, den))}${targets[w.key] ? ` [>= ${targets[w.key]!.toFixed(2)}]` : ""}`
        ),
      ]),
      notes: [
        "Above 1.00x: the first named is faster. The targets apply to a quiet machine only.",
        "`tidepool: cache on vs off` is the A/B of the statement cache (`preparedStatements`).",
      ],
    },
  ];
  return {
    name: "App-shaped work: point select, join, transaction",
    method: [
      `${CONTENDERS.length} contenders, each on its own 8 connections, opened before timing; per workload ${ROUNDS} rounds of ${DURATION_MS} ms per contender, order rotating and flipping every round.`,
      `Tables: bench_accounts (${ACCOUNTS} rows), bench_tellers (${TELLERS}), bench_branches (10), bench_history (emptied before each transaction run). Random ids per call.`,
      "Transaction: UPDATE accounts, SELECT accounts, UPDATE tellers, INSERT history, inside BEGIN/COMMIT (pgbench's TPC-B-like shape without the branches update).",
    ],
    tables,
    versions: {
      postgres: await npmVersion("postgres"),
      kysely: await npmVersion("kysely"),
      "kysely-postgres-js": await npmVersion("kysely-postgres-js"),
      "drizzle-orm": await npmVersion("drizzle-orm"),
    },
  };
}

if (import.meta.main) await emit(await runApp());
