/**
 * The fail-fast rule against a real server: a request is refused at once only
 * when nothing could serve it (no connection open that could come back);
 * otherwise it waits within its timeout, the failed attempt's error as its
 * `cause`. Heal time after an outage is bounded by the backoff ceiling, and
 * demand wakes a sleeping attempt. Boot-time failures (open({ wait }),
 * pool.query()) carry the same cause and text as getconn().
 */
import assert from "node:assert/strict";
import { ConnectionPool, PoolConnectError, PoolTimeoutError } from "../../mod.ts";
import { adminQuery, createTestDatabase, type TestDatabase, waitFor } from "../_db.ts";
import { closedPort, timed, withPort } from "../_pool_helpers.ts";
import { controlledDriver } from "../_fake_driver.ts";

const FAST = { initialDelay: 50, jitter: 0 };

let db: TestDatabase;
Deno.test.beforeAll(async () => {
  db = await createTestDatabase();
});
Deno.test.afterAll(async () => {
  await db.drop();
});

/** A login role with a known password, dropped after `fn`. */
async function withRole(fn: (role: string, url: string) => Promise<void>): Promise<void> {
  const role = `tp_rule_${crypto.randomUUID().replaceAll("-", "").slice(0, 10)}`;
  await adminQuery(`create role ${role} login password 'right-pw'`);
  const url = new URL(db.url);
  url.username = role;
  url.password = "right-pw";
  try {
    await fn(role, url.toString());
  } finally {
    await adminQuery(`drop role if exists ${role}`);
  }
}

for (
  const [what, breakIt, code] of [
    ["the password changed on the server", (role: string) => `alter role ${role} password 'changed'`, "28P01"],
    ["the role set NOLOGIN", (role: string) => `alter role ${role} nologin`, "28000"],
  ] as const
) {
  Deno.test(`fail fast: with a connection lent out, requests wait for it when growth fails because ${what} (${code})`, () =>
    withRole(async (role, url) => {
      await using pool = new ConnectionPool({ conninfo: url, minSize: 1, maxSize: 4, timeout: 5_000, backoff: FAST });
      await pool.open({ wait: true, timeout: 5_000 });
      const held = await pool.getconn();
      await adminQuery(breakIt(role));
      const before = pool.getStats().connectionsErrors;
      const requests = Array.from({ length: 8 }, () =>
        pool.getconn().then(async (conn) => {
          await conn.query("select 1");
          await pool.putconn(conn);
          return "served";
        }, (error) => error));
      await waitFor(() => pool.getStats().connectionsErrors > before + 1, { message: "growth attempts fail" });
      await pool.putconn(held); // the connection that can come back comes back
      const results = await Promise.all(requests);
      assert.deepEqual(results, Array(8).fill("served"), results.map(String).join("\n"));
    }));
}

Deno.test("fail fast: a request that times out while a connection is out carries the growth error as cause and text", () =>
  withRole(async (role, url) => {
    await using pool = new ConnectionPool({ conninfo: url, minSize: 1, maxSize: 2, timeout: 5_000, backoff: FAST });
    await pool.open({ wait: true, timeout: 5_000 });
    const held = await pool.getconn();
    await adminQuery(`alter role ${role} password 'changed'`);
    const { ms, error } = await timed(() => pool.getconn({ timeout: 600 }));
    assert.ok(error instanceof PoolTimeoutError && !(error instanceof PoolConnectError), String(error));
    assert.ok(ms >= 550, `waited ${Math.round(ms)} ms`);
    assert.equal((error.cause as { code?: string }).code, "28P01");
    assert.match(error.message, /last connection error: .*password authentication failed.*\(28P01\)/);
    await pool.putconn(held);
  }));

Deno.test("fail fast: once the last connection that could come back is gone, the waiting requests are refused with PoolConnectError", () =>
  withRole(async (role, url) => {
    await using pool = new ConnectionPool({ conninfo: url, minSize: 1, maxSize: 2, timeout: 10_000, backoff: FAST });
    await pool.open({ wait: true, timeout: 5_000 });
    const held = await pool.getconn();
    await adminQuery(`alter role ${role} password 'changed'`);
    const waiting = timed(() => pool.getconn());
    await waitFor(() => pool.getStats().connectionsErrors > 0, { message: "growth failed" });
    await adminQuery(`select pg_terminate_backend(pid) from pg_stat_activity where usename = '${role}'`);
    await held.query("select 1").catch(() => {});
    await pool.putconn(held); // broken: discarded, and nothing else could serve
    const { ms, error } = await waiting;
    assert.ok(error instanceof PoolConnectError, String(error));
    assert.equal((error.cause as { code?: string }).code, "28P01");
    assert.ok(ms < 5_000, `refused after ${Math.round(ms)} ms`);
  }));

Deno.test("EAI_AGAIN (temporary failure in name resolution) is transient: getconn waits its timeout, the DNS error as cause", async () => {
  const driver = controlledDriver();
  const dns = Object.assign(new Error("getaddrinfo EAI_AGAIN db.internal"), { code: "EAI_AGAIN" });
  driver.failNext(1_000, dns);
  await using pool = new ConnectionPool({ driver, minSize: 1, timeout: 400, backoff: FAST });
  const { ms, error } = await timed(() => pool.getconn());
  assert.ok(error instanceof PoolTimeoutError && !(error instanceof PoolConnectError), String(error));
  assert.ok(ms >= 350, `refused after ${Math.round(ms)} ms`);
  assert.equal(error.cause, dns);
  assert.match(error.message, /EAI_AGAIN/);
});

Deno.test("with the default backoff the pool heals within 5 s of the fix after a 16 s wrong-password outage (the backoff ceiling)", () =>
  withRole(async (role, url) => {
    await adminQuery(`alter role ${role} password 'changed'`);
    await using pool = new ConnectionPool({ conninfo: url, minSize: 1, name: "ceiling" });
    void pool.open();
    await waitFor(() => pool.getStats().connectionsErrors >= 1, { message: "first attempt failed" });
    await new Promise((resolve) => setTimeout(resolve, 16_000)); // the outage itself: a duration, not a wait for a state
    await adminQuery(`alter role ${role} password 'right-pw'`);
    const fixed = performance.now();
    // No demand: only the background attempts, spaced by the backoff.
    await waitFor(() => pool.getStats().connectionsNum >= 1, { timeout: 8_000, interval: 20, message: "healed" });
    const healed = performance.now() - fixed;
    console.log(`healed ${Math.round(healed)} ms after the fix (${pool.getStats().connectionsErrors} failed attempts)`);
    assert.ok(healed < 5_000, `healed ${Math.round(healed)} ms after the fix`);
  }));

Deno.test("a request refused while failing fast wakes the sleeping attempt once the last one is initialDelay old: the pool heals on demand", () =>
  withRole(async (role, url) => {
    await adminQuery(`alter role ${role} password 'changed'`);
    // Without demand the second retry would come 20 s after the first.
    await using pool = new ConnectionPool({
      conninfo: url,
      minSize: 1,
      backoff: { initialDelay: 200, multiplier: 100, maxDelay: 60_000, jitter: 0 },
    });
    void pool.open();
    await waitFor(() => pool.getStats().connectionsErrors >= 2, { message: "two attempts failed" });
    await adminQuery(`alter role ${role} password 'right-pw'`);
    const fixed = performance.now();
    let refused = 0;
    for (;;) {
      const error = await pool.query("select 1").then(() => undefined, (e) => e);
      if (error === undefined) break;
      assert.ok(error instanceof PoolConnectError, String(error));
      refused++;
      assert.ok(performance.now() - fixed < 3_000, `not healed after ${refused} refused requests`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const healed = performance.now() - fixed;
    console.log(`healed on demand ${Math.round(healed)} ms after the fix, ${refused} requests refused`);
    assert.ok(healed < 1_500, `healed ${Math.round(healed)} ms after the fix`);
  }));

Deno.test("a wrong port: pool.query() times out with the same text and ECONNREFUSED cause as getconn()", async () => {
  await using pool = new ConnectionPool({ conninfo: withPort(db.url, closedPort()), timeout: 500, backoff: FAST });
  const viaGetconn = await pool.getconn().catch((e) => e);
  const viaQuery = await pool.query("select 1").catch((e) => e);
  for (const error of [viaGetconn, viaQuery]) {
    assert.ok(error instanceof PoolTimeoutError, String(error));
    assert.equal((error.cause as { code?: string }).code, "ECONNREFUSED", error.message);
    assert.match(error.message, /^Couldn't get a connection from pool '.*' after 500 ms/);
    assert.match(error.message, /last connection error: .*ECONNREFUSED/);
  }
});

Deno.test("no host of a list fits: pool.query() times out with the HostsExhaustedError as cause, as getconn() does", async () => {
  const url = new URL(db.url);
  const conninfo =
    `postgres://${url.username}:${url.password}@127.0.0.1:${closedPort()},127.0.0.1:${closedPort()}${url.pathname}?target_session_attrs=read-write`;
  await using pool = new ConnectionPool({ conninfo, timeout: 500, backoff: FAST });
  for (const error of [await pool.getconn().catch((e) => e), await pool.query("select 1").catch((e) => e)]) {
    assert.ok(error instanceof PoolTimeoutError, String(error));
    assert.equal((error.cause as Error).name, "HostsExhaustedError", error.message);
    assert.match(error.message, /last connection error: No server accepted a session/);
  }
});

Deno.test("open({ wait: true, timeout }) fails at boot within its timeout, the refusal as cause and text: a wrong port (ECONNREFUSED), a wrong password (28P01)", async () => {
  {
    await using pool = new ConnectionPool({ conninfo: withPort(db.url, closedPort()), minSize: 1, backoff: FAST });
    const { ms, error } = await timed(() => pool.open({ wait: true, timeout: 1_000 }));
    assert.ok(error instanceof PoolTimeoutError, String(error));
    assert.ok(ms < 1_500, `rejected after ${Math.round(ms)} ms`);
    assert.equal((error.cause as { code?: string }).code, "ECONNREFUSED");
    assert.match(error.message, /not ready after 1000 ms: .*ECONNREFUSED/);
  }
  await withRole(async (role, url) => {
    await adminQuery(`alter role ${role} password 'changed'`);
    await using pool = new ConnectionPool({ conninfo: url, minSize: 1, backoff: FAST });
    const { ms, error } = await timed(() => pool.open({ wait: true, timeout: 1_000 }));
    assert.ok(error instanceof PoolTimeoutError, String(error));
    assert.ok(ms < 1_500, `rejected after ${Math.round(ms)} ms`);
    assert.equal((error.cause as { code?: string }).code, "28P01");
    assert.match(error.message, /not ready after 1000 ms: .*password authentication failed.*\(28P01\)/);
  });
});

Deno.test("one meaning of size: after failed connects inspect and JSON say size 0 with the attempts apart, as the error does; durations are rounded", async () => {
  await using pool = new ConnectionPool({
    conninfo: withPort(db.url, closedPort()),
    minSize: 4,
    timeout: 300,
    backoff: FAST,
  });
  void pool.open();
  const error = await pool.getconn({ timeout: 299.944406999999 }).catch((e) => e);
  assert.ok(error instanceof PoolTimeoutError, String(error));
  assert.match(error.message, /after 300 ms: size 0 \(max 4\), connecting 4,/);
  assert.equal(pool.toJSON().size, 0);
  assert.equal(pool.toJSON().connecting, 4);
  assert.match(Deno.inspect(pool), /size: 0,\s+connecting: 4,/);
});
