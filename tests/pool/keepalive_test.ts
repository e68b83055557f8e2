/**
 * keepaliveInterval: idle connections are probed on a timer with nobody
 * borrowing, and a dead one (its FIN never arrives: a silent network) is
 * replaced.
 */
import assert from "node:assert/strict";
import { ConnectionPool } from "../../mod.ts";
import { adminQuery, createTestDatabase, type TestDatabase, waitFor } from "../_db.ts";
import { backendPids, FAST_BACKOFF, proxyToServer, terminate } from "../_faults.ts";

let db: TestDatabase;
Deno.test.beforeAll(async () => {
  db = await createTestDatabase();
});
Deno.test.afterAll(async () => {
  await db.drop();
});

Deno.test("a killed idle backend whose socket went silent is replaced by keepalive with nobody borrowing", async () => {
  await using proxy = await proxyToServer();
  const pool = new ConnectionPool({
    conninfo: proxy.url(db.url),
    minSize: 1,
    maxSize: 1,
    keepaliveInterval: 100,
    connectTimeout: 300,
    backoff: FAST_BACKOFF,
  });
  try {
    await pool.open({ wait: true, timeout: 5_000 });
    const [pid] = await backendPids(db.name);
    const requests = pool.getStats().requestsNum;
    // The network goes silent, then the server kills the session: no FIN reaches the pool.
    proxy.blackhole();
    assert.ok(await terminate(pid));
    await waitFor(() => pool.getStats().connectionsLost === 1, { timeout: 3_000, message: "keepalive found it" });
    await proxy.start();
    await waitFor(() => pool.getStats().poolAvailable === 1 && pool.getStats().connectionsNum === 2, {
      timeout: 5_000,
      message: "replaced",
    });
    assert.equal(pool.getStats().requestsNum, requests, "nobody borrowed meanwhile");
    const pids = await backendPids(db.name);
    assert.equal(pids.length, 1);
    assert.notEqual(pids[0], pid);
    const { rows } = await pool.query<{ x: number }>("select 1 as x");
    assert.equal(rows[0].x, 1);
  } finally {
    await pool.close();
  }
});

Deno.test("keepalive probes leave live idle connections in place, and keepaliveInterval is validated", async () => {
  await using pool = new ConnectionPool({ conninfo: db.url, minSize: 2, keepaliveInterval: 50 });
  await pool.open({ wait: true, timeout: 5_000 });
  const before = await backendPids(db.name);
  assert.equal(before.length, 2);
  // No borrower ran anything: a session with a query_start was probed. Wait for two rounds of both.
  const probedAt = async () =>
    await adminQuery<{ pid: number; t: string }>(
      `select pid, query_start::text as t from pg_stat_activity
        where datname = $1 and pid <> pg_backend_pid() and query_start is not null`,
      [db.name],
    );
  let first: { pid: number; t: string }[] = [];
  await waitFor(async () => (first = await probedAt()).length === 2, { timeout: 3_000, message: "both probed" });
  await waitFor(async () => {
    const again = await probedAt();
    return again.length === 2 && again.every((r) => first.some((f) => f.pid === r.pid && f.t !== r.t));
  }, { timeout: 3_000, message: "both probed again" });
  assert.deepEqual((await backendPids(db.name)).sort(), before.sort(), "the same sessions");
  assert.equal(pool.getStats().requestsNum, 0, "nobody borrowed");
  assert.equal(pool.getStats().connectionsLost, 0);
  assert.throws(() => new ConnectionPool({ conninfo: db.url, keepaliveInterval: -1 }), RangeError);
  assert.throws(() => new ConnectionPool({ conninfo: db.url, keepaliveInterval: "1" as never }), TypeError);
});
