/**
 * `pooler: "transaction"`: the pool behind a transaction pooler. The rules are
 * checked with a recording fake connection (what is refused is never sent),
 * and the whole thing runs through a real PgBouncer 1.18 in transaction mode
 * (skipped, with a message, on a machine without the `pgbouncer` binary).
 */
import assert from "node:assert/strict";
import { ConnectionPool, createDenoPostgresDriver, type Driver, NullConnectionPool, toPgPool } from "../../mod.ts";
import { Kysely, PostgresDialect, sql } from "kysely";
import pg from "pg";
import { withTestDatabase } from "../_db.ts";
import { type DenoPostgres, loadDenoPostgres } from "../_deno_postgres.ts";
import { findPgBouncer, type PgBouncer, startPgBouncer } from "../_pgbouncer.ts";
import { startWorker } from "../_shared_helpers.ts";
import { STATEFUL, STATELESS } from "./_sql_cases.ts";

const POOLS = { ConnectionPool, NullConnectionPool } as const;

for (const [name, Pool] of Object.entries(POOLS)) {
  Deno.test(`${name}: an unknown pooler value is refused with a TypeError naming the option`, () => {
    for (const pooler of ["session", "Transaction", "statement", "", true, 1, null, {}]) {
      assert.throws(
        () => new Pool({ conninfo: "postgres://u@localhost/db", pooler } as never),
        (e: unknown) => e instanceof TypeError && /'pooler'/.test(e.message),
        `pooler: ${JSON.stringify(pooler)}`,
      );
    }
  });

  Deno.test(`${name}: pooler "transaction" refuses reset: discardAll, naming both options`, () => {
    assert.throws(
      () =>
        new Pool({ conninfo: "postgres://u@localhost/db", pooler: "transaction", reset: ConnectionPool.discardAll }),
      (e: unknown) => e instanceof TypeError && /'reset'/.test(e.message) && /pooler/.test(e.message),
    );
  });
}

/** A connection that records what reaches it: a refused statement must not. */
class RecordingConn {
  sent: unknown[] = [];
  query(config: unknown, _values?: unknown[]): Promise<{ rows: never[]; rowCount: number; fields: never[] }> {
    this.sent.push(config);
    return Promise.resolve({ rows: [], rowCount: 0, fields: [] });
  }
}

function recordingDriver(): Driver<RecordingConn> {
  return {
    description: "fake://",
    connect: () => Promise.resolve(new RecordingConn()),
    close: () => Promise.resolve(),
    status: () => "idle",
    rollback: () => Promise.resolve(),
    ping: () => Promise.resolve(),
    query: (conn, text, params) => conn.query(text, params),
    watch: () => {},
  };
}

// Session state a transaction pooler cannot keep, each refused before it is sent, and statements that leave none,
// sent as they are: the SQL classifier's table, which pipelining runs too.
const REFUSED = STATEFUL;
const ALLOWED = [...STATELESS, ""];

Deno.test('pooler "transaction": session-state statements are refused before they are sent, others pass', async () => {
  await using pool = new ConnectionPool({ driver: recordingDriver(), pooler: "transaction", minSize: 1, maxSize: 2 });
  await using conn = await pool.connection();
  for (const sql of REFUSED) {
    assert.throws(
      () => conn.query(sql),
      (e: unknown) => e instanceof TypeError && /'pooler: "transaction"'/.test(e.message),
      `not refused: ${sql}`,
    );
    await assert.rejects(pool.query(sql), TypeError, `pool.query did not refuse: ${sql}`);
  }
  const before = conn.sent.length;
  for (const sql of ALLOWED) await conn.query(sql);
  assert.deepEqual(conn.sent.slice(before), ALLOWED);
  assert.ok(!conn.sent.some((s) => REFUSED.includes(s as string)), "a refused statement reached the connection");
});

Deno.test('pooler "transaction": the check stays linear on hostile text (no regex backtracking blow-up)', async () => {
  await using pool = new ConnectionPool({ driver: recordingDriver(), pooler: "transaction", minSize: 1, maxSize: 2 });
  await using conn = await pool.connection();
  const texts = [
    " ".repeat(50_000) + "x",
    "/* a */ ".repeat(10_000) + "x",
    "-- c\n".repeat(10_000) + "set",
    "declare c " + "with ".repeat(20_000) + ";",
    "select set_config(" + "'a', ".repeat(20_000),
    "select " + "set_config(".repeat(20_000),
    "select " + "pg_advisory_".repeat(20_000),
  ];
  const started = performance.now();
  for (const text of texts) {
    try {
      await conn.query(text);
    } catch (e) {
      if (!(e instanceof TypeError)) throw e;
    }
  }
  // Linear: well under a millisecond each; exponential backtracking would take minutes.
  const took = performance.now() - started;
  assert.ok(took < 5_000, `the check took ${Math.round(took)} ms on ${texts.length} texts`);
});

Deno.test('pooler "transaction": the refusal names the fix', async () => {
  await using pool = new ConnectionPool({ driver: recordingDriver(), pooler: "transaction", minSize: 1, maxSize: 2 });
  await using conn = await pool.connection();
  const message = (sql: unknown) => {
    try {
      conn.query(sql);
    } catch (e) {
      return (e as Error).message;
    }
    assert.fail(`not refused: ${JSON.stringify(sql)}`);
  };
  assert.match(message("set search_path = x"), /SET LOCAL/);
  assert.match(message("select pg_advisory_lock(1)"), /pg_advisory_xact_lock/);
  assert.match(message("create temp table t (x int)"), /ON COMMIT DROP/);
  assert.match(message({ name: "by_id", text: "select $1::int" }), /Named prepared statement 'by_id'.*Drop 'name'/);
});

Deno.test('pooler "transaction": a named prepared statement is refused, an unnamed config passes', async () => {
  await using pool = new ConnectionPool({ driver: recordingDriver(), pooler: "transaction", minSize: 1, maxSize: 2 });
  await using conn = await pool.connection();
  assert.throws(() => conn.query({ name: "q1", text: "select 1" }), TypeError);
  assert.throws(() => conn.query({ name: "q1", text: "select $1::int", values: [1] }), TypeError);
  // pool.query with a config object (plain JavaScript callers, ORMs passing pg's shape).
  await assert.rejects(pool.query({ name: "q2", text: "select 1" } as unknown as string), TypeError);
  await conn.query({ text: "select $1::int", values: [1] });
  await conn.query({ name: "", text: "select 2" });
  assert.deepEqual(conn.sent, [{ text: "select $1::int", values: [1] }, { name: "", text: "select 2" }]);
});

Deno.test("without pooler, nothing is checked", async () => {
  await using pool = new ConnectionPool({ driver: recordingDriver(), minSize: 1 });
  await using conn = await pool.connection();
  await conn.query("SET search_path = x");
  await conn.query({ name: "q", text: "select 1" });
  assert.equal(conn.sent.length, 2);
});

// --- Through a real PgBouncer in transaction mode ---

const pgbouncer = await findPgBouncer();
if (!pgbouncer) {
  console.error(
    "pooler_test: skipping the PgBouncer tests: no pgbouncer binary found " +
      "(apt-get install pgbouncer, or set PGBOUNCER=/path/to/pgbouncer)",
  );
}

/** A test database with a PgBouncer (transaction mode, 4 server connections) in front of it. */
function withBouncer(fn: (bouncer: PgBouncer, url: string, directUrl: string) => Promise<void>): () => Promise<void> {
  return () =>
    withTestDatabase(async (db) => {
      await using bouncer = await startPgBouncer(pgbouncer!, db.url, { poolSize: 4 });
      try {
        await fn(bouncer, bouncer.url(db.url), db.url);
      } catch (error) {
        console.error(`pgbouncer log:\n${bouncer.logs().split("\n").slice(-20).join("\n")}`);
        throw error;
      }
    });
}

for (const [name, Pool] of Object.entries(POOLS)) {
  Deno.test({
    name: `${name} with pooler "transaction" through PgBouncer: thousands of queries from many tasks, hundreds of ` +
      `transactions`,
    ignore: !pgbouncer,
    fn: withBouncer(async (_bouncer, url, directUrl) => {
      await using pool = new Pool({ conninfo: url, pooler: "transaction", maxSize: 10, timeout: 30_000 });
      await pool.query("create table ledger (task int not null, n int not null)");
      const TASKS = 40;
      const QUERIES = 75; // 3000 in all
      await Promise.all(Array.from({ length: TASKS }, async (_, task) => {
        for (let i = 0; i < QUERIES; i++) {
          const { rows } = await pool.query("select $1::int * 2 as doubled", [task * 1000 + i]);
          assert.equal(rows[0].doubled, (task * 1000 + i) * 2);
        }
      }));
      const TRANSACTIONS = 300;
      await Promise.all(Array.from({ length: 30 }, async (_, task) => {
        for (let i = 0; i < TRANSACTIONS / 30; i++) {
          await pool.transaction(async (conn) => {
            // SET LOCAL and an xact lock are transaction-scoped: allowed, and gone at COMMIT.
            await conn.query("set local statement_timeout = '5s'");
            await conn.query("select pg_advisory_xact_lock($1)", [task]);
            await conn.query("insert into ledger values ($1, $2)", [task, i]);
          });
        }
      }));
      // Counted on a direct connection to the server, not through the bouncer.
      const direct = new pg.Client(directUrl);
      await direct.connect();
      try {
        const { rows } = await direct.query(
          "select count(*)::int as n, count(distinct task)::int as tasks from ledger",
        );
        assert.deepEqual(rows[0], { n: TRANSACTIONS, tasks: 30 });
        // It all went through the bouncer's 4 server connections (plus this one).
        const backends = await direct.query(
          "select count(*)::int as n from pg_stat_activity where datname = current_database()",
        );
        assert.ok(backends.rows[0].n <= 5, `${backends.rows[0].n} server sessions: not through the bouncer?`);
      } finally {
        await direct.end();
      }
      const stats = pool.getStats();
      assert.equal(stats.requestsErrors ?? 0, 0);
    }),
  });
}

Deno.test({
  name: 'through PgBouncer with pooler "transaction": a named prepared statement is refused with a TypeError and ' +
    "the connection stays usable",
  ignore: !pgbouncer,
  fn: withBouncer(async (_bouncer, url) => {
    await using pool = new ConnectionPool({ conninfo: url, pooler: "transaction", minSize: 1, maxSize: 2 });
    await using conn = await pool.connection();
    for (let i = 0; i < 3; i++) {
      assert.throws(
        () => conn.query({ name: "by_id", text: "select $1::int as x", values: [i] }),
        (e: unknown) => e instanceof TypeError && /pooler/.test(e.message),
      );
    }
    const { rows } = await conn.query({ text: "select $1::int as x", values: [7] });
    assert.deepEqual(rows, [{ x: 7 }]);
  }),
});

Deno.test({
  name: 'through PgBouncer with pooler "transaction": session SET is refused and nothing bleeds to another client; ' +
    "SET LOCAL works; check works",
  ignore: !pgbouncer,
  fn: withBouncer(async (_bouncer, url) => {
    await using pool = new ConnectionPool({
      conninfo: url,
      pooler: "transaction",
      minSize: 2,
      maxSize: 4,
      check: ConnectionPool.checkConnection,
    });
    await pool.open({ wait: true, timeout: 10_000 });
    const before = (await pool.query("show search_path")).rows[0].search_path;
    await using conn = await pool.connection();
    assert.throws(() => conn.query("set search_path = attacker"), TypeError);
    await assert.rejects(pool.query("set search_path = attacker"), TypeError);
    await assert.rejects(pool.query("listen jobs"), TypeError);
    await assert.rejects(pool.query("select pg_advisory_lock(42)"), TypeError);
    await assert.rejects(pool.query("create temp table scratch (x int)"), TypeError);
    await pool.transaction(async (c) => {
      await c.query("set local search_path = pg_catalog");
      const shown = await c.query("show search_path") as pg.QueryResult;
      assert.equal(shown.rows[0].search_path, "pg_catalog");
      await c.query("create temp table scratch (x int) on commit drop");
      await c.query("insert into scratch values (1)");
    });
    // Every server connection behind the bouncer still has the default: sample them all.
    const seen = await Promise.all(Array.from({ length: 8 }, () => pool.query("show search_path")));
    for (const { rows } of seen) assert.equal(rows[0].search_path, before);
    // check still works: probes every idle connection through the bouncer.
    await pool.check();
    assert.equal(pool.getStats().connectionsLost ?? 0, 0);
  }),
});

Deno.test({
  name: 'through PgBouncer with pooler "transaction": a Worker sharing the pool gets the same refusal (a TypeError) ' +
    "and its queries work",
  ignore: !pgbouncer,
  fn: withBouncer(async (_bouncer, url) => {
    await using pool = new ConnectionPool({ conninfo: url, pooler: "transaction", minSize: 1, maxSize: 2 });
    const worker = startWorker();
    try {
      await worker.attach(pool.share());
      const refused = await worker.fail("query", { text: "set search_path = attacker" });
      assert.equal(refused.name, "TypeError");
      assert.match(String(refused.message), /pooler/);
      const ok = await worker.call<{ rows: { x: number }[] }>("query", { text: "select $1::int as x", params: [5] });
      assert.deepEqual(ok.rows, [{ x: 5 }]);
    } finally {
      worker.terminate();
    }
  }),
});

Deno.test({
  name: 'through PgBouncer with pooler "transaction": Kysely on toPgPool commits and rolls back, and a named ' +
    "statement through the facade is refused with a TypeError",
  ignore: !pgbouncer,
  fn: withBouncer(async (_bouncer, url) => {
    const pool = new ConnectionPool({ conninfo: url, pooler: "transaction", minSize: 1, maxSize: 3 });
    const facade = toPgPool(pool);
    const db = new Kysely<{ notes: { id: number; body: string } }>({ dialect: new PostgresDialect({ pool: facade }) });
    try {
      await sql`create table notes (id int primary key, body text not null)`.execute(db);
      await Promise.all(Array.from({ length: 20 }, (_, i) =>
        db.transaction().execute(async (trx) => {
          await sql`set local statement_timeout = '5s'`.execute(trx);
          await trx.insertInto("notes").values({ id: i, body: `note ${i}` }).execute();
        })));
      await assert.rejects(
        db.transaction().execute(async (trx) => {
          await trx.insertInto("notes").values({ id: 100, body: "rolled back" }).execute();
          throw new Error("abort");
        }),
        /abort/,
      );
      const { rows } = await sql<{ n: number }>`select count(*)::int as n from notes`.execute(db);
      assert.deepEqual(rows, [{ n: 20 }]);
      await assert.rejects(
        facade.query({ name: "by_id", text: "select body from notes where id = $1", values: [1] }),
        (e: unknown) => e instanceof TypeError && /pooler/.test(e.message),
      );
      await assert.rejects(sql`set search_path = elsewhere`.execute(db), TypeError);
      assert.equal(pool.getStats().returnsBad, 0);
    } finally {
      await db.destroy(); // ends the facade, which closes the pool
    }
  }),
});

const denoPostgres = await loadDenoPostgres();

Deno.test({
  name: 'pooler "transaction" over the deno-postgres driver: pool.query refuses session state before sending it',
  ignore: typeof denoPostgres === "string",
  fn: () =>
    withTestDatabase(async (db) => {
      const { Client } = denoPostgres as DenoPostgres;
      await using pool = new ConnectionPool({
        driver: createDenoPostgresDriver(Client, db.url),
        pooler: "transaction",
        minSize: 1,
        maxSize: 1,
      });
      const before = await pool.query("show search_path");
      await assert.rejects(
        pool.query("set search_path = elsewhere"),
        (e: unknown) => e instanceof TypeError && /'pooler: "transaction"'/.test(e.message),
      );
      await assert.rejects(pool.query("listen jobs"), TypeError);
      // One connection: had the SET been sent, this would show it.
      assert.deepEqual((await pool.query("show search_path")).rows, before.rows);
      assert.deepEqual((await pool.query("select $1::int as x", [7])).rows, [{ x: 7 }]);
    }),
});
