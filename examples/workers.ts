/**
 * One pool, five isolates, one cap: the main isolate and 4 Workers share a
 * `ThreadedConnectionPool(1, 4)`. Each runs 25 small transactions; the pool
 * never opens more than 4 server connections, which the example proves by
 * sampling `pg_stat_activity` while the work runs.
 *
 * ```sh
 * DATABASE_URL=postgres://... deno run -A examples/workers.ts
 * deno run -A tools/with_postgres.ts deno run -A examples/workers.ts   # embedded server
 * ```
 *
 * The classic pool never waits: at `maxconn` its `getconn()` throws
 * `PoolExhaustedError`, in a Worker as in the main isolate, so each isolate
 * retries after a short pause (as psycopg2 code does). This file is both the
 * main script and the Workers' script.
 *
 * @module
 */
/// <reference lib="deno.worker" />
// In your app: import { attachPool, PoolExhaustedError, ThreadedConnectionPool } from "@tidepool/pg";
import pg from "pg";
import { attachPool, PoolExhaustedError, ThreadedConnectionPool } from "../mod.ts";

const WORKERS = 4;
const MAXCONN = 4;
const JOBS = 25;
const APP = "tidepool-example-workers";

/** Runs `fn` until it does not throw PoolExhaustedError; returns how many retries it took. */
async function retryExhausted(fn: () => Promise<void>): Promise<number> {
  for (let retries = 0;; retries++) {
    try {
      await fn();
      return retries;
    } catch (error) {
      if (!(error instanceof PoolExhaustedError)) throw error;
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  }
}

const inWorker = typeof (globalThis as { WorkerGlobalScope?: unknown }).WorkerGlobalScope !== "undefined";

if (inWorker) {
  // ---- a Worker: borrow the owner's connections through the port -----------
  self.onmessage = async (e: MessageEvent<{ pool: MessagePort; id: number }>) => {
    const pool = await attachPool(e.data.pool);
    let retries = 0;
    for (let n = 0; n < JOBS; n++) {
      retries += await retryExhausted(() =>
        pool.transaction(async (conn) => {
          await conn.query("insert into tidepool_example_jobs(isolate, n) values ($1, $2)", [e.data.id, n]);
          await conn.query("select pg_sleep(0.01)"); // hold the connection a little, so they overlap
        })
      );
    }
    await pool.close(); // detach; the owner's pool stays open
    self.postMessage({ id: e.data.id, retries });
  };
} else {
  // ---- the main isolate: owns the pool --------------------------------------
  const url = new URL(Deno.env.get("DATABASE_URL") ?? "postgres://postgres@localhost/postgres");
  url.searchParams.set("application_name", APP);
  const pool = new ThreadedConnectionPool(1, MAXCONN, url.toString());
  const monitor = new pg.Client({ connectionString: Deno.env.get("DATABASE_URL") });
  await monitor.connect();
  const workers: Worker[] = [];
  try {
    await monitor.query("create table if not exists tidepool_example_jobs (isolate int, n int)");
    await monitor.query("truncate tidepool_example_jobs");
    console.log(`ThreadedConnectionPool(1, ${MAXCONN}) shared by the main isolate and ${WORKERS} Workers`);

    // Sample the server's view while the work runs.
    let peak = 0;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const { rows } = await monitor.query<{ n: number }>(
          "select count(*)::int as n from pg_stat_activity where application_name = $1",
          [APP],
        );
        peak = Math.max(peak, rows[0].n);
        await new Promise((resolve) => setTimeout(resolve, 2));
      }
    })();

    const done: Promise<{ id: number; retries: number }>[] = [];
    for (let id = 1; id <= WORKERS; id++) {
      const worker = new Worker(import.meta.url, { type: "module" });
      workers.push(worker);
      const port = pool.share({ worker }); // one port per Worker
      done.push(
        new Promise((resolve, reject) => {
          worker.onmessage = (e) => resolve(e.data);
          worker.onerror = (e) => reject(e.error ?? new Error(e.message));
        }),
      );
      worker.postMessage({ pool: port, id }, [port]);
    }

    // The main isolate works through the same pool meanwhile (isolate 0).
    let mainRetries = 0;
    for (let n = 0; n < JOBS; n++) {
      mainRetries += await retryExhausted(async () => {
        const conn = await pool.getconn();
        try {
          await conn.query("begin");
          await conn.query("insert into tidepool_example_jobs(isolate, n) values (0, $1)", [n]);
          await conn.query("select pg_sleep(0.01)");
          await conn.query("commit");
        } finally {
          await pool.putconn(conn);
        }
      });
    }
    console.log(`main isolate: ${JOBS} transactions, ${mainRetries} retries after PoolExhaustedError`);
    for (const { id, retries } of await Promise.all(done)) {
      console.log(`worker ${id}: ${JOBS} transactions, ${retries} retries after PoolExhaustedError`);
    }
    sampling = false;
    await sampler;

    const { rows } = await monitor.query<{ n: number }>("select count(*)::int as n from tidepool_example_jobs");
    console.log(`rows inserted: ${rows[0].n}`);
    console.log(`peak server connections: ${peak} (cap ${MAXCONN})`);
    if (peak > MAXCONN) throw new Error("the cap did not hold");
  } finally {
    for (const worker of workers) worker.terminate();
    await pool.closeall();
    await monitor.query("drop table if exists tidepool_example_jobs").catch(() => {});
    await monitor.end();
  }
}
