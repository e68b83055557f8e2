/**
 * Fault injection on open connections: sockets cut, backends terminated while
 * idle, in a query, and inside a transaction.
 */
import assert from "node:assert/strict";
import type pg from "pg";
import { ConnectionPool } from "../../mod.ts";
import { adminQuery, backendCount, createTestDatabase, type TestDatabase, waitFor } from "../_db.ts";
import { backendPids, FAST_BACKOFF, pidOf, proxyToServer, terminate } from "../_faults.ts";

let db: TestDatabase;
Deno.test.beforeAll(async () => {
  db = await createTestDatabase();
  await adminQuery("select 1"); // warm the admin path before timing anything
});
Deno.test.afterAll(async () => {
  await db.drop();
});

/** Runs `n` concurrent one-query borrows and counts the ones that failed. */
async function borrowAll(pool: ConnectionPool, n: number): Promise<number> {
  const results = await Promise.allSettled(
    Array.from({ length: n }, () => pool.query("select 1 as x")),
  );
  return results.filter((r) => r.status === "rejected").length;
}

for (const withCheck of [true, false]) {
  Deno.test(
    withCheck
      ? "all sockets cut while idle: with check: checkConnection no user sees an error"
      : "all sockets cut while idle: without check at most one error per dead connection, then healthy",
    async () => {
      await using proxy = await proxyToServer();
      const pool = new ConnectionPool({
        conninfo: proxy.url(db.url),
        minSize: 3,
        timeout: 2_000,
        backoff: FAST_BACKOFF,
        check: withCheck ? ConnectionPool.checkConnection : undefined,
      });
      try {
        await pool.open({ wait: true, timeout: 3_000 });
        await proxy.cutAll();
        // Borrow at once: the pool may not have seen the sockets close yet.
        const errors = await borrowAll(pool, 3);
        if (withCheck) assert.equal(errors, 0);
        else assert.ok(errors <= 3, `${errors} errors for 3 dead connections`);
        // Healthy afterwards: every borrow works and the pool is back at minSize.
        assert.equal(await borrowAll(pool, 6), 0);
        await waitFor(() => pool.getStats().poolAvailable === 3, { timeout: 2_000 });
        assert.equal(proxy.connections, 3);
      } finally {
        await pool.close();
      }
    },
  );
}

Deno.test("a backend terminated during a query: the query rejects, the connection is discarded on return, the pool refills", async () => {
  const pool = new ConnectionPool({ conninfo: db.url, minSize: 2, timeout: 2_000, backoff: FAST_BACKOFF });
  try {
    await pool.open({ wait: true, timeout: 3_000 });
    const conn = await pool.getconn();
    const pid = pidOf(conn);
    // Settled into a value at once, so the rejection is never unhandled while we kill the backend.
    const sleeping = conn.query("select pg_sleep(5)").then(() => undefined, (error: Error) => error);
    await waitFor(async () =>
      (await adminQuery("select 1 from pg_stat_activity where pid = $1 and query like '%pg_sleep%'", [pid]))
        .length === 1
    );
    const killedAt = performance.now();
    assert.ok(await terminate(pid));
    assert.match(String((await sleeping)?.message), /terminat/i);
    assert.ok(performance.now() - killedAt < 2_000, "rejected promptly, not after the sleep");
    await pool.putconn(conn);
    assert.equal(pool.getStats().returnsBad, 1);
    await waitFor(() => pool.getStats().poolAvailable === 2, { timeout: 2_000 });
    const pids = await backendPids(db.name);
    assert.equal(pids.length, 2);
    assert.ok(!pids.includes(pid));
  } finally {
    await pool.close();
  }
});

Deno.test("idle backends terminated by the server are noticed and replaced before anyone borrows them", async () => {
  const pool = new ConnectionPool({ conninfo: db.url, minSize: 3, timeout: 2_000, backoff: FAST_BACKOFF });
  try {
    await pool.open({ wait: true, timeout: 3_000 });
    const old = await backendPids(db.name);
    assert.equal(old.length, 3);
    for (const pid of old) await terminate(pid);
    await waitFor(() => pool.getStats().connectionsLost === 3, { timeout: 2_000, message: "losses noticed" });
    await waitFor(() => pool.getStats().poolAvailable === 3, { timeout: 2_000, message: "replaced" });
    const conns = await Promise.all([pool.getconn(), pool.getconn(), pool.getconn()]);
    try {
      for (const conn of conns) {
        assert.ok(!old.includes(pidOf(conn)), "a replacement, not a dead connection");
        assert.equal((await conn.query("select 1 as x")).rows[0].x, 1);
      }
    } finally {
      for (const conn of conns) await pool.putconn(conn);
    }
    assert.equal(pool.getStats().returnsBad, 0);
  } finally {
    await pool.close();
  }
});

for (const how of ["pg_terminate_backend", "proxy cut"] as const) {
  Deno.test(`a connection lost inside a transaction (${how}): later statements reject and none runs on a new session`, async () => {
    await using proxy = await proxyToServer();
    const pool = new ConnectionPool({
      conninfo: proxy.url(db.url),
      minSize: 1,
      timeout: 2_000,
      backoff: FAST_BACKOFF,
    });
    try {
      await pool.query("create table if not exists lost_tx (n int, tag text)");
      const tag = how;
      const conn: pg.Client = await pool.getconn();
      const pid = pidOf(conn);
      await conn.query("begin");
      await conn.query("insert into lost_tx values (1, $1)", [tag]);
      if (how === "pg_terminate_backend") assert.ok(await terminate(pid));
      else await proxy.cutAll();
      await assert.rejects(conn.query("insert into lost_tx values (2, $1)", [tag]));
      await assert.rejects(conn.query("select pg_backend_pid() as pid"));
      await assert.rejects(conn.query("commit"));
      await pool.putconn(conn);
      // Nothing of the transaction landed, and the pool serves a new session.
      const { rows } = await pool.query("select count(*)::int as n from lost_tx where tag = $1", [tag]);
      assert.equal(rows[0].n, 0);
      const fresh = await pool.getconn();
      assert.notEqual(pidOf(fresh), pid);
      await pool.putconn(fresh);

      // The same through pool.transaction(): the throw surfaces, nothing lands.
      await assert.rejects(
        pool.transaction(async (c) => {
          await c.query("insert into lost_tx values (3, $1)", [tag]);
          if (how === "pg_terminate_backend") await terminate(pidOf(c));
          else await proxy.cutAll();
          await c.query("insert into lost_tx values (4, $1)", [tag]);
        }),
      );
      const after = await pool.query("select count(*)::int as n from lost_tx where tag = $1", [tag]);
      assert.equal(after.rows[0].n, 0);
      await waitFor(() => pool.getStats().poolAvailable === 1, { timeout: 2_000 });
    } finally {
      await pool.close();
    }
    await waitFor(async () => (await backendCount(db.name)) === 0);
  });
}

Deno.test("a connection lost after a transaction's last statement: transaction() rejects instead of reporting a lost write as committed", async () => {
  const pool = new ConnectionPool({ conninfo: db.url, minSize: 1, timeout: 2_000, backoff: FAST_BACKOFF });
  try {
    await pool.query("create table if not exists lost_commit (n int)");
    await assert.rejects(
      pool.transaction(async (c) => {
        await c.query("insert into lost_commit values (1)");
        const ended = new Promise((resolve) => c.once("end", resolve));
        await terminate(pidOf(c));
        await ended; // the pool now sees the connection as broken: no COMMIT can run
        return "done";
      }),
      /did not commit/,
    );
    const { rows } = await pool.query("select count(*)::int as n from lost_commit");
    assert.equal(rows[0].n, 0);
  } finally {
    await pool.close();
  }
});
