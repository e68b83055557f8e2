/**
 * Dirty returns and throwing borrowers: whatever state a borrower leaves a
 * connection in, the next borrower gets a clean session or a new one, and no
 * session is left idle in a transaction.
 */
import assert from "node:assert/strict";
import pg from "pg";
import { ConnectionPool, type ConnectionPoolOptions, createPgDriver, type Driver } from "../../mod.ts";
import { adminQuery, createTestDatabase, type TestDatabase, waitFor } from "../_db.ts";
import { backendPids, FAST_BACKOFF, pidOf, sessionsInState } from "../_faults.ts";

let db: TestDatabase;
Deno.test.beforeAll(async () => {
  db = await createTestDatabase();
  await adminQuery("select 1");
});
Deno.test.afterAll(async () => {
  await db.drop();
});

function onePool(options: ConnectionPoolOptions = {}): ConnectionPool {
  return new ConnectionPool({
    conninfo: db.url,
    minSize: 1,
    maxSize: 1,
    timeout: 2_000,
    backoff: FAST_BACKOFF,
    ...options,
  });
}

Deno.test("a connection returned inside an open transaction is rolled back and kept", async () => {
  const pool = onePool();
  try {
    await pool.query("create table if not exists dirty_open (n int)");
    const conn = await pool.getconn();
    const pid = pidOf(conn);
    await conn.query("begin");
    await conn.query("insert into dirty_open values (1)");
    await pool.putconn(conn);
    const next = await pool.getconn();
    try {
      assert.equal(pidOf(next), pid, "kept: same session");
      assert.equal(next.getTransactionStatus(), "I");
      assert.equal((await next.query("select count(*)::int as n from dirty_open")).rows[0].n, 0);
    } finally {
      await pool.putconn(next);
    }
    assert.equal(pool.getStats().returnsBad, 0);
  } finally {
    await pool.close();
  }
});

Deno.test("a connection returned inside a failed transaction is rolled back and kept", async () => {
  const pool = onePool();
  try {
    const conn = await pool.getconn();
    const pid = pidOf(conn);
    await conn.query("begin");
    await assert.rejects(conn.query("select 1/0"), /division by zero/);
    // pg rejects on the ErrorResponse; the 'E' status arrives with the ReadyForQuery right after.
    await waitFor(() => conn.getTransactionStatus() === "E", { message: "failed transaction status" });
    await pool.putconn(conn);
    const next = await pool.getconn();
    try {
      assert.equal(pidOf(next), pid);
      assert.equal((await next.query("select 1 as x")).rows[0].x, 1);
    } finally {
      await pool.putconn(next);
    }
  } finally {
    await pool.close();
  }
});

Deno.test("a connection returned with a query still running is discarded and replaced", async () => {
  const pool = onePool();
  try {
    const conn = await pool.getconn();
    const pid = pidOf(conn);
    // Stands in for an unfinished COPY FROM STDIN (npm:pg needs pg-copy-streams for COPY):
    // either way the protocol is mid-command and the session cannot be handed on.
    const running = conn.query("select pg_sleep(1)").then(() => undefined, (error: Error) => error);
    await pool.putconn(conn);
    assert.equal(pool.getStats().returnsBad, 1);
    const next = await pool.getconn();
    try {
      assert.notEqual(pidOf(next), pid);
      assert.equal((await next.query("select 1 as x")).rows[0].x, 1);
    } finally {
      await pool.putconn(next);
    }
    await running; // settles either way; only its session was affected
  } finally {
    await pool.close();
  }
});

Deno.test("a reset that throws discards the connection", async () => {
  let fail = true;
  const pool = onePool({
    reset: () => {
      if (fail) throw new Error("reset refused");
    },
  });
  try {
    const conn = await pool.getconn();
    const pid = pidOf(conn);
    await pool.putconn(conn);
    assert.equal(pool.getStats().returnsBad, 1);
    fail = false;
    const next = await pool.getconn();
    assert.notEqual(pidOf(next), pid);
    await pool.putconn(next);
    assert.equal(pool.getStats().returnsBad, 1);
  } finally {
    await pool.close();
  }
});

/**
 * A driver whose BEGIN, COMMIT and ROLLBACK fail now and then, as a driver
 * error or a dropped socket would make them: before the statement is sent, so
 * the session is left exactly as it was.
 */
function flakyDriver(inner: Driver<pg.Client>, rate: number): Driver<pg.Client> {
  const flaky = () => {
    if (Math.random() < rate) throw new Error("injected driver failure");
  };
  return {
    ...inner,
    description: inner.description,
    query(conn, text, params) {
      if (/^\s*(begin|commit|rollback)/i.test(text)) flaky();
      return inner.query(conn, text, params);
    },
    rollback(conn) {
      flaky();
      return inner.rollback(conn);
    },
  };
}

Deno.test("1000 borrowers that throw (BEGIN, COMMIT and ROLLBACK throwing too) leave nothing checked out or idle in transaction", async () => {
  const driver = flakyDriver(createPgDriver(db.url), 0.1);
  const pool = new ConnectionPool({ driver, minSize: 4, maxSize: 4, timeout: 5_000, backoff: FAST_BACKOFF });
  try {
    await pool.query(
      "create table if not exists throwers (id int primary key deferrable initially deferred)",
    );
    const kinds = [
      // fn throws inside pool.transaction after a write
      () =>
        pool.transaction(async (c) => {
          await c.query("insert into throwers values (-1) on conflict do nothing");
          throw new Error("borrower failed");
        }),
      // an SQL error inside a transaction (failed transaction)
      () => pool.transaction((c) => c.query("select 1/0")),
      // COMMIT itself fails: deferred unique violation
      () =>
        pool.transaction(async (c) => {
          await c.query("insert into throwers values (1), (1)");
        }),
      // manual BEGIN through withConnection, then a throw
      () =>
        pool.withConnection(async (c) => {
          await c.query("begin");
          await c.query("select 1");
          throw new Error("borrower failed");
        }),
      // manual BEGIN with getconn/putconn and a swallowed failure
      async () => {
        const c = await pool.getconn();
        try {
          await c.query("begin");
          await c.query("select * from no_such_table");
        } finally {
          await pool.putconn(c);
        }
      },
      // a bad BEGIN
      () => pool.query("begin isolation level bogus"),
      // the session kills itself inside a transaction: ROLLBACK cannot run
      () =>
        pool.transaction(async (c) => {
          if (Math.random() < 0.2) await c.query("select pg_terminate_backend(pg_backend_pid())");
          throw new Error("borrower failed");
        }),
    ];
    const N = 1_000;
    let next = 0;
    let failures = 0;
    await Promise.all(Array.from({ length: 8 }, async () => {
      while (next < N) {
        const op = kinds[next++ % kinds.length];
        try {
          await op();
        } catch {
          failures++;
        }
      }
    }));
    assert.equal(failures, N, "every borrower failed, as designed");
    await waitFor(() => pool.getStats().poolAvailable === pool.getStats().poolSize, {
      timeout: 3_000,
      message: "nothing checked out",
    });
    await waitFor(async () => (await sessionsInState(db.name, "idle in transaction")) === 0, {
      timeout: 3_000,
      message: "no session idle in transaction",
    });
    assert.equal(await sessionsInState(db.name, "idle in transaction (aborted)"), 0);
    const stats = pool.getStats();
    assert.ok(stats.poolSize <= 4);
    // Discarded connections close asynchronously: their backends leave pg_stat_activity a moment later.
    await waitFor(async () => (await backendPids(db.name)).length === pool.getStats().poolSize, {
      timeout: 3_000,
      message: "one backend per pooled connection, no leaked session",
    });
    assert.equal((await pool.query("select count(*)::int as n from throwers")).rows[0].n, 0);
  } finally {
    await pool.close();
  }
});

/** Tries the advisory lock from another session of the test database (locks are per database). */
async function tryAdvisoryLockElsewhere(key: number): Promise<boolean> {
  const client = new pg.Client({ connectionString: db.url });
  client.on("error", () => {});
  await client.connect();
  try {
    return (await client.query("select pg_try_advisory_lock($1) as ok", [key])).rows[0].ok;
  } finally {
    await client.end();
  }
}

Deno.test("reset: discardAll clears role, search_path, temp tables, LISTEN, advisory locks and prepared statements", async () => {
  const role = `${db.name}_role`;
  await adminQuery(`create role "${role}"`);
  const pool = onePool({ reset: ConnectionPool.discardAll });
  try {
    const conn = await pool.getconn();
    const pid = pidOf(conn);
    await conn.query(`set role "${role}"`);
    await conn.query("set search_path to nowhere");
    await conn.query("create temp table leftover (n int)");
    await conn.query("listen leftover_channel");
    await conn.query("select pg_advisory_lock(4242)");
    await conn.query("prepare leftover_stmt as select 1");
    await conn.query({ name: "named_by_pg", text: "select 2 as x" });
    assert.equal((await conn.query("select current_user as u")).rows[0].u, role);
    await pool.putconn(conn);

    const next = await pool.getconn();
    try {
      assert.equal(pidOf(next), pid, "same session, reset");
      const { rows: [s] } = await next.query(`
        select current_user = session_user as role_reset,
               current_setting('search_path') as search_path,
               to_regclass('pg_temp.leftover') is null as temp_gone,
               (select count(*)::int from pg_listening_channels()) as listening,
               (select count(*)::int from pg_locks where locktype = 'advisory' and pid = pg_backend_pid()) as advisory,
               (select count(*)::int from pg_prepared_statements) as prepared`);
      assert.deepEqual(s, {
        role_reset: true,
        search_path: '"$user", public',
        temp_gone: true,
        listening: 0,
        advisory: 0, // DISCARD ALL runs pg_advisory_unlock_all()
        prepared: 0,
      });
      // Another session can take the advisory lock at once.
      assert.equal(await tryAdvisoryLockElsewhere(4242), true);
      // node-postgres remembers statement names it prepared; after DISCARD ALL
      // reusing one must still work.
      assert.equal((await next.query({ name: "named_by_pg", text: "select 2 as x" })).rows[0].x, 2);
    } finally {
      await pool.putconn(next);
    }
  } finally {
    await pool.close();
    await adminQuery(`drop role if exists "${role}"`);
  }
});
