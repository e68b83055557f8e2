import assert from "node:assert/strict";
import pg from "pg";
import {
  ConnectionPool,
  NullConnectionPool,
  PoolError,
  PoolTimeoutError,
  SimpleConnectionPool,
  toPgPool,
} from "../../mod.ts";
import { backendCount, waitFor, withTestDatabase } from "../_db.ts";
import { backendPid } from "../_pool_helpers.ts";

Deno.test("toPgPool rejects anything that is not a tidepool ConnectionPool with a TypeError", () => {
  const notPools: unknown[] = [
    undefined,
    null,
    42,
    {},
    { connect() {}, query() {} },
    new pg.Pool({ connectionString: "postgres://u@localhost/db" }),
    new SimpleConnectionPool(0, 1, "postgres://u@localhost/db"),
  ];
  for (const value of notPools) {
    assert.throws(() => toPgPool(value as ConnectionPool), (e: unknown) => {
      assert.ok(e instanceof TypeError, `not a TypeError for ${String(value)}`);
      assert.match((e as Error).message, /'pool'/);
      return true;
    });
  }
});

Deno.test("toPgPool gives one facade per pool, whose class name ends in Pool", async () => {
  const pool = new ConnectionPool({ conninfo: "postgres://u@localhost/db", minSize: 0, maxSize: 1 });
  const facade = toPgPool(pool);
  assert.equal(toPgPool(pool), facade);
  // Drizzle's test for "give each transaction its own connection".
  assert.ok(Object.getPrototypeOf(facade).constructor.name.endsWith("Pool"));
  assert.deepEqual(facade.options, {
    max: 1,
    min: 0,
    connectionTimeoutMillis: 30_000,
    name: pool.name,
    idleTimeoutMillis: 600_000,
    maxLifetimeSeconds: 3_600,
    allowExitOnIdle: false,
    maxUses: Infinity,
  });
  assert.equal(facade.pool, pool);
  await pool.close();
  assert.equal(facade.ended, true);
});

Deno.test("PgPool connect/release lends the pool's connections and keeps its counts", () =>
  withTestDatabase(async (db) => {
    const pool = new ConnectionPool({ conninfo: db.url, minSize: 1, maxSize: 2 });
    const pgPool = toPgPool(pool);
    const events: string[] = [];
    for (const name of ["connect", "acquire", "release", "remove"]) pgPool.on(name, () => events.push(name));
    try {
      await pool.open({ wait: true });
      const a = await pgPool.connect();
      const b = await pgPool.connect();
      assert.equal(pgPool.totalCount, 2);
      assert.equal(pgPool.idleCount, 0);
      const third = pgPool.connect();
      await waitFor(() => pgPool.waitingCount === 1);
      const pidA = await backendPid(a);
      a.release();
      const c = await third;
      assert.equal(await backendPid(c), pidA, "the waiter got the released connection");
      b.release();
      c.release();
      assert.equal(pgPool.idleCount, 2);
      assert.deepEqual(events, [
        "connect",
        "acquire",
        "connect",
        "acquire",
        "release",
        "acquire",
        "release",
        "release",
      ]);
      assert.equal(pool.getStats().requestsNum, 3);
    } finally {
      await pgPool.end();
    }
  }));

Deno.test("PgPool client released twice throws PoolError and is not returned twice", () =>
  withTestDatabase(async (db) => {
    const pool = new ConnectionPool({ conninfo: db.url, minSize: 1, maxSize: 2 });
    const pgPool = toPgPool(pool);
    try {
      const client = await pgPool.connect();
      client.release();
      assert.throws(() => client.release(), PoolError);
      assert.throws(() => client.release(new Error("boom")), PoolError);
      // Had it gone back twice, two borrowers would now share it.
      const x = await pgPool.connect();
      const y = await pgPool.connect();
      assert.notEqual(x, y);
      assert.equal(pgPool.totalCount, 2);
      x.release();
      y.release();
      assert.equal(pgPool.idleCount, 2);
    } finally {
      await pgPool.end();
    }
  }));

Deno.test("PgPool: a stale release() kept past its lease does not return the next borrower's connection", () =>
  withTestDatabase(async (db) => {
    const pool = new ConnectionPool({ conninfo: db.url, minSize: 1, maxSize: 1, timeout: 300 });
    const pgPool = toPgPool(pool);
    try {
      const a = await pgPool.connect();
      const pidA = await backendPid(a);
      const releaseA = a.release;
      releaseA();
      let b = await pgPool.connect();
      assert.equal(await backendPid(b), pidA, "b was lent the same pg.Client");
      assert.equal(a, b, "one client object per connection, as pg.Pool lends it");
      assert.notEqual(b.release, releaseA, "each checkout gets its own release");
      assert.throws(() => releaseA(), PoolError);
      // The callback form's done() is bound to its own checkout too.
      b.release();
      const staleDone = await new Promise<(err?: Error) => void>((resolve, reject) =>
        pgPool.connect((err, _client, done) => err ? reject(err) : resolve(done))
      );
      staleDone();
      b = await pgPool.connect();
      assert.throws(() => staleDone(), PoolError);
      // b still holds the only connection: a third borrower must wait, not share it.
      await assert.rejects(pgPool.connect(), PoolTimeoutError);
      assert.equal(await backendPid(b), pidA, "b's lease still works");
      b.release();
      const c = await pgPool.connect();
      assert.equal(await backendPid(c), pidA);
      c.release();
      assert.equal(pgPool.idleCount, 1);
    } finally {
      await pgPool.end();
    }
  }));

Deno.test("PgPool release(err) and release(true) close the connection and the pool replaces it; release(false) keeps it", () =>
  withTestDatabase(async (db) => {
    const pool = new ConnectionPool({ conninfo: db.url, minSize: 1, maxSize: 1 });
    const pgPool = toPgPool(pool);
    const removed: unknown[] = [];
    pgPool.on("remove", (client) => removed.push(client));
    try {
      let client = await pgPool.connect();
      const first = await backendPid(client);
      client.release(false);
      client = await pgPool.connect();
      assert.equal(await backendPid(client), first, "release(false) kept the connection");
      client.release(new Error("the app no longer trusts this session"));
      assert.deepEqual(removed, [client]);
      client = await pgPool.connect();
      const second = await backendPid(client);
      assert.notEqual(second, first, "release(err) closed the connection");
      client.release(true);
      client = await pgPool.connect();
      assert.notEqual(await backendPid(client), second, "release(true) closed the connection");
      client.release();
      // The closed sessions are gone from the server, and the pool holds its one.
      await waitFor(async () => (await backendCount(db.name)) === 1);
      assert.equal(removed.length, 2);
      assert.equal(pool.getStats().returnsBad, 0);
    } finally {
      await pgPool.end();
    }
  }));

Deno.test("PgPool: a client released inside a transaction is rolled back by the pool", () =>
  withTestDatabase(async (db) => {
    const pool = new ConnectionPool({ conninfo: db.url, minSize: 1, maxSize: 1 });
    const pgPool = toPgPool(pool);
    try {
      await pgPool.query("create table t (x int)");
      const client = await pgPool.connect();
      await client.query("begin");
      await client.query("insert into t values (1)");
      client.release();
      const { rows } = await pgPool.query("select count(*)::int as n from t");
      assert.deepEqual(rows, [{ n: 0 }]);
      assert.equal(pgPool.totalCount, 1);
    } finally {
      await pgPool.end();
    }
  }));

Deno.test("PgPool.query takes text, values, query configs (rowMode, types) and callbacks", () =>
  withTestDatabase(async (db) => {
    const pool = new ConnectionPool({ conninfo: db.url, minSize: 1, maxSize: 1 });
    const pgPool = toPgPool(pool);
    try {
      assert.deepEqual((await pgPool.query("select $1::int as x", [7])).rows, [{ x: 7 }]);
      const config: pg.QueryConfig = {
        text: "select $1::int as x, 'b'::text as y",
        values: [1],
        rowMode: "array",
        types: { getTypeParser: () => (v: string) => `<${v}>` },
      } as pg.QueryConfig;
      assert.deepEqual((await pgPool.query(config)).rows, [["<1>", "<b>"]]);
      const viaCallback = await new Promise<unknown>((resolve, reject) =>
        pgPool.query("select $1::text as s", ["cb"], (err, res) => err ? reject(err) : resolve(res?.rows))
      );
      assert.deepEqual(viaCallback, [{ s: "cb" }]);
      const noValues = await new Promise<unknown>((resolve, reject) =>
        pgPool.query("select 2 as n", (err, res) => err ? reject(err) : resolve(res?.rows))
      );
      assert.deepEqual(noValues, [{ n: 2 }]);
      const sqlError = await new Promise<Error | undefined>((resolve) =>
        pgPool.query("select nope", (err) => resolve(err))
      );
      assert.equal((sqlError as { code?: string }).code, "42703");
      // An SQL error does not cost the connection (pg-pool would close it).
      assert.equal(pool.getStats().connectionsNum, 1);
      await assert.rejects(
        pgPool.query({ text: "select 1", submit() {} } as unknown as pg.QueryConfig),
        (e: Error) => e instanceof TypeError && /Submittable/.test(e.message),
      );
      const viaConnect = await new Promise<number>((resolve, reject) =>
        pgPool.connect((err, client, done) => {
          if (err || !client) return reject(err);
          client.query("select 3 as n").then((r: pg.QueryResult) => {
            done();
            resolve(r.rows[0].n);
          }, reject);
        })
      );
      assert.equal(viaConnect, 3);
      assert.equal(pgPool.idleCount, 1);
    } finally {
      await new Promise<void>((resolve, reject) => pgPool.end((err) => err ? reject(err) : resolve()));
    }
  }));

Deno.test("PgPool.connect keeps the pool's timeout and closed errors", () =>
  withTestDatabase(async (db) => {
    const pool = new ConnectionPool({ conninfo: db.url, minSize: 1, maxSize: 1, timeout: 200 });
    const pgPool = toPgPool(pool);
    // Opened first: under load, opening the one connection may itself take longer than 200 ms.
    await pool.open({ wait: true, timeout: 15_000 });
    const held = await pgPool.connect();
    await assert.rejects(pgPool.connect(), PoolTimeoutError);
    const failed = await new Promise<Error | undefined>((resolve) => pgPool.connect((err) => resolve(err)));
    assert.ok(failed instanceof PoolTimeoutError);
    held.release();
    await pgPool.end();
    await assert.rejects(pgPool.connect(), PoolError);
  }));

Deno.test("toPgPool over a NullConnectionPool closes each connection on release", () =>
  withTestDatabase(async (db) => {
    const pool = new NullConnectionPool({ conninfo: db.url, maxSize: 2 });
    const pgPool = toPgPool(pool);
    try {
      const client = await pgPool.connect();
      const pid = await backendPid(client);
      client.release();
      const again = await pgPool.connect();
      assert.notEqual(await backendPid(again), pid);
      again.release();
      await waitFor(() => pgPool.totalCount === 0);
      assert.deepEqual((await pgPool.query("select 1 as one")).rows, [{ one: 1 }]);
    } finally {
      await pgPool.end();
    }
  }));

Deno.test("putconn(conn, { discard: true }) closes the connection, the pool refills, and a second return is refused", () =>
  withTestDatabase(async (db) => {
    const pool = new ConnectionPool({ conninfo: db.url, minSize: 2, maxSize: 2 });
    try {
      await pool.open({ wait: true });
      const conn = await pool.getconn();
      const pid = await backendPid(conn);
      await conn.query("begin");
      await pool.putconn(conn, { discard: true });
      await assert.rejects(pool.putconn(conn), PoolError);
      await assert.rejects(pool.putconn(conn, { discard: true }), PoolError);
      await waitFor(() => pool.getStats().poolSize === 2 && pool.getStats().poolAvailable === 2);
      await waitFor(async () => {
        const { rows } = await pool.query("select count(*)::int as n from pg_stat_activity where pid = $1", [pid]);
        return (rows[0] as { n: number }).n === 0;
      }, { message: "the discarded backend is gone" });
      const stats = pool.getStats();
      assert.equal(stats.returnsBad, 0);
      assert.equal(stats.connectionsNum, 3);
    } finally {
      await pool.close();
    }
  }));
