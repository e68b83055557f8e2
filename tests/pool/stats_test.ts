/**
 * getStats()/popStats(), leak detection, and timers that never keep the
 * process alive.
 */
import assert from "node:assert/strict";
import { ConnectionPool, PoolTimeoutError } from "../../mod.ts";
import { withTestDatabase } from "../_db.ts";
import { captureLogs } from "../_pool_helpers.ts";

const KEYS = [
  "poolMin",
  "poolMax",
  "poolSize",
  "poolAvailable",
  "requestsWaiting",
  "usageMs",
  "requestsNum",
  "requestsQueued",
  "requestsWaitMs",
  "requestsErrors",
  "returnsBad",
  "connectionsNum",
  "connectionsMs",
  "connectionsErrors",
  "connectionsLost",
  "transactionRetries",
];

Deno.test("getStats() has exactly psycopg_pool's keys in camelCase, with current values and counters", () =>
  withTestDatabase(async (db) => {
    await using pool = new ConnectionPool({ conninfo: db.url, minSize: 2, maxSize: 3 });
    await pool.open({ wait: true });
    const a = await pool.getconn();
    const b = await pool.getconn();
    const c = await pool.getconn({ timeout: 5_000 }); // queued, grows to 3
    await assert.rejects(pool.getconn({ timeout: 50 }), PoolTimeoutError);
    await c.end();
    for (const conn of [a, b, c]) await pool.putconn(conn);
    const stats = pool.getStats();
    assert.deepEqual(Object.keys(stats).sort(), [...KEYS].sort());
    assert.equal(stats.poolMin, 2);
    assert.equal(stats.poolMax, 3);
    assert.equal(stats.requestsWaiting, 0);
    assert.equal(stats.requestsNum, 4);
    assert.equal(stats.requestsQueued, 2);
    assert.equal(stats.requestsErrors, 1);
    assert.equal(stats.returnsBad, 1);
    assert.equal(stats.connectionsNum, 3);
    assert.equal(stats.connectionsErrors, 0);
    assert.ok(stats.requestsWaitMs >= 40, `waited ${stats.requestsWaitMs} ms`);
    assert.ok(stats.connectionsMs > 0);
    assert.ok(stats.usageMs > 0);
    for (const key of KEYS) assert.equal(typeof stats[key as keyof typeof stats], "number", key);
  }));

Deno.test("popStats() returns the stats and resets the counters, not the current values", () =>
  withTestDatabase(async (db) => {
    await using pool = new ConnectionPool({ conninfo: db.url, minSize: 2 });
    await pool.open({ wait: true });
    await pool.query("select 1");
    const popped = pool.popStats();
    assert.equal(popped.requestsNum, 1);
    assert.equal(popped.connectionsNum, 2);
    const after = pool.getStats();
    for (const key of KEYS.slice(5)) assert.equal(after[key as keyof typeof after], 0, key);
    assert.equal(after.poolMin, 2);
    assert.equal(after.poolSize, 2);
    assert.equal(after.poolAvailable, 2);
  }));

Deno.test("leakDetectionThreshold logs a warning with the borrower's stack", () =>
  withTestDatabase(async (db) => {
    await using logs = await captureLogs();
    await using pool = new ConnectionPool({ conninfo: db.url, name: "leaky", minSize: 1, leakDetectionThreshold: 100 });
    const conn = await borrowAndForget(pool);
    let warning: string | undefined;
    const start = performance.now();
    while (warning === undefined && performance.now() - start < 3_000) {
      warning = logs.records.filter((r) => r.level === "warning").map((r) => r.message.join("")).find((m) =>
        /leak/i.test(m)
      );
      await new Promise((r) => setTimeout(r, 10));
    }
    assert.ok(warning, "a leak warning was logged");
    assert.match(warning, /leaky/);
    assert.match(warning, /borrowAndForget/, "the stack points at the borrower");
    const record = logs.records.find((r) => r.level === "warning" && r.message.join("").includes("leak"))!;
    assert.deepEqual(record.category, ["tidepool", "leaky"]);
    await pool.putconn(conn);
  }));

Deno.test("no leak warning for a connection returned before the threshold", () =>
  withTestDatabase(async (db) => {
    await using logs = await captureLogs();
    await using pool = new ConnectionPool({ conninfo: db.url, minSize: 1, leakDetectionThreshold: 150 });
    const conn = await pool.getconn();
    await pool.putconn(conn);
    // A second, leaked checkout proves the detector is live and orders the logs.
    const leaked = await pool.getconn();
    const start = performance.now();
    while (!logs.records.some((r) => r.level === "warning") && performance.now() - start < 3_000) {
      await new Promise((r) => setTimeout(r, 10));
    }
    assert.equal(logs.records.filter((r) => r.level === "warning").length, 1, "only the kept connection warned");
    await pool.putconn(leaked);
  }));

async function borrowAndForget(pool: ConnectionPool) {
  return await pool.getconn();
}

Deno.test("the pool's timers (backoff retry, maxIdle job) do not keep the process alive", async () => {
  // Open sockets keep a process alive (as in Node); the pool's own timers must
  // not. A pool on a refused port has only timers: the 60 s backoff retry and
  // the periodic maxIdle job. The process must exit by itself, at once.
  const code = `
    import { ConnectionPool } from "./mod.ts";
    const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = l.addr.port;
    l.close();
    const pool = new ConnectionPool({
      conninfo: "postgres://tp@127.0.0.1:" + port + "/tp",
      minSize: 2, maxIdle: 1000, maxLifetime: 5000,
      backoff: { initialDelay: 60000 },
    });
    await pool.open();
    while (pool.getStats().connectionsErrors < 2) await new Promise((r) => setTimeout(r, 10));
    console.log("retrying");
  `;
  const child = new Deno.Command(Deno.execPath(), {
    args: ["eval", "--ext=ts", code],
    cwd: new URL("../..", import.meta.url),
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const started = performance.now();
  const timer = setTimeout(() => child.kill("SIGKILL"), 20_000);
  const out = await child.output();
  clearTimeout(timer);
  const ms = performance.now() - started;
  const stdout = new TextDecoder().decode(out.stdout);
  assert.equal(out.signal, null, "the process had to be killed: a timer kept it alive");
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  assert.match(stdout, /retrying/);
  assert.ok(ms < 15_000, `exited after ${ms} ms`);
});
