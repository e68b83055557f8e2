/**
 * A connection lost under pipelined statements fails them with
 * `ConnectionLostError` only, whatever the driver's error looks like: a
 * socket error's `code` (`EPIPE`, `ECONNRESET`) is five upper-case letters,
 * like a SQLSTATE, but the server never answered. Against the real server.
 */
import assert from "node:assert/strict";
import { ConnectionLostError, ConnectionPool } from "../../mod.ts";
import { withTestDatabase } from "../_db.ts";
import { FAST_BACKOFF } from "../_faults.ts";
import { recordingDriver } from "../_pipeline_helpers.ts";

/** The error Node's net module gives a write on a socket the peer reset. */
const socketError = (code: string) => Object.assign(new Error(`write ${code}`), { code, errno: -32, syscall: "write" });

for (const code of ["EPIPE", "ECONNRESET", "ETIMEDOUT"]) {
  Deno.test(`pipelined: a socket dying with ${code} fails every statement in flight with ConnectionLostError`, () =>
    withTestDatabase(async (db) => {
      const driver = recordingDriver(db.url);
      await using pool = new ConnectionPool({ driver, minSize: 1, maxSize: 1, pipeline: 8, backoff: FAST_BACKOFF });
      await pool.open({ wait: true });
      const inFlight = Array.from({ length: 8 }, (_, i) => pool.query("select pg_sleep(2), $1::int as n", [i]));
      const settled = Promise.allSettled(inFlight);
      const conn = driver.calls[0].conn as unknown as { connection: { stream: { destroy(e: Error): void } } };
      assert.equal(driver.calls.length, 8, "all eight pipelined on the one connection");
      conn.connection.stream.destroy(socketError(code));
      const results = await settled;
      for (const r of results) {
        assert.equal(r.status, "rejected");
        const error = (r as PromiseRejectedResult).reason;
        assert.ok(error instanceof ConnectionLostError, `expected ConnectionLostError, got ${error}`);
        assert.equal((error.cause as { code?: string }).code, code);
      }
      // The pool heals.
      assert.deepEqual((await pool.query("select 1 as n")).rows, [{ n: 1 }]);
    }));
}
