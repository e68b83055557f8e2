/**
 * Pipelining and `reset`: a reset promises that one caller's session state
 * never reaches another, and statements pipelined together share a session,
 * so with `reset` set `pipeline` defaults to 1. Against the real server.
 */
import assert from "node:assert/strict";
import { ConnectionPool } from "../../mod.ts";
import { withTestDatabase } from "../_db.ts";
import { recordingDriver } from "../_pipeline_helpers.ts";
// An explicit pipeline > 1 with reset is honoured: tests/query/sql_classifier_test.ts runs the table that way.

Deno.test("with reset set, pipeline defaults to 1: a burst never has two statements in flight on one connection", () =>
  withTestDatabase(async (db) => {
    const driver = recordingDriver(db.url);
    await using pool = new ConnectionPool({ driver, minSize: 2, maxSize: 2, reset: ConnectionPool.discardAll });
    await pool.open({ wait: true });
    await Promise.all(Array.from({ length: 64 }, (_, i) => pool.query("select $1::int as n", [i])));
    assert.equal(driver.maxInFlight, 1);
  }));

Deno.test("with reset set, a temp view or a function's set_config never reaches other callers of pool.query", () =>
  withTestDatabase(async (db) => {
    await using pool = new ConnectionPool({
      conninfo: db.url,
      minSize: 2,
      maxSize: 2,
      reset: ConnectionPool.discardAll,
    });
    await pool.query("create table accounts (id int)");
    await pool.query("insert into accounts values (1)");
    // No check of the text can see what a function does when called: only not pipelining keeps this apart.
    await pool.query(
      "create function switch_encoding() returns text language sql as $$ select set_config('client_encoding', 'LATIN1', false) $$",
    );
    await pool.query("create table notes (body text)");
    for (let round = 0; round < 5; round++) {
      // In this order: the state-changing statements first, so that the others are sent behind them.
      const view = pool.query("CREATE/**/OR REPLACE TEMP VIEW accounts AS SELECT 999 AS id");
      const encoding = pool.query("select switch_encoding()");
      const readers = Array.from({ length: 10 }, () => pool.query("select id from accounts"));
      const writers = Array.from({ length: 10 }, () => pool.query("insert into notes values ($1)", ["café"]));
      await Promise.all([view, encoding, ...readers, ...writers]);
      for (const r of await Promise.all(readers)) assert.deepEqual(r.rows, [{ id: 1 }]);
    }
    const { rows } = await pool.query("select count(*)::int as bad from notes where body <> 'café'");
    assert.deepEqual(rows, [{ bad: 0 }]);
  }));
