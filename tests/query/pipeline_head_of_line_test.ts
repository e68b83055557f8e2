/**
 * Head-of-line placement: a pipelined statement waits for the statements
 * ahead of it on its connection, so on equal load it goes to the connection
 * whose oldest statement in flight is youngest, not to the first one listed.
 * Against the real server, with a statement held on a lock.
 */
import assert from "node:assert/strict";
import pg from "pg";
import { ConnectionPool } from "../../mod.ts";
import { waitFor, withTestDatabase } from "../_db.ts";
import { recordingDriver, running } from "../_pipeline_helpers.ts";

Deno.test("pipelined: on equal load a statement goes to the connection whose oldest statement is youngest, not behind a lock wait", () =>
  withTestDatabase(async (db) => {
    const locker = new pg.Client(db.url);
    await locker.connect();
    try {
      await locker.query("create table held (x int)");
      await locker.query("begin");
      await locker.query("lock table held in access exclusive mode");
      const driver = recordingDriver(db.url);
      await using pool = new ConnectionPool({ driver, minSize: 2, maxSize: 2, pipeline: 8, timeout: 10_000 });
      await pool.open({ wait: true });
      // Two lane connections with one statement each: the first waits on the lock, the second is quick.
      const blocked = pool.query("select count(*) from held /* lock-waiter */");
      blocked.catch(() => {}); // awaited below; a failed assertion first must not leave it unhandled
      const quick = pool.query("select pg_sleep(0.2) /* second */");
      quick.catch(() => {});
      const started = performance.now();
      const next = pool.query("select $1::int as n", [7]);
      next.catch(() => {});
      assert.equal(driver.calls.length, 3);
      assert.notEqual(driver.calls[0].conn, driver.calls[1].conn, "the first two took a connection each");
      assert.equal(driver.calls[2].conn, driver.calls[1].conn, "placed behind the lock wait");
      assert.deepEqual((await next).rows, [{ n: 7 }]);
      const took = performance.now() - started;
      assert.ok(took < 2_000, `settled after ${Math.round(took)} ms`);
      await quick;
      await waitFor(async () => (await running(db.name, "lock-waiter")) !== undefined, { timeout: 5_000 });
      await locker.query("commit");
      await blocked;
    } finally {
      await locker.end();
    }
  }));
