/**
 * The statement cache (option `preparedStatements`) against the real server:
 * bounded per connection (sampled from `pg_prepared_statements`), correct when
 * tables change shape, cleared by DISCARD ALL and with a lost connection,
 * right rows under pipelining, and off behind a transaction pooler.
 */
import assert from "node:assert/strict";
import pg from "pg";
import { ConnectionPool, type ConnectionPoolOptions, createPgDriver, NullConnectionPool } from "../../mod.ts";
import { adminQuery, createTestDatabase, type TestDatabase, waitFor } from "../_db.ts";
import { pidOf, terminate } from "../_faults.ts";
import { findPgBouncer, startPgBouncer } from "../_pgbouncer.ts";
import { staleCode } from "../../src/drivers/_statement_cache.ts";

let db: TestDatabase;
Deno.test.beforeAll(async () => {
  db = await createTestDatabase();
});
Deno.test.afterAll(async () => {
  await db.drop();
});

/** Statements prepared in the session of `conn` (pg_prepared_statements is per session). */
async function preparedOn(conn: pg.Client): Promise<string[]> {
  const { rows } = await conn.query<{ name: string }>(
    "select name from pg_prepared_statements where not from_sql order by name",
  );
  return rows.map((r: { name: string }) => r.name);
}

/** Runs SQL on the test database from a session of its own (DDL the pool's sessions do not see coming). */
async function onTestDb(sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: db.url });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

/** A pool of one connection (so every sample of pg_prepared_statements sees the statements' session), cache at once. */
function onePool(options: Partial<ConnectionPoolOptions<pg.Client>> = {}): ConnectionPool {
  return new ConnectionPool({
    conninfo: db.url,
    minSize: 1,
    maxSize: 1,
    preparedStatements: { max: 10, after: 0 },
    ...options,
  });
}

/** A full pool of `size` pipelining connections with a small cache (4), so statements churn through it. */
async function pipelinedPool(size: number): Promise<ConnectionPool> {
  const pool = onePool({ minSize: size, maxSize: size, pipeline: 16, preparedStatements: { max: 4, after: 0 } });
  await pool.open({ wait: true });
  return pool;
}

async function preparedInPool(pool: ConnectionPool): Promise<string[]> {
  return await pool.withConnection((conn) => preparedOn(conn));
}

Deno.test("preparedStatements: bad values are TypeError/RangeError naming the option", () => {
  const conninfo = db.url;
  assert.throws(() => new ConnectionPool({ conninfo, preparedStatements: true as never }), {
    name: "TypeError",
    message: /'preparedStatements'/,
  });
  assert.throws(() => new ConnectionPool({ conninfo, preparedStatements: { max: 0 } }), {
    name: "RangeError",
    message: /'preparedStatements.max'/,
  });
  assert.throws(() => new ConnectionPool({ conninfo, preparedStatements: { after: -1 } }), {
    name: "RangeError",
    message: /'preparedStatements.after'/,
  });
  assert.throws(() => new ConnectionPool({ conninfo, preparedStatements: { max: "5" as never } }), {
    name: "TypeError",
    message: /'preparedStatements.max'/,
  });
  assert.throws(() => new ConnectionPool({ conninfo, preparedStatements: { maxSize: 5 } as never }), {
    name: "TypeError",
    message: /'preparedStatements.maxSize'/,
  });
  assert.throws(() => createPgDriver(conninfo, { preparedStatements: { max: 1.5 } }), {
    name: "RangeError",
    message: /'preparedStatements.max'/,
  });
  assert.throws(
    () => new ConnectionPool({ driver: createPgDriver(conninfo), preparedStatements: false }),
    { name: "TypeError", message: /'preparedStatements'.*createPgDriver/ },
  );
});

Deno.test("only the plan cache's 0A000 counts as stale, in any server language; other 0A000 errors are the caller's", () => {
  const localized = { code: "0A000", routine: "RevalidateCachedQuery", message: "el plan almacenado no debe cambiar" };
  assert.equal(staleCode(localized), "0A000");
  assert.equal(staleCode({ code: "0A000", message: "cached plan must not change result type" }), "0A000");
  assert.equal(staleCode({ code: "26000", message: 'prepared statement "tidepool_1" does not exist' }), "26000");
  assert.equal(
    staleCode({ code: "0A000", routine: "ExecLockRows", message: "FOR UPDATE is not supported" }),
    undefined,
  );
  assert.equal(staleCode({ code: "42P01" }), undefined);
  assert.equal(staleCode(undefined), undefined);
});

Deno.test("a repeated parameterized statement is prepared once per connection, from the use after `after`", async () => {
  await using pool = new ConnectionPool({ conninfo: db.url, minSize: 1, maxSize: 1, pipeline: 1 });
  const text = "select $1::int * 2 as n";
  assert.equal((await pool.query(text, [1])).rows[0].n, 2);
  assert.deepEqual(await preparedInPool(pool), [], "default after: 1, the first use runs unnamed");
  for (let i = 0; i < 5; i++) assert.equal((await pool.query(text, [i])).rows[0].n, i * 2);
  const names = await preparedInPool(pool);
  assert.equal(names.length, 1);
  const { rows } = await pool.withConnection((c) =>
    c.query<{ statement: string }>("select statement from pg_prepared_statements where not from_sql")
  );
  assert.equal(rows[0].statement, text);
});

Deno.test("the cache never holds more than `max` statements on a connection (LRU with DEALLOCATE)", async () => {
  const max = 3;
  await using pool = new ConnectionPool({
    conninfo: db.url,
    minSize: 1,
    maxSize: 1,
    pipeline: 1,
    preparedStatements: { max, after: 0 },
  });
  let most = 0;
  for (let round = 0; round < 4; round++) {
    for (let k = 0; k < 10; k++) {
      assert.equal((await pool.query(`select $1::int + ${k} as n`, [round])).rows[0].n, round + k);
      // Sampled on the same connection as the statements (pool of one), from inside the session.
      const names = await preparedInPool(pool);
      most = Math.max(most, names.length);
      assert.ok(names.length <= max, `${names.length} prepared > max ${max}: ${names}`);
    }
  }
  assert.equal(most, max, "the cache fills up to max");
  // The most recently used stays: a hit costs no new statement.
  const before = await preparedInPool(pool);
  await pool.query("select $1::int + 9 as n", [0]);
  assert.deepEqual(await preparedInPool(pool), before);
});

Deno.test("the cache bound holds on a lent connection's own query() too", async () => {
  await using pool = new ConnectionPool({
    conninfo: db.url,
    minSize: 1,
    maxSize: 1,
    preparedStatements: { max: 2, after: 0 },
  });
  await pool.withConnection(async (conn) => {
    for (let k = 0; k < 8; k++) {
      assert.equal((await conn.query(`select $1::int - ${k} as n`, [10])).rows[0].n, 10 - k);
      assert.ok((await preparedOn(conn)).length <= 2);
    }
    assert.equal((await preparedOn(conn)).length, 2);
  });
});

Deno.test("a connection that only runs transactions keeps at most `max` statements and still caches new texts", async () => {
  await onTestDb("create table tx_only (id int primary key, v int); insert into tx_only values (1, 1)");
  await using pool = onePool({ preparedStatements: { max: 2, after: 0 } });
  const texts = [0, 1, 2, 3].map((k) => `select v + ${k} as n from tx_only where id = $1`);
  for (let round = 0; round < 3; round++) {
    for (const [k, text] of texts.entries()) {
      const { rows } = await pool.transaction(async (conn) => {
        const result = await conn.query(text, [1]);
        // Sampled inside the transaction, on its session.
        assert.ok((await preparedOn(conn)).length <= 2);
        return result;
      });
      assert.equal(rows[0].n, 1 + k);
    }
  }
  // The last text used got a slot although every statement ran inside a transaction.
  const { rows } = await pool.withConnection((c) =>
    c.query<{ statement: string }>("select statement from pg_prepared_statements where not from_sql")
  );
  assert.ok(rows.some((r: { statement: string }) => r.statement === texts[3]), JSON.stringify(rows));
});

Deno.test("after ALTER TABLE ADD COLUMN the next autocommit query succeeds with the new shape", async () => {
  await onTestDb("create table shape_a (id int primary key, a text); insert into shape_a values (1, 'x')");
  await using pool = onePool();
  const text = "select * from shape_a where id = $1";
  assert.deepEqual((await pool.query(text, [1])).rows, [{ id: 1, a: "x" }]);
  assert.equal((await preparedInPool(pool)).length, 1);
  await onTestDb("alter table shape_a add column b int default 7");
  assert.deepEqual((await pool.query(text, [1])).rows, [{ id: 1, a: "x", b: 7 }]);
  // Pipelined too (the pool's default): the same statement on every call keeps working.
  const rows = await Promise.all(Array.from({ length: 20 }, () => pool.query(text, [1]).then((r) => r.rows[0])));
  for (const row of rows) assert.deepEqual(row, { id: 1, a: "x", b: 7 });
  assert.ok((await preparedInPool(pool)).length <= 1, "the stale statement was deallocated");
});

Deno.test("after DROP TABLE and a re-create with other columns the next autocommit query succeeds", async () => {
  await onTestDb("create table shape_b (id int primary key, a text); insert into shape_b values (1, 'x')");
  await using pool = onePool();
  const text = "select * from shape_b where id = $1";
  assert.deepEqual((await pool.query(text, [1])).rows, [{ id: 1, a: "x" }]);
  await onTestDb(
    "drop table shape_b; create table shape_b (id int primary key, z bool, y text); insert into shape_b values (1, true, 'q')",
  );
  assert.deepEqual((await pool.query(text, [1])).rows, [{ id: 1, z: true, y: "q" }]);
  assert.deepEqual((await pool.query(text, [1])).rows, [{ id: 1, z: true, y: "q" }]);
});

Deno.test("after ALTER COLUMN ... TYPE or a re-created type the next autocommit query runs with today's types", async () => {
  await onTestDb(
    "create table types_a (a int, b text); insert into types_a values (1, 'x'); create type mood as enum ('ok')",
  );
  await using pool = onePool();
  const where = "select count(*)::int as n from types_a where a = $1";
  const insert = "insert into types_a (a, b) values ($1, $2)";
  const cast = "select $1::mood as m";
  assert.equal((await pool.query(where, [1])).rows[0].n, 1);
  await pool.query(insert, [2, "y"]);
  assert.equal((await pool.query(cast, ["ok"])).rows[0].m, "ok");
  assert.equal((await preparedInPool(pool)).length, 3);
  // Prepared statements keep the parameter types PostgreSQL inferred when they were prepared.
  await onTestDb(
    "alter table types_a alter column a type text; alter table types_a alter column b type jsonb using to_jsonb(b);" +
      "drop type mood; create type mood as enum ('ok', 'fine')",
  );
  for (let i = 0; i < 3; i++) { // every time, not just once: the stale names are gone
    assert.equal((await pool.query(where, ["1"])).rows[0].n, 1, "text = text, not text = integer (42883)");
    await pool.query(insert, [`k${i}`, JSON.stringify({ i })]);
    assert.equal((await pool.query(cast, ["fine"])).rows[0].m, "fine", "not 'cache lookup failed for type'");
  }
  // A real error of the same kind still reaches the caller.
  await assert.rejects(pool.query("select $1::int + 'a'::text as x", [1]), { code: "42883" });
  // In a transaction the error is the caller's (it aborted the transaction); the next transaction works.
  await onTestDb("delete from types_a where a like 'k%'; alter table types_a alter column a type int using a::int");
  await assert.rejects(pool.transaction((conn) => conn.query(where, ["1"])), { code: "42883" });
  const n = await pool.transaction(async (conn) => (await conn.query(where, [1])).rows[0].n);
  assert.equal(n, 1);
});

Deno.test("inside a transaction the stale-plan error reaches the caller and the cache is repaired", async () => {
  await onTestDb("create table shape_c (id int primary key, a text); insert into shape_c values (1, 'x')");
  await using pool = onePool();
  const text = "select * from shape_c where id = $1";
  await pool.query(text, [1]);
  await onTestDb("alter table shape_c add column b int default 3");
  await assert.rejects(
    pool.transaction(async (conn) => {
      await conn.query("select 1");
      await conn.query(text, [1]);
    }),
    { code: "0A000", routine: "RevalidateCachedQuery", message: /cached plan must not change result type/ },
  );
  // Repaired: the same text works in a transaction and outside, and the stale name is gone from the server.
  const inTx = await pool.transaction(async (conn) => {
    const result = await conn.query(text, [1]);
    // Deallocated before the BEGIN of this transaction: only the fresh statement is prepared.
    assert.equal((await preparedOn(conn)).length, 1);
    return result;
  });
  assert.deepEqual(inTx.rows, [{ id: 1, a: "x", b: 3 }]);
  assert.deepEqual((await pool.query(text, [1])).rows, [{ id: 1, a: "x", b: 3 }]);
  const names = await preparedInPool(pool);
  assert.equal(names.length, 1, `only the fresh statement is prepared: ${names}`);
});

Deno.test("discardAll clears the cache: statements are prepared afresh and the count starts over", async () => {
  await using pool = onePool({ reset: ConnectionPool.discardAll });
  for (let k = 0; k < 3; k++) await pool.query(`select $1::int + ${k} as n`, [k]);
  // The reset ran when the last connection came back; a withConnection sees the session after it.
  assert.deepEqual(await preparedInPool(pool), []);
  assert.equal((await pool.query("select $1::int + 0 as n", [5])).rows[0].n, 5);
  assert.equal((await pool.query("select $1::int + 1 as n", [5])).rows[0].n, 6);
});

Deno.test("a DISCARD ALL sent by the caller (26000 on the next use) is repaired and the statement runs once more", async () => {
  await using pool = onePool();
  const text = "select $1::text as t";
  await pool.query(text, ["a"]);
  await pool.withConnection((conn) => conn.query("DEALLOCATE ALL"));
  assert.equal((await pool.query(text, ["b"])).rows[0].t, "b");
  assert.equal((await preparedInPool(pool)).length, 1);
});

Deno.test("a lost connection's cache is gone: its replacement prepares afresh", async () => {
  await using pool = onePool();
  for (let k = 0; k < 3; k++) await pool.query(`select $1::int * ${k + 1} as n`, [2]);
  const pid = await pool.withConnection((conn) => pidOf(conn));
  assert.ok(await terminate(pid));
  await waitFor(async () => (await pool.withConnection((conn) => pidOf(conn)).catch(() => pid)) !== pid, {
    timeout: 5_000,
  });
  assert.deepEqual(await preparedInPool(pool), []);
  assert.equal((await pool.query("select $1::int * 1 as n", [2])).rows[0].n, 2);
  assert.equal((await preparedInPool(pool)).length, 1);
});

Deno.test("pipelined and cached: 256 concurrent calls over churning statements get the right rows", async () => {
  await onTestDb("create table pipe_rows as select g as id, 'row-' || g as label from generate_series(1, 300) g");
  await using pool = await pipelinedPool(4);
  for (let round = 0; round < 3; round++) {
    const calls = Array.from({ length: 256 }, (_, i) => {
      // Ten texts over a cache of four: every connection evicts and deallocates while statements are in flight.
      const k = (i + round) % 10;
      return pool.query(`select id, label, ${k} as k from pipe_rows where id = $1`, [i + 1]).then((r) =>
        r.rows.length === 1 && r.rows[0].id === i + 1 && r.rows[0].label === `row-${i + 1}` && r.rows[0].k === k
      );
    });
    const ok = await Promise.all(calls);
    assert.equal(ok.filter(Boolean).length, 256);
  }
  for (let i = 0; i < 4; i++) assert.ok((await preparedInPool(pool)).length <= 4);
});

Deno.test("query configs without a name (rowMode, types: what Drizzle sends) are cached and keep their options", async () => {
  await using pool = onePool();
  const text = "select $1::int as n, $2::text as t";
  const types = { getTypeParser: () => (value: string) => `parsed:${value}` };
  await pool.withConnection(async (conn) => {
    for (let i = 0; i < 3; i++) {
      const arrays = await conn.query({ text, values: [i, "x"], rowMode: "array" });
      assert.deepEqual(arrays.rows, [[i, "x"]]);
      const typed = await conn.query({ text, values: [i, "y"], types } as never);
      assert.deepEqual((typed as { rows: unknown[] }).rows, [{ n: `parsed:${i}`, t: "parsed:y" }]);
    }
    assert.deepEqual((await preparedOn(conn)).length, 1);
    // A name of the caller's is pg's business: prepared under that name, not the cache's.
    await conn.query({ name: "mine", text: "select $1::int as m", values: [1] });
    const names = await preparedOn(conn);
    assert.equal(names.length, 2);
    assert.ok(names.includes("mine"));
  });
});

Deno.test("NullConnectionPool takes the option too", async () => {
  await using pool = new NullConnectionPool({ conninfo: db.url, maxSize: 1, preparedStatements: { max: 5, after: 0 } });
  assert.throws(() => new NullConnectionPool({ conninfo: db.url, preparedStatements: { max: -1 } }), {
    name: "RangeError",
    message: /'preparedStatements.max'/,
  });
  assert.equal((await pool.query("select $1::int as n", [3])).rows[0].n, 3);
});

Deno.test("a backend killed under pipelined cached statements fails only its own as ConnectionLostError; the pool goes on", async () => {
  await using pool = await pipelinedPool(2);
  const calls = Array.from(
    { length: 32 },
    (_, i) =>
      pool.query(`select pg_sleep(0.05 * ($1::int % 2)), $1::int as n, ${i % 3} as k`, [i]).then(
        (r) => r.rows[0].n === i && r.rows[0].k === i % 3 ? "ok" : "wrong row",
        (e: Error) => e.name,
      ),
  );
  // Kill a backend while it runs one of these statements (others are pipelined behind it).
  let victim: number | undefined;
  await waitFor(async () => {
    const rows = await adminQuery<{ pid: number }>(
      "select pid from pg_stat_activity where datname = $1 and state = 'active' and query like '%pg_sleep(0.05%'",
      [db.name],
    );
    victim = rows[0]?.pid;
    return victim !== undefined;
  }, { timeout: 5_000, interval: 2 });
  assert.ok(await terminate(victim!));
  const outcomes = await Promise.all(calls);
  assert.ok(outcomes.every((o) => o === "ok" || o === "ConnectionLostError"), JSON.stringify(outcomes));
  assert.ok(outcomes.includes("ok"));
  assert.ok(outcomes.includes("ConnectionLostError"), "the kill hit statements in flight");
  // The replacement starts with an empty cache and the same texts work everywhere.
  const again = await Promise.all(
    Array.from(
      { length: 32 },
      (_, i) => pool.query(`select $1::int as n, ${i % 3} as k`, [i]).then((r) => r.rows[0].n),
    ),
  );
  assert.deepEqual(again, Array.from({ length: 32 }, (_, i) => i));
  for (let i = 0; i < 2; i++) assert.ok((await preparedInPool(pool)).length <= 4);
});

Deno.test("preparedStatements: false sends no named statement", async () => {
  await using pool = new ConnectionPool({ conninfo: db.url, minSize: 1, maxSize: 1, preparedStatements: false });
  for (let i = 0; i < 5; i++) await pool.query("select $1::int as n", [i]);
  assert.deepEqual(await preparedInPool(pool), []);
});

const pgbouncer = await findPgBouncer();

Deno.test({
  name: 'no named statement is sent behind pooler "transaction" by default (real PgBouncer)',
  ignore: !pgbouncer,
  fn: async () => {
    await using bouncer = await startPgBouncer(pgbouncer!, db.url, { poolSize: 2 });
    const named: string[] = [];
    await using pool = new ConnectionPool({
      conninfo: bouncer.url(db.url),
      minSize: 0,
      maxSize: 4,
      pooler: "transaction",
      // Every Parse the client sends, seen on pg's wire layer.
      configure: (conn) => {
        const connection = (conn as unknown as { connection: { parse(m: { name?: string }): void } }).connection;
        const parse = connection.parse.bind(connection);
        connection.parse = (m) => {
          if (m.name) named.push(m.name);
          parse(m);
        };
      },
    });
    const results = await Promise.all(
      Array.from({ length: 200 }, (_, i) => pool.query("select $1::int + 1 as n", [i]).then((r) => r.rows[0].n)),
    );
    assert.deepEqual(results, Array.from({ length: 200 }, (_, i) => i + 1));
    await pool.transaction(async (conn) => {
      for (let i = 0; i < 5; i++) await conn.query("select $1::int as n", [i]);
    });
    assert.deepEqual(named, []);
  },
});
