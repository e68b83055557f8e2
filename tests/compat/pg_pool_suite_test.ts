/**
 * node-postgres's own pg-pool test suite (packages/pg-pool/test), its cases
 * that apply to `toPgPool`, rewritten against the real server: each test is
 * named after the pg-pool case it ports (file: case). Cases that test pg-pool
 * options tidepool deliberately does not copy are listed in docs/porting.md.
 * Where a case asserts a deliberate difference the test asserts tidepool's
 * behaviour and says so.
 */
import assert from "node:assert/strict";
import type pg from "pg";
import {
  ConnectionPool,
  type ConnectionPoolOptions,
  type PgPool,
  PoolClosedError,
  PoolTimeoutError,
  toPgPool,
} from "../../mod.ts";
import { adminQuery, createTestDatabase, waitFor } from "../_db.ts";
import { closedPort, withPort } from "../_pool_helpers.ts";
import { startProxy } from "../_proxy.ts";

const db = await createTestDatabase();
addEventListener("unload", () => void db.drop());

/** A facade over a fresh pool on this file's database; pg-pool's defaults where they matter (min 0). */
function facade(options: ConnectionPoolOptions = {}): PgPool {
  return toPgPool(new ConnectionPool({ conninfo: db.url, minSize: 0, maxSize: 10, ...options }));
}

/** pg-pool's callback form of `connect()`, as a promise of what the callback got. */
function connectCb(pool: PgPool): Promise<{ err?: Error; client?: pg.PoolClient; done: (e?: Error) => void }> {
  return new Promise((resolve) => pool.connect((err, client, done) => resolve({ err, client, done })));
}

/** pg-pool's callback form of `query()`, as a promise of what the callback got. */
function queryCb(pool: PgPool, text: string, values?: unknown[]): Promise<{ err?: Error; res?: pg.QueryResult }> {
  return new Promise((resolve) => {
    const cb = (err: Error | undefined, res: pg.QueryResult | undefined) => resolve({ err, res });
    if (values === undefined) pool.query(text, cb as (err: Error, res: pg.QueryResult) => void);
    else pool.query(text, values, cb as (err: Error, res: pg.QueryResult) => void);
  });
}

// ---- ending.js --------------------------------------------------------------------------------------------

Deno.test("pg-pool ending: ends without being used (callback and promise)", async () => {
  const a = facade();
  await new Promise<void>((resolve, reject) => a.end((err) => err ? reject(err) : resolve()));
  await facade().end();
});

Deno.test("pg-pool ending: ends with clients", async () => {
  const pool = facade();
  const res = await pool.query("select $1::text as name", ["brianc"]);
  assert.equal(res.rows[0].name, "brianc");
  await pool.end();
  assert.equal(pool.pool.closed, true);
});

Deno.test("pg-pool ending: allows a query issued before end() to finish", async () => {
  const pool = facade();
  const query = pool.query("select $1::text as name", ["brianc"]);
  await pool.end();
  assert.equal((await query).rows[0].name, "brianc");
});

Deno.test("pg-pool ending: end() finishes pending queries, also those waiting for a connection", async () => {
  // pg-pool's case runs 20 queries on max 20; on max 4, 16 of them wait for a connection when end() is called.
  const pool = facade({ maxSize: 4 });
  let completed = 0;
  const queries = Array.from(
    { length: 20 },
    () => pool.query("select $1::text as name", ["brianc"]).then(() => completed++),
  );
  await pool.end();
  assert.equal(completed, 20);
  await Promise.all(queries);
  await assert.rejects(pool.query("select 1"), PoolClosedError);
});

// ---- connection-timeout.js ---------------------------------------------------------------------------------

Deno.test("pg-pool connection-timeout: connect() to a server that never answers fails with a timeout error (callback and promise)", async () => {
  await using proxy = await startProxy({ targetPort: Number(new URL(db.url).port) });
  proxy.blackhole();
  const pool = toPgPool(new ConnectionPool({ conninfo: proxy.url(db.url), minSize: 0, maxSize: 1, timeout: 100 }));
  try {
    const { err, client } = await connectCb(pool);
    assert.ok(err instanceof PoolTimeoutError);
    assert.match(err.message, /^timeout exceeded when trying to connect/);
    assert.equal(client, undefined);
    assert.equal(pool.idleCount, 0);
    await assert.rejects(pool.connect(), (e: Error) => /timeout exceeded when trying to connect/.test(e.message));
    assert.equal(pool.idleCount, 0);
  } finally {
    await pool.pool.close({ timeout: 0 });
  }
});

Deno.test("pg-pool connection-timeout: handles multiple timeouts", async () => {
  await using proxy = await startProxy({ targetPort: Number(new URL(db.url).port) });
  proxy.blackhole();
  const pool = toPgPool(new ConnectionPool({ conninfo: proxy.url(db.url), minSize: 0, maxSize: 1, timeout: 10 }));
  try {
    const errors: unknown[] = [];
    for (let i = 0; i < 15; i++) await pool.connect().catch((e) => errors.push(e));
    assert.equal(errors.length, 15);
    assert.ok(errors.every((e) => e instanceof PoolTimeoutError));
  } finally {
    await pool.pool.close({ timeout: 0 });
  }
});

Deno.test("pg-pool connection-timeout: times out on checkout of a used connection, and later checkouts still work", async () => {
  const pool = facade({ maxSize: 1, timeout: 200 });
  try {
    const held = await connectCb(pool);
    assert.equal(held.err, undefined);
    const second = await connectCb(pool);
    assert.ok(second.err instanceof PoolTimeoutError);
    assert.match(second.err.message, /^timeout exceeded when trying to connect: /);
    assert.equal(second.client, undefined);
    const third = connectCb(pool); // waits; the release below serves it
    held.done();
    const got = await third;
    assert.equal(got.err, undefined);
    assert.equal(got.client, held.client, "the same client object again");
    got.done();
  } finally {
    await pool.end();
  }
});

Deno.test("pg-pool connection-timeout: a query times out if all clients are busy, and the pool recovers", async () => {
  const pool = facade({ maxSize: 1, timeout: 100 });
  try {
    const held = await pool.connect();
    const { err, res } = await queryCb(pool, "select now()");
    assert.ok(err instanceof PoolTimeoutError);
    assert.equal(res, undefined);
    held.release();
    const again = await queryCb(pool, "select $1::text as name", ["brianc"]);
    assert.equal(again.err, undefined);
    assert.equal(again.res?.rows.length, 1);
  } finally {
    await pool.end();
  }
});

// ---- error-handling.js -------------------------------------------------------------------------------------

Deno.test("pg-pool error-handling: completes failing queries without dying", async () => {
  const pool = facade();
  try {
    const errors = await Promise.all(
      Array.from({ length: 5 }, () => pool.query("select 'asd'+1").then(() => undefined, (e) => e)),
    );
    assert.ok(errors.every((e) => e instanceof Error && (e as { code?: string }).code === "22P02"));
  } finally {
    await pool.end();
  }
});

Deno.test("pg-pool error-handling: catches errors in client.query (query(null) rejects)", async () => {
  const pool = facade();
  try {
    await assert.rejects(pool.query(null as unknown as string));
  } finally {
    await pool.end();
  }
});

Deno.test("pg-pool error-handling: calling release more than once throws each time (promise and callback)", async () => {
  const pool = facade();
  try {
    const client = await pool.connect();
    client.release();
    assert.throws(() => client.release());
    assert.throws(() => client.release());
    const { done } = await connectCb(pool);
    done();
    assert.throws(() => done());
    assert.throws(() => done());
  } finally {
    await pool.end();
  }
});

Deno.test("pg-pool error-handling: an ended pool rejects connect() and query(), promises and callbacks", async () => {
  const pool = facade();
  await pool.end();
  await assert.rejects(pool.connect(), PoolClosedError);
  await assert.rejects(pool.query("select now()"), PoolClosedError);
  assert.ok((await queryCb(pool, "select 1")).err instanceof PoolClosedError);
  assert.ok((await connectCb(pool)).err instanceof PoolClosedError);
  // Deliberate difference: a second end() resolves (pg-pool rejects "Called end on pool more than once"),
  // as pool.close() does, so a shutdown handler and `await using` can both end it.
  await pool.end();
});

Deno.test("pg-pool error-handling: passing a function to pool.query calls back with an error", async () => {
  const pool = facade();
  try {
    const err = await new Promise<Error | undefined>((resolve) =>
      (pool.query as unknown as (cb: (err?: Error) => void) => void)((e) => resolve(e))
    );
    assert.ok(err instanceof TypeError);
    assert.match(err.message, /Passing a function as the first parameter to pool.query is not supported/);
  } finally {
    await pool.end();
  }
});

Deno.test("pg-pool error-handling: a pool with lots of errors continues to work and provide clients", async () => {
  const pool = facade({ maxSize: 1 });
  try {
    const errors: unknown[] = [];
    for (let i = 0; i < 20; i++) await pool.query("invalid sql").catch((e) => errors.push(e));
    assert.equal(errors.length, 20);
    // Deliberate difference: pg-pool closes a client after a query error (idleCount 0); the pool's return path
    // keeps a connection that is idle and healthy after an SQL error.
    assert.equal(pool.idleCount, 1);
    assert.equal(pool.pool.getStats().connectionsNum, 1);
    const res = await pool.query("select $1::text as name", ["brianc"]);
    assert.equal(res.rows[0].name, "brianc");
  } finally {
    await pool.end();
  }
});

Deno.test("pg-pool error-handling: continues with queued checkouts after connection failures", async () => {
  // A refused port: each connect() fails (after the pool's timeout, with the driver's error as cause).
  const pool = toPgPool(
    new ConnectionPool({ conninfo: withPort(db.url, closedPort()), minSize: 0, maxSize: 1, timeout: 300 }),
  );
  try {
    const [a, b] = await Promise.all([connectCb(pool), connectCb(pool)]);
    for (const { err, client } of [a, b]) {
      assert.ok(err instanceof PoolTimeoutError);
      assert.equal(client, undefined, "no client is passed to an error callback");
      assert.equal((err.cause as { code?: string } | undefined)?.code, "ECONNREFUSED");
    }
  } finally {
    await pool.end();
  }
});

Deno.test("pg-pool error-handling: handles a client failure after checkout in pool.query", async () => {
  const pool = facade({ maxSize: 1 });
  try {
    const sleeping = queryCb(pool, "select pg_sleep(30)", []);
    await waitFor(async () =>
      (await adminQuery<{ n: number }>(
        "select count(*)::int as n from pg_stat_activity where datname = $1 and query = 'select pg_sleep(30)'",
        [db.name],
      ))[0].n === 1
    );
    await adminQuery(
      "select pg_terminate_backend(pid) from pg_stat_activity where datname = $1 and query = 'select pg_sleep(30)'",
      [db.name],
    );
    const { err, res } = await sleeping;
    assert.ok(err instanceof Error);
    assert.equal(res, undefined);
    // The killed connection is gone and the next query gets a fresh one.
    assert.equal((await pool.query("select 1 as one")).rows[0].one, 1);
  } finally {
    await pool.end();
  }
});

// ---- events.js ---------------------------------------------------------------------------------------------

Deno.test("pg-pool events: emits connect before the callback, with the same client", async () => {
  const pool = facade();
  try {
    let emitted: unknown;
    pool.on("connect", (client) => emitted = client);
    const { client, done } = await connectCb(pool);
    assert.ok(client !== undefined && client === emitted);
    done();
  } finally {
    await pool.end();
  }
});

Deno.test("pg-pool events: emits acquire and release every time connect() lends a client (query() lends none)", async () => {
  const pool = facade();
  let acquired = 0;
  let released = 0;
  pool.on("acquire", (client) => {
    assert.ok(client);
    acquired++;
  });
  pool.on("release", (err, client) => {
    assert.equal(err, undefined);
    assert.ok(client);
    released++;
  });
  const work: Promise<unknown>[] = [];
  for (let i = 0; i < 10; i++) {
    work.push(connectCb(pool).then(({ done }) => done()));
    work.push(pool.query("select now()"));
  }
  await Promise.all(work);
  await pool.end();
  // Deliberate difference: pg-pool counts 20, its query() checking out a client too; the facade's query() runs
  // through pool.query() (pipelined, no client lent), so only the 10 connect() calls acquire and release.
  assert.equal(acquired, 10);
  assert.equal(released, 10);
});

Deno.test("pg-pool events: emits release with the error when a client is released with one", async () => {
  const pool = facade();
  try {
    const { client, done } = await connectCb(pool);
    const problem = new Error("problem");
    const seen = new Promise<[unknown, unknown]>((resolve) => pool.once("release", (err, c) => resolve([err, c])));
    done(problem);
    assert.deepEqual(await seen, [problem, client]);
  } finally {
    await pool.end();
  }
});

// ---- index.js ----------------------------------------------------------------------------------------------

Deno.test("pg-pool index: runs a query with a callback, with and without parameters", async () => {
  const pool = facade();
  try {
    const withValues = await queryCb(pool, "select $1::text as name", ["brianc"]);
    assert.equal(withValues.err, undefined);
    assert.equal(withValues.res?.rows[0].name, "brianc");
    const without = await queryCb(pool, "select 1 as one");
    assert.equal(without.res?.rows[0].one, 1);
  } finally {
    await pool.end();
  }
});

Deno.test("pg-pool index: never calls a callback synchronously", async () => {
  const pool = facade();
  try {
    let sync = true;
    const called = new Promise<boolean>((resolve) => pool.query("select 1", () => resolve(sync)));
    const connected = new Promise<boolean>((resolve) =>
      pool.connect((_err, _client, done) => {
        done();
        resolve(sync);
      })
    );
    const fn = new Promise<boolean>((resolve) =>
      (pool.query as unknown as (cb: () => void) => void)(() => resolve(sync))
    );
    sync = false;
    assert.deepEqual(await Promise.all([called, connected, fn]), [false, false, false]);
  } finally {
    await pool.end();
  }
});

Deno.test("pg-pool index: connects, queries and disconnects; properly pools clients", async () => {
  const pool = facade({ maxSize: 5 });
  try {
    const client = await pool.connect();
    assert.equal((await client.query("select $1::text as name", ["hi"])).rows[0].name, "hi");
    client.release();
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => pool.query("select $1::int as i", [i])));
    assert.deepEqual(results.map((r) => r.rows[0].i), Array.from({ length: 20 }, (_, i) => i));
    assert.ok(pool.totalCount <= 5, `totalCount ${pool.totalCount}`);
  } finally {
    await pool.end();
  }
});

Deno.test("pg-pool index: recovers from query errors", async () => {
  const pool = facade();
  try {
    await assert.rejects(pool.query("select foo from bar"), (e: Error) => (e as { code?: string }).code === "42P01");
    assert.equal((await pool.query("select 1 as one")).rows[0].one, 1);
  } finally {
    await pool.end();
  }
});

// ---- sizing.js ---------------------------------------------------------------------------------------------

Deno.test("pg-pool sizing: a pool of 1 lends its single client again, the same object, to the waiter", async () => {
  const pool = facade({ maxSize: 1 });
  try {
    assert.equal(pool.waitingCount, 0);
    const client = await pool.connect();
    const wait = pool.connect();
    await waitFor(() => pool.waitingCount === 1);
    client.release();
    const client2 = await wait;
    assert.equal(client2, client);
    client2.release();
  } finally {
    await pool.end();
  }
});

Deno.test("pg-pool sizing: a pool of 1 sends one query at a time", async () => {
  const pool = facade({ maxSize: 1 });
  try {
    const text = "select count(*)::int as n from pg_stat_activity where query = $1";
    const results = await Promise.all(Array.from({ length: 20 }, () => pool.query(text, [text])));
    assert.deepEqual(results.map((r) => r.rows[0].n), Array.from({ length: 20 }, () => 1));
  } finally {
    await pool.end();
  }
});

Deno.test("pg-pool sizing: removes idle clients above min and does not drop below it when released at once", async () => {
  const pool = facade({ minSize: 1, maxSize: 2, maxIdle: 200 });
  try {
    const a = await pool.connect();
    const b = await pool.connect();
    assert.equal(pool.totalCount, 2);
    a.release();
    b.release();
    await waitFor(() => pool.totalCount === 1, { message: "the idle client above min was removed" });
    // Stays at min: another maxIdle passes and the last one is still there, idle and usable.
    const since = Date.now();
    await waitFor(() => Date.now() - since > 400);
    assert.equal(pool.totalCount, 1);
    assert.equal(pool.idleCount, 1);
    assert.equal((await pool.query("select 1 as one")).rows[0].one, 1);
  } finally {
    await pool.end();
  }
});

// ---- lifetime-timeout.js -----------------------------------------------------------------------------------

Deno.test("pg-pool lifetime-timeout: a client past its lifetime counts in expiredCount and is removed when released", async () => {
  const pool = facade({ minSize: 0, maxSize: 1, maxLifetime: 200 });
  try {
    const client = await pool.connect();
    const pid = (await client.query<{ pid: number }>("select pg_backend_pid() as pid")).rows[0].pid;
    assert.equal(pool.expiredCount, 0);
    await waitFor(() => pool.expiredCount === 1, { message: "the lent client expired" });
    client.release();
    assert.equal(pool.expiredCount, 0);
    await waitFor(
      async () =>
        (await adminQuery<{ n: number }>("select count(*)::int as n from pg_stat_activity where pid = $1", [pid]))[0]
          .n === 0,
      { message: "the expired backend is closed" },
    );
  } finally {
    await pool.end();
  }
});

// ---- releasing-clients.js ----------------------------------------------------------------------------------

for (const how of ["severed", "ending"] as const) {
  Deno.test(`pg-pool releasing-clients: removes a client which is ${how} when released`, async () => {
    const pool = facade({ maxSize: 1 });
    try {
      const client = await pool.connect();
      const pid = (await client.query<{ pid: number }>("select pg_backend_pid() as pid")).rows[0].pid;
      if (how === "severed") {
        // Cut under pg's feet, as pg-pool's case does: the client errors, then it is released.
        const errored = new Promise((resolve) => client.once("error", resolve));
        (client as unknown as { connection: { end(): void } }).connection.end();
        assert.ok(await errored);
      } else {
        void client.end(); // released while still ending
      }
      client.release();
      const { rows } = await pool.query<{ pid: number }>("select pg_backend_pid() as pid");
      assert.notEqual(rows[0].pid, pid, "a fresh connection, not the broken one");
      assert.equal(pool.totalCount, 1);
      await waitFor(
        async () =>
          (await adminQuery<{ n: number }>("select count(*)::int as n from pg_stat_activity where pid = $1", [pid]))[0]
            .n === 0,
        { message: "the old backend is gone" },
      );
    } finally {
      await pool.end();
    }
  });
}
