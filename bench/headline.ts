/**
 * The headline comparison, measured longer than the throughput sweep: `select 1`
 * at 64 tasks on 8 connections, tidepool `pool.query()` against `pg.Pool`,
 * plus an A/A pair (a second tidepool pool) that shows the noise. Many short
 * rounds in alternating order, because one round's ratio swings by +/-10% on
 * a shared 2-core machine.
 *
 * Run: `deno run -A tools/with_postgres.ts deno run -A bench/headline.ts`
 *
 * @module
 */

import { databaseUrl, type DbContender, type DbTarget, pgPool, tidepoolQuery } from "./_db_contenders.ts";
import { runFor } from "./_load.ts";
import { type BenchResult, emit, progress, QUICK } from "./_report.ts";
import { fmtNum, fmtRatioRange, median, roundOrder } from "./_stats.ts";

const TASKS = 64;
const ROUNDS = QUICK ? 2 : 16;
const DURATION_MS = QUICK ? 150 : 1_500;
const SQL = "select 1";

/** The A/A twin: the same contender under another name, with its own pool. */
const tidepoolTwin: DbContender = { ...tidepoolQuery, name: "tidepool query() (A/A)" };
const contenders = [tidepoolQuery, tidepoolTwin, pgPool];

/** Runs the headline comparison. */
export async function runHeadline(): Promise<BenchResult> {
  const url = databaseUrl();
  const targets = new Map<string, DbTarget>();
  const qps = new Map<string, number[]>(contenders.map((c) => [c.name, []]));
  const ratios = new Map<string, number[]>(contenders.map((c) => [c.name, []]));
  try {
    for (const c of contenders) {
      targets.set(c.name, await c.create(url, SQL));
      await runFor(targets.get(c.name)!, TASKS, 300); // warm-up
    }
    for (let r = 0; r < ROUNDS; r++) {
      const round = new Map<string, number>();
      for (const c of roundOrder(contenders, r)) {
        const run = await runFor(targets.get(c.name)!, TASKS, DURATION_MS);
        round.set(c.name, (run.ops * 1000) / run.elapsedMs);
      }
      for (const [name, q] of round) {
        qps.get(name)!.push(q);
        ratios.get(name)!.push(round.get(tidepoolQuery.name)! / q);
      }
      progress(`headline round ${r + 1}/${ROUNDS}`);
    }
  } finally {
    for (const t of targets.values()) await t.close();
  }
  return {
    name: "Headline: select 1 at 64 tasks, tidepool vs pg.Pool",
    method: [
      `${TASKS} tasks run \`${SQL}\` on ${tidepoolQuery.name} and on pg.Pool, 8 connections each, ${ROUNDS} rounds of ${DURATION_MS} ms per contender, order rotating and flipping every round.`,
      "Ratio = tidepool query() q/s / contender q/s in the same round (above 1.00x: tidepool is faster), median of rounds with min-max.",
    ],
    tables: [{
      title: `select 1, ${TASKS} tasks, 8 connections, ${ROUNDS} rounds`,
      columns: ["contender", "q/s (median)", "tidepool query() vs contender (min-max)"],
      rows: contenders.map((c) => [c.name, fmtNum(median(qps.get(c.name)!)), fmtRatioRange(ratios.get(c.name)!)]),
      notes: ["The A/A row is tidepool against a second, identical tidepool pool: its spread is the noise."],
    }],
  };
}

if (import.meta.main) await emit(await runHeadline());
