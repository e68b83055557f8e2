/**
 * `reset: discardAll`
 * promises a clean session, JS side included (type parsers and listeners a
 * borrower added to its `pg.Client` do not reach the next borrower), and a
 * connection object may be a function (postgres.js's `sql` is one). Against
 * the real server, for the pool classes that lend driver objects (an
 * attached pool's RemoteConnection has no JS-side session state).
 */
import assert from "node:assert/strict";
import type pg from "pg";
import {
  ConnectionPool,
  createPgDriver,
  type Driver,
  NullConnectionPool,
  type QueryResult,
  SimpleConnectionPool,
} from "../../mod.ts";
import { createTestDatabase } from "../_db.ts";

const db = await createTestDatabase();
addEventListener("unload", () => void db.drop());

const INT4 = 23;

/** What a borrower leaves on its pg.Client: a type parser and two listeners. */
function dirty(conn: pg.Client): void {
  conn.setTypeParser(INT4, () => "parsed by the previous borrower");
  conn.on("notice", () => {});
  conn.on("notification", () => {});
}

async function assertClean(conn: pg.Client, listeners: { notice: number; notification: number; error: number }) {
  const { rows } = await conn.query<{ x: unknown }>("select 1::int4 as x");
  assert.equal(rows[0].x, 1, "the default int4 parser is back");
  assert.equal(conn.listenerCount("notice"), listeners.notice);
  assert.equal(conn.listenerCount("notification"), listeners.notification);
  assert.equal(conn.listenerCount("error"), listeners.error, "the pool's own listeners are kept");
}

function counts(conn: pg.Client) {
  return {
    notice: conn.listenerCount("notice"),
    notification: conn.listenerCount("notification"),
    error: conn.listenerCount("error"),
  };
}

Deno.test("ConnectionPool with reset: discardAll: a type parser and listeners the borrower added do not reach the next borrower; configure's stay", async () => {
  const configured = () => "configured";
  await using pool = new ConnectionPool({
    conninfo: db.url,
    minSize: 1,
    maxSize: 1,
    configure: (conn) => {
      conn.setTypeParser(1700, configured); // numeric: set up by the app for every connection
    },
    reset: ConnectionPool.discardAll,
  });
  const first = await pool.getconn();
  const before = counts(first);
  dirty(first);
  await pool.putconn(first);
  const second = await pool.getconn();
  assert.equal(second, first, "the same client");
  await assertClean(second, before);
  assert.equal(second.getTypeParser(1700), configured, "what configure set stays");
  await pool.putconn(second);
});

Deno.test("NullConnectionPool with reset: discardAll: a connection handed to a waiter carries none of the previous borrower's parsers or listeners", async () => {
  await using pool = new NullConnectionPool({ conninfo: db.url, maxSize: 1, reset: ConnectionPool.discardAll });
  const first = await pool.getconn();
  const before = counts(first);
  const waiting = pool.getconn({ timeout: 5_000 });
  dirty(first);
  await pool.putconn(first);
  const second = await waiting;
  assert.equal(second, first, "handed over, not reopened");
  await assertClean(second, before);
  await pool.putconn(second);
});

Deno.test("SimpleConnectionPool with reset: discardAll: the next getconn gets a client without the previous borrower's parsers or listeners", async () => {
  const pool = new SimpleConnectionPool(1, 1, { conninfo: db.url, reset: ConnectionPool.discardAll });
  try {
    const first = await pool.getconn();
    const before = counts(first);
    dirty(first);
    await pool.putconn(first);
    const second = await pool.getconn();
    assert.equal(second, first);
    await assertClean(second, before);
    await pool.putconn(second);
  } finally {
    await pool.closeall();
  }
});

Deno.test("without reset a plain return keeps the client's JS-side state (documented): the parser a borrower set is still there", async () => {
  await using pool = new ConnectionPool({ conninfo: db.url, minSize: 1, maxSize: 1 });
  const first = await pool.getconn();
  first.setTypeParser(INT4, () => "kept");
  await pool.putconn(first);
  const second = await pool.getconn();
  const { rows } = await second.query<{ x: unknown }>("select 1::int4 as x");
  assert.equal(rows[0].x, "kept");
  await pool.putconn(second);
});

/** A postgres.js-like connection: a function you call with SQL, carrying its client. */
type Sql = ((text: string, params?: unknown[]) => Promise<QueryResult>) & { client: pg.Client };

function functionDriver(): Driver<Sql> {
  const pgDriver = createPgDriver(db.url);
  return {
    async connect(signal) {
      const client = await pgDriver.connect(signal);
      const sql = (text: string, params?: unknown[]) => pgDriver.query(client, text, params);
      return Object.assign(sql, { client });
    },
    close: (sql, timeoutMs) => pgDriver.close(sql.client, timeoutMs),
    status: (sql) => pgDriver.status(sql.client),
    rollback: (sql) => pgDriver.rollback(sql.client),
    ping: (sql) => pgDriver.ping(sql.client),
    query: (sql, text, params) => pgDriver.query(sql.client, text, params),
    watch: (sql, onLost) => pgDriver.watch(sql.client, onLost),
    description: pgDriver.description,
  };
}

for (
  const [name, make] of [
    ["ConnectionPool", () => new ConnectionPool<Sql>({ driver: functionDriver(), minSize: 1, maxSize: 1 })],
    ["NullConnectionPool", () => new NullConnectionPool<Sql>({ driver: functionDriver(), maxSize: 1 })],
  ] as const
) {
  Deno.test(`${name}: a connection that is a function (like postgres.js's sql) is lent, used, and accepted back, also by await using`, async () => {
    await using pool = make();
    const sql = await pool.getconn();
    assert.equal(typeof sql, "function");
    assert.equal((await sql("select 1 as x")).rows[0].x, 1);
    await pool.putconn(sql);
    {
      await using again = await pool.connection({ timeout: 5_000 });
      assert.equal((await again("select 2 as x")).rows[0].x, 2);
    }
    await pool.putconn(await pool.getconn({ timeout: 5_000 })); // the scope returned it
  });
}

Deno.test("SimpleConnectionPool: a connection that is a function is accepted back by putconn", async () => {
  const pool = new SimpleConnectionPool<Sql>(1, 1, { driver: functionDriver() });
  try {
    const sql = await pool.getconn();
    assert.equal((await sql("select 3 as x")).rows[0].x, 3);
    await pool.putconn(sql);
    assert.equal(pool.toJSON().used, 0);
  } finally {
    await pool.closeall();
  }
});
