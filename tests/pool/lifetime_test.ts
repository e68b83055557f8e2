/**
 * maxLifetime, maxIdle, and idle connections lost on the server side.
 */
import assert from "node:assert/strict";
import { ConnectionPool } from "../../mod.ts";
import { adminQuery, backendCount, waitFor, withTestDatabase } from "../_db.ts";
import { backendPid, expectBackends } from "../_pool_helpers.ts";

async function backendPids(dbName: string): Promise<number[]> {
  const rows = await adminQuery<{ pid: number }>(
    `select pid from pg_stat_activity
      where datname = $1 and pid <> pg_backend_pid() and backend_type = 'client backend'`,
    [dbName],
  );
  return rows.map((r) => r.pid);
}

Deno.test("a connection returned past maxLifetime is closed and replaced", () =>
  withTestDatabase(async (db) => {
    await using pool = new ConnectionPool({ conninfo: db.url, minSize: 1, maxLifetime: 300 });
    const conn = await pool.getconn();
    const pid = await backendPid(conn);
    const start = performance.now();
    await waitFor(() => performance.now() - start > 320, { message: "lifetime elapsed" });
    await pool.putconn(conn);
    assert.equal(pool.getStats().returnsBad, 0, "an expired connection is not a bad return");
    const again = await pool.getconn({ timeout: 5_000 });
    assert.notEqual(await backendPid(again), pid);
    await pool.putconn(again);
    await waitFor(async () => !(await backendPids(db.name)).includes(pid), { message: "the old backend was closed" });
  }));

Deno.test("idle connections past maxLifetime are replaced by the timer", () =>
  withTestDatabase(async (db) => {
    await using pool = new ConnectionPool({ conninfo: db.url, minSize: 2, maxLifetime: 300 });
    await pool.open({ wait: true });
    const original = await backendPids(db.name);
    assert.equal(original.length, 2);
    await waitFor(async () => {
      const now = await backendPids(db.name);
      return now.length === 2 && now.every((pid) => !original.includes(pid));
    }, { message: "both idle connections should be replaced" });
    assert.ok(pool.getStats().connectionsNum >= 4);
    assert.ok(pool.getStats().poolSize <= 2, "replacing never exceeds maxSize");
  }));

Deno.test("maxIdle closes idle connections above minSize, down to minSize", () =>
  withTestDatabase(async (db) => {
    await using pool = new ConnectionPool({ conninfo: db.url, minSize: 1, maxSize: 3, maxIdle: 200 });
    await pool.open({ wait: true });
    const conns = [
      await pool.getconn(),
      await pool.getconn({ timeout: 5_000 }),
      await pool.getconn({ timeout: 5_000 }),
    ];
    assert.equal(pool.getStats().poolSize, 3);
    for (const conn of conns) await pool.putconn(conn);
    assert.equal(pool.getStats().poolAvailable, 3);
    await waitFor(() => pool.getStats().poolSize === 1, { message: "shrink to minSize" });
    await expectBackends(db.name, 1);
    // It stops at minSize: the last one is still there and usable.
    const stats = pool.getStats();
    assert.equal(stats.poolAvailable, 1);
    const conn = await pool.getconn({ timeout: 1_000 });
    await pool.putconn(conn);
  }));

Deno.test("an idle connection terminated on the server is noticed and replaced before anyone borrows it", () =>
  withTestDatabase(async (db) => {
    await using pool = new ConnectionPool({ conninfo: db.url, minSize: 2 });
    await pool.open({ wait: true });
    const [victim] = await backendPids(db.name);
    await adminQuery("select pg_terminate_backend($1)", [victim]);
    await waitFor(async () => {
      const now = await backendPids(db.name);
      return now.length === 2 && !now.includes(victim) && pool.getStats().poolAvailable === 2;
    }, { message: "the killed connection should be replaced" });
    assert.equal(pool.getStats().connectionsLost, 1);
    pool.popStats();
    // Both idle connections work on the first try: no user sees the dead one.
    const a = await pool.getconn({ timeout: 1_000 });
    const b = await pool.getconn({ timeout: 1_000 });
    const pids = [await backendPid(a), await backendPid(b)];
    assert.ok(!pids.includes(victim));
    await pool.putconn(a);
    await pool.putconn(b);
    const stats = pool.getStats();
    assert.equal(stats.requestsErrors, 0);
    assert.equal(stats.returnsBad, 0);
    assert.equal(await backendCount(db.name), 2);
  }));

Deno.test("maxIdle shrinks a FIFO pool under light steady load that touches every connection in turn", () =>
  withTestDatabase(async (db) => {
    await using pool = new ConnectionPool({ conninfo: db.url, minSize: 1, maxSize: 3, maxIdle: 200, order: "fifo" });
    await pool.open({ wait: true });
    const conns = [
      await pool.getconn(),
      await pool.getconn({ timeout: 5_000 }),
      await pool.getconn({ timeout: 5_000 }),
    ];
    for (const conn of conns) await pool.putconn(conn);
    assert.equal(pool.getStats().poolSize, 3);
    // One borrower at a time, every 20 ms: FIFO hands out each connection in turn, so no connection
    // is ever idle for 200 ms, yet two of the three were never needed.
    const deadline = performance.now() + 5_000;
    while (pool.getStats().poolSize > 1) {
      assert.ok(performance.now() < deadline, `still ${pool.getStats().poolSize} connections after 5 s`);
      const conn = await pool.getconn({ timeout: 1_000 });
      await pool.putconn(conn);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    await expectBackends(db.name, 1);
  }));
