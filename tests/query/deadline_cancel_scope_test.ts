/**
 * A deadline belongs to its caller's lease: when the callback of
 * `withConnection()`/`transaction()` gives the connection back itself, the
 * deadline's watch stops there, so it never cancels (57014) nor closes the
 * statements of the connection's next borrower or of the pipelining lane.
 */
import assert from "node:assert/strict";
import { ConnectionPool } from "../../mod.ts";
import { adminQuery, createTestDatabase, type TestDatabase, waitFor } from "../_db.ts";

let db: TestDatabase;
Deno.test.beforeAll(async () => {
  db = await createTestDatabase();
});
Deno.test.afterAll(async () => {
  await db.drop();
});

/** Waits until a session of the test database runs a statement matching `pattern`. */
async function untilRunning(pattern: string): Promise<void> {
  await waitFor(async () => {
    const [row] = await adminQuery<{ n: number }>(
      `select count(*)::int as n from pg_stat_activity
        where datname = $1 and state = 'active' and query like $2 and pid <> pg_backend_pid()`,
      [db.name, pattern],
    );
    return row.n > 0;
  }, { timeout: 5_000, message: `no statement like ${pattern} started` });
}

async function poolPid(pool: ConnectionPool): Promise<number> {
  const { rows } = await pool.query<{ pid: number }>("select pg_backend_pid() as pid");
  return rows[0].pid;
}

// connectTimeout is the grace before a deadline closes the connection: short, so a stray watch would close it too.
const onePool = () => new ConnectionPool({ conninfo: db.url, minSize: 1, maxSize: 1, connectTimeout: 300 });

Deno.test("a deadline whose callback gave the connection back early does not cancel the next borrower's statement", async () => {
  await using pool = onePool();
  const pid = await poolPid(pool);
  const controller = new AbortController();
  let other: Promise<string> | undefined;
  const first = pool.withConnection(async (conn) => {
    await pool.putconn(conn); // the callback's own mistake: the connection goes to the next borrower
    other = (async () => {
      const c = await pool.getconn();
      try {
        await c.query("select pg_sleep(0.8) /* lease-next-borrower */");
        return "ok";
      } catch (error) {
        return `failed: ${(error as { code?: string }).code} ${(error as Error).message}`;
      } finally {
        await pool.putconn(c);
      }
    })();
    await untilRunning("%lease-next-borrower%");
    controller.abort(new Error("the first caller's deadline")); // while the other borrower's statement runs
    await other;
  }, { signal: controller.signal }).then(() => "resolved", (error: Error) => error.message);
  // Past its deadline the call rejects with the deadline's reason, not later when the callback settles.
  assert.equal(await first, "the first caller's deadline");
  assert.equal(await other, "ok", "the other borrower's statement ran to its end");
  assert.equal(await poolPid(pool), pid, "the connection was neither closed nor replaced");
  assert.equal(pool.getStats().returnsBad, 0);
});

Deno.test("a transaction deadline whose callback gave the connection back early does not cancel pipelined queries", async () => {
  await using pool = onePool();
  const pid = await poolPid(pool);
  const controller = new AbortController();
  let others: Promise<PromiseSettledResult<unknown>[]> | undefined;
  const first = pool.transaction(async (conn) => {
    await pool.putconn(conn);
    others = Promise.allSettled([
      pool.query("select pg_sleep(0.8) /* lease-pipelined */"),
      pool.query("select 2 as x"),
    ]);
    await untilRunning("%lease-pipelined%");
    controller.abort(new Error("the first caller's deadline"));
    await others;
  }, { signal: controller.signal }).then(() => "resolved", (error: Error) => error.message);
  // Its own call fails either way (its deadline passed, and it gave the connection back itself).
  assert.match(await first, /returned the connection itself|the first caller's deadline/);
  const settled = await others!;
  assert.deepEqual(
    settled.map((r) => r.status === "fulfilled" ? "ok" : `failed: ${(r.reason as { code?: string }).code}`),
    ["ok", "ok"],
  );
  assert.equal(await poolPid(pool), pid, "the connection was neither closed nor replaced");
});
