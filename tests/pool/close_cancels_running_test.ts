/**
 * close() at its deadline cancels the statements still running on the
 * connections still out before it destroys their sockets: afterwards nothing
 * of the pool runs on the server. Sampled in pg_stat_activity.
 */
import assert from "node:assert/strict";
import { ConnectionPool } from "../../mod.ts";
import { adminQuery, waitFor, withTestDatabase } from "../_db.ts";

async function sleepers(dbName: string): Promise<number> {
  const [row] = await adminQuery<{ n: number }>(
    "select count(*)::int as n from pg_stat_activity where datname = $1 and state = 'active' and query like '%close_sleeper%'",
    [dbName],
  );
  return row.n;
}

Deno.test("close({ timeout }) cancels statements still running at its deadline: none runs on the server after it returns", () =>
  withTestDatabase(async (db) => {
    const pool = new ConnectionPool({ conninfo: db.url, minSize: 3, maxSize: 3, pipeline: 4 });
    await pool.open({ wait: true });
    const calls = [
      pool.query("select pg_sleep(30) /* close_sleeper pipelined */"),
      pool.query("select pg_sleep(30) /* close_sleeper deadline */", [], { timeout: 60_000 }),
      pool.withConnection((conn) => conn.query("select pg_sleep(30) /* close_sleeper borrowed */")),
    ].map((p) => p.then(() => "resolved", () => "rejected"));
    await waitFor(async () => (await sleepers(db.name)) === 3, {
      timeout: 5_000,
      message: "the sleepers did not start",
    });
    const started = performance.now();
    await pool.close({ timeout: 300 });
    const took = performance.now() - started;
    assert.ok(took < 2_000, `close() took ${Math.round(took)} ms`);
    // Sampled as soon as close() returned: the cancels completed before the sockets were destroyed.
    assert.equal(await sleepers(db.name), 0, "a statement still ran on the server when close() returned");
    assert.deepEqual(await Promise.all(calls), ["rejected", "rejected", "rejected"]);
  }));

Deno.test("close({ timeout }) cancels every statement pipelined on a connection, not only the one running", () =>
  withTestDatabase(async (db) => {
    const pool = new ConnectionPool({ conninfo: db.url, minSize: 1, maxSize: 1, pipeline: 4 });
    await pool.open({ wait: true });
    // Three statements in flight on the one connection: the server runs them one after another.
    const calls = [1, 2, 3].map((n) =>
      pool.query(`select pg_sleep(30) /* close_sleeper queued ${n} */`).then(() => "resolved", () => "rejected")
    );
    await waitFor(async () => (await sleepers(db.name)) === 1, { timeout: 5_000, message: "no sleeper started" });
    await pool.close({ timeout: 100 });
    // Sampled right away and again a moment later: the next pipelined statement would have started by then.
    assert.equal(await sleepers(db.name), 0, "a statement ran on the server when close() returned");
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal(await sleepers(db.name), 0, "a pipelined statement started after close() returned");
    assert.deepEqual(await Promise.all(calls), ["rejected", "rejected", "rejected"]);
  }));
