import assert from "node:assert/strict";
import {
  ConnectionPool,
  createDenoPostgresDriver,
  type DenoPostgresClient,
  PoolError,
  PoolTimeoutError,
  SimpleConnectionPool,
  toPgPool,
} from "../../mod.ts";
import { adminQuery, backendCount, terminateBackends, waitFor, withTestDatabase } from "../_db.ts";
import { loadDenoPostgres } from "../_deno_postgres.ts";
import { server, withRole } from "../_conninfo_helpers.ts";

const dp = await loadDenoPostgres();
const ignore = typeof dp === "string";
if (typeof dp === "string") console.warn(dp);
const Client = typeof dp === "string" ? undefined! : dp.Client;

// deno-postgres's clients as the tests use them (the module itself is untyped here).
type DpClient = DenoPostgresClient & {
  queryArray(query: string, args?: unknown[]): Promise<{ rows: unknown[][] }>;
  queryObject<T = Record<string, unknown>>(query: string, args?: unknown[]): Promise<{ rows: T[] }>;
};

function test(name: string, fn: () => Promise<void>): void {
  Deno.test({ name, ignore, fn });
}

function dpPool(url: string, options: { minSize?: number; maxSize?: number; timeout?: number } = {}) {
  return new ConnectionPool<DpClient>({
    driver: createDenoPostgresDriver<DpClient>(Client, url),
    minSize: 1,
    maxSize: 2,
    ...options,
  });
}

const pidOf = async (conn: DpClient) =>
  (await conn.queryObject<{ pid: number }>("select pg_backend_pid() as pid")).rows[0].pid;

test("deno-postgres driver: borrow and return keep one backend and count stats", () =>
  withTestDatabase(async (db) => {
    const pool = dpPool(db.url, { minSize: 1, maxSize: 1 });
    try {
      await pool.open({ wait: true });
      let pid = 0;
      for (let i = 0; i < 3; i++) {
        await using conn = await pool.connection();
        const { rows } = await conn.queryObject<{ x: number }>("select $1::int as x", [i]);
        assert.deepEqual(rows, [{ x: i }]);
        if (i === 0) pid = await pidOf(conn);
        else assert.equal(await pidOf(conn), pid, "the same connection came back");
      }
      assert.deepEqual((await pool.query("select $1::text as s", ["hi"])).rows, [{ s: "hi" }]);
      const stats = pool.getStats();
      assert.equal(stats.poolSize, 1);
      assert.equal(stats.poolAvailable, 1);
      assert.equal(stats.requestsNum, 4);
      assert.equal(stats.connectionsNum, 1);
      assert.equal(stats.returnsBad, 0);
      assert.equal(await backendCount(db.name), 1);
      // The socket hooks are gone once connected.
      assert.equal(Deno.connect.name, "connect");
    } finally {
      await pool.close();
    }
  }));

test("deno-postgres driver: an open or failed transaction is rolled back on return", () =>
  withTestDatabase(async (db) => {
    const pool = dpPool(db.url, { minSize: 1, maxSize: 1 });
    try {
      await pool.query("create table t (x int)");
      let conn = await pool.getconn();
      const pid = await pidOf(conn);
      await conn.queryObject("begin");
      await conn.queryObject("insert into t values ($1)", [1]);
      await pool.putconn(conn);
      conn = await pool.getconn();
      assert.equal(await pidOf(conn), pid, "kept after the rollback");
      assert.deepEqual((await conn.queryObject("select count(*)::int as n from t")).rows, [{ n: 0 }]);
      await conn.queryObject("begin");
      await conn.queryObject("insert into t values (2)");
      await assert.rejects(conn.queryObject("select nope"));
      await pool.putconn(conn);
      conn = await pool.getconn();
      assert.equal(await pidOf(conn), pid);
      // Not left in the failed transaction: this runs.
      assert.deepEqual((await conn.queryObject("select count(*)::int as n from t")).rows, [{ n: 0 }]);
      await pool.putconn(conn);
      assert.equal(pool.getStats().returnsBad, 0);
    } finally {
      await pool.close();
    }
  }));

test("deno-postgres driver: a connection returned with a statement still running is discarded", () =>
  withTestDatabase(async (db) => {
    const pool = dpPool(db.url, { minSize: 1, maxSize: 1 });
    try {
      const conn = await pool.getconn();
      const pid = await pidOf(conn);
      const running = conn.queryObject("select pg_sleep(0.2)").catch((e) => e);
      await pool.putconn(conn);
      await running;
      assert.equal(pool.getStats().returnsBad, 1);
      await using next = await pool.connection();
      assert.notEqual(await pidOf(next), pid);
    } finally {
      await pool.close();
    }
  }));

test("deno-postgres driver: a backend killed while borrowed is discarded and replaced", () =>
  withTestDatabase(async (db) => {
    const pool = dpPool(db.url, { minSize: 1, maxSize: 1 });
    try {
      const conn = await pool.getconn();
      const pid = await pidOf(conn);
      await adminQuery("select pg_terminate_backend($1)", [pid]);
      await assert.rejects(conn.queryObject("select 1"));
      await pool.putconn(conn);
      await using next = await pool.connection();
      const newPid = await pidOf(next);
      assert.notEqual(newPid, pid);
      assert.equal(pool.getStats().returnsBad, 1);
    } finally {
      await pool.close();
    }
  }));

test("deno-postgres driver: idle backends killed by the server are replaced by a checkout check", () =>
  withTestDatabase(async (db) => {
    const pool = new ConnectionPool<DpClient>({
      driver: createDenoPostgresDriver<DpClient>(Client, db.url),
      minSize: 2,
      maxSize: 2,
      check: async (conn) => {
        await conn.queryArray("select 1");
      },
    });
    try {
      await pool.open({ wait: true });
      const pids = async () =>
        (await adminQuery<{ pid: number }>(
          "select pid from pg_stat_activity where datname = $1 and pid <> pg_backend_pid()",
          [db.name],
        )).map((r) => r.pid);
      const killed = await pids();
      assert.equal(await terminateBackends(db.name), 2);
      // The pool may already have replaced them (the driver notices idle sessions ending): wait for the old ones to go.
      await waitFor(async () => (await pids()).every((pid) => !killed.includes(pid)));
      const { rows } = await pool.query("select 42 as answer");
      assert.deepEqual(rows, [{ answer: 42 }]);
      assert.ok(pool.getStats().connectionsLost >= 1);
      await waitFor(async () => (await backendCount(db.name)) === 2, { message: "pool refilled" });
    } finally {
      await pool.close();
    }
  }));

test("deno-postgres driver: pool.transaction commits, rolls back on throw, and reports a swallowed error", () =>
  withTestDatabase(async (db) => {
    const pool = dpPool(db.url);
    try {
      await pool.query("create table t (x int primary key)");
      await pool.transaction(async (conn) => {
        await conn.queryObject("insert into t values ($1)", [1]);
      });
      await assert.rejects(
        pool.transaction(async (conn) => {
          await conn.queryObject("insert into t values ($1)", [2]);
          throw new Error("boom");
        }),
        /boom/,
      );
      await assert.rejects(
        pool.transaction(async (conn) => {
          await conn.queryObject("insert into t values ($1)", [3]);
          await conn.queryObject("insert into t values ($1)", [1]).catch(() => {}); // duplicate key, swallowed
        }),
        PoolError,
      );
      assert.deepEqual((await pool.query("select x from t order by x")).rows, [{ x: 1 }]);
      // The SQLSTATE reaches the pool as `code` (retries read it).
      await assert.rejects(pool.query("insert into t values (1)"), (e: { code?: string }) => e.code === "23505");
    } finally {
      await pool.close();
    }
  }));

test("deno-postgres driver: waiters time out with PoolTimeoutError and the pool never exceeds maxSize", () =>
  withTestDatabase(async (db) => {
    const pool = dpPool(db.url, { minSize: 1, maxSize: 3, timeout: 20_000 });
    try {
      const results = await Promise.all(
        Array.from({ length: 60 }, (_, i) => pool.query("select $1::int as n, pg_sleep(0.005)", [i])),
      );
      assert.deepEqual(results.map((r) => r.rows[0].n), Array.from({ length: 60 }, (_, i) => i));
      assert.ok(pool.getStats().poolSize <= 3);
      const held = await Promise.all([pool.getconn(), pool.getconn(), pool.getconn()]);
      await assert.rejects(pool.getconn({ timeout: 100 }), PoolTimeoutError);
      for (const c of held) await pool.putconn(c);
      assert.ok((await backendCount(db.name)) <= 3);
    } finally {
      await pool.close();
    }
  }));

test("deno-postgres driver works with the classic pools", () =>
  withTestDatabase(async (db) => {
    const pool = new SimpleConnectionPool<DpClient>(1, 2, {
      driver: createDenoPostgresDriver<DpClient>(Client, db.url),
    });
    try {
      const conn = await pool.getconn();
      await conn.queryObject("begin");
      await conn.queryObject("create table t (x int)");
      await pool.putconn(conn);
      const again = await pool.getconn();
      // The open transaction was rolled back: the table never existed.
      await assert.rejects(again.queryObject("select * from t"), /does not exist/);
      await pool.putconn(again);
    } finally {
      await pool.closeall();
    }
  }));

test("deno-postgres driver: sockets use TCP no-delay (no delayed-ACK stall per statement)", () =>
  withTestDatabase(async (db) => {
    const pool = dpPool(db.url, { minSize: 1, maxSize: 1 });
    try {
      await using conn = await pool.connection();
      // deno-postgres's own socket stalls ~40 ms per parameterised query (~25/s):
      // 200 of them would take ~8 s. With no-delay they take well under a second.
      const start = performance.now();
      for (let i = 0; i < 200; i++) await conn.queryObject("select $1::int", [i]);
      const ms = performance.now() - start;
      assert.ok(ms < 4_000, `200 parameterised queries took ${Math.round(ms)} ms`);
    } finally {
      await pool.close();
    }
  }));

test("deno-postgres driver: bad arguments and failed connections give clear errors without the password", async () => {
  assert.throws(() => createDenoPostgresDriver(undefined as never, "postgres://u@h/db"), TypeError);
  assert.throws(() => createDenoPostgresDriver(Client, 42 as never), /'conninfo'/);
  const secret = "s3cr%t pw";
  const url = new URL(Deno.env.get("DATABASE_URL")!);
  url.password = encodeURIComponent(secret);
  url.pathname = "/tp_does_not_exist";
  const driver = createDenoPostgresDriver(Client, url.toString(), { connectTimeout: 5_000 });
  assert.ok(!driver.description.includes("s3cr"));
  const error = await driver.connect(new AbortController().signal).then(() => undefined, (e) => e as Error);
  assert.ok(error instanceof Error, "connecting to a missing database fails");
  assert.ok(!`${error.message}\n${error.stack}`.includes("s3cr"), error.message);
  // An aborted attempt settles and leaves no socket (the sanitizers check).
  const ac = new AbortController();
  ac.abort(new Error("stop"));
  await assert.rejects(driver.connect(ac.signal), /stop/);
});

test("deno-postgres driver: a URL whose password has an unencoded # / ? connects, and a wrong one fails without leaking it", () =>
  withTestDatabase(async (db) => {
    const password = "Sup3r#Se/cr?et";
    await withRole(password, async (user) => {
      const { host, port } = server();
      const pool = new ConnectionPool<DpClient>({
        driver: createDenoPostgresDriver<DpClient>(Client, `postgres://${user}:${password}@${host}:${port}/${db.name}`),
        minSize: 0,
        maxSize: 1,
        timeout: 10_000,
      });
      try {
        assert.deepEqual((await pool.query("select current_user as u")).rows, [{ u: user }]);
      } finally {
        await pool.close();
      }
      const wrong = createDenoPostgresDriver<DpClient>(
        Client,
        `postgres://${user}:Sup3r#Wrong@${host}:${port}/${db.name}`,
        { connectTimeout: 10_000 },
      );
      assert.ok(!wrong.description.includes("Sup3r"), wrong.description);
      const error = await wrong.connect(new AbortController().signal).then(() => undefined, (e) => e as Error);
      assert.ok(error instanceof Error, "a wrong password fails");
      const dump = Deno.inspect(error, { depth: 10 });
      assert.ok(!dump.includes("Sup3r") && !dump.includes("Wrong"), dump);
    });
    // Neither tidepool nor deno-postgres can read this one: refused at once, not echoed.
    assert.throws(
      () => createDenoPostgresDriver(Client, "postgres://app:Sup3r#x@[bad/db"),
      (e: Error) => e instanceof TypeError && /'conninfo'/.test(e.message) && !e.message.includes("Sup3r"),
    );
  }));

test("deno-postgres driver: a connection attempt to a server that never answers stops at connectTimeout", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const accepted: Deno.Conn[] = [];
  const accepting = (async () => {
    for await (const conn of listener) accepted.push(conn); // accept, never answer
  })();
  try {
    const port = (listener.addr as Deno.NetAddr).port;
    const driver = createDenoPostgresDriver(Client, `postgres://u:pw@127.0.0.1:${port}/db`, { connectTimeout: 300 });
    const start = performance.now();
    await assert.rejects(driver.connect(new AbortController().signal), /timed out/);
    assert.ok(performance.now() - start < 5_000);
    // An abort mid-attempt settles too.
    const ac = new AbortController();
    const attempt = driver.connect(ac.signal);
    await waitFor(() => accepted.length === 2);
    ac.abort(new Error("pool closing"));
    await assert.rejects(attempt, /pool closing/);
  } finally {
    listener.close();
    await accepting.catch(() => {});
    for (const c of accepted) c.close();
  }
});

test("deno-postgres driver: a connection returned with a deno-postgres Transaction still open is discarded", () =>
  withTestDatabase(async (db) => {
    const pool = dpPool(db.url, { minSize: 1, maxSize: 1 });
    try {
      await pool.query("create table t (x int)");
      const conn = (await pool.getconn()) as unknown as DpClient & {
        createTransaction(name: string): { begin(): Promise<void>; queryArray(q: string): Promise<unknown> };
      };
      const pid = await pidOf(conn);
      const tx = conn.createTransaction("left_open");
      await tx.begin();
      await tx.queryArray("insert into t values (1)");
      // deno-postgres now refuses plain queries on this client until the Transaction ends: unusable, so discarded.
      await pool.putconn(conn);
      await using next = await pool.connection();
      assert.notEqual(await pidOf(next), pid);
      assert.deepEqual((await next.queryObject("select count(*)::int as n from t")).rows, [{ n: 0 }]);
    } finally {
      await pool.close();
    }
  }));

test("toPgPool over a deno-postgres pool refuses to lend with a TypeError and keeps the connection", () =>
  withTestDatabase(async (db) => {
    const pool = dpPool(db.url, { minSize: 1, maxSize: 1 });
    try {
      const pgPool = toPgPool(pool as unknown as ConnectionPool);
      await assert.rejects(
        pgPool.connect(),
        (e: Error) => e instanceof TypeError && /node-postgres driver/.test(e.message),
      );
      const stats = pool.getStats();
      assert.equal(stats.poolAvailable, stats.poolSize, "the connection went back");
    } finally {
      await pool.close();
    }
  }));
