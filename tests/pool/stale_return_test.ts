/**
 * A connection is never held by two borrowers. A return
 * applies only to the lease it belongs to: `await using` returns exactly the
 * lease it was given, and a stale return (an explicit `putconn` inside the
 * scope, then the scope's own return after the connection was lent again) is
 * refused with `PoolError` and changes nothing. For every pool class, against
 * the real server.
 */
import assert from "node:assert/strict";
import {
  ConnectionPool,
  NullConnectionPool,
  PersistentConnectionPool,
  PoolError,
  PoolExhaustedError,
  PoolTimeoutError,
  SimpleConnectionPool,
  ThreadedConnectionPool,
} from "../../mod.ts";
import { createTestDatabase } from "../_db.ts";
import { startWorker, type WorkerError } from "../_shared_helpers.ts";
import { backendPid } from "../_pool_helpers.ts";

const db = await createTestDatabase();
addEventListener("unload", () => void db.drop());

for (
  const [name, make] of [
    ["ConnectionPool", () => new ConnectionPool({ conninfo: db.url, minSize: 1, maxSize: 1 })],
    ["NullConnectionPool", () => new NullConnectionPool({ conninfo: db.url, maxSize: 1 })],
  ] as const
) {
  Deno.test(`${name}: a stale await-using return after an explicit putconn is refused with PoolError; the second borrower keeps the connection`, async () => {
    await using pool = make();
    let second: Awaited<ReturnType<typeof pool.getconn>> | undefined;
    let secondPid = 0;
    await assert.rejects(
      async () => {
        await using conn = await pool.connection();
        const waiting = pool.getconn(); // maxSize 1: the second borrower queues
        await pool.putconn(conn); // handed to the second borrower
        second = await waiting;
        secondPid = await backendPid(second);
        assert.equal(second, conn, "the same connection, lent again");
      },
      (error: unknown) => error instanceof PoolError && /lease already ended/.test((error as Error).message),
    );
    // The stale return changed nothing: a third borrower does not get the connection the second one holds.
    await assert.rejects(pool.getconn({ timeout: 300 }), PoolTimeoutError);
    assert.equal(second!.getTransactionStatus(), "I");
    assert.equal(await backendPid(second!), secondPid, "the second borrower's session is intact");
    assert.equal(pool.getStats().poolAvailable, 0);
    await pool.putconn(second!); // its own return works
  });

  Deno.test(`${name}: await using returns exactly its own lease (one checkout, one return)`, async () => {
    await using pool = make();
    let pid = 0;
    {
      await using conn = await pool.connection();
      pid = await backendPid(conn);
    }
    const again = await pool.getconn({ timeout: 5_000 }); // free again: the scope returned it
    if (name === "ConnectionPool") assert.equal(await backendPid(again), pid);
    await pool.putconn(again);
  });
}

for (
  const [name, make] of [
    ["SimpleConnectionPool", () => new SimpleConnectionPool(1, 1, db.url)],
    ["ThreadedConnectionPool", () => new ThreadedConnectionPool(1, 1, db.url)],
  ] as const
) {
  Deno.test(`${name}: a stale await-using return after putconn is refused with PoolError; the connection stays bound to its new borrower`, async () => {
    const pool = make();
    try {
      let second: Awaited<ReturnType<typeof pool.getconn>> | undefined;
      await assert.rejects(
        async () => {
          await using conn = await pool.getconn();
          await pool.putconn(conn);
          second = await pool.getconn(); // the same connection, bound to a new key
          assert.equal(second, conn);
        },
        (error: unknown) => error instanceof PoolError && /lease already ended/.test((error as Error).message),
      );
      // Still in use by the second borrower: a third getconn finds the pool exhausted.
      await assert.rejects(pool.getconn(), PoolExhaustedError);
      assert.equal(pool.toJSON().used, 1);
      await second!.query("select 1");
      await pool.putconn(second!);
    } finally {
      await pool.closeall();
    }
  });
}

Deno.test("PersistentConnectionPool: a stale await-using return after putconn is refused with PoolError; the isolate keeps its connection", async () => {
  const pool = new PersistentConnectionPool(1, 1, db.url);
  try {
    let second: Awaited<ReturnType<typeof pool.getconn>> | undefined;
    await assert.rejects(
      async () => {
        await using conn = await pool.getconn();
        await pool.putconn(conn);
        second = await pool.getconn();
        assert.equal(second, conn);
      },
      (error: unknown) => error instanceof PoolError && /lease already ended/.test((error as Error).message),
    );
    assert.equal(pool.toJSON().used, 1, "still bound to this isolate");
    await second!.query("select 1");
    await pool.putconn(second!);
    assert.equal(pool.toJSON().used, 0);
  } finally {
    await pool.closeall();
  }
});

Deno.test("attached pool in a Worker: a stale await-using return after putconn is refused with PoolError; the second borrower keeps the connection", async () => {
  const pool = new ConnectionPool({ conninfo: db.url, minSize: 1, maxSize: 1 });
  const w = startWorker("promises_client.ts");
  try {
    await w.attach(pool.share());
    const r = await w.call<{ scopeError?: WorkerError; third: string; secondStillWorks: boolean }>("staleScopeReturn");
    assert.ok(r.scopeError?.isPoolError, `scope exit refused: ${JSON.stringify(r.scopeError)}`);
    assert.equal(r.third, "timed out", "a third borrower did not get the second one's connection");
    assert.ok(r.secondStillWorks);
  } finally {
    w.terminate();
    await pool.close();
  }
});

for (
  const [name, make] of [
    ["ConnectionPool", () => new ConnectionPool({ conninfo: db.url, minSize: 1, maxSize: 1 })],
    ["NullConnectionPool", () => new NullConnectionPool({ conninfo: db.url, maxSize: 1 })],
  ] as const
) {
  for (const helper of ["withConnection", "transaction"] as const) {
    Deno.test(`${name}: ${helper}() whose callback returns the connection itself rejects with PoolError and never commits or returns the next borrower's session`, async () => {
      await using pool = make();
      await pool.query("create table if not exists t_scope (v int)");
      let other: Awaited<ReturnType<typeof pool.getconn>> | undefined;
      const body = async (conn: Awaited<ReturnType<typeof pool.getconn>>) => {
        const waiting = pool.getconn();
        await pool.putconn(conn); // a mistake: the helper returns it
        other = await waiting;
        await other.query("begin");
        await other.query("insert into t_scope values (1)");
      };
      await assert.rejects(
        helper === "withConnection" ? pool.withConnection(body) : pool.transaction(body),
        (error: unknown) =>
          error instanceof PoolError && /returned the connection itself/.test((error as Error).message),
      );
      assert.equal(other!.getTransactionStatus(), "T", "the other borrower's transaction is still open: not committed");
      await other!.query("rollback");
      assert.equal((await other!.query("select count(*)::int as n from t_scope")).rows[0].n, 0);
      await pool.putconn(other!); // still lent to the other borrower: its own return works
    });
  }
}

for (const helper of ["withConnection", "transaction"] as const) {
  Deno.test(`attached pool in a Worker: ${helper}() whose callback returns the connection itself rejects with PoolError and never commits or returns the next borrower's session`, async () => {
    await using pool = new ConnectionPool({ conninfo: db.url, minSize: 1, maxSize: 1 });
    await pool.query("create table if not exists t_scope_worker (v int)");
    const w = startWorker("promises_client.ts");
    try {
      await w.attach(pool.share());
      const r = await w.call<{ error?: WorkerError; otherStatus: string | null; rows: number }>("scopedSelfReturn", {
        helper,
        table: "t_scope_worker",
      });
      assert.ok(r.error?.isPoolError, `rejects with PoolError: ${JSON.stringify(r.error)}`);
      assert.match(String(r.error?.message), /returned the connection itself/);
      assert.equal(r.otherStatus, "T", "the other borrower's transaction is still open: not committed");
      assert.equal(r.rows, 0, "nothing committed");
    } finally {
      w.terminate();
    }
  });
}
