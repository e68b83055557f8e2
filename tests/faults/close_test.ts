/**
 * Closing a pool under load: waiters fail fast, borrowed connections are
 * closed when they come back, and close() keeps its own deadline.
 */
import assert from "node:assert/strict";
import { ConnectionPool, PoolClosedError } from "../../mod.ts";
import { backendCount, createTestDatabase, type TestDatabase, waitFor } from "../_db.ts";
import { assertAbout, FAST_BACKOFF, timed } from "../_faults.ts";

let db: TestDatabase;
Deno.test.beforeAll(async () => {
  db = await createTestDatabase();
});
Deno.test.afterAll(async () => {
  await db.drop();
});

Deno.test("close() under load: waiters get PoolClosedError, returned connections are closed, close({timeout}) keeps its deadline", async () => {
  const pool = new ConnectionPool({ conninfo: db.url, minSize: 3, maxSize: 3, timeout: 5_000, backoff: FAST_BACKOFF });
  await pool.open({ wait: true, timeout: 3_000 });
  const [a, b, c] = await Promise.all([pool.getconn(), pool.getconn(), pool.getconn()]);
  const waiters = Array.from({ length: 5 }, () => timed(pool.getconn()));
  await waitFor(() => pool.getStats().requestsWaiting === 5);

  const closing = timed(pool.close({ timeout: 400 }));
  for (const w of await Promise.all(waiters)) {
    assert.ok(w.error instanceof PoolClosedError, `waiter got ${w.error ?? "a connection"}`);
    assert.ok(w.ms < 100, `waiter failed at once (${w.ms.toFixed(0)} ms)`);
  }
  await assert.rejects(pool.getconn(), PoolClosedError);
  // Still usable by its borrower until returned; closed on return.
  assert.equal((await a.query("select 1 as x")).rows[0].x, 1);
  await pool.putconn(a);
  await waitFor(async () => (await backendCount(db.name)) === 2, { message: "returned connection closed" });
  await pool.putconn(b);
  // c is never returned: close() closes it at its deadline.
  const { ms, error } = await closing;
  assert.equal(error, undefined);
  assertAbout(ms, 400, "close({timeout})");
  assert.equal(await backendCount(db.name), 0);
  await assert.rejects(c.query("select 1"), "the straggler's connection was closed");
  // Its borrower's `finally { putconn }` still runs cleanly.
  await pool.putconn(c);
});
