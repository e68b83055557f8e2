/**
 * Deadlines: `pool.query(text, params, { timeout, signal })`, `transaction()`
 * and `withConnection()` cancel a running statement on the server (57014),
 * keep the connection when the cancel worked, and discard it when it did not.
 */
import assert from "node:assert/strict";
import { ConnectionPool, createPgDriver, PoolError, PoolTimeoutError } from "../../mod.ts";
import { adminQuery, createTestDatabase, type TestDatabase, waitFor } from "../_db.ts";
import { backendPid, timed } from "../_pool_helpers.ts";

let db: TestDatabase;
Deno.test.beforeAll(async () => {
  db = await createTestDatabase();
});
Deno.test.afterAll(async () => {
  await db.drop();
});

/** Waits until no session of the test database runs a statement matching `pattern`. */
async function expectNoStatement(pattern: string): Promise<void> {
  let last = -1;
  await waitFor(async () => {
    const [row] = await adminQuery<{ n: number }>(
      `select count(*)::int as n from pg_stat_activity
        where datname = $1 and state = 'active' and query like $2 and pid <> pg_backend_pid()`,
      [db.name, pattern],
    );
    last = row.n;
    return last === 0;
  }, { timeout: 3_000, message: `a statement like ${pattern} still runs (${last})` });
}

async function poolPid(pool: ConnectionPool): Promise<number> {
  const { rows } = await pool.query<{ pid: number }>("select pg_backend_pid() as pid");
  return rows[0].pid;
}

/** transaction()/withConnection() past their timeout: always PoolTimeoutError, a cancelled statement's 57014 as cause. */
function assertPastDeadline(error: unknown): void {
  assert.ok(error instanceof PoolTimeoutError, `expected PoolTimeoutError, got ${error}`);
  assert.equal(
    (error.cause as { code?: string } | undefined)?.code,
    "57014",
    `expected 57014 as cause, got ${error.cause}`,
  );
}

function onePool(): ConnectionPool {
  return new ConnectionPool({ conninfo: db.url, minSize: 1, maxSize: 1 });
}

Deno.test("query with timeout 300 cancels pg_sleep(30) on the server with 57014 and keeps the connection", async () => {
  await using pool = onePool();
  const pid = await poolPid(pool);
  const { ms, error } = await timed(() =>
    pool.query("select pg_sleep(30) /* deadline-timeout */", [], { timeout: 300 })
  );
  assert.equal((error as { code?: string }).code, "57014", `expected 57014, got ${error}`);
  assert.ok(ms >= 250 && ms < 1_500, `rejected after ${Math.round(ms)} ms`);
  await expectNoStatement("%deadline-timeout%");
  assert.equal(await poolPid(pool), pid, "the same backend served the next query");
  assert.equal(pool.getStats().returnsBad, 0);
});

Deno.test("query aborted by an AbortSignal cancels the statement on the server with 57014 and keeps the connection", async () => {
  await using pool = onePool();
  const pid = await poolPid(pool);
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(new Error("user went away")), 200);
  const { ms, error } = await timed(() =>
    pool.query("select pg_sleep(30) /* deadline-abort */", [], { signal: controller.signal })
  );
  clearTimeout(timer);
  assert.equal((error as { code?: string }).code, "57014", `expected 57014, got ${error}`);
  assert.ok(ms < 1_500, `rejected after ${Math.round(ms)} ms`);
  await expectNoStatement("%deadline-abort%");
  assert.equal(await poolPid(pool), pid);
});

Deno.test("a query deadline that passes while waiting for a connection rejects with PoolTimeoutError", async () => {
  await using pool = onePool();
  const held = await pool.getconn();
  try {
    const { ms, error } = await timed(() => pool.query("select 1", [], { timeout: 200 }));
    assert.ok(error instanceof PoolTimeoutError, `expected PoolTimeoutError, got ${error}`);
    assert.ok(ms >= 150 && ms < 2_000, `rejected after ${Math.round(ms)} ms`);
    const reason = new Error("stop waiting");
    const aborted = await timed(() => pool.query("select 1", [], { signal: AbortSignal.abort(reason) }));
    assert.equal(aborted.error, reason);
  } finally {
    await pool.putconn(held);
  }
  assert.equal((await pool.query<{ x: number }>("select 1 as x")).rows[0].x, 1);
});

Deno.test("transaction({ timeout }) cancels the running statement, rolls back, and keeps the connection", async () => {
  await using pool = onePool();
  await pool.query("create table if not exists tx_deadline (id int)");
  const pid = await poolPid(pool);
  const { ms, error } = await timed(() =>
    pool.transaction(async (conn) => {
      await conn.query("insert into tx_deadline values (1)");
      await conn.query("select pg_sleep(30) /* deadline-tx */");
    }, { timeout: 300 })
  );
  assertPastDeadline(error);
  assert.ok(ms < 1_500, `rejected after ${Math.round(ms)} ms`);
  await expectNoStatement("%deadline-tx%");
  assert.equal((await pool.query("select * from tx_deadline")).rowCount, 0, "rolled back");
  assert.equal(await poolPid(pool), pid);
});

Deno.test("transaction({ timeout }) whose work ends past the deadline between statements is rolled back, never committed", async () => {
  await using pool = onePool();
  await pool.query("create table if not exists tx_late (id int)");
  const { error } = await timed(() =>
    pool.transaction(async (conn) => {
      await conn.query("insert into tx_late values (1)");
      await new Promise((resolve) => setTimeout(resolve, 300)); // JS work, no statement running
    }, { timeout: 100 })
  );
  assert.ok(error instanceof PoolTimeoutError, `expected PoolTimeoutError, got ${error}`);
  assert.match(error.message, /rolled back/);
  assert.equal((await pool.query("select * from tx_late")).rowCount, 0);
});

Deno.test("transaction({ timeout }): a statement started after the deadline is cancelled as it starts", async () => {
  await using pool = onePool();
  const pid = await poolPid(pool);
  const { ms, error } = await timed(() =>
    pool.transaction(async (conn) => {
      await new Promise((resolve) => setTimeout(resolve, 300)); // past the deadline, nothing running
      await conn.query("select pg_sleep(30) /* deadline-late */");
    }, { timeout: 100 })
  );
  assertPastDeadline(error);
  assert.ok(ms < 2_000, `rejected after ${Math.round(ms)} ms`);
  await expectNoStatement("%deadline-late%");
  assert.equal(await poolPid(pool), pid);
});

Deno.test("withConnection({ timeout }) puts the deadline on the borrowed connection's statements", async () => {
  await using pool = onePool();
  const pid = await poolPid(pool);
  const { ms, error } = await timed(() =>
    pool.withConnection(async (conn) => {
      assert.equal(await backendPid(conn), pid);
      await conn.query("select pg_sleep(30) /* deadline-with */");
    }, { timeout: 300 })
  );
  assertPastDeadline(error);
  assert.ok(ms < 1_500, `rejected after ${Math.round(ms)} ms`);
  await expectNoStatement("%deadline-with%");
  assert.equal(await poolPid(pool), pid);
});

Deno.test("a cancel that cannot be delivered closes the connection and rejects with PoolError; the pool replaces it", async () => {
  const driver = createPgDriver(db.url);
  const pool = new ConnectionPool({
    driver: { ...driver, cancel: () => Promise.reject(new Error("cancel refused")) },
    minSize: 1,
    maxSize: 1,
  });
  try {
    const pid = await poolPid(pool);
    const { ms, error } = await timed(() => pool.query("select pg_sleep(3)", [], { timeout: 200 }));
    assert.ok(error instanceof PoolError, `expected PoolError, got ${error}`);
    assert.equal((error.cause as Error).message, "cancel refused");
    assert.ok(ms < 1_500, `rejected after ${Math.round(ms)} ms`);
    assert.notEqual(await poolPid(pool), pid, "the connection was discarded");
    assert.equal(pool.getStats().returnsBad, 1);
  } finally {
    await pool.close();
  }
});

Deno.test("query, transaction and withConnection validate timeout and signal like the pool's options", async () => {
  await using pool = onePool();
  const bad: [unknown, ErrorConstructor, RegExp][] = [
    [{ timeout: -1 }, RangeError, /'timeout'/],
    [{ timeout: NaN }, RangeError, /'timeout'/],
    [{ timeout: "100" }, TypeError, /'timeout'/],
    [{ signal: {} }, TypeError, /'signal'/],
    [{ signal: "abort" }, TypeError, /'signal'/],
  ];
  for (const [options, type, message] of bad) {
    const o = options as { timeout?: number; signal?: AbortSignal };
    await assert.rejects(pool.query("select 1", [], o), (e) => e instanceof type && message.test((e as Error).message));
    await assert.rejects(pool.transaction(() => {}, o), (e) => e instanceof type && message.test((e as Error).message));
    await assert.rejects(
      pool.withConnection(() => {}, o),
      (e) => e instanceof type && message.test((e as Error).message),
    );
  }
  assert.equal(pool.getStats().requestsNum, 0, "a bad call never asked for a connection");
});
