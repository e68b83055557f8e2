/**
 * Pipelining with the production controls: a `pool.query()` with a
 * deadline never shares its connection (its CancelRequest cancels whatever runs
 * on the backend), drain() replaces the lane's connections too, keepalive never
 * probes a connection in the lane, a lane connection is ref'd under
 * allowExitOnIdle, and NullConnectionPool does not pipeline unless asked.
 */
import assert from "node:assert/strict";
import type pg from "pg";
import { ConnectionPool, NullConnectionPool } from "../../mod.ts";
import { createTestDatabase, type TestDatabase, waitFor } from "../_db.ts";
import { recordingDriver } from "../_pipeline_helpers.ts";

let db: TestDatabase;
Deno.test.beforeAll(async () => {
  db = await createTestDatabase();
});
Deno.test.afterAll(async () => {
  await db.drop();
});

/** `tasks` loops of quick pipelined statements until `stop()` says so; resolves to how many ran and every failure. */
async function burst(
  pool: ConnectionPool<pg.Client>,
  tasks: number,
  stop: () => boolean,
): Promise<{ ran: number; failures: unknown[] }> {
  let ran = 0;
  const failures: unknown[] = [];
  await Promise.all(Array.from({ length: tasks }, async (_, t) => {
    while (!stop()) {
      try {
        const r = await pool.query<{ n: number }>("select $1::int as n", [t]);
        if (r.rows[0].n !== t) failures.push(new Error(`task ${t} got ${r.rows[0].n}`));
        ran++;
      } catch (error) {
        failures.push(error);
      }
    }
  }));
  return { ran, failures };
}

for (const kind of ["timeout", "signal"] as const) {
  Deno.test(`pipelined burst beside a query with a ${kind}: only the sleeper fails (57014), and it ran alone`, async () => {
    const driver = recordingDriver(db.url);
    await using pool = new ConnectionPool({ driver, minSize: 2, maxSize: 2, pipeline: 16 });
    await pool.open({ wait: true });
    const sleeper = "select pg_sleep(5) /* deadline-sleeper */";
    let settled = false;
    const load = burst(pool, 32, () => settled);
    // Statements are in flight on the lane before the sleeper starts, and until it is cancelled.
    await waitFor(() => driver.maxInFlight > 1, { message: "the burst never pipelined" });
    const options = kind === "timeout" ? { timeout: 1_000 } : { signal: AbortSignal.timeout(1_000) };
    const error = await pool.query(sleeper, [], options).then(() => undefined, (e) => e).finally(() => settled = true);
    const { ran, failures } = await load;
    assert.equal((error as { code?: string } | undefined)?.code, "57014", `the sleeper: ${error}`);
    assert.deepEqual(failures, [], "a pipelined statement failed");
    assert.ok(ran > 0);
    assert.equal(driver.company.get(sleeper), 1, "the sleeper shared its connection with pipelined statements");
    assert.equal(pool.getStats().returnsBad, 0, "the cancel worked, so every connection was kept");
  });
}

Deno.test("drain() under a pipelined burst stops loading the lane's old connections, replaces them, fails no statement", async () => {
  const driver = recordingDriver(db.url);
  await using pool = new ConnectionPool({ driver, minSize: 2, maxSize: 2, pipeline: 8 });
  await pool.open({ wait: true });
  let stop = false;
  const load = burst(pool, 32, () => stop);
  try {
    await waitFor(() => pool.getStats().poolAvailable === 0 && driver.maxInFlight > 1, {
      message: "the burst never pipelined on every connection",
    });
    const old = new Set(driver.calls.map((c) => c.conn));
    const from = driver.calls.length;
    await pool.drain({ timeout: 15_000 });
    const toOld = driver.calls.slice(from).filter((c) => old.has(c.conn)).length;
    // At most the statements already given a slot when drain() started (pipeline x maxSize); without retiring
    // the lane's connections it keeps loading them for up to a second, hundreds of statements.
    assert.ok(toOld <= 16, `${toOld} statements sent to old connections after drain() started`);
    const mark = driver.calls.length;
    await pool.query("select 1");
    assert.ok(driver.calls.slice(mark).every((c) => !old.has(c.conn)), "a statement ran on an old connection");
  } finally {
    stop = true;
  }
  assert.deepEqual((await load).failures, []);
});

Deno.test("keepalive never probes a connection with pipelined statements in flight", async () => {
  const driver = recordingDriver(db.url);
  const inFlight = new Map<pg.Client, number>();
  let pings = 0;
  let busyPings = 0;
  const counted: typeof driver = {
    ...driver,
    query(conn, text, params) {
      inFlight.set(conn, (inFlight.get(conn) ?? 0) + 1);
      return driver.query(conn, text, params).finally(() => inFlight.set(conn, inFlight.get(conn)! - 1));
    },
    ping(conn) {
      pings++;
      if ((inFlight.get(conn) ?? 0) > 0) busyPings++;
      return driver.ping(conn);
    },
  };
  await using pool = new ConnectionPool({ driver: counted, minSize: 4, maxSize: 4, pipeline: 8, keepaliveInterval: 5 });
  await pool.open({ wait: true });
  let stop = false;
  const load = burst(pool, 6, () => stop);
  try {
    await waitFor(() => driver.maxInFlight > 1, { message: "the burst never pipelined" });
    const sent = driver.calls.length;
    await waitFor(() => driver.calls.length > sent + 2_000, { timeout: 20_000 });
  } finally {
    stop = true;
  }
  assert.deepEqual((await load).failures, []);
  await waitFor(() => pings > 0, { message: "keepalive never ran" });
  assert.equal(busyPings, 0, `${busyPings} of ${pings} probes hit a connection with statements in flight`);
});

Deno.test("allowExitOnIdle: a connection running pipelined statements is ref'd", async () => {
  const driver = recordingDriver(db.url);
  const reffed = new Map<pg.Client, boolean>();
  let unrefSends = 0;
  const watched: typeof driver = {
    ...driver,
    setRef(conn, ref) {
      reffed.set(conn, ref);
      driver.setRef!(conn, ref);
    },
    query(conn, text, params) {
      if (reffed.get(conn) === false) unrefSends++;
      return driver.query(conn, text, params);
    },
  };
  await using pool = new ConnectionPool({
    driver: watched,
    minSize: 2,
    maxSize: 2,
    pipeline: 8,
    allowExitOnIdle: true,
  });
  await pool.open({ wait: true });
  await waitFor(() => reffed.size === 2 && [...reffed.values()].every((r) => !r), {
    message: "idle connections were not unref'd",
  });
  const rs = await Promise.all(Array.from({ length: 200 }, (_, i) => pool.query("select $1::int as n", [i])));
  assert.deepEqual(rs.map((r) => r.rows[0].n), Array.from({ length: 200 }, (_, i) => i));
  assert.ok(driver.maxInFlight > 1, "the statements were pipelined");
  assert.equal(unrefSends, 0, "a statement was sent on an unref'd connection");
  await waitFor(() => [...reffed.values()].every((r) => !r), { message: "returned connections were not unref'd" });
});

Deno.test("NullConnectionPool runs one statement per connection unless pipeline is set", async () => {
  for (const pipeline of [undefined, 8]) {
    const driver = recordingDriver(db.url);
    await using pool = new NullConnectionPool({ driver, maxSize: 2, ...(pipeline ? { pipeline } : {}) });
    const rs = await Promise.all(Array.from({ length: 64 }, (_, i) => pool.query("select $1::int as n", [i])));
    assert.deepEqual(rs.map((r) => r.rows[0].n), Array.from({ length: 64 }, (_, i) => i));
    if (pipeline === undefined) assert.equal(driver.maxInFlight, 1, "the null pool pipelined by default");
    else assert.ok(driver.maxInFlight > 1, `pipeline: ${pipeline} did not pipeline`);
  }
});
