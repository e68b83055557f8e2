/**
 * A connection lost under pipelined statements fails them with
 * `ConnectionLostError` only, whatever the driver's error looks like: a
 * socket error's `code` (`EPIPE`, `ECONNRESET`) is five upper-case letters,
 * like a SQLSTATE, but the server never answered. Against the real server.
 */
import assert from "node:assert/strict";
import { ConnectionLostError, ConnectionPool } from "../../mod.ts";
import { waitFor, withTestDatabase } from "../_db.ts";
import { FAST_BACKOFF, proxyToServer } from "../_faults.ts";
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

Deno.test("pipelined under load: connections cut again and again fail statements with ConnectionLostError or the server's own error, never a raw socket error", () =>
  withTestDatabase(async (db) => {
    await using proxy = await proxyToServer();
    await using pool = new ConnectionPool({
      conninfo: proxy.url(db.url),
      minSize: 4,
      maxSize: 4,
      pipeline: 16,
      backoff: FAST_BACKOFF,
      timeout: 10_000,
    });
    await pool.open({ wait: true });
    let stop = false;
    const raw: string[] = []; // the first few, for the message
    let rawCount = 0;
    let lost = 0;
    const load = Array.from({ length: 32 }, async (_, task) => {
      for (let i = 0; !stop; i++) {
        try {
          await pool.query("select $1::int as n, pg_sleep(0.001)", [task * 100_000 + i]);
        } catch (error) {
          if (error instanceof ConnectionLostError) lost++;
          else if (typeof (error as { severity?: unknown }).severity !== "string") {
            if (rawCount++ < 5) raw.push(String(error));
          }
        }
      }
    });
    try {
      for (let cut = 0; cut < 10 && rawCount === 0; cut++) {
        await waitFor(() => pool.getStats().poolSize === 4, { timeout: 5_000, message: "the pool did not heal" });
        const before = pool.getStats().requestsNum ?? 0;
        await waitFor(() => (pool.getStats().requestsNum ?? 0) > before + 64, { timeout: 5_000 }); // under load again
        await proxy.cutAll();
      }
    } finally {
      stop = true;
      await Promise.all(load);
    }
    assert.ok(lost > 0, "no cut failed a statement");
    assert.equal(rawCount, 0, `${rawCount} raw errors (${raw.join("; ")}), ${lost} ConnectionLostError`);
  }));
