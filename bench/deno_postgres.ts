/**
 * What the deno-postgres driver costs and saves: a parameterised
 * `select $1::int` at concurrency 1 and 64 over 8 connections, for deno-postgres's
 * own `Pool`, tidepool over `createDenoPostgresDriver`, and tidepool over
 * node-postgres. Not part of `deno task bench`; the numbers in the README come
 * from it.
 *
 * Run: `deno run -A tools/with_postgres.ts deno run -A bench/deno_postgres.ts [seconds per cell]`
 *
 * @module
 */

import { databaseUrl, type DbContender, openTidepool } from "./_db_contenders.ts";
import { loadDenoPostgresContenders } from "./_deno_postgres_contenders.ts";
import { runFor } from "./_load.ts";
import { fmtMs, fmtNum, percentileSorted } from "./_stats.ts";

const SQL = "select $1::int";
const PARAMS = [1];
const LEVELS = [1, 64];
const SECONDS = Number(Deno.args[0] ?? 3);

const tidepoolPg: DbContender = {
  name: "tidepool over node-postgres",
  async create(url, sql) {
    const pool = await openTidepool(url, "bench-pg-params");
    return { query: () => pool.query(sql, PARAMS), close: () => pool.close() };
  },
};

const dp = await loadDenoPostgresContenders(PARAMS);
if (dp.skipped) {
  console.error(dp.skipped);
  Deno.exit(1);
}
const url = databaseUrl();
console.log(`${SQL} with [1], ${SECONDS} s per cell, deno-postgres from ${dp.source}`);
console.log("| contender | concurrency | q/s | p50 | p99 |\n| --- | --- | --- | --- | --- |");
for (const contender of [...dp.contenders, tidepoolPg]) {
  const target = await contender.create(url, SQL);
  try {
    for (const level of LEVELS) {
      await runFor(target, level, 200);
      const run = await runFor(target, level, SECONDS * 1000);
      console.log(
        `| ${contender.name} | ${level} | ${fmtNum((run.ops * 1000) / run.elapsedMs)} | ${
          fmtMs(percentileSorted(run.latencies, 50))
        } | ${fmtMs(percentileSorted(run.latencies, 99))} |`,
      );
    }
  } finally {
    await target.close();
  }
}
