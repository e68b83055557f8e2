/**
 * Pool sizes a pg.Pool user expects, and
 * getconn() options validated whether or not a connection is idle. Against
 * the real server.
 */
import assert from "node:assert/strict";
import { ConnectionPool, NullConnectionPool, PoolTimeoutError } from "../../mod.ts";
import { createTestDatabase } from "../_db.ts";
import { startWorker } from "../_shared_helpers.ts";

const db = await createTestDatabase();
addEventListener("unload", () => void db.drop());

Deno.test("{ maxSize: 2 } alone works: minSize becomes 2 (the default 4 capped at maxSize), and 2 connections serve at once", async () => {
  await using pool = new ConnectionPool({ conninfo: db.url, maxSize: 2 });
  assert.equal(pool.minSize, 2);
  assert.equal(pool.maxSize, 2);
  const a = await pool.getconn();
  const b = await pool.getconn();
  await a.query("select 1");
  await b.query("select 1");
  await assert.rejects(pool.getconn({ timeout: 200 }), PoolTimeoutError, "capped at 2");
  await pool.putconn(a);
  await pool.putconn(b);
});

Deno.test("{ maxSize: 6 } alone keeps minSize 4; { minSize: 3 } alone gives maxSize 3 (psycopg_pool)", () => {
  const big = new ConnectionPool({ conninfo: db.url, maxSize: 6 });
  assert.deepEqual([big.minSize, big.maxSize], [4, 6]);
  const fixed = new ConnectionPool({ conninfo: db.url, minSize: 3 });
  assert.deepEqual([fixed.minSize, fixed.maxSize], [3, 3]);
});

Deno.test("{ minSize: 0 } alone never silently becomes a pool of one: maxSize is 10 (pg.Pool's max) and 3 borrowers are served at once", async () => {
  await using pool = new ConnectionPool({ conninfo: db.url, minSize: 0 });
  assert.equal(pool.maxSize, 10);
  const conns = await Promise.all([1, 2, 3].map(() => pool.getconn({ timeout: 5_000 })));
  assert.equal(new Set(conns).size, 3);
  for (const c of conns) await pool.putconn(c);
});

Deno.test("explicit sizes are still checked: { minSize: 4, maxSize: 2 } and { maxSize: 0 } throw RangeError naming maxSize", () => {
  assert.throws(
    () => new ConnectionPool({ conninfo: db.url, minSize: 4, maxSize: 2 }),
    (e: unknown) => e instanceof RangeError && /'maxSize': 2 is less than minSize 4/.test(e.message),
  );
  assert.throws(
    () => new ConnectionPool({ conninfo: db.url, maxSize: 0 }),
    (e: unknown) => e instanceof RangeError && /'maxSize'/.test(e.message),
  );
  assert.equal(new NullConnectionPool({ conninfo: db.url, maxSize: 2 }).minSize, 0);
});

for (
  const [name, make] of [["ConnectionPool", () => new ConnectionPool({ conninfo: db.url, minSize: 1 })], [
    "NullConnectionPool",
    () => new NullConnectionPool({ conninfo: db.url, maxSize: 1 }),
  ]] as const
) {
  Deno.test(`${name}: getconn({ timeout }) with a bad value is refused even when a connection is free (TypeError/RangeError naming timeout)`, async () => {
    await using pool = make();
    await pool.open({ wait: true });
    if (name === "ConnectionPool") {
      // A connection is idle: the fast path used to hand it out without looking at the options.
      const c = await pool.getconn();
      await pool.putconn(c);
      assert.equal(pool.getStats().poolAvailable, 1);
    }
    for (
      const [bad, cls] of [["abc", TypeError], [-5, RangeError], [NaN, RangeError], [Infinity, RangeError]] as const
    ) {
      await assert.rejects(
        pool.getconn({ timeout: bad as number }),
        (e: unknown) => e instanceof cls && /'timeout'/.test((e as Error).message),
        `timeout ${String(bad)}`,
      );
    }
    // Nothing was lent by the refused calls.
    const c = await pool.getconn({ timeout: 2_000 });
    await pool.putconn(c);
  });
}

Deno.test("attached pool in a Worker: getconn({ timeout: 'abc' }) is refused with TypeError naming timeout while a connection is free", async () => {
  const pool = new ConnectionPool({ conninfo: db.url, minSize: 1 });
  const w = startWorker();
  try {
    await w.attach(pool.share());
    const e = await w.fail("hold", { timeout: "abc" });
    assert.equal(e.name, "TypeError");
    assert.match(e.message, /'timeout'/);
  } finally {
    w.terminate();
    await pool.close();
  }
});
