/**
 * The database restarting under load: this file boots its own embedded
 * server so it can stop and start it on the same port.
 */
import assert from "node:assert/strict";
import { ConnectionPool, PoolTimeoutError } from "../../mod.ts";
import { startEmbedded } from "../../tools/_embedded.ts";
import { FAST_BACKOFF } from "../_faults.ts";
import { waitFor } from "../_db.ts";

Deno.test("the server restarted under load: every getconn succeeds after recovery or fails with PoolTimeoutError, none hangs", async () => {
  await using server = await startEmbedded();
  const timeout = 600;
  const pool = new ConnectionPool({
    conninfo: server.url,
    minSize: 2,
    maxSize: 4,
    timeout,
    connectTimeout: 500,
    backoff: FAST_BACKOFF,
  });
  try {
    await pool.open({ wait: true, timeout: 5_000 });
    const outcomes = { served: 0, timedOut: 0, queryErrors: 0, other: [] as unknown[] };
    let slowest = 0;
    let running = true;
    const task = async () => {
      while (running) {
        const started = performance.now();
        let conn;
        try {
          conn = await pool.getconn();
        } catch (error) {
          if (error instanceof PoolTimeoutError) outcomes.timedOut++;
          else outcomes.other.push(error);
          continue;
        } finally {
          slowest = Math.max(slowest, performance.now() - started);
        }
        outcomes.served++;
        try {
          await conn.query("select pg_sleep(0.005)");
        } catch {
          outcomes.queryErrors++; // in flight when the server went down: expected
        } finally {
          await pool.putconn(conn);
        }
      }
    };
    const tasks = Array.from({ length: 12 }, task);
    await waitFor(() => outcomes.served >= 50);
    await server.stop();
    const servedBefore = outcomes.served;
    await new Promise((resolve) => setTimeout(resolve, 300)); // the outage itself
    await server.start();
    await waitFor(() => outcomes.served >= servedBefore + 50, { timeout: 5_000, message: "served after recovery" });
    running = false;
    await Promise.all(tasks);

    assert.deepEqual(outcomes.other, [], "getconn failed only with PoolTimeoutError");
    assert.ok(slowest <= timeout * 1.2 + 100, `a getconn took ${slowest.toFixed(0)} ms (timeout ${timeout})`);
    const stats = pool.getStats();
    assert.ok(stats.poolSize <= 4);
    assert.equal(stats.requestsWaiting, 0);
    await waitFor(() => pool.getStats().poolAvailable === pool.getStats().poolSize, {
      timeout: 3_000,
      message: "nothing checked out",
    });
    assert.ok(pool.getStats().poolSize >= 2);
  } finally {
    await pool.close();
  }
});
