/**
 * The connection lifecycle both pool families share (src/core/_connections.ts)
 * keeps every wait bounded: configure within connectTimeout in the classic
 * pools too, and close({timeout}) within its timeout even when a configure
 * never settles or the link went silent under idle connections.
 */
import assert from "node:assert/strict";
import {
  ConnectionPool,
  PoolError,
  PoolTimeoutError,
  SimpleConnectionPool,
  ThreadedConnectionPool,
} from "../../mod.ts";
import { backendCount, createTestDatabase, waitFor } from "../_db.ts";
import { proxyToServer, timed } from "../_faults.ts";

const db = await createTestDatabase();
const never = () => new Promise<void>(() => {});

for (const Pool of [SimpleConnectionPool, ThreadedConnectionPool]) {
  Deno.test(`${Pool.name}: a configure that never settles fails the attempt within connectTimeout, no hang`, async () => {
    const pool = new Pool(0, 2, { conninfo: db.url, connectTimeout: 1_500, configure: never });
    try {
      const { ms, error } = await timed(pool.getconn());
      assert.ok(error instanceof PoolError, `getconn rejects with PoolError, got ${error}`);
      assert.match(error.message, /configure failed/);
      assert.ok(error.cause instanceof PoolTimeoutError, "cause: configure timed out");
      assert.ok(ms < 6_000, `failed after ${Math.round(ms)} ms`);
      await waitFor(async () => (await backendCount(db.name)) === 0, { message: "the configured connection closed" });
    } finally {
      await pool.closeall();
    }
  });
}

Deno.test("connectTimeout 0 and a configure that never settles: close() still resolves", async () => {
  const pool = new ConnectionPool({ conninfo: db.url, minSize: 1, connectTimeout: 0, configure: never });
  await pool.open();
  await waitFor(async () => (await backendCount(db.name)) === 1, { message: "connected, configure pending" });
  const { ms, error } = await timed(pool.close({ timeout: 200 }));
  assert.equal(error, undefined);
  assert.ok(ms < 2_000, `close() took ${Math.round(ms)} ms`);
  await waitFor(async () => (await backendCount(db.name)) === 0);
});

Deno.test("classic pool, connectTimeout 0 and a configure that never settles: closeall() resolves and getconn() fails", async () => {
  const pool = new SimpleConnectionPool(0, 1, { conninfo: db.url, connectTimeout: 0, configure: never });
  const attempt = timed(pool.getconn());
  await waitFor(async () => (await backendCount(db.name)) === 1, { message: "connected, configure pending" });
  const closing = await timed(pool.closeall());
  assert.equal(closing.error, undefined);
  assert.ok(closing.ms < 2_000, `closeall() took ${Math.round(closing.ms)} ms`);
  assert.ok((await attempt).error instanceof PoolError, "the pending getconn() fails");
  await waitFor(async () => (await backendCount(db.name)) === 0);
});

Deno.test("idle connections on a link gone silent: close({timeout: 200}) resolves within its timeout plus a small constant", async () => {
  await using proxy = await proxyToServer();
  const pool = new ConnectionPool({ conninfo: proxy.url(db.url), minSize: 2, maxSize: 2 });
  await pool.open({ wait: true });
  proxy.blackhole();
  const { ms, error } = await timed(pool.close({ timeout: 200 }));
  assert.equal(error, undefined);
  assert.ok(ms < 2_000, `close() took ${Math.round(ms)} ms (the driver's own close limit is 5 s)`);
});

Deno.test("a borrowed connection on a link gone silent: close({timeout: 200}) closes it at the deadline, still bounded", async () => {
  await using proxy = await proxyToServer();
  const pool = new ConnectionPool({ conninfo: proxy.url(db.url), minSize: 1, maxSize: 1 });
  const conn = await pool.getconn();
  proxy.blackhole();
  const { ms, error } = await timed(pool.close({ timeout: 200 }));
  assert.equal(error, undefined);
  assert.ok(ms >= 150, `close() waited for the borrower (${Math.round(ms)} ms)`);
  assert.ok(ms < 2_000, `close() took ${Math.round(ms)} ms`);
  await pool.putconn(conn); // a late return after close() is no error
});
