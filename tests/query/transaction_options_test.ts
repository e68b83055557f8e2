/**
 * transaction() and withConnection() check their options as the constructor
 * does, and retries are visible: a counter in getStats() and the metrics, the
 * attempt number in the log line, and a configurable pause between attempts.
 */
import assert from "node:assert/strict";
import { ConnectionPool, toPrometheus } from "../../mod.ts";
import { createTestDatabase } from "../_db.ts";
import { captureLogs } from "../_pool_helpers.ts";

const db = await createTestDatabase();
const CONFLICT = "do $$ begin raise exception 'conflict' using errcode = '40001'; end $$";

function onePool(): ConnectionPool {
  return new ConnectionPool({ conninfo: db.url, minSize: 1, maxSize: 1 });
}

Deno.test("transaction() refuses an unknown option name with a TypeError naming it, and runs nothing", async () => {
  await using pool = onePool();
  let ran = false;
  await assert.rejects(
    pool.transaction(() => {
      ran = true;
    }, { retry: 3 } as never),
    (error: unknown) => error instanceof TypeError && /'retry'/.test(error.message) && /retries/.test(error.message),
  );
  await assert.rejects(
    pool.transaction(() => {}, { isolaton: "serializable", readonly: true } as never),
    (error: unknown) => error instanceof TypeError && /'isolaton', 'readonly'/.test(error.message),
  );
  assert.equal(ran, false);
  assert.equal(pool.getStats().requestsNum, 0, "no connection was borrowed");
});

Deno.test("withConnection() refuses an unknown option name with a TypeError naming it", async () => {
  await using pool = onePool();
  await assert.rejects(
    pool.withConnection(() => {}, { timeot: 100 } as never),
    (error: unknown) =>
      error instanceof TypeError && /'timeot'/.test(error.message) && /withConnection/.test(error.message),
  );
  assert.equal(await pool.withConnection(() => 1, { timeout: 1_000 }), 1, "known names still work");
});

Deno.test("transaction() refuses a retryDelay that is not a duration with a RangeError/TypeError naming it", async () => {
  await using pool = onePool();
  await assert.rejects(
    pool.transaction(() => {}, { retryDelay: -1 }),
    (e: unknown) => e instanceof RangeError && /retryDelay/.test(e.message),
  );
  await assert.rejects(
    pool.transaction(() => {}, { retryDelay: "5" as never }),
    (e: unknown) => e instanceof TypeError && /retryDelay/.test(e.message),
  );
});

Deno.test("transaction retries count in getStats() and the metrics, and each logs its attempt number", async () => {
  await using logs = await captureLogs();
  await using pool = onePool();
  let attempts = 0;
  const result = await pool.transaction(async (conn) => {
    if (++attempts < 3) await conn.query(CONFLICT);
    return attempts;
  }, { retries: 5, retryDelay: 1 });
  assert.equal(result, 3);
  assert.equal(pool.getStats().transactionRetries, 2);
  assert.match(toPrometheus(pool), /tidepool_transaction_retries_total\{[^}]*\} 2\b/);
  const lines = logs.messages().filter((m) => m.includes("retrying transaction"));
  assert.deepEqual(lines.map((m) => /attempt (\d+) of (\d+)/.exec(m)?.slice(1)), [["2", "6"], ["3", "6"]]);
  assert.ok(lines.every((m) => m.includes("40001")), lines.join("\n"));
});

Deno.test("transaction({ retryDelay }) sets the pause between attempts; 0 retries at once", async () => {
  await using pool = onePool();
  const timeAttempts = async (retryDelay: number) => {
    let attempts = 0;
    const started = performance.now();
    await pool.transaction(async (conn) => {
      if (++attempts < 3) await conn.query(CONFLICT);
    }, { retries: 2, retryDelay });
    return performance.now() - started;
  };
  // Pauses of retryDelay × [1, 5) × 2^attempt: 100-500 ms, then 200-1000 ms.
  const slow = await timeAttempts(100);
  assert.ok(slow >= 300 * 0.9, `two pauses took ${slow.toFixed(0)} ms, expected at least 300`);
  assert.ok(slow <= 1_500 * 1.2 + 200, `two pauses took ${slow.toFixed(0)} ms, expected at most 1500`);
  const fast = await timeAttempts(0);
  assert.ok(fast < 200, `three attempts without pauses took ${fast.toFixed(0)} ms`);
});
