/**
 * Pure queueing logic with a fake driver (no PostgreSQL involved: nothing
 * here talks to a server): FIFO under 10k waiters, and the spike rule.
 */
import assert from "node:assert/strict";
import { ConnectionPool } from "../../mod.ts";
import type { ConnectionStatus, Driver, QueryResult } from "../../src/driver.ts";

class FakeConn {
  constructor(readonly id: number) {}
}

/** A driver whose connect takes `connectMs` (a cancellable timer), counting attempts. */
function fakeDriver(connectMs: number): Driver<FakeConn> & { connects: number } {
  let next = 0;
  const result: QueryResult = { rows: [], rowCount: 0, fields: [] };
  return {
    connects: 0,
    description: "fake",
    connect(signal: AbortSignal): Promise<FakeConn> {
      this.connects++;
      if (connectMs === 0) return Promise.resolve(new FakeConn(next++));
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          signal.removeEventListener("abort", onAbort);
          resolve(new FakeConn(next++));
        }, connectMs);
        const onAbort = () => {
          clearTimeout(timer);
          reject(signal.reason);
        };
        signal.addEventListener("abort", onAbort, { once: true });
      });
    },
    close: () => Promise.resolve(),
    status: (): ConnectionStatus => "idle",
    rollback: () => Promise.resolve(),
    ping: () => Promise.resolve(),
    query: () => Promise.resolve(result),
    watch: () => {},
  };
}

Deno.test("the waiter queue is FIFO under 10k waiters", async () => {
  await using pool = new ConnectionPool({ driver: fakeDriver(0), minSize: 1, maxSize: 1 });
  await pool.open({ wait: true });
  const held = await pool.getconn();
  const served: number[] = [];
  const waiters = Array.from({ length: 10_000 }, (_, i) =>
    pool.getconn({ timeout: 60_000 }).then(async (conn) => {
      served.push(i);
      await pool.putconn(conn);
    }));
  assert.equal(pool.getStats().requestsWaiting, 10_000);
  const start = performance.now();
  await pool.putconn(held);
  await Promise.all(waiters);
  const ms = performance.now() - start;
  assert.equal(served.length, 10_000);
  assert.ok(served.every((v, i) => v === i), "served in arrival order");
  assert.ok(ms < 5_000, `10k hand-offs took ${ms} ms`);
  const stats = pool.getStats();
  assert.equal(stats.requestsQueued, 10_000);
  assert.equal(stats.requestsWaiting, 0);
  assert.equal(stats.poolAvailable, 1);
});

Deno.test("timed-out waiters in the middle of the queue are skipped without losing connections", async () => {
  await using pool = new ConnectionPool({ driver: fakeDriver(0), minSize: 1, maxSize: 1 });
  const held = await pool.getconn();
  const order: string[] = [];
  const first = pool.getconn({ timeout: 60_000 }).then((c) => (order.push("first"), c));
  const middle = pool.getconn({ timeout: 20 }).then((c) => (order.push("middle"), c)).catch(() => "timed out");
  const last = pool.getconn({ timeout: 60_000 }).then((c) => (order.push("last"), c));
  assert.equal(await middle, "timed out");
  await pool.putconn(held);
  await pool.putconn(await first);
  await pool.putconn(await last);
  assert.deepEqual(order, ["first", "last"]);
  const stats = pool.getStats();
  assert.equal(stats.poolSize, 1);
  assert.equal(stats.poolAvailable, 1);
  assert.equal(stats.requestsErrors, 1);
});

Deno.test("a spike does not open maxSize connections when returns would serve it", async () => {
  const driver = fakeDriver(100);
  await using pool = new ConnectionPool({ driver, minSize: 1, maxSize: 10 });
  await pool.open({ wait: true });
  assert.equal(driver.connects, 1);
  // 50 requests at once, each holding its connection for one tick.
  await Promise.all(Array.from({ length: 50 }, async () => {
    const conn = await pool.getconn({ timeout: 5_000 });
    await Promise.resolve();
    await pool.putconn(conn);
  }));
  assert.ok(driver.connects <= 2, `one growth at most, not ${driver.connects} attempts`);
  assert.ok(pool.getStats().poolSize <= 2);
});

Deno.test("sustained demand grows the pool one connection at a time up to maxSize", async () => {
  const driver = fakeDriver(20);
  await using pool = new ConnectionPool({ driver, minSize: 1, maxSize: 4 });
  const held = [];
  for (let i = 0; i < 4; i++) held.push(await pool.getconn({ timeout: 5_000 }));
  assert.equal(driver.connects, 4);
  assert.equal(pool.getStats().poolSize, 4);
  const extra = await pool.getconn({ timeout: 100 }).catch((e) => e);
  assert.equal(extra.name, "PoolTimeoutError");
  assert.equal(driver.connects, 4, "never beyond maxSize");
  for (const c of held) await pool.putconn(c);
});
