/**
 * Reconnecting with exponential backoff, and giving up after reconnectTimeout.
 */
import assert from "node:assert/strict";
import { ConnectionPool, PoolTimeoutError } from "../../mod.ts";
import { waitFor, withTestDatabase } from "../_db.ts";
import { startProxy } from "../_proxy.ts";
import { closedPort, withPort } from "../_pool_helpers.ts";

const backoff = { initialDelay: 50, multiplier: 2, jitter: 0 };

Deno.test("failed attempts retry with exponential backoff, then reconnectFailed(pool) is called once", () =>
  withTestDatabase(async (db) => {
    const calls: ConnectionPool[] = [];
    const start = performance.now();
    let failedAt = 0;
    await using pool = new ConnectionPool({
      conninfo: withPort(db.url, closedPort()),
      minSize: 2,
      backoff,
      reconnectTimeout: 400,
      reconnectFailed: (p) => {
        failedAt = performance.now() - start;
        calls.push(p);
      },
    });
    await pool.open();
    await waitFor(() => calls.length > 0 && pool.getStats().poolSize === 0, {
      message: "reconnectFailed should be called",
    });
    assert.equal(calls.length, 1, "once per outage, not once per attempt");
    assert.equal(calls[0], pool);
    // Attempts at ~0, 50, 150, 350 and 750 ms: the one failing after 400 ms gives up.
    assert.ok(failedAt >= 700 && failedAt < 2_000, `gave up after ${failedAt} ms`);
    // 2 attempt runs x 5 attempts each.
    assert.equal(pool.getStats().connectionsErrors, 10);
    assert.equal(pool.closed, false);
  }));

Deno.test("after reconnectFailed the pool tries again on the next demand", () =>
  withTestDatabase(async (db) => {
    let failed = 0;
    await using pool = new ConnectionPool({
      conninfo: withPort(db.url, closedPort()),
      minSize: 1,
      backoff,
      reconnectTimeout: 100,
      reconnectFailed: () => failed++,
    });
    await pool.open();
    await waitFor(() => failed === 1 && pool.getStats().poolSize === 0);
    const before = pool.getStats().connectionsErrors;
    const error = await pool.getconn({ timeout: 200 }).catch((e) => e);
    assert.ok(error instanceof PoolTimeoutError, String(error));
    assert.ok(error.cause instanceof Error, "cause is the connection error");
    assert.match(String(error.cause.message), /ECONNREFUSED|refused/i);
    assert.ok(pool.getStats().connectionsErrors > before, "a new attempt was made on demand");
  }));

Deno.test("a pool whose server comes back serves requests again without being reopened", () =>
  withTestDatabase(async (db) => {
    await using proxy = await startProxy({ targetPort: Number(new URL(db.url).port) });
    await using pool = new ConnectionPool({ conninfo: proxy.url(db.url), minSize: 1, backoff });
    await pool.open({ wait: true });
    await proxy.stop(); // cuts the connection and refuses new ones
    await waitFor(() => pool.getStats().connectionsErrors >= 2, { message: "retrying while down" });
    await proxy.start();
    const { rows } = await pool.query<{ x: number }>("select 1 as x");
    assert.equal(rows[0].x, 1);
  }));
