/**
 * Every wait of the pool has a bound: a checkout `check` callback that hangs,
 * and `pool.check()` probing connections whose socket stopped answering.
 */
import assert from "node:assert/strict";
import { ConnectionPool, PoolTimeoutError } from "../../mod.ts";
import { withTestDatabase } from "../_db.ts";
import { startProxy } from "../_proxy.ts";

Deno.test("getconn() rejects with PoolTimeoutError within its timeout when the check callback hangs", () =>
  withTestDatabase(async (db) => {
    let hang = false;
    const never = Promise.withResolvers<void>();
    await using pool = new ConnectionPool({
      conninfo: db.url,
      minSize: 1,
      check: () => hang ? never.promise : undefined,
    });
    await pool.open({ wait: true });
    await pool.putconn(await pool.getconn()); // a passing check lends it
    hang = true;
    const started = performance.now();
    await assert.rejects(pool.getconn({ timeout: 300 }), PoolTimeoutError);
    const elapsed = performance.now() - started;
    assert.ok(elapsed >= 280 && elapsed < 300 * 1.2 + 100, `rejected after ${elapsed.toFixed(0)} ms`);
    assert.equal(pool.getStats().connectionsLost, 1, "the connection whose check hung is discarded");
    never.resolve();
  }));

Deno.test("pool.check() gives up on connections whose socket stopped answering, within connectTimeout", () =>
  withTestDatabase(async (db) => {
    const target = new URL(db.url);
    await using proxy = await startProxy({ targetHost: target.hostname, targetPort: Number(target.port) });
    const pool = new ConnectionPool({ conninfo: proxy.url(db.url), minSize: 2, connectTimeout: 300 });
    try {
      await pool.open({ wait: true, timeout: 5_000 });
      proxy.blackhole(); // open sockets stop forwarding: a probe never gets its answer
      pool.popStats();
      const started = performance.now();
      await pool.check();
      const elapsed = performance.now() - started;
      assert.ok(elapsed >= 280 && elapsed < 300 * 1.2 + 200, `check() took ${elapsed.toFixed(0)} ms`);
      assert.equal(pool.getStats().connectionsLost, 2);
    } finally {
      await pool.close({ timeout: 1_000 });
    }
  }));

Deno.test("putconn() resolves within connectTimeout when reset hangs, and the connection is discarded", () =>
  withTestDatabase(async (db) => {
    let hang = false;
    const never = Promise.withResolvers<void>();
    await using pool = new ConnectionPool({
      conninfo: db.url,
      minSize: 1,
      connectTimeout: 300,
      reset: () => hang ? never.promise : undefined,
    });
    const conn = await pool.getconn();
    hang = true;
    const started = performance.now();
    await pool.putconn(conn);
    const elapsed = performance.now() - started;
    assert.ok(elapsed >= 280 && elapsed < 300 * 1.2 + 100, `putconn took ${elapsed.toFixed(0)} ms`);
    assert.equal(pool.getStats().returnsBad, 1);
    hang = false;
    const next = await pool.getconn({ timeout: 5_000 });
    assert.notEqual(next, conn, "a fresh connection replaced the discarded one");
    await pool.putconn(next);
    never.resolve();
  }));

Deno.test("a configure callback that hangs fails the attempt after connectTimeout, and the pool retries", () =>
  withTestDatabase(async (db) => {
    let calls = 0;
    const never = Promise.withResolvers<void>();
    await using pool = new ConnectionPool({
      conninfo: db.url,
      minSize: 1,
      connectTimeout: 200,
      backoff: { initialDelay: 50, multiplier: 2, jitter: 0 },
      configure: () => ++calls === 1 ? never.promise : undefined,
    });
    const started = performance.now();
    await pool.open({ wait: true, timeout: 5_000 });
    const elapsed = performance.now() - started;
    assert.equal(calls, 2, "the hung attempt was given up and a second one configured");
    assert.ok(elapsed >= 200, `ready after ${elapsed.toFixed(0)} ms`);
    assert.equal(pool.getStats().connectionsErrors, 1);
    never.resolve();
  }));
