/**
 * The one SQL classifier, through both of its users: pipelining (a statement
 * that may leave session state runs on a connection of its own) and the
 * `pooler: "transaction"` guard (such a statement is refused, before it is
 * sent, on every path). The table (./_sql_cases.ts) is run by both, against
 * the real server and through a real PgBouncer 1.18 in transaction mode.
 */
import assert from "node:assert/strict";
import pg from "pg";
import { ConnectionPool, toPgPool } from "../../mod.ts";
import { withTestDatabase } from "../_db.ts";
import { findPgBouncer, startPgBouncer } from "../_pgbouncer.ts";
import { recordingDriver } from "../_pipeline_helpers.ts";
import { pipelinable } from "../../src/query/_pipeline.ts";
import { checkPoolerQuery } from "../../src/query/_pooler.ts";
import { SETUP, STATEFUL, STATELESS } from "./_sql_cases.ts";

const pgbouncer = await findPgBouncer();
if (!pgbouncer) console.warn("pgbouncer not found: the PgBouncer tests are skipped");

const refusedByGuard = (text: string) => {
  try {
    checkPoolerQuery(text);
    return false;
  } catch (error) {
    if (error instanceof TypeError && /'pooler: "transaction"'/.test(error.message)) return true;
    throw error;
  }
};

Deno.test("SQL classifier table: at least 150 statements, none listed twice", () => {
  assert.ok(STATEFUL.length + STATELESS.length >= 150, `${STATEFUL.length + STATELESS.length} statements`);
  assert.equal(new Set([...STATEFUL, ...STATELESS]).size, STATEFUL.length + STATELESS.length);
});

Deno.test("SQL classifier table: no spelling of a stateful form is pipelined, no stateless form is sent alone", () => {
  assert.deepEqual(STATEFUL.filter((text) => pipelinable(text)), [], "stateful statements pipelined");
  assert.deepEqual(STATELESS.filter((text) => !pipelinable(text)), [], "stateless statements sent alone");
});

Deno.test('SQL classifier table: the pooler "transaction" guard refuses every stateful form and no stateless one', () => {
  // Several statements in one text are the pipeline's concern, not the guard's: it reads each of them.
  assert.deepEqual(STATEFUL.filter((text) => !refusedByGuard(text)), [], "stateful statements let through");
  assert.deepEqual(STATELESS.filter((text) => refusedByGuard(text)), [], "stateless statements refused");
});

Deno.test("SQL classifier: stays linear on hostile text", () => {
  const texts = [
    "select " + "set_config(".repeat(20_000),
    "select " + "set_config('a', ".repeat(20_000) + ")".repeat(20_000),
    "select " + "(".repeat(50_000),
    "/* ".repeat(20_000) + "x",
    "DO $$ " + "begin ".repeat(20_000) + "$$",
    "declare c " + "with ".repeat(20_000) + ";",
    "$a" + "$".repeat(10_000),
  ];
  const started = performance.now();
  for (const text of texts) pipelinable(text);
  const took = performance.now() - started;
  assert.ok(took < 2_000, `${Math.round(took)} ms for ${texts.length} hostile texts`);
});

Deno.test("pipelined with reset and an explicit pipeline: every stateful statement of the table runs with nothing beside it", () =>
  withTestDatabase(async (db) => {
    const driver = recordingDriver(db.url);
    await using pool = new ConnectionPool({
      driver,
      minSize: 2,
      maxSize: 2,
      pipeline: 8,
      reset: ConnectionPool.discardAll, // also frees the advisory locks some statements take
    });
    await pool.open({ wait: true });
    for (const sql of SETUP) await pool.query(sql);
    for (const text of STATEFUL) {
      await Promise.allSettled([
        ...Array.from({ length: 4 }, (_, i) => pool.query("select $1::int as filler", [i])),
        pool.query(text),
        ...Array.from({ length: 4 }, (_, i) => pool.query("select $1::int as filler", [i])),
      ]);
    }
    assert.ok(driver.maxInFlight > 1, "the fillers were pipelined: an explicit pipeline > 1 with reset is honoured");
    const shared = STATEFUL.filter((text) => (driver.company.get(text) ?? 1) > 1);
    assert.deepEqual(shared, [], "stateful statements that ran beside others");
  }));

const TIMEOUT = 60_000;
Deno.test({
  name: 'through PgBouncer with pooler "transaction": the table\'s stateful statements are refused on every path ' +
    "(pool.query, a lent connection, transaction(), toPgPool) and its stateless ones are sent",
  ignore: !pgbouncer,
  sanitizeResources: true,
  fn: () =>
    withTestDatabase(async (db) => {
      await using bouncer = await startPgBouncer(pgbouncer!, db.url, { poolSize: 2 });
      const url = bouncer.url(db.url);
      const direct = new pg.Client(db.url);
      await direct.connect();
      try {
        for (const sql of SETUP) await direct.query(sql);
      } finally {
        await direct.end();
      }
      const pool = new ConnectionPool({
        conninfo: url,
        pooler: "transaction",
        minSize: 1,
        maxSize: 2,
        timeout: TIMEOUT,
      });
      const facade = toPgPool(pool);
      try {
        const before = (await pool.query("select current_setting('search_path') as s")).rows[0].s;
        const let_through: string[] = [];
        for (const text of STATEFUL) {
          const refused = (error: unknown) => error instanceof TypeError && /pooler/.test((error as Error).message);
          await pool.query(text).then(() => let_through.push(`pool.query: ${text}`), (e) => {
            if (!refused(e)) let_through.push(`pool.query: ${text}: ${e}`);
          });
          await pool.withConnection((conn) => conn.query(text)).then(
            () => let_through.push(`lent: ${text}`),
            (e) => {
              if (!refused(e)) let_through.push(`lent: ${text}: ${e}`);
            },
          );
          await pool.transaction((conn) => conn.query(text)).then(
            () => let_through.push(`transaction: ${text}`),
            (e) => {
              if (!refused(e)) let_through.push(`transaction: ${text}: ${e}`);
            },
          );
          await facade.query(text).then(() => let_through.push(`toPgPool: ${text}`), (e) => {
            if (!refused(e)) let_through.push(`toPgPool: ${text}: ${e}`);
          });
        }
        assert.deepEqual(let_through, []);
        const refusedStateless: string[] = [];
        for (const text of STATELESS) {
          // Some fail on the server (a cursor outside a transaction, PREPARE TRANSACTION with none allowed): sent.
          await pool.query(text).catch((e) => {
            if (e instanceof TypeError || typeof (e as { code?: unknown }).code !== "string") {
              refusedStateless.push(`${text}: ${e}`);
            }
          });
        }
        assert.deepEqual(refusedStateless, []);
        // Every server connection behind the bouncer kept its session defaults: sample both, many times.
        const seen = await Promise.all(Array.from({ length: 12 }, () =>
          pool.query(
            "select current_setting('search_path') as s, current_setting('client_encoding') as e, " +
              "(select count(*)::int from pg_class where relpersistence = 't' and pg_table_is_visible(oid)) as temp, " +
              "(select count(*)::int from pg_locks where locktype = 'advisory') as locks",
          )));
        for (const { rows } of seen) assert.deepEqual(rows[0], { s: before, e: "UTF8", temp: 0, locks: 0 });
      } finally {
        await facade.end(); // closes the pool
      }
    }),
});
