/**
 * `conninfo` as a function: called for every new connection; a function that
 * throws, returns garbage or never settles is a connection error within
 * `connectTimeout`, counted in stats, logged without secrets.
 */
import assert from "node:assert/strict";
import type pg from "pg";
import { ConnectionPool, NullConnectionPool, PoolError, PoolTimeoutError } from "../../mod.ts";
import { adminQuery, createTestDatabase, type TestDatabase, waitFor } from "../_db.ts";
import { captureLogs, closedPort, timed } from "../_pool_helpers.ts";
import { assertNoSecret, surfaces } from "../_conninfo_helpers.ts";

let db: TestDatabase;
Deno.test.beforeAll(async () => {
  db = await createTestDatabase();
});
Deno.test.afterAll(async () => {
  await db.drop();
});

const FAST = { initialDelay: 50, multiplier: 1, jitter: 0 };

Deno.test("a conninfo function (sync or async, string or pg.ClientConfig) is called for every new connection", async () => {
  const url = new URL(db.url);
  const sources: [string, () => string | pg.ClientConfig | Promise<string | pg.ClientConfig>][] = [
    ["sync string", () => db.url],
    ["async string", async () => await Promise.resolve(db.url)],
    ["async pg.ClientConfig", () =>
      Promise.resolve({
        host: url.hostname,
        port: Number(url.port),
        user: decodeURIComponent(url.username),
        password: decodeURIComponent(url.password),
        database: db.name,
      })],
  ];
  for (const [what, source] of sources) {
    let calls = 0;
    await using pool = new ConnectionPool({
      conninfo: () => {
        calls++;
        return source();
      },
      minSize: 3,
    });
    await pool.open({ wait: true, timeout: 5_000 });
    assert.equal(calls, 3, what);
    const { rows } = await pool.query<{ d: string }>("select current_database() as d");
    assert.equal(rows[0].d, db.name, what);
    assert.ok(!JSON.stringify(pool).includes(decodeURIComponent(url.password)), what);
  }
});

Deno.test("a conninfo function that throws is a connection error: counted, retried, logged without its message", async () => {
  await using logs = await captureLogs();
  let fail = true;
  await using pool = new ConnectionPool({
    conninfo: () => {
      if (fail) throw new Error("token s3cr3t-token expired");
      return db.url;
    },
    minSize: 1,
    timeout: 300,
    backoff: FAST,
  });
  const { error } = await timed(() => pool.getconn());
  assert.ok(error instanceof PoolTimeoutError, `expected PoolTimeoutError, got ${error}`);
  assert.ok(error.cause instanceof PoolError);
  assert.match((error.cause as Error).message, /conninfo function threw Error/);
  assert.equal(((error.cause as Error).cause as Error).name, "Error", "the cause keeps the function error's name");
  assert.ok(pool.getStats().connectionsErrors >= 1);
  assert.ok(logs.messages().some((m) => m.includes("conninfo function threw")), "logged");
  assert.ok(!logs.messages().some((m) => m.includes("s3cr3t")), "no secret in the logs");
  fail = false;
  await waitFor(() => pool.getStats().poolAvailable === 1, { message: "heals when the function works again" });
});

Deno.test("the text of a conninfo function's error (message, stack, causes) is in no pool error, cause chain, inspect or log; its name and code are", async () => {
  const secretError = () =>
    Object.assign(new TypeError("vault said: token s.SECRET123 expired", { cause: new Error("s.SECRET123") }), {
      code: "EVAULT",
    });
  for (
    const make of [
      () => new ConnectionPool({ conninfo: () => Promise.reject(secretError()), minSize: 0, maxSize: 1, timeout: 300 }),
      () => new NullConnectionPool({ conninfo: () => Promise.reject(secretError()), maxSize: 1, timeout: 300 }),
    ]
  ) {
    await using logs = await captureLogs();
    await using pool = make();
    const { error } = await timed(() => pool.getconn());
    const where = `${pool.constructor.name}: ${error}`;
    assert.ok(error instanceof PoolError, where);
    assert.match((error as Error).message, /conninfo function threw TypeError \(EVAULT\)/, where);
    let inner: unknown = error;
    while ((inner as Error).cause !== undefined) inner = (inner as Error).cause;
    assert.equal((inner as Error).name, "TypeError", where);
    assert.equal((inner as { code?: string }).code, "EVAULT", where);
    const logText = [...logs.messages(), ...logs.records.map((r) => Deno.inspect(r.properties, { depth: 10 }))];
    assertNoSecret(surfaces(pool, error, logText), "SECRET123", where);
  }
});

Deno.test("a conninfo function returning a host list: toJSON().hosts names the host used, and a host that stops fitting drops every connection to it", async () => {
  const url = new URL(db.url);
  const live = `${url.hostname}:${url.port}`;
  // A first host that refuses, then the test server; read-write, so a read-only report means "stops fitting".
  const list = db.url.replace(`@${live}/`, `@127.0.0.1:${closedPort()},${live}/`);
  assert.notEqual(list, db.url);
  const conninfo = `${list}${list.includes("?") ? "&" : "?"}target_session_attrs=read-write`;
  await using pool = new ConnectionPool({
    conninfo: () => conninfo,
    minSize: 3,
    timeout: 5_000,
    backoff: FAST,
  });
  await pool.open({ wait: true, timeout: 5_000 });
  assert.deepEqual(JSON.parse(JSON.stringify(pool)).hosts, { [live]: 3 }, "toJSON names the host of each connection");
  const conns = await Promise.all([pool.getconn(), pool.getconn(), pool.getconn()]);
  const pids: number[] = [];
  for (const conn of conns) pids.push((await conn.query("select pg_backend_pid() as pid")).rows[0].pid);
  // The database stops taking writes for new sessions (as on a demoted primary), and one session sees it: its
  // report (ParameterStatus) alone could be its own SET, so the driver asks a fresh session, which confirms.
  await adminQuery(`alter database ${db.name} set default_transaction_read_only = on`);
  await conns[0].query("set default_transaction_read_only = on");
  for (const conn of conns) await pool.putconn(conn);
  await waitFor(async () => {
    const [row] = await adminQuery<{ n: number }>(
      "select count(*)::int as n from pg_stat_activity where pid = any($1::int[])",
      [pids],
    );
    return row.n === 0;
  }, { timeout: 5_000, message: "every connection opened for the host was dropped, not only the one that reported" });
  await adminQuery(`alter database ${db.name} reset default_transaction_read_only`);
  await pool.wait({ timeout: 5_000 });
  assert.equal((await pool.query("select 1 as x")).rows[0].x, 1, "the pool refills on the host, which fits again");
});

Deno.test("a conninfo function that returns garbage is a connection error naming the type, never the value", async () => {
  for (const garbage of [42, null, "", ["postgres://x"], undefined]) {
    await using logs = await captureLogs();
    await using pool = new ConnectionPool({
      conninfo: () => garbage as never,
      minSize: 1,
      timeout: 200,
      backoff: FAST,
    });
    const { error } = await timed(() => pool.getconn());
    assert.ok(error instanceof PoolTimeoutError, `${garbage}: ${error}`);
    assert.match((error.cause as Error).message, /conninfo function returned .*, expected a connection string/);
    assert.ok(pool.getStats().connectionsErrors >= 1);
    assert.ok(logs.messages().some((m) => m.includes("conninfo function returned")));
  }
});

Deno.test("a conninfo function that never settles fails the attempt at connectTimeout", async () => {
  await using logs = await captureLogs();
  let calls = 0;
  await using pool = new ConnectionPool({
    conninfo: () => {
      calls++;
      return new Promise<string>(() => {});
    },
    minSize: 1,
    connectTimeout: 200,
    timeout: 2_000,
    backoff: { initialDelay: 5_000, multiplier: 1, jitter: 0 },
  });
  void pool.open();
  const started = performance.now();
  await waitFor(() => pool.getStats().connectionsErrors === 1, { timeout: 3_000 });
  const ms = performance.now() - started;
  assert.ok(ms >= 150 && ms < 1_500, `failed after ${Math.round(ms)} ms`);
  assert.equal(calls, 1);
  assert.ok(logs.messages().some((m) => /did not settle in 200 ms/.test(m)));
});
