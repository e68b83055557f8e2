/**
 * Aborting many queued requests that share one AbortSignal
 * costs O(1) per request. Measured as the event-loop stall of the abort, with
 * a generous bound (the quadratic cleanup took ~12 s at 40k), against the real
 * server, for every pool class that queues.
 */
import assert from "node:assert/strict";
import { ConnectionPool, NullConnectionPool, PoolError, PoolTimeoutError } from "../../mod.ts";
import { createTestDatabase } from "../_db.ts";
import { startWorker } from "../_shared_helpers.ts";

const db = await createTestDatabase();
addEventListener("unload", () => void db.drop());

const N = 40_000;

for (
  const [name, make] of [
    ["ConnectionPool", () => new ConnectionPool({ conninfo: db.url, minSize: 1, maxSize: 1 })],
    ["NullConnectionPool", () => new NullConnectionPool({ conninfo: db.url, maxSize: 1 })],
  ] as const
) {
  Deno.test(`${name}: aborting ${N} queued getconn() calls that share one AbortSignal blocks the event loop < 1 s`, async () => {
    await using pool = make();
    const held = await pool.getconn();
    const controller = new AbortController();
    const requests: Promise<unknown>[] = [];
    for (let i = 0; i < N; i++) requests.push(pool.getconn({ signal: controller.signal }).catch((e) => e));
    assert.equal(pool.getStats().requestsWaiting, N);
    // The stall: the abort, and every rejection it causes, until the loop runs a timer again.
    const started = performance.now();
    controller.abort(new PoolError("stop"));
    await new Promise((resolve) => setTimeout(resolve, 0));
    const stall = performance.now() - started;
    const results = await Promise.all(requests);
    assert.ok(results.every((r) => r instanceof PoolError && r.message === "stop"));
    assert.equal(pool.getStats().requestsWaiting, 0);
    assert.ok(stall < 1_000, `the abort blocked the loop ${stall.toFixed(0)} ms`);
    // The pool still serves: the held connection goes straight back and out again.
    await pool.putconn(held);
    await pool.putconn(await pool.getconn({ timeout: 2_000 }));
  });
}

Deno.test(`attached pool in a Worker: queuing and aborting ${N} getconn() calls that share one AbortSignal takes < 6 s (quadratic: ~15 s idle, minutes under load)`, async () => {
  const pool = new ConnectionPool({ conninfo: db.url, minSize: 1, maxSize: 1 });
  const w = startWorker("promises_client.ts");
  try {
    await w.attach(pool.share());
    // In a Worker the quadratic cost was in queuing too (addEventListener looks for a duplicate in the
    // signal's list). Each request is also a message to the owner, so the bound is generous: ~1 s idle.
    const r = await w.call<{ enqueueMs: number; stallMs: number; allAborted: boolean }>("abortMany", { n: N });
    assert.ok(r.allAborted);
    assert.ok(
      r.enqueueMs + r.stallMs < 6_000,
      `queuing took ${r.enqueueMs.toFixed(0)} ms, the abort blocked the Worker's loop ${r.stallMs.toFixed(0)} ms`,
    );
  } finally {
    w.terminate();
    await pool.close();
  }
});

Deno.test("waiters with different timeouts each time out at their own deadline, and the rest are still served in FIFO order", async () => {
  await using pool = new ConnectionPool({ conninfo: db.url, minSize: 1, maxSize: 1 });
  const held = await pool.getconn();
  const order: string[] = [];
  const a = pool.getconn({ timeout: 10_000 }).then((c) => (order.push("a"), c));
  const started = performance.now();
  const b = pool.getconn({ timeout: 200 });
  const c = pool.getconn({ timeout: 10_000 }).then((c) => (order.push("c"), c));
  await assert.rejects(b, PoolTimeoutError);
  const waited = performance.now() - started;
  assert.ok(waited >= 190 && waited < 5_000, `the short waiter timed out after ${waited.toFixed(0)} ms`);
  assert.equal(pool.getStats().requestsWaiting, 2, "the long waiters are still queued");
  await pool.putconn(held);
  const first = await a;
  await pool.putconn(first);
  await pool.putconn(await c);
  assert.deepEqual(order, ["a", "c"]);
});
