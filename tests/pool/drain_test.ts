/**
 * `pool.drain()`: every connection is replaced (idle now, borrowed on return)
 * and the pool is back at minSize; rotating a role's password under load with
 * a conninfo function plus drain() loses no request.
 */
import assert from "node:assert/strict";
import { ConnectionPool, PoolClosedError, PoolTimeoutError } from "../../mod.ts";
import { adminQuery, createTestDatabase, type TestDatabase } from "../_db.ts";
import { backendPid, timed } from "../_pool_helpers.ts";

let db: TestDatabase;
Deno.test.beforeAll(async () => {
  db = await createTestDatabase();
});
Deno.test.afterAll(async () => {
  await db.drop();
});

/** The server's clock, to compare with backend_start. */
async function serverNow(): Promise<string> {
  const [row] = await adminQuery<{ t: string }>("select clock_timestamp()::text as t");
  return row.t;
}

/** Sessions of `user` on the test database that started before `since`. */
async function oldBackends(since: string, user?: string): Promise<number> {
  const [row] = await adminQuery<{ n: number }>(
    `select count(*)::int as n from pg_stat_activity
      where datname = $1 and pid <> pg_backend_pid() and backend_type = 'client backend'
        and backend_start < $2::timestamptz and ($3::text is null or usename = $3)`,
    [db.name, since, user ?? null],
  );
  return row.n;
}

Deno.test("drain() closes idle connections now and a borrowed one on return, and resolves back at minSize", async () => {
  await using pool = new ConnectionPool({ conninfo: db.url, minSize: 3, maxSize: 3 });
  await pool.open({ wait: true });
  const held = await pool.getconn();
  const heldPid = await backendPid(held);
  const since = await serverNow();
  let drained = false;
  const draining = pool.drain({ timeout: 5_000 }).then(() => drained = true);
  // The two idle ones were replaced; the borrowed one is still out.
  const fresh = await pool.getconn();
  assert.notEqual(await backendPid(fresh), heldPid);
  await pool.putconn(fresh);
  assert.equal(drained, false, "not done while an old connection is borrowed");
  await pool.putconn(held);
  await draining;
  assert.equal(pool.getStats().poolSize, 3);
  assert.equal(await oldBackends(since), 0, "only backends started after the drain are left");
  const pids = await Promise.all([0, 1, 2].map(() => pool.withConnection((c) => backendPid(c))));
  assert.ok(!pids.includes(heldPid));
});

Deno.test("drain() rejects with PoolTimeoutError while an old connection stays borrowed, and PoolClosedError on a closed pool", async () => {
  const pool = new ConnectionPool({ conninfo: db.url, minSize: 1, maxSize: 2 });
  await pool.open({ wait: true });
  const held = await pool.getconn();
  const { error } = await timed(() => pool.drain({ timeout: 200 }));
  assert.ok(error instanceof PoolTimeoutError, `expected PoolTimeoutError, got ${error}`);
  assert.match(error.message, /1 old connections left/);
  await pool.putconn(held);
  await pool.close();
  await assert.rejects(pool.drain(), PoolClosedError);
  assert.throws(() => pool.drain({ timeout: -1 }), RangeError);
});

Deno.test("rotating a role's password with ALTER ROLE under steady load plus drain() loses no request and leaves only new backends", async () => {
  const role = `tp_rot_${crypto.randomUUID().replaceAll("-", "").slice(0, 12)}`;
  let password = `old-${crypto.randomUUID()}`;
  await adminQuery(`create role ${role} login password '${password}'`);
  const conninfo = () => {
    const url = new URL(db.url);
    url.username = role;
    url.password = password;
    return url.toString();
  };
  const pool = new ConnectionPool({ conninfo, minSize: 4, maxSize: 4, timeout: 10_000 });
  let ok = 0;
  const failures: unknown[] = [];
  let stop = false;
  const load = Array.from({ length: 8 }, async () => {
    while (!stop) {
      try {
        await pool.query("select 1");
        ok++;
      } catch (error) {
        failures.push(error);
      }
    }
  });
  try {
    await pool.open({ wait: true, timeout: 5_000 });
    const until = async (n: number) => {
      const target = ok + n;
      while (ok < target && failures.length === 0) await new Promise((r) => setTimeout(r, 10));
    };
    await until(100);
    password = `new-${crypto.randomUUID()}`;
    await adminQuery(`alter role ${role} password '${password}'`);
    const since = await serverNow();
    await pool.drain({ timeout: 10_000 });
    await until(100); // load goes on over the new connections
    stop = true;
    await Promise.all(load);
    assert.deepEqual(failures, [], "no request was lost");
    assert.equal(await oldBackends(since, role), 0, "every backend started after the drain");
    const [row] = await adminQuery<{ n: number }>(
      "select count(*)::int as n from pg_stat_activity where datname = $1 and usename = $2",
      [db.name, role],
    );
    assert.equal(row.n, 4, "back at minSize with the new password");
    assert.equal(pool.getStats().connectionsErrors, 0, "no attempt used the old password");
  } finally {
    stop = true;
    await Promise.all(load);
    await pool.close();
    await adminQuery(`drop role if exists ${role}`);
  }
});
