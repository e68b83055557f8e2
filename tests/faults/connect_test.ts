/**
 * Fault injection on the way in: server down, server silent, reconnect
 * backoff, slow connects racing waiters, and a spike of demand.
 */
import assert from "node:assert/strict";
import { ConnectionPool, PoolTimeoutError } from "../../mod.ts";
import { backendCount, createTestDatabase, type TestDatabase, waitFor } from "../_db.ts";
import { assertAbout, FAST_BACKOFF, pgCounting, proxyToServer, timed } from "../_faults.ts";

let db: TestDatabase;
Deno.test.beforeAll(async () => {
  db = await createTestDatabase();
});
Deno.test.afterAll(async () => {
  await db.drop();
});

Deno.test("open({wait}) on an unreachable server rejects with PoolTimeoutError caused by the connection error, then fills once it is back", async () => {
  await using proxy = await proxyToServer();
  await proxy.stop();
  const pool = new ConnectionPool({
    conninfo: proxy.url(db.url),
    minSize: 2,
    timeout: 1_000,
    connectTimeout: 500,
    backoff: FAST_BACKOFF,
  });
  try {
    const { ms, error } = await timed(pool.open({ wait: true, timeout: 300 }));
    assert.ok(error instanceof PoolTimeoutError, `expected PoolTimeoutError, got ${error}`);
    assertAbout(ms, 300, "open({wait}) timeout");
    assert.ok(error.cause instanceof Error, "cause is the connection error");
    assert.equal((error.cause as { code?: string }).code, "ECONNREFUSED");
    assert.ok(pool.getStats().connectionsErrors >= 2, "kept retrying");
    assert.equal(pool.closed, false, "a timed-out open leaves the pool open");

    await proxy.start();
    await pool.wait({ timeout: 3_000 }); // the backoff reaches ~750 ms: well inside
    const { rows } = await pool.query("select 1 as x");
    assert.equal(rows[0].x, 1);
    assert.equal(pool.getStats().poolSize, 2);
    assert.equal(await backendCount(db.name), 2);
  } finally {
    await pool.close();
  }
});

Deno.test("a server that accepts and never answers: getconn rejects within its timeout and each attempt stops at connectTimeout", async () => {
  await using proxy = await proxyToServer();
  proxy.blackhole();
  const driver = pgCounting(proxy.url(db.url), 150);
  const pool = new ConnectionPool({ driver, minSize: 1, timeout: 400, backoff: FAST_BACKOFF });
  try {
    const { ms, error } = await timed(pool.getconn());
    assert.ok(error instanceof PoolTimeoutError, `expected PoolTimeoutError, got ${error}`);
    assertAbout(ms, 400, "getconn timeout");
    // Attempts at 0, 150+50, 400+100 ms...: each one gives up at connectTimeout instead of hanging.
    await waitFor(() => pool.getStats().connectionsErrors >= 2, { timeout: 2_000 });
    assert.match(String((error.cause as Error | undefined)?.message), /timeout/i);
    assert.ok(driver.failures >= 2);
    const first = driver.attempts[1] - driver.attempts[0];
    assertAbout(first, 150 + 50, "first attempt (connectTimeout) + first backoff");
  } finally {
    await pool.close();
  }
});

Deno.test("reconnect backoff: attempts 0.1, 0.2, 0.4 s apart, reconnectFailed after reconnectTimeout, and the next demand tries again", async () => {
  await using proxy = await proxyToServer();
  await proxy.stop();
  const driver = pgCounting(proxy.url(db.url), 500);
  let failedAt = 0;
  const pool = new ConnectionPool({
    driver,
    minSize: 1,
    timeout: 300,
    backoff: { initialDelay: 100, multiplier: 2, jitter: 0 },
    reconnectTimeout: 650,
    reconnectFailed: () => failedAt = performance.now(),
  });
  try {
    await pool.open();
    await waitFor(() => failedAt > 0, { timeout: 3_000, message: "reconnectFailed called" });
    const t = driver.attempts;
    assert.equal(t.length, 4, `attempts at ${t.map((x) => (x - t[0]).toFixed(0)).join(", ")}`);
    assertAbout(t[1] - t[0], 100, "1st retry");
    assertAbout(t[2] - t[1], 200, "2nd retry");
    assertAbout(t[3] - t[2], 400, "3rd retry");
    assertAbout(failedAt - t[0], 700, "reconnectFailed");
    // Given up: no attempt in flight, the pool is empty...
    assert.equal(pool.getStats().poolSize, 0);
    // ...but not forever (psycopg_pool #438): demand starts a new run of attempts.
    await proxy.start();
    const conn = await pool.getconn({ timeout: 2_000 });
    await pool.putconn(conn);
    assert.equal(driver.attempts.length, 5);
    await pool.wait({ timeout: 1_000 });
    assert.equal(pool.getStats().poolSize, 1);
  } finally {
    await pool.close();
  }
});

Deno.test("a waiter that timed out or was aborted never receives a connection; it goes to the next one or idle", async () => {
  const pool = new ConnectionPool({ conninfo: db.url, minSize: 1, maxSize: 1, timeout: 2_000 });
  try {
    await pool.open({ wait: true, timeout: 3_000 });
    const held = await pool.getconn();
    const late = pool.getconn({ timeout: 100 });
    const controller = new AbortController();
    const aborted = pool.getconn({ signal: controller.signal });
    const served = pool.getconn({ timeout: 2_000 });
    controller.abort(new Error("caller gave up"));
    await assert.rejects(aborted, /caller gave up/);
    await assert.rejects(late, PoolTimeoutError);
    await pool.putconn(held);
    // The connection skipped both dead waiters and went to the live one.
    const conn = await served;
    assert.equal(conn, held);
    await pool.putconn(conn);
    assert.equal(pool.getStats().poolAvailable, 1);
    assert.equal(pool.getStats().requestsWaiting, 0);
  } finally {
    await pool.close();
  }
});

Deno.test("a connection that arrives after its waiter gave up is kept idle for the next request, not leaked", async () => {
  await using proxy = await proxyToServer();
  proxy.delay(300);
  const pool = new ConnectionPool({ conninfo: proxy.url(db.url), minSize: 0, maxSize: 1, timeout: 100 });
  try {
    const { ms, error } = await timed(pool.getconn());
    assert.ok(error instanceof PoolTimeoutError);
    assertAbout(ms, 100, "waiter timeout");
    // The attempt it started lands ~200 ms later with nobody waiting.
    await waitFor(() => pool.getStats().poolAvailable === 1, { timeout: 2_000 });
    assert.equal(pool.getStats().poolSize, 1);
    assert.equal(await backendCount(db.name), 1, "one session on the server: the late connection, owned by the pool");
    proxy.delay(0);
    const { ms: fast, value: conn } = await timed(pool.getconn());
    assert.ok(fast < 50, `the late connection serves the next request at once (${fast.toFixed(1)} ms)`);
    await pool.putconn(conn!);
  } finally {
    await pool.close();
  }
  await waitFor(async () => (await backendCount(db.name)) === 0);
});

Deno.test("spike: 50 short jobs against minSize 5 / maxSize 10 with 150 ms connects end with fewer than 7 connections", async () => {
  await using proxy = await proxyToServer();
  proxy.delay(150);
  const pool = new ConnectionPool({ conninfo: proxy.url(db.url), minSize: 5, maxSize: 10, timeout: 5_000 });
  try {
    await pool.open({ wait: true, timeout: 3_000 });
    await Promise.all(Array.from({ length: 50 }, async () => {
      const conn = await pool.getconn();
      await new Promise((resolve) => setTimeout(resolve, 2));
      await pool.putconn(conn);
    }));
    // Let any growth already started land before counting.
    await waitFor(() => proxy.pending === 0, { timeout: 2_000 });
    const size = pool.getStats().poolSize;
    assert.ok(size < 7, `pool grew to ${size}`);
    assert.ok((await backendCount(db.name)) < 7);
  } finally {
    await pool.close();
  }
});
