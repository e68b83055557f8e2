/**
 * NullConnectionPool: the pool API with no idle connections.
 */
import assert from "node:assert/strict";
import { NullConnectionPool, PoolClosedError } from "../../mod.ts";
import { waitFor, withTestDatabase } from "../_db.ts";
import { backendPid, expectBackends } from "../_pool_helpers.ts";

Deno.test("NullConnectionPool keeps no idle connection: each one is closed on return", () =>
  withTestDatabase(async (db) => {
    await using pool = new NullConnectionPool({ conninfo: db.url });
    await pool.open({ wait: true });
    await expectBackends(db.name, 0);
    const conn = await pool.getconn({ timeout: 5_000 });
    const pid = await backendPid(conn);
    await expectBackends(db.name, 1);
    await pool.putconn(conn);
    assert.equal(pool.getStats().poolAvailable, 0);
    await expectBackends(db.name, 0);
    const { rows } = await pool.query<{ pid: number }>("select pg_backend_pid() as pid");
    assert.notEqual(rows[0].pid, pid, "a new connection for each request");
    await expectBackends(db.name, 0);
    assert.equal(pool.getStats().connectionsNum, 2);
  }));

Deno.test("NullConnectionPool: maxSize bounds open connections and queues waiters", () =>
  withTestDatabase(async (db) => {
    await using pool = new NullConnectionPool({ conninfo: db.url, maxSize: 2 });
    const a = await pool.getconn({ timeout: 5_000 });
    const b = await pool.getconn({ timeout: 5_000 });
    const pidA = await backendPid(a);
    const waiter = pool.getconn({ timeout: 5_000 });
    await waitFor(() => pool.getStats().requestsWaiting === 1);
    assert.equal(pool.getStats().poolSize, 2);
    await expectBackends(db.name, 2);
    await pool.putconn(a);
    const c = await waiter;
    assert.equal(await backendPid(c), pidA, "a returned connection goes straight to the waiter");
    await pool.putconn(b);
    await pool.putconn(c);
    await expectBackends(db.name, 0);
  }));

Deno.test("NullConnectionPool opens one connection per waiter, in parallel, up to maxSize", () =>
  withTestDatabase(async (db) => {
    await using pool = new NullConnectionPool({ conninfo: db.url, maxSize: 3 });
    const conns = await Promise.all([1, 2, 3].map(() => pool.getconn({ timeout: 5_000 })));
    const pids = new Set(await Promise.all(conns.map(backendPid)));
    assert.equal(pids.size, 3);
    await expectBackends(db.name, 3);
    for (const c of conns) await pool.putconn(c);
    await expectBackends(db.name, 0);
  }));

Deno.test("NullConnectionPool rejects minSize != 0 and closes like ConnectionPool", () =>
  withTestDatabase(async (db) => {
    assert.throws(() => new NullConnectionPool({ conninfo: db.url, minSize: 2 }), RangeError);
    const pool = new NullConnectionPool({ conninfo: db.url });
    await pool.query("select 1");
    await pool.close();
    await assert.rejects(pool.getconn(), PoolClosedError);
    await expectBackends(db.name, 0);
  }));
