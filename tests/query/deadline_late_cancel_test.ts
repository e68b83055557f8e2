/**
 * A CancelRequest cancels whatever its backend runs when it lands, so a
 * connection goes to its next user only after every cancel sent for it has
 * completed. A proxy holds the first cancel back (a slow network path) while
 * a later one does the cancelling; against the real server.
 */
import assert from "node:assert/strict";
import { ConnectionPool } from "../../mod.ts";
import { adminQuery, withTestDatabase } from "../_db.ts";
import { proxyToServer } from "../_faults.ts";
import type { Proxy } from "../_proxy.ts";
import { waitFor } from "../_db.ts";

const HOLD_MS = 1_500;

/** From now on, the first new connection through `proxy` (the first cancel) is held HOLD_MS, later ones are not. */
function holdFirstCancel(proxy: Proxy): Promise<void> {
  proxy.delay(HOLD_MS);
  return waitFor(() => proxy.pending > 0, { timeout: 5_000, message: "no cancel reached the proxy" }).then(() =>
    proxy.delay(0)
  );
}

async function runningLike(dbName: string, pattern: string): Promise<boolean> {
  const [row] = await adminQuery<{ n: number }>(
    "select count(*)::int as n from pg_stat_activity where datname = $1 and state = 'active' and query like $2",
    [dbName, pattern],
  );
  return row.n > 0;
}

Deno.test("a cancel held back past a later one never cancels the next caller's pipelined statement", () =>
  withTestDatabase(async (db) => {
    await using proxy = await proxyToServer();
    await using pool = new ConnectionPool({ conninfo: proxy.url(db.url), minSize: 1, maxSize: 1, pipeline: 8 });
    await pool.open({ wait: true });
    const held = holdFirstCancel(proxy);
    const started = performance.now();
    await assert.rejects(
      pool.query("select pg_sleep(30) as deadline_sleeper", [], { timeout: 200 }),
      (e: unknown) => (e as { code?: string }).code === "57014",
    );
    await held;
    // Another caller, no deadline, pipelined on the same (only) connection: it runs across the time the held
    // cancel lands unless the connection waited for it.
    const others = await Promise.allSettled(
      Array.from({ length: 4 }, (_, i) => pool.query("select pg_sleep(0.5), $1::int as n", [i])),
    );
    assert.deepEqual(others.map((r) => r.status === "rejected" ? String(r.reason) : "ok"), Array(4).fill("ok"));
    // The connection was handed on only after the held cancel completed.
    assert.ok(performance.now() - started >= HOLD_MS, "reused before the held cancel completed");
    assert.equal(await runningLike(db.name, "%deadline_sleeper%"), false);
  }));

Deno.test("a withConnection callback that gives the connection back while its cancel is on the way: the next borrower's statement is not cancelled", () =>
  withTestDatabase(async (db) => {
    await using proxy = await proxyToServer();
    await using pool = new ConnectionPool({ conninfo: proxy.url(db.url), minSize: 1, maxSize: 1 });
    await pool.open({ wait: true });
    const held = holdFirstCancel(proxy);
    const first = pool.withConnection(async (conn) => {
      const sleeping = conn.query("select pg_sleep(0.4) as early_return").catch((e: unknown) => e);
      await held; // the deadline fired and its cancel is held in the proxy
      const outcome = await sleeping; // ends by itself or by a later cancel
      await pool.putconn(conn); // given back early, with the held cancel still on its way
      return outcome;
    }, { timeout: 100 });
    await first.catch(() => {});
    // Runs across the moment the held cancel lands, unless the connection waited for it.
    const { rows } = await pool.query("select pg_sleep(2), 'next' as who");
    assert.equal(rows[0].who, "next");
  }));
