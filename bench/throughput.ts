/**
 * Throughput benchmark: `select 1` and the parameterised `select $1::int + 1`
 * for a fixed time at concurrency 1/8/64/256
 * over 8 connections on the real server (`DATABASE_URL`). Reports q/s, p50/p99
 * latency (call to resolution, queue wait included) and the median of
 * per-round q/s ratios against `tidepool query()`. Writes the chart
 * `throughput.svg` into the output directory (see `outDir`).
 *
 * Run: `deno run -A tools/with_postgres.ts deno run -A bench/throughput.ts`
 *
 * @module
 */

import {
  CONNECTIONS,
  databaseUrl,
  type DbContender,
  type DbTarget,
  pgPool,
  postgresJs,
  rawClients,
  rawPipelinedClients,
  tidepoolFifo,
  tidepoolGetconn,
  tidepoolPipelined32,
  tidepoolQuery,
  tidepoolQueryAA,
  tidepoolUnpipelined,
} from "./_db_contenders.ts";
import { type BenchResult, emit, npmVersion, outDir, progress, QUICK, type Table } from "./_report.ts";
import { fmtMs, fmtNum, fmtRatioRange, median, percentileSorted, roundOrder } from "./_stats.ts";
import { lineChart } from "./_svg.ts";
import { runFor } from "./_load.ts";
import { loadDenoPostgresContenders } from "./_deno_postgres_contenders.ts";

/** The statement shapes: the simple protocol without parameters, the extended one with. */
const SHAPES: { sql: string; params?: unknown[]; label: string }[] = [
  { sql: "select 1", label: "select 1" },
  { sql: "select $1::int + 1", params: [41], label: "select $1::int + 1" },
];
const SQL = SHAPES[0].sql;
const LEVELS = [1, 8, 64, 256];
const ROUNDS = QUICK ? 1 : 5;
// 12 contenders (10 + 2 deno-postgres) x 4 levels x 2 shapes x 5 rounds x 0.8 s
// = 384 s: the biggest slice of the budget; 0.8 s still holds ~10^4 queries,
// enough for a stable p99.
const DURATION_MS = QUICK ? 150 : 800;
const WARMUP_MS = QUICK ? 50 : 300;

const contenders: DbContender[] = [
  tidepoolQuery,
  tidepoolFifo,
  tidepoolGetconn,
  pgPool,
  postgresJs,
  rawClients,
  tidepoolQueryAA,
  tidepoolUnpipelined,
  tidepoolPipelined32,
  rawPipelinedClients,
];
const denoPostgres = await loadDenoPostgresContenders();
contenders.push(...denoPostgres.contenders);
if (denoPostgres.skipped) progress(denoPostgres.skipped);
const BASELINE = tidepoolQuery.name;

interface Cell {
  qps: number[];
  p50: number[];
  p99: number[];
  ratio: number[];
}

/** Runs the throughput benchmark; also writes throughput.svg. */
export async function runThroughput(): Promise<BenchResult> {
  const tables: Table[] = [];
  let series: { name: string; points: { x: number; y: number }[] }[] = [];
  for (const shape of SHAPES) {
    const part = await runShape(shape.sql, shape.params, shape.label);
    tables.push(...part.tables);
    if (shape === SHAPES[0]) series = part.series;
  }
  const svg = lineChart(series, {
    title: `select 1 throughput, ${CONNECTIONS} connections`,
    xLabel: "concurrent tasks",
    yLabel: "queries per second (median of rounds)",
  });
  await Deno.writeTextFile(`${await outDir()}/throughput.svg`, svg);
  return {
    name: "Throughput (real server)",
    method: [
      `\`${SQL}\` (simple protocol) and \`${
        SHAPES[1].sql
      }\` with one parameter (extended protocol) in a loop by N concurrent tasks for ${DURATION_MS} ms per contender per round; ${ROUNDS} rounds after a ${WARMUP_MS} ms warm-up per contender and level.`,
      `Each contender keeps ${CONNECTIONS} server connections, all opened before timing. Client and server share the same machine.`,
      "Order rotates and flips every round (and is offset per level); only queries that finish inside the window count.",
      "q/s, p50 and p99 are medians over rounds; ratios are medians of per-round ratios (min-max shown).",
      "Latency is from call to resolution, so it includes time queued for a connection.",
      "pg.Pool runs with `min: 8, max: 8` so it keeps its connections between turns (its default closes clients idle for 10 s).",
      "8 raw pg.Clients is the limit without pipelining: no pool, task i always uses client i % 8 (pg.Client queues internally); 8 raw pipelined pg.Clients (`pipeline: true`) is the limit with it.",
      "tidepool query() is the default configuration: `pipeline: 16`, order LIFO; `fifo` is psycopg_pool's order; `pipeline:1` turns pipelining off, `pipeline:32` goes deeper. The A/A row is a second default pool: its ratio is the run's noise.",
      "postgres.js pipelines queries on a connection, as tidepool's query() and the raw pipelined clients do; pg.Pool and getconn/putconn run one query per connection at a time.",
      denoPostgres.skipped ??
        "deno-postgres: its own `Pool` (8 clients, not lazy) and tidepool over `createDenoPostgresDriver` (8 connections, no pipelining: the driver cannot), both in both shapes. Without parameters deno-postgres sends one message per query and its sockets' missing TCP no-delay costs little; with parameters its own Pool pays ~40 ms per query for it (`bench/deno_postgres.ts`), which tidepool's driver avoids by setting no-delay.",
    ],
    tables,
    series,
    versions: {
      pg: await npmVersion("pg"),
      postgres: await npmVersion("postgres"),
      ...(denoPostgres.source ? { "deno-postgres": denoPostgres.source } : {}),
    },
  };
}

/** One statement shape at every level, every contender. */
async function runShape(
  sql: string,
  params: unknown[] | undefined,
  label: string,
): Promise<{ tables: Table[]; series: { name: string; points: { x: number; y: number }[] }[] }> {
  const url = databaseUrl();
  const targets = new Map<string, DbTarget>();
  const cells = new Map<string, Cell>();
  const key = (name: string, level: number) => `${name}@${level}`;
  try {
    for (const c of contenders) targets.set(c.name, await c.create(url, sql, params));
    for (const level of LEVELS) {
      for (const c of contenders) {
        cells.set(key(c.name, level), { qps: [], p50: [], p99: [], ratio: [] });
        await runFor(targets.get(c.name)!, level, WARMUP_MS);
      }
    }
    for (let r = 0; r < ROUNDS; r++) {
      for (const [li, level] of LEVELS.entries()) {
        // Offsetting by level too spreads every contender over every slot.
        const qps = new Map<string, number>();
        for (const c of roundOrder(contenders, r + li)) {
          const run = await runFor(targets.get(c.name)!, level, DURATION_MS);
          const cell = cells.get(key(c.name, level))!;
          const q = (run.ops * 1000) / run.elapsedMs;
          qps.set(c.name, q);
          cell.qps.push(q);
          cell.p50.push(percentileSorted(run.latencies, 50));
          cell.p99.push(percentileSorted(run.latencies, 99));
        }
        for (const [name, q] of qps) {
          cells.get(key(name, level))!.ratio.push(q / qps.get(BASELINE)!);
        }
        progress(`throughput ${label} round ${r + 1}/${ROUNDS} concurrency ${level} done`);
      }
    }
  } finally {
    for (const t of targets.values()) await t.close();
  }

  const tables: Table[] = [{
    title: `Throughput: ${label}, q/s (median of ${ROUNDS} rounds), ${CONNECTIONS} connections`,
    columns: ["contender", ...LEVELS.map((l) => `c=${l}`)],
    rows: contenders.map((c) => [
      c.name,
      ...LEVELS.map((l) => fmtNum(median(cells.get(key(c.name, l))!.qps))),
    ]),
  }];
  for (const level of LEVELS) {
    tables.push({
      title: `Throughput: ${label} at concurrency ${level}`,
      columns: ["contender", "q/s", "vs tidepool query() (min-max)", "p50", "p99"],
      rows: contenders.map((c) => {
        const cell = cells.get(key(c.name, level))!;
        return [
          c.name,
          fmtNum(median(cell.qps)),
          fmtRatioRange(cell.ratio),
          fmtMs(median(cell.p50)),
          fmtMs(median(cell.p99)),
        ];
      }),
      notes: level === LEVELS[0]
        ? ["Ratio = contender q/s / tidepool query() q/s in the same round; above 1.00x is faster."]
        : undefined,
    });
  }
  const series = contenders.map((c) => ({
    name: c.name,
    points: LEVELS.map((l) => ({ x: l, y: median(cells.get(key(c.name, l))!.qps) })),
  }));
  return { tables, series };
}

if (import.meta.main) await emit(await runThroughput());
