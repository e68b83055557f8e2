/**
 * capGroup counts what the server counts: every test samples
 * `pg_stat_activity` by application_name every 2 ms and asserts the group
 * never had more backends than `maxSize`, also when sockets are closed under
 * running statements (a hung `configure`, a connection returned mid-statement,
 * `close({ timeout })`).
 */
import assert from "node:assert/strict";
import type pg from "pg";
import { ConnectionPool, PoolTimeoutError } from "../../mod.ts";
import { type TestDatabase, waitFor, withTestDatabase } from "../_db.ts";
import { withinBudget } from "../_shared_helpers.ts";

let groups = 0;
/** A group and application_name no other test (or test file running in parallel) uses. */
function group(db: TestDatabase): { g: string; app: string; url: string } {
  const g = `count-${Deno.pid}-${++groups}-${Math.random().toString(36).slice(2, 8)}`;
  const url = new URL(db.url);
  url.searchParams.set("application_name", g);
  return { g, app: g, url: url.toString() };
}

Deno.test("capGroup: a configure hung past connectTimeout never leaves more backends than maxSize", () =>
  withTestDatabase(async (db) => {
    const { g, app, url } = group(db);
    const pool = new ConnectionPool<pg.Client>({
      conninfo: url,
      capGroup: g,
      minSize: 2,
      maxSize: 2,
      connectTimeout: 300,
      backoff: { initialDelay: 50, jitter: 0 },
      configure: async (conn) => {
        await conn.query("select pg_sleep(30)");
      },
    });
    await withinBudget(app, 2, async () => {
      try {
        pool.open();
        // Each attempt's backend sleeps in configure when its socket is closed: before, every retry added one.
        await waitFor(() => pool.getStats().connectionsErrors >= 8, { timeout: 20_000, message: "8 failed attempts" });
      } finally {
        await pool.close();
      }
    });
  }));

Deno.test("capGroup: a connection returned with its statement still running holds its slot until the backend is gone", () =>
  withTestDatabase(async (db) => {
    const { g, app, url } = group(db);
    await using pool = new ConnectionPool<pg.Client>({ conninfo: url, capGroup: g, minSize: 0, maxSize: 2 });
    await withinBudget(app, 2, async (peak) => {
      const conn = await pool.getconn();
      const running = conn.query("select pg_sleep(30)").then(() => "done", (e: Error) => e.message);
      await waitFor(() => peak.now() === 1, { message: "the statement runs" });
      await pool.putconn(conn); // discarded: the pool cannot reuse it
      const two = await Promise.all([pool.getconn({ timeout: 10_000 }), pool.getconn({ timeout: 10_000 })]);
      assert.match(await running, /cancel/i, "the running statement was stopped, not left to run");
      for (const c of two) await pool.putconn(c);
    });
  }));

Deno.test("capGroup: close({ timeout }) under running statements hands its slots on only once their backends ended", () =>
  withTestDatabase(async (db) => {
    const { g, app, url } = group(db);
    await using other = new ConnectionPool({ conninfo: url, capGroup: g, minSize: 0, maxSize: 2 });
    const pool = new ConnectionPool<pg.Client>({ conninfo: url, capGroup: g, minSize: 0, maxSize: 2 });
    try {
      await withinBudget(app, 2, async (peak) => {
        const held = [await pool.getconn(), await pool.getconn()];
        const running = held.map((c) => c.query("select pg_sleep(30)").catch(() => {}));
        await waitFor(() => peak.now() === 2, { message: "both statements run" });
        // The other pool waits for the two slots while the first closes with a short deadline.
        const waiting = Promise.all([other.getconn({ timeout: 15_000 }), other.getconn({ timeout: 15_000 })]);
        await pool.close({ timeout: 200 });
        const got = await waiting;
        await Promise.all(running);
        for (const c of got) await other.putconn(c);
      });
    } finally {
      await pool.close();
    }
  }));

Deno.test("capGroup: resize() lowers a minSize the group cannot keep warm, so the other pool is served", () =>
  withTestDatabase(async (db) => {
    const { g, app, url } = group(db);
    await using a = new ConnectionPool({ conninfo: url, capGroup: g, minSize: 0, maxSize: 3 });
    await using b = new ConnectionPool({ conninfo: url, capGroup: g, minSize: 0, maxSize: 3 });
    await withinBudget(app, 3, async () => {
      await a.open({ wait: true });
      await b.open({ wait: true });
      await a.resize(3, 3);
      assert.equal(a.minSize, 2, "maxSize - 1 = 2 kept warm in all");
      await waitFor(() => a.getStats().poolSize === 2, { timeout: 10_000, message: "a filled its minSize" });
      const conn = await b.getconn({ timeout: 5_000 });
      await b.putconn(conn);
    });
  }));

Deno.test("capGroup: pool.query() timing out on a group slot says the group is why", () =>
  withTestDatabase(async (db) => {
    const { g, app, url } = group(db);
    await using a = new ConnectionPool({ conninfo: url, capGroup: g, minSize: 0, maxSize: 2 });
    // Its statements go through the pipelining lane (no deadline of their own), bounded by the pool's timeout.
    await using b = new ConnectionPool({ conninfo: url, capGroup: g, minSize: 0, maxSize: 2, timeout: 300 });
    await withinBudget(app, 2, async () => {
      const held = [await a.getconn(), await a.getconn()]; // in use: nothing to close for b
      const error = await b.query("select 1").then(() => undefined, (e) => e);
      assert.ok(error instanceof PoolTimeoutError, String(error));
      assert.match(error.message, /capGroup '.+': 2 of 2 connections held/);
      for (const c of held) await a.putconn(c);
    });
  }));
