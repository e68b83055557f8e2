/**
 * The pool core's queueing and connection lifecycle, without a database: a
 * controllable fake driver (tests/_fake_driver.ts) stands in for PostgreSQL.
 * Real-server tests cover the same paths end to end; these pin the core's
 * own rules and run in milliseconds.
 */
import assert from "node:assert/strict";
import {
  ConnectionPool,
  NullConnectionPool,
  PoolClosedError,
  PoolError,
  PoolExhaustedError,
  PoolTimeoutError,
  SimpleConnectionPool,
} from "../../mod.ts";
import { controlledDriver, type FakeConnection } from "../_fake_driver.ts";
import { waitFor } from "../_db.ts";

const FAST = { initialDelay: 10, multiplier: 1, jitter: 0 };

Deno.test("fake driver: waiters are served first come, first served as connections come back", async () => {
  const driver = controlledDriver();
  const pool = new ConnectionPool({ driver, minSize: 1, maxSize: 1 });
  try {
    const first = await pool.getconn();
    const served: number[] = [];
    const waiters = [1, 2, 3].map((n) =>
      pool.getconn().then(async (conn) => {
        served.push(n);
        await pool.putconn(conn);
      })
    );
    await waitFor(() => pool.getStats().requestsWaiting === 3);
    await pool.putconn(first);
    await Promise.all(waiters);
    assert.deepEqual(served, [1, 2, 3]);
    assert.equal(driver.open.size, 1, "one connection served all four borrowers");
  } finally {
    await pool.close();
  }
});

Deno.test("fake driver: a waiter past its timeout gets PoolTimeoutError and leaves the queue", async () => {
  const driver = controlledDriver();
  const pool = new ConnectionPool({ driver, minSize: 1, maxSize: 1 });
  try {
    const held = await pool.getconn();
    await assert.rejects(pool.getconn({ timeout: 30 }), PoolTimeoutError);
    assert.equal(pool.getStats().requestsWaiting, 0);
    await pool.putconn(held);
    const again = await pool.getconn({ timeout: 1_000 });
    await pool.putconn(again);
  } finally {
    await pool.close();
  }
});

Deno.test("fake driver: ConnectionPool grows one connection at a time; NullConnectionPool one attempt per waiter", async () => {
  for (const [Pool, expected] of [[ConnectionPool, 1], [NullConnectionPool, 3]] as const) {
    const driver = controlledDriver();
    const gate = driver.hold();
    const pool = new Pool({ driver, minSize: 0, maxSize: 3 });
    try {
      const requests = [pool.getconn(), pool.getconn(), pool.getconn()];
      await waitFor(() => driver.attempts === expected, { message: `${Pool.name}: ${expected} attempt(s)` });
      assert.equal(driver.attempts, expected, `${Pool.name} started ${driver.attempts} attempts`);
      gate.release();
      const conns = await Promise.all(requests);
      for (const conn of conns) await pool.putconn(conn);
    } finally {
      await pool.close();
    }
    assert.equal(driver.open.size, 0, `${Pool.name}: every connection closed`);
  }
});

Deno.test("fake driver: an idle connection that dies is replaced before anyone borrows it", async () => {
  const driver = controlledDriver();
  const pool = new ConnectionPool({ driver, minSize: 1, maxSize: 1 });
  try {
    await pool.open({ wait: true });
    const [conn] = driver.open;
    driver.lose(conn);
    assert.equal(pool.getStats().connectionsLost, 1);
    await waitFor(() => driver.open.size === 1 && !driver.open.has(conn), { message: "replaced" });
    const next = await pool.getconn();
    assert.notEqual(next, conn);
    await pool.putconn(next);
  } finally {
    await pool.close();
  }
});

Deno.test("fake driver: a connection returned in a state the pool cannot clean is discarded and replaced", async () => {
  const driver = controlledDriver();
  const pool = new ConnectionPool({ driver, minSize: 1, maxSize: 1 });
  try {
    const conn = await pool.getconn();
    driver.setStatus(conn as FakeConnection, "active");
    await pool.putconn(conn);
    assert.equal(pool.getStats().returnsBad, 1);
    assert.ok(!driver.open.has(conn as FakeConnection), "closed");
    await waitFor(() => driver.open.size === 1, { message: "replaced" });
  } finally {
    await pool.close();
  }
});

Deno.test("fake driver: failed attempts are retried with backoff until one opens", async () => {
  const driver = controlledDriver();
  driver.failNext(3);
  const pool = new ConnectionPool({ driver, minSize: 1, maxSize: 1, backoff: FAST });
  try {
    const conn = await pool.getconn({ timeout: 2_000 });
    assert.equal(driver.attempts, 4);
    assert.equal(pool.getStats().connectionsErrors, 3);
    await pool.putconn(conn);
  } finally {
    await pool.close();
  }
});

Deno.test("fake driver: close() aborts attempts in flight and closes every connection it opened", async () => {
  const driver = controlledDriver();
  const pool = new ConnectionPool({ driver, minSize: 2, maxSize: 4 });
  await pool.open({ wait: true });
  const borrowed = [await pool.getconn(), await pool.getconn()];
  driver.hold(); // the next attempts never finish on their own
  const waiting = [pool.getconn(), pool.getconn(), pool.getconn()].map((p) => p.then(() => undefined, (e) => e));
  await waitFor(() => driver.attempts >= 3);
  await pool.close({ timeout: 50 });
  for (const error of await Promise.all(waiting)) assert.ok(error instanceof PoolClosedError, `got ${error}`);
  assert.equal(driver.open.size, 0, "no connection outlives close()");
  for (const conn of borrowed) await pool.putconn(conn); // a late return after close() is no error
});

Deno.test("fake driver: a configure that throws discards the new connection and the pool keeps trying", async () => {
  const driver = controlledDriver();
  let calls = 0;
  const pool = new ConnectionPool({
    driver,
    minSize: 1,
    maxSize: 1,
    backoff: FAST,
    configure: () => {
      if (++calls === 1) throw new Error("first configure fails");
    },
  });
  try {
    const conn = await pool.getconn({ timeout: 2_000 });
    assert.equal(calls, 2);
    assert.equal(driver.open.size, 1, "the first connection was closed");
    await pool.putconn(conn);
  } finally {
    await pool.close();
  }
});

Deno.test("fake driver: a classic pool throws PoolExhaustedError at maxconn and closeall() closes even borrowed connections", async () => {
  const driver = controlledDriver();
  const pool = new SimpleConnectionPool(1, 2, { driver });
  const a = await pool.getconn();
  const b = await pool.getconn();
  await assert.rejects(pool.getconn(), PoolExhaustedError);
  await pool.putconn(a);
  assert.equal(driver.open.size, 2);
  await pool.closeall();
  assert.equal(driver.open.size, 0);
  await assert.rejects(pool.putconn(b), PoolError);
});

Deno.test("fake driver: a classic pool's idle connection that dies is dropped at once", async () => {
  const driver = controlledDriver();
  const pool = new SimpleConnectionPool(1, 1, { driver });
  try {
    await pool.open();
    const [conn] = driver.open;
    driver.lose(conn);
    assert.equal(driver.open.size, 0);
    const next = await pool.getconn();
    assert.notEqual(next, conn);
    await pool.putconn(next);
  } finally {
    await pool.closeall();
  }
});
