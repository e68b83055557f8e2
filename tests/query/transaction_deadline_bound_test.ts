/**
 * One deadline bounds a whole `transaction()` / `withConnection()` call: its
 * retries and the pauses between them, and work in the callback that no
 * cancel reaches (a timer, a promise that never settles). Past it the call
 * rejects with PoolTimeoutError, and nothing commits. Against the real server.
 */
import assert from "node:assert/strict";
import { ConnectionPool, PoolTimeoutError } from "../../mod.ts";
import { withTestDatabase } from "../_db.ts";

/** Work no cancel reaches: a plain timer (each test waits for it to fire, so no timer outlives a test). */
function pause(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

Deno.test("transaction({ retries, timeout }): the retries stop at the deadline with PoolTimeoutError, the 40001 as cause", () =>
  withTestDatabase(async (db) => {
    await using pool = new ConnectionPool({ conninfo: db.url, minSize: 1, maxSize: 1 });
    let attempts = 0;
    const started = performance.now();
    const error = await pool.transaction(async (conn) => {
      attempts++;
      await conn.query("do $$ begin raise exception using errcode = '40001'; end $$");
    }, { retries: 1000, retryDelay: 50, timeout: 400 }).then(() => undefined, (e: unknown) => e);
    const ms = performance.now() - started;
    assert.ok(error instanceof PoolTimeoutError, `expected PoolTimeoutError, got ${error}`);
    assert.equal((error.cause as { code?: string }).code, "40001");
    assert.ok(ms < 400 + 300, `rejected after ${Math.round(ms)} ms for a 400 ms deadline`);
    assert.ok(attempts >= 1 && attempts < 10, `${attempts} attempts`);
  }));

Deno.test("withConnection(fn, { timeout }) whose callback runs past the deadline rejects around it, whatever it returns", () =>
  withTestDatabase(async (db) => {
    await using pool = new ConnectionPool({ conninfo: db.url, minSize: 1, maxSize: 1 });
    const started = performance.now();
    const outcome = await pool.withConnection(async (conn) => {
      await pause(800);
      await conn.query("select 1");
      return "fn-done";
    }, { timeout: 200 }).then((v) => v, (e: unknown) => e);
    const ms = performance.now() - started;
    assert.ok(outcome instanceof PoolTimeoutError, `expected PoolTimeoutError, got ${outcome}`);
    assert.ok(ms < 200 + 400, `rejected after ${Math.round(ms)} ms for a 200 ms deadline`);
    await pause(700); // the callback settles; its connection comes back
    assert.equal(pool.getStats().poolAvailable, 1);
  }));

Deno.test("transaction(fn, { timeout }) whose callback never settles rejects around the deadline and commits nothing", () =>
  withTestDatabase(async (db) => {
    const pool = new ConnectionPool({ conninfo: db.url, minSize: 1, maxSize: 1 });
    try {
      await pool.query("create table never_settles (x int)");
      const started = performance.now();
      const outcome = await pool.transaction(async (conn) => {
        await conn.query("insert into never_settles values (1)");
        await new Promise(() => {}); // a callback that forgot to resolve
      }, { timeout: 200 }).then((v) => v, (e: unknown) => e);
      const ms = performance.now() - started;
      assert.ok(outcome instanceof PoolTimeoutError, `expected PoolTimeoutError, got ${outcome}`);
      assert.ok(ms < 200 + 400, `rejected after ${Math.round(ms)} ms for a 200 ms deadline`);
      const other = new ConnectionPool({ conninfo: db.url, minSize: 0, maxSize: 1 });
      try {
        assert.equal((await other.query("select count(*)::int as n from never_settles")).rows[0].n, 0);
      } finally {
        await other.close();
      }
    } finally {
      await pool.close({ timeout: 100 }); // the callback still holds its connection: closed at the deadline
    }
  }));
