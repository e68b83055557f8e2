import assert from "node:assert/strict";
import pg from "pg";
import { PoolClosedError, PoolError, PoolExhaustedError, SimpleConnectionPool } from "../../mod.ts";
import { adminQuery, backendCount, waitFor, withTestDatabase } from "../_db.ts";

async function backendPid(conn: pg.Client): Promise<number> {
  const { rows } = await conn.query("select pg_backend_pid() as pid");
  return rows[0].pid;
}

async function backendAlive(pid: number): Promise<boolean> {
  const rows = await adminQuery("select 1 from pg_stat_activity where pid = $1", [pid]);
  return rows.length > 0;
}

Deno.test("constructor rejects bad minconn/maxconn/conninfo with errors naming the parameter", () => {
  const url = "postgres://u@localhost/db";
  assert.throws(() => new SimpleConnectionPool(-1, 5, url), { name: "RangeError", message: /'minconn'/ });
  assert.throws(() => new SimpleConnectionPool(1.5, 5, url), { name: "RangeError", message: /'minconn'/ });
  assert.throws(() => new SimpleConnectionPool(0, 0, url), { name: "RangeError", message: /'maxconn'/ });
  assert.throws(() => new SimpleConnectionPool(3, 2, url), { name: "RangeError", message: /'maxconn'.*minconn 3/ });
  assert.throws(() => new SimpleConnectionPool(1, Infinity, url), { name: "RangeError", message: /'maxconn'/ });
  // deno-lint-ignore no-explicit-any
  const loose = SimpleConnectionPool as any;
  assert.throws(() => new loose("1", 5, url), { name: "TypeError", message: /'minconn'/ });
  assert.throws(() => new loose(1, undefined, url), { name: "TypeError", message: /'maxconn'/ });
  assert.throws(() => new loose(1, 5), { name: "TypeError", message: /'conninfo'/ });
  assert.throws(() => new loose(1, 5, 42), { name: "TypeError", message: /'conninfo'/ });
  assert.throws(() => new loose(1, 5, { conninfo: url, bogus: 1 }), { name: "TypeError", message: /'bogus'/ });
  const pool = new SimpleConnectionPool(2, 7, url);
  assert.equal(pool.minconn, 2);
  assert.equal(pool.maxconn, 7);
  assert.equal(pool.closed, false);
});

Deno.test("Deno.inspect and JSON of a pool never show the password", () => {
  const pool = new SimpleConnectionPool(1, 2, "postgres://app:s3cr3t-pw@localhost/db");
  assert.doesNotMatch(Deno.inspect(pool), /s3cr3t-pw/);
  assert.doesNotMatch(JSON.stringify(pool), /s3cr3t-pw/);
  assert.match(Deno.inspect(pool), /SimpleConnectionPool/);
});

Deno.test("open() creates minconn connections", () =>
  withTestDatabase(async (db) => {
    const pool = new SimpleConnectionPool(3, 10, db.url);
    try {
      assert.equal(await backendCount(db.name), 0, "constructor does no I/O");
      await pool.open();
      assert.equal(await backendCount(db.name), 3);
      await pool.open(); // already open: no more connections
      assert.equal(await backendCount(db.name), 3);
    } finally {
      await pool.closeall();
    }
  }));

Deno.test("the first getconn() opens minconn connections when open() was not called", () =>
  withTestDatabase(async (db) => {
    const pool = new SimpleConnectionPool(2, 10, db.url);
    try {
      const conn = await pool.getconn();
      assert.equal(await backendCount(db.name), 2, "one lent + one idle");
      await pool.putconn(conn);
    } finally {
      await pool.closeall();
    }
  }));

Deno.test("getconn(key) returns the same connection for the same key until putconn", () =>
  withTestDatabase(async (db) => {
    const pool = new SimpleConnectionPool(0, 5, db.url);
    try {
      const a = await pool.getconn("a");
      assert.equal(await pool.getconn("a"), a);
      const [a2, a3] = await Promise.all([pool.getconn("a"), pool.getconn("a")]);
      assert.equal(a2, a);
      assert.equal(a3, a);
      const b = await pool.getconn("b");
      assert.notEqual(b, a);
      const c = await pool.getconn(); // a fresh key each time without one
      const d = await pool.getconn();
      assert.notEqual(c, d);
      assert.equal(await backendCount(db.name), 4);
      await pool.putconn(a, "a");
      await pool.putconn(b); // key looked up
      await pool.putconn(c);
      await pool.putconn(d);
    } finally {
      await pool.closeall();
    }
  }));

Deno.test("concurrent first getconn(key) calls for a new key share one connection attempt", () =>
  withTestDatabase(async (db) => {
    const pool = new SimpleConnectionPool(0, 5, db.url);
    try {
      await pool.open();
      const [a, b] = await Promise.all([pool.getconn("k"), pool.getconn("k")]);
      assert.equal(a, b);
      assert.equal(await backendCount(db.name), 1);
      await pool.putconn(a, "k");
    } finally {
      await pool.closeall();
    }
  }));

Deno.test("getconn() throws PoolExhaustedError at once when maxconn connections are in use", () =>
  withTestDatabase(async (db) => {
    const pool = new SimpleConnectionPool(1, 2, db.url);
    try {
      const a = await pool.getconn("a");
      const b = await pool.getconn("b");
      const started = performance.now();
      const error = await pool.getconn("c").then(() => undefined, (e) => e);
      const elapsed = performance.now() - started;
      assert.ok(error instanceof PoolExhaustedError, `got ${error}`);
      assert.ok(error instanceof PoolError);
      assert.equal(error.message, "connection pool exhausted");
      assert.ok(elapsed < 50, `rejected after ${elapsed.toFixed(1)} ms`);
      // A key already bound still gets its connection.
      assert.equal(await pool.getconn("a"), a);
      // Once one is back, the next getconn succeeds.
      await pool.putconn(b, "b");
      const c = await pool.getconn("c");
      assert.equal(await backendCount(db.name), 2);
      await pool.putconn(a);
      await pool.putconn(c);
    } finally {
      await pool.closeall();
    }
  }));

Deno.test("concurrent getconn() calls that each need a new connection never exceed maxconn", () =>
  withTestDatabase(async (db) => {
    const pool = new SimpleConnectionPool(0, 3, db.url);
    try {
      await pool.open();
      const results = await Promise.allSettled(Array.from({ length: 10 }, () => pool.getconn()));
      const got = results.filter((r) => r.status === "fulfilled").map((r) => r.value);
      const refused = results.filter((r) => r.status === "rejected").map((r) => r.reason);
      assert.equal(got.length, 3);
      assert.equal(refused.length, 7);
      for (const e of refused) assert.ok(e instanceof PoolExhaustedError, `got ${e}`);
      assert.equal(new Set(got).size, 3);
      assert.equal(await backendCount(db.name), 3);
      for (const conn of got) await pool.putconn(conn);
    } finally {
      await pool.closeall();
    }
  }));

Deno.test("putconn() keeps only minconn connections idle and closes the rest", () =>
  withTestDatabase(async (db) => {
    const pool = new SimpleConnectionPool(1, 4, db.url);
    try {
      const conns = await Promise.all([pool.getconn(), pool.getconn(), pool.getconn(), pool.getconn()]);
      assert.equal(await backendCount(db.name), 4);
      const pids = await Promise.all(conns.map(backendPid));
      for (const conn of conns) await pool.putconn(conn);
      await waitFor(async () => (await backendCount(db.name)) === 1, { message: "1 idle connection left" });
      // The kept one is the one lent next.
      const again = await pool.getconn();
      assert.ok(pids.includes(await backendPid(again)));
      assert.equal(await backendCount(db.name), 1);
      await pool.putconn(again);
    } finally {
      await pool.closeall();
    }
  }));

Deno.test("putconn() rolls back an open transaction: its writes are not visible afterwards", () =>
  withTestDatabase(async (db) => {
    const pool = new SimpleConnectionPool(1, 2, db.url);
    try {
      const setup = await pool.getconn();
      await setup.query("create table items (id int)");
      await pool.putconn(setup);

      const conn = await pool.getconn();
      await conn.query("begin");
      await conn.query("insert into items values (1)");
      assert.equal(conn.getTransactionStatus(), "T");
      await pool.putconn(conn);
      assert.equal(conn.getTransactionStatus(), "I", "rolled back on return");

      const [{ n }] = await adminQuery<{ n: number }>(
        "select count(*)::int as n from pg_stat_activity where datname = $1 and state like 'idle in transaction%'",
        [db.name],
      );
      assert.equal(n, 0);
      const reader = new pg.Client({ connectionString: db.url });
      await reader.connect();
      try {
        const { rows } = await reader.query("select count(*)::int as n from items");
        assert.equal(rows[0].n, 0);
      } finally {
        await reader.end();
      }
      // The connection was kept (minconn 1) and is usable.
      const again = await pool.getconn();
      assert.equal(again, conn);
      assert.equal((await again.query("select count(*)::int as n from items")).rows[0].n, 0);
      await pool.putconn(again);
    } finally {
      await pool.closeall();
    }
  }));

Deno.test("putconn() rolls back a failed transaction and keeps the connection usable", () =>
  withTestDatabase(async (db) => {
    const pool = new SimpleConnectionPool(1, 1, db.url);
    try {
      const conn = await pool.getconn();
      await conn.query("begin");
      await assert.rejects(conn.query("select 1/0"));
      // pg rejects on the ErrorResponse; the 'E' status arrives with the ReadyForQuery right after.
      await waitFor(() => conn.getTransactionStatus() === "E", { message: "failed transaction status" });
      await pool.putconn(conn);
      const again = await pool.getconn();
      assert.equal(again, conn);
      assert.equal((await again.query("select 1 as x")).rows[0].x, 1);
      await pool.putconn(again);
    } finally {
      await pool.closeall();
    }
  }));

Deno.test("putconn(conn, key, true) closes the connection even below minconn", () =>
  withTestDatabase(async (db) => {
    const pool = new SimpleConnectionPool(2, 4, db.url);
    try {
      const conn = await pool.getconn("k");
      const pid = await backendPid(conn);
      await pool.putconn(conn, "k", true);
      await waitFor(async () => !(await backendAlive(pid)), { message: "closed backend gone" });
      await assert.rejects(conn.query("select 1"));
      assert.equal(await backendCount(db.name), 1, "the other idle one stays");
    } finally {
      await pool.closeall();
    }
  }));

Deno.test("putconn() discards a connection whose backend was terminated while borrowed", () =>
  withTestDatabase(async (db) => {
    const pool = new SimpleConnectionPool(1, 1, db.url);
    try {
      const conn = await pool.getconn();
      const pid = await backendPid(conn);
      await adminQuery("select pg_terminate_backend($1)", [pid]);
      await waitFor(async () => !(await backendAlive(pid)));
      await assert.rejects(conn.query("select 1")); // the borrower sees it broken
      await pool.putconn(conn);
      // maxconn is 1: getting a working one proves the broken one was dropped.
      const fresh = await pool.getconn();
      assert.notEqual(fresh, conn);
      assert.equal((await fresh.query("select 1 as x")).rows[0].x, 1);
      await pool.putconn(fresh);
    } finally {
      await pool.closeall();
    }
  }));

Deno.test("putconn() with the wrong key, a foreign connection or twice rejects with PoolError", () =>
  withTestDatabase(async (db) => {
    const pool = new SimpleConnectionPool(0, 3, db.url);
    const other = new SimpleConnectionPool(0, 1, db.url);
    const stranger = new pg.Client({ connectionString: db.url });
    await stranger.connect();
    try {
      const a = await pool.getconn("a");
      const b = await pool.getconn("b");
      await assert.rejects(
        pool.putconn(a, "b"),
        (e) => e instanceof PoolError && /bound to key a, not b/.test(e.message),
      );
      await assert.rejects(pool.putconn(a, "zzz"), PoolError);
      // Still bound to "a" after the refused return.
      assert.equal(await pool.getconn("a"), a);
      await assert.rejects(pool.putconn(stranger), (e) => e instanceof PoolError && /not from pool/.test(e.message));
      const foreign = await other.getconn();
      await assert.rejects(pool.putconn(foreign), PoolError);
      // Python's putconn(conn, close=True) ported positionally: refused with a hint, not taken as a key.
      // deno-lint-ignore no-explicit-any
      await assert.rejects(pool.putconn(a, true as any), {
        name: "TypeError",
        message: /putconn\(conn, undefined, true\)/,
      });
      await pool.putconn(a, "a");
      await assert.rejects(pool.putconn(a, "a"), (e) => e instanceof PoolError && /returned twice/.test(e.message));
      await pool.putconn(b, "b");
      await other.putconn(foreign);
    } finally {
      await stranger.end();
      await other.closeall();
      await pool.closeall();
    }
  }));

Deno.test("closeall() closes in-use connections too: their backends disappear and the borrower's query fails", () =>
  withTestDatabase(async (db) => {
    const pool = new SimpleConnectionPool(2, 5, db.url);
    const borrowed = await pool.getconn();
    const idleToo = await pool.getconn();
    await pool.putconn(idleToo); // back to idle
    const pid = await backendPid(borrowed);
    assert.equal(await backendCount(db.name), 2);
    await pool.closeall();
    assert.equal(pool.closed, true);
    await waitFor(async () => (await backendCount(db.name)) === 0, { message: "every backend gone" });
    assert.equal(await backendAlive(pid), false);
    await assert.rejects(borrowed.query("select 1"));
  }));

Deno.test("every call after closeall() rejects with PoolClosedError", () =>
  withTestDatabase(async (db) => {
    const pool = new SimpleConnectionPool(1, 2, db.url);
    const conn = await pool.getconn();
    await pool.closeall();
    await assert.rejects(pool.getconn(), PoolClosedError);
    await assert.rejects(pool.getconn("k"), PoolClosedError);
    await assert.rejects(pool.putconn(conn), PoolClosedError);
    await assert.rejects(pool.closeall(), PoolClosedError);
    await assert.rejects(pool.open(), PoolClosedError);
    const never = new SimpleConnectionPool(1, 2, db.url);
    await never.closeall(); // closing a never-opened pool opens nothing
    await assert.rejects(never.getconn(), PoolClosedError);
    assert.equal(await backendCount(db.name), 0);
  }));

Deno.test("closeall() during a getconn() that is connecting rejects it with PoolClosedError and leaks nothing", () =>
  withTestDatabase(async (db) => {
    const pool = new SimpleConnectionPool(0, 2, db.url);
    await pool.open();
    const pending = pool.getconn();
    await pool.closeall();
    await assert.rejects(pending, PoolClosedError);
    await waitFor(async () => (await backendCount(db.name)) === 0);
  }));

Deno.test("await using returns the connection at scope exit", () =>
  withTestDatabase(async (db) => {
    await using pool = new SimpleConnectionPool(0, 1, db.url);
    let first: pg.Client;
    {
      await using conn = await pool.getconn();
      first = conn;
      await assert.rejects(pool.getconn(), PoolExhaustedError);
    }
    // Returned (and closed, minconn 0): maxconn 1 allows another.
    const next = await pool.getconn();
    assert.notEqual(next, first);
    await pool.putconn(next);
  }));

Deno.test("an idle connection terminated by the server is dropped and replaced on the next getconn()", () =>
  withTestDatabase(async (db) => {
    const pool = new SimpleConnectionPool(1, 1, db.url);
    try {
      await pool.open();
      const conn = await pool.getconn();
      const pid = await backendPid(conn);
      await pool.putconn(conn);
      await adminQuery("select pg_terminate_backend($1)", [pid]);
      await waitFor(async () => !(await backendAlive(pid)));
      await waitFor(() => pool.toJSON().idle === 0, { message: "lost idle connection dropped" });
      const fresh = await pool.getconn();
      assert.notEqual(fresh, conn);
      assert.equal((await fresh.query("select 1 as x")).rows[0].x, 1);
      await pool.putconn(fresh);
    } finally {
      await pool.closeall();
    }
  }));
