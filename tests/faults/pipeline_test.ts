/**
 * A connection lost under pipelined `pool.query()` statements: exactly the
 * statements on it fail, with a typed error, and the pool heals.
 */
import assert from "node:assert/strict";
import type pg from "pg";
import { ConnectionLostError, ConnectionPool } from "../../mod.ts";
import { createTestDatabase, type TestDatabase, waitFor } from "../_db.ts";
import { FAST_BACKOFF, terminate } from "../_faults.ts";
import { recordingDriver, running } from "../_pipeline_helpers.ts";

let db: TestDatabase;
Deno.test.beforeAll(async () => {
  db = await createTestDatabase();
});
Deno.test.afterAll(async () => {
  await db.drop();
});

Deno.test("pipelined: a backend killed mid-pipeline fails exactly its in-flight callers with ConnectionLostError, the pool heals", async () => {
  const driver = recordingDriver(db.url);
  await using pool = new ConnectionPool({ driver, minSize: 1, maxSize: 1, pipeline: 8, backoff: FAST_BACKOFF });
  await pool.open({ wait: true });
  // One connection: the long statement, 7 quick ones pipelined behind it (depth 8), 3 more waiting for a slot.
  const victim = pool.query("select pg_sleep(30) /* victim */", [] as unknown[]);
  const quick = Array.from({ length: 10 }, (_, i) => pool.query<{ n: number }>("select $1::int as n", [i]));
  const settled = Promise.allSettled([victim, ...quick]);
  let pid: number | undefined;
  await waitFor(async () => (pid = await running(db.name, "victim")) !== undefined, { timeout: 10_000 });
  assert.ok(await terminate(pid!));
  const results = await settled;
  // Which statements were on the killed connection, from what the driver was asked to send.
  const killed = driver.calls[0].conn;
  const onKilled = new Set(driver.calls.filter((c) => c.conn === killed).map((c) => c.params?.[0] ?? "victim"));
  assert.equal(onKilled.size, 8, "the victim and 7 pipelined behind it");
  assert.equal(results[0].status, "rejected");
  for (const [k, r] of results.entries()) {
    const tag = k === 0 ? "victim" : k - 1;
    if (onKilled.has(tag)) {
      assert.equal(r.status, "rejected", `statement ${tag} was on the killed connection`);
      const error = (r as PromiseRejectedResult).reason;
      assert.ok(error instanceof ConnectionLostError, `expected ConnectionLostError, got ${error}`);
      assert.ok(error.cause instanceof Error, "cause is the driver's error");
    } else {
      // Never sent to the killed connection: it ran on the replacement, not retried from a failure.
      assert.equal(
        r.status,
        "fulfilled",
        `statement ${tag} was not on the killed connection: ${String((r as PromiseRejectedResult).reason)}`,
      );
      assert.equal((r as PromiseFulfilledResult<pg.QueryResult>).value.rows[0].n, tag);
    }
  }
  assert.equal(driver.calls.length, 11, "nothing was sent twice");
  // Healed: a new connection, every statement works.
  await waitFor(() => pool.getStats().poolSize === 1 && pool.getStats().poolAvailable === 1, { timeout: 5_000 });
  const after = await Promise.all(Array.from({ length: 20 }, (_, i) => pool.query("select $1::int as n", [i])));
  assert.deepEqual(after.map((r) => r.rows[0].n), Array.from({ length: 20 }, (_, i) => i));
  assert.equal(pool.getStats().returnsBad, 1, "the lost connection was discarded through the return path");
});

Deno.test("pipelined: a backend killed under one connection leaves the statements on another untouched", async () => {
  const driver = recordingDriver(db.url);
  await using pool = new ConnectionPool({ driver, minSize: 2, maxSize: 2, pipeline: 8, backoff: FAST_BACKOFF });
  await pool.open({ wait: true });
  const victim = pool.query("select pg_sleep(30) /* victim2 */", [] as unknown[]);
  const survivor = pool.query("select pg_sleep(0.5) /* survivor */", [] as unknown[]);
  const quick = Array.from({ length: 12 }, (_, i) => pool.query<{ n: number }>("select $1::int as n", [i]));
  const settled = Promise.allSettled([victim, survivor, ...quick]);
  let pid: number | undefined;
  await waitFor(async () => (pid = await running(db.name, "victim2")) !== undefined, { timeout: 10_000 });
  assert.ok(await terminate(pid!));
  const results = await settled;
  const killed = driver.calls[0].conn;
  const killedCalls = new Set(driver.calls.filter((c) => c.conn === killed).map((c) => c.params?.[0] ?? "victim"));
  for (const [k, r] of results.entries()) {
    const tag = k === 0 ? "victim" : k === 1 ? "survivor" : k - 2;
    assert.equal(r.status, killedCalls.has(tag) ? "rejected" : "fulfilled", `statement ${tag}`);
    if (r.status === "rejected") assert.ok(r.reason instanceof ConnectionLostError, String(r.reason));
  }
  assert.ok(
    results.filter((r) => r.status === "fulfilled").length >= 2,
    "the survivor's connection carried statements",
  );
});
