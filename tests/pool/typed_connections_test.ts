/**
 * `reset: ConnectionPool.discardAll` and `check:
 * ConnectionPool.checkConnection` keep the connection type `pg.Client`, so
 * `const { rows } = await conn.query(...)` type-checks. This file is checked
 * by `deno check tests/` (and by `deno test`): each test would not compile if
 * the inference regressed to `{ query(): Promise<unknown> }`; at run time it
 * runs the same code against the real server.
 */
import assert from "node:assert/strict";
import type pg from "pg";
import { ConnectionPool, NullConnectionPool, SimpleConnectionPool } from "../../mod.ts";
import { createTestDatabase } from "../_db.ts";

const db = await createTestDatabase();
addEventListener("unload", () => void db.drop());

/**
 * Compiles only when `T` is exactly `pg.Client`, `AsyncDisposable` aside (not a supertype such as
 * `{ query(): Promise<unknown> }`): pools lend `PooledConnection<pg.Client>`.
 */
type IsPgClient<T> = [T] extends [pg.Client] ? ([pg.Client & AsyncDisposable] extends [T] ? true : false) : false;
const isPgClient = <T>(_conn: T, ok: IsPgClient<T>): boolean => ok;

Deno.test("ConnectionPool with reset: discardAll and check: checkConnection lends pg.Client: rows are typed and read", async () => {
  await using pool = new ConnectionPool({
    conninfo: db.url,
    minSize: 1,
    reset: ConnectionPool.discardAll,
    check: ConnectionPool.checkConnection,
  });
  await using conn = await pool.connection();
  assert.ok(isPgClient(conn, true));
  const { rows } = await conn.query<{ x: number }>("select 1 as x");
  assert.equal(rows[0].x, 1);
});

Deno.test("NullConnectionPool with reset: discardAll lends pg.Client: rows are typed and read", async () => {
  await using pool = new NullConnectionPool({ conninfo: db.url, maxSize: 1, reset: ConnectionPool.discardAll });
  const { rows } = await pool.withConnection(async (conn) => {
    assert.ok(isPgClient(conn, true));
    return await conn.query<{ x: number }>("select 2 as x");
  });
  assert.equal(rows[0].x, 2);
});

Deno.test("SimpleConnectionPool with reset: discardAll lends pg.Client: rows are typed and read", async () => {
  const pool = new SimpleConnectionPool(0, 1, { conninfo: db.url, reset: ConnectionPool.discardAll });
  try {
    const conn = await pool.getconn();
    assert.ok(isPgClient(conn, true));
    const { rows } = await conn.query<{ x: number }>("select 3 as x");
    assert.equal(rows[0].x, 3);
    await pool.putconn(conn);
  } finally {
    await pool.closeall();
  }
});
