/**
 * Pipelined `pool.query()` (option `pipeline`) against the real server: results
 * reach the right callers, errors stay with their statement, a lost connection
 * fails exactly the statements that were on it, and borrowers (getconn,
 * transaction) never share a connection with pipelined statements.
 */
import assert from "node:assert/strict";
import type pg from "pg";
import { ConnectionPool, createPgDriver, PoolClosedError, TooManyRequestsError } from "../../mod.ts";
import { createTestDatabase, type TestDatabase, waitFor } from "../_db.ts";
import { pidOf } from "../_faults.ts";
import { recordingDriver, running } from "../_pipeline_helpers.ts";
import { pipelinable, STALL_MS } from "../../src/query/_pipeline.ts";

let db: TestDatabase;
Deno.test.beforeAll(async () => {
  db = await createTestDatabase();
});
Deno.test.afterAll(async () => {
  await db.drop();
});

Deno.test("pipelined: 256 concurrent mixed statements each get their own result, at most `pipeline` in flight per connection", async () => {
  const driver = recordingDriver(db.url);
  await using pool = new ConnectionPool({ driver, minSize: 4, maxSize: 4, pipeline: 8 });
  await pool.open({ wait: true });
  const calls = Array.from({ length: 256 }, (_, i) => {
    switch (i % 4) {
      case 0:
        return pool.query("select $1::int + 1 as n", [i]).then((r) => r.rows[0].n === i + 1);
      case 1:
        return pool.query(`select ${i} as n, repeat('x', ${i}) as s`).then((r) =>
          r.rows[0].n === i && r.rows[0].s === "x".repeat(i)
        );
      case 2:
        return pool.query("select generate_series(1, $1::int) as g", [i % 50 + 1]).then((r) =>
          r.rowCount === i % 50 + 1 && r.rows.every((row, k) => row.g === k + 1)
        );
      default:
        return pool.query("select $1::text as t", [`caller-${i}`]).then((r) => r.rows[0].t === `caller-${i}`);
    }
  });
  const ok = await Promise.all(calls);
  assert.deepEqual(ok.map((v, i) => v ? -1 : i).filter((i) => i >= 0), [], "callers that got another's result");
  assert.ok(driver.maxInFlight > 1, `statements were pipelined (max ${driver.maxInFlight} in flight)`);
  assert.ok(driver.maxInFlight <= 8, `at most pipeline=8 in flight on one connection, saw ${driver.maxInFlight}`);
  assert.ok(driver.sentTo.size <= 4);
  assert.equal(pool.getStats().poolSize, 4);
});

Deno.test("pipelined: one failing statement among many fails only its caller", async () => {
  await using pool = new ConnectionPool({ conninfo: db.url, minSize: 2, maxSize: 2, pipeline: 16 });
  await pool.open({ wait: true });
  const results = await Promise.allSettled(
    Array.from(
      { length: 200 },
      (_, i) => pool.query(i % 17 === 5 ? "select $1::int / 0 as n" : "select $1::int as n", [i]),
    ),
  );
  for (const [i, r] of results.entries()) {
    if (i % 17 === 5) {
      assert.equal(r.status, "rejected", `statement ${i} should fail`);
      assert.equal((r as PromiseRejectedResult).reason.code, "22012");
    } else {
      assert.equal(r.status, "fulfilled", `statement ${i} failed: ${(r as PromiseRejectedResult).reason}`);
      assert.equal((r as PromiseFulfilledResult<pg.QueryResult>).value.rows[0].n, i);
    }
  }
  // The connections are still good and stayed in the pool.
  assert.equal(pool.getStats().returnsBad, 0);
  assert.equal((await pool.query("select 1 as n")).rows[0].n, 1);
});

Deno.test("pipelined: nothing is pipelined behind a statement running longer than the stall bound", async () => {
  await using pool = new ConnectionPool({ conninfo: db.url, minSize: 2, maxSize: 2, pipeline: 8 });
  await pool.open({ wait: true });
  let slowDone = false;
  const sent = Date.now();
  const slow = pool.query("select pg_sleep(3) /* slow-head */").then(() => slowDone = true);
  await waitFor(async () => (await running(db.name, "slow-head")) !== undefined, { timeout: 5_000 });
  // Well past the bound, so the slow statement counts as stalled whatever the scheduling.
  await waitFor(() => Date.now() - sent > 4 * STALL_MS);
  const quick = await Promise.all(
    Array.from(
      { length: 40 },
      (_, i) => pool.query("select $1::int as n", [i]).then((r) => ({ n: r.rows[0].n, slowDone })),
    ),
  );
  assert.deepEqual(quick.map((q) => q.n), Array.from({ length: 40 }, (_, i) => i));
  assert.ok(quick.every((q) => !q.slowDone), "a quick statement waited for the slow one");
  await slow;
});

Deno.test("pipelined: when every connection is held up, statements queue (counted in requestsWaiting) and then run", async () => {
  await using pool = new ConnectionPool({ conninfo: db.url, minSize: 1, maxSize: 1, pipeline: 8 });
  await pool.open({ wait: true });
  const sent = Date.now();
  const slow = pool.query("select pg_sleep(1) /* held-up */");
  await waitFor(async () => (await running(db.name, "held-up")) !== undefined, { timeout: 5_000 });
  await waitFor(() => Date.now() - sent > 4 * STALL_MS);
  const queued = Array.from({ length: 5 }, (_, i) => pool.query<{ n: number }>("select $1::int as n", [i]));
  assert.equal(pool.getStats().requestsWaiting, 5);
  assert.deepEqual((await Promise.all(queued)).map((r) => r.rows[0].n), [0, 1, 2, 3, 4]);
  await slow;
  assert.equal(pool.getStats().requestsWaiting, 0);
});

Deno.test("pipelined: transaction() never shares its connection with pipelined statements", async () => {
  await using pool = new ConnectionPool({ conninfo: db.url, minSize: 2, maxSize: 2, pipeline: 8 });
  await pool.open({ wait: true });
  await pool.transaction(async (conn) => {
    const txPid = pidOf(conn);
    assert.equal((conn as unknown as { pipeline: boolean }).pipeline, false, "a borrower gets a non-pipelined client");
    const rows = await Promise.all(
      Array.from({ length: 100 }, () => pool.query("select pg_backend_pid() as pid, txid_current_if_assigned() as x")),
    );
    assert.ok(rows.every((r) => r.rows[0].pid !== txPid), "a pipelined statement ran on the transaction's connection");
    await conn.query("select txid_current()");
    // Errors inside the transaction behave as without pipelining.
    await assert.rejects(conn.query("select 1/0"), { code: "22012" });
    await assert.rejects(conn.query("select 1"), { code: "25P02" });
    assert.equal(conn.getTransactionStatus(), "E");
    await conn.query("rollback");
  });
});

Deno.test("pipelined: session state set by a borrower never leaks into pipelined statements", async () => {
  await using pool = new ConnectionPool({
    conninfo: db.url,
    minSize: 2,
    maxSize: 2,
    pipeline: 8,
    reset: ConnectionPool.discardAll,
  });
  await pool.open({ wait: true });
  const seen = async () => {
    const rs = await Promise.all(
      Array.from({ length: 100 }, () => pool.query("select current_setting('tidepool.tag', true) as tag")),
    );
    return rs.filter((r) => r.rows[0].tag === "borrower").length;
  };
  {
    await using conn = await pool.connection();
    await conn.query("set tidepool.tag = 'borrower'");
    assert.equal(await seen(), 0, "while borrowed");
  }
  // Returned through the normal return path (reset = DISCARD ALL), and then pipelined on.
  assert.equal(await seen(), 0, "after the return");
});

Deno.test("pipelined: a borrower waiting behind a busy lane gets a connection", async () => {
  await using pool = new ConnectionPool({ conninfo: db.url, minSize: 1, maxSize: 1, pipeline: 8, timeout: 10_000 });
  await pool.open({ wait: true });
  let stop = false;
  let done = 0;
  const loops = Array.from({ length: 32 }, async () => {
    while (!stop) {
      await pool.query("select 1");
      done++;
    }
  });
  await waitFor(() => done > 100, { timeout: 5_000 });
  const conn = await pool.getconn({ timeout: 5_000 });
  assert.equal(pool.getStats().poolSize, 1);
  assert.equal((await conn.query("select 1 as n")).rows[0].n, 1);
  await pool.putconn(conn);
  stop = true;
  await Promise.all(loops);
});

Deno.test("pipelinable: BEGIN, START, COPY, session-state statements (SET, LISTEN, advisory locks, temp tables), and several statements are sent alone; a leading comment is whitespace", () => {
  for (
    const text of [
      "select 1",
      " SELECT $1::int",
      "select 1;",
      "insert into t values (1);  \n",
      "with x as (select 1) select * from x",
      "-- a comment is whitespace\nselect 1",
    ]
  ) {
    assert.ok(pipelinable(text), text);
  }
  for (
    const text of [
      "begin",
      "BEGIN ISOLATION LEVEL SERIALIZABLE",
      " start transaction",
      "copy t from stdin",
      "select 1; begin",
      "select ';'; select 2",
      "",
      "  ",
      "set statement_timeout = 10",
      "SET search_path = other",
      "listen jobs",
      "select pg_advisory_lock(1)",
      "create temp table scratch (x int)",
      "select set_config('work_mem', '1MB', false)",
    ]
  ) {
    assert.ok(!pipelinable(text), text);
  }
  assert.ok(!pipelinable({ text: "select 1" } as unknown as string), "a pg query config object");
});

Deno.test("pipelined: statements that could leave state behind (BEGIN, several at once) run on a connection of their own", async () => {
  const driver = recordingDriver(db.url);
  await using pool = new ConnectionPool({ driver, minSize: 1, maxSize: 1, pipeline: 8 });
  await pool.open({ wait: true });
  const results = await Promise.allSettled([
    pool.query("begin"),
    pool.query("select 1 as n"),
    pool.query("select 2 as n; select 3 as n"),
    pool.query("select 4 as n"),
  ]);
  assert.ok(results.every((r) => r.status === "fulfilled"));
  assert.equal(driver.company.get("begin"), 1, "BEGIN shared its connection");
  assert.equal(driver.company.get("select 2 as n; select 3 as n"), 1, "a multi-statement string shared its connection");
  // BEGIN's connection was rolled back on return: the next statements are not inside its transaction.
  assert.equal((await pool.query("select 5 as n")).rows[0].n, 5);
  const conn = await pool.getconn();
  assert.equal(conn.getTransactionStatus(), "I");
  await pool.putconn(conn);
});

Deno.test("pipeline: 1 and drivers without setPipelined run one statement per connection", async () => {
  for (const [pipeline, pipelined] of [[1, true], [8, false]] as const) {
    const driver = recordingDriver(db.url, pipelined);
    await using pool = new ConnectionPool({ driver, minSize: 2, maxSize: 2, pipeline });
    await pool.open({ wait: true });
    const rs = await Promise.all(Array.from({ length: 64 }, (_, i) => pool.query("select $1::int as n", [i])));
    assert.deepEqual(rs.map((r) => r.rows[0].n), Array.from({ length: 64 }, (_, i) => i));
    assert.equal(driver.maxInFlight, 1, `pipeline ${pipeline}, setPipelined ${pipelined}`);
  }
});

Deno.test("pipelined: close() refuses new statements and lets those in flight finish", async () => {
  const pool = new ConnectionPool({ conninfo: db.url, minSize: 1, maxSize: 1, pipeline: 8 });
  await pool.open({ wait: true });
  const inFlight = Array.from({ length: 8 }, (_, i) => pool.query("select $1::int as n, pg_sleep(0.05)", [i]));
  // Beyond the depth: waits for a slot.
  const waiting = pool.query("select 99 as n").then(() => undefined, (error) => error);
  const closing = pool.close();
  await assert.rejects(pool.query("select 1"), PoolClosedError);
  assert.deepEqual((await Promise.all(inFlight)).map((r) => r.rows[0].n), [0, 1, 2, 3, 4, 5, 6, 7]);
  assert.ok(await waiting instanceof PoolClosedError);
  await closing;
});

Deno.test("option pipeline: an integer >= 1, else a clear error naming it", () => {
  for (const bad of [0, -1, 1.5, NaN]) {
    assert.throws(
      () => new ConnectionPool({ conninfo: db.url, pipeline: bad }),
      (e: Error) => e instanceof RangeError && e.message.includes("'pipeline'"),
    );
  }
  assert.throws(
    () => new ConnectionPool({ conninfo: db.url, pipeline: "8" as unknown as number }),
    (e: Error) => e instanceof TypeError && e.message.includes("'pipeline'"),
  );
});

Deno.test("pipelined: a connection kept busy by pipelined statements is still replaced after maxLifetime", async () => {
  await using pool = new ConnectionPool({ conninfo: db.url, minSize: 1, maxSize: 1, pipeline: 8, maxLifetime: 300 });
  await pool.open({ wait: true });
  const pidNow = async () => (await pool.query<{ pid: number }>("select pg_backend_pid() as pid")).rows[0].pid;
  const first = await pidNow();
  let stop = false;
  let replaced = false;
  const loops = Array.from({ length: 16 }, async () => {
    while (!stop) if (await pidNow() !== first) replaced = true;
  });
  try {
    // The lane gives its connection back about once a second, so the return path sees it expired.
    await waitFor(() => replaced, { timeout: 15_000, message: "the busy connection was never replaced" });
  } finally {
    stop = true;
    await Promise.all(loops);
  }
  assert.ok(pool.getStats().connectionsNum >= 2);
});

Deno.test("pipelined: under steady load the lane makes the pool grow to maxSize (statements run in parallel on the server) instead of pipelining them all on minSize connections", async () => {
  await using pool = new ConnectionPool({ conninfo: db.url, minSize: 1, maxSize: 4, pipeline: 16 });
  await pool.open({ wait: true });
  // 16 tasks fit in one connection's pipeline: without growth the pool would stay at one backend.
  const deadline = performance.now() + 5_000;
  const task = async () => {
    while (pool.getStats().poolSize < 4 && performance.now() < deadline) await pool.query("select pg_sleep(0.005)");
  };
  await Promise.all(Array.from({ length: 16 }, task));
  assert.equal(pool.getStats().poolSize, 4, "the pool grew to maxSize under load");
});

Deno.test("pipelined: a session SET never runs beside another caller's statement on one connection (it goes alone, and reset cleans it on return)", async () => {
  await using pool = new ConnectionPool({
    conninfo: db.url,
    minSize: 1,
    maxSize: 1,
    pipeline: 16,
    reset: ConnectionPool.discardAll,
  });
  await pool.open({ wait: true });
  const [set, sleep] = await Promise.allSettled([
    pool.query("set statement_timeout = 10"),
    pool.query("select pg_sleep(0.1)"),
  ]);
  assert.equal(set.status, "fulfilled");
  assert.equal(sleep.status, "fulfilled", sleep.status === "rejected" ? String(sleep.reason) : "");
});

Deno.test("pipelined: maxWaiting also caps statements waiting for a pipeline slot (TooManyRequestsError at once)", async () => {
  await using pool = new ConnectionPool({ conninfo: db.url, minSize: 1, maxSize: 1, maxWaiting: 2, pipeline: 16 });
  await pool.open({ wait: true });
  const results = await Promise.allSettled(Array.from({ length: 60 }, () => pool.query("select pg_sleep(0.01)")));
  const refused = results.filter((r) => r.status === "rejected");
  assert.ok(refused.every((r) => r.reason instanceof TooManyRequestsError), String(refused[0]?.reason));
  // 16 fit in the one connection's pipeline and 2 may wait: the other 42 are refused.
  assert.ok(refused.length >= 40, `${refused.length} refused`);
});

Deno.test("pipelined: statements waiting for a slot keep their own deadline when an earlier request for one more connection times out", async () => {
  const inner = createPgDriver(db.url);
  let opened = 0;
  // The first connection opens; any further one hangs until its attempt is aborted (the pool cannot grow).
  const driver = {
    ...inner,
    connect(signal: AbortSignal) {
      if (opened++ === 0) return inner.connect(signal);
      return new Promise<never>((_, reject) => signal.addEventListener("abort", () => reject(signal.reason)));
    },
  };
  await using pool = new ConnectionPool({ driver, minSize: 1, maxSize: 2, pipeline: 2, timeout: 1_000 });
  await pool.open({ wait: true });
  const t0 = performance.now();
  // Two slow statements fill the one connection's pipeline; the second asks for one more connection (never comes).
  const slow = [pool.query("select pg_sleep(0.6)"), pool.query("select pg_sleep(0.6)")];
  await waitFor(() => performance.now() - t0 > 700);
  // Queued at ~0.7 s with a deadline at ~1.7 s; the growth request times out at ~1 s; the slot frees at ~1.2 s.
  const late = await Promise.allSettled([1, 2, 3].map((n) => pool.query("select $1::int as n", [n])));
  assert.deepEqual(
    late.map((r) => r.status),
    ["fulfilled", "fulfilled", "fulfilled"],
    String(
      late.find((r) => r.status === "rejected")?.reason,
    ),
  );
  await Promise.all(slow);
});
