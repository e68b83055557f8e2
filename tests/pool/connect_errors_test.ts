/**
 * Connection failures show their cause: a pool that
 * cannot connect says why in the timeout's message (the driver's text,
 * scrubbed) and counts attempts in flight apart from open connections, so
 * "database down" and "pool too small" read differently.
 */
import assert from "node:assert/strict";
import { ConnectionPool, NullConnectionPool, PoolConnectError, PoolTimeoutError } from "../../mod.ts";
import { createTestDatabase, waitFor } from "../_db.ts";
import { proxyToServer } from "../_faults.ts";
import { closedPort } from "../_pool_helpers.ts";
import { startWorker } from "../_shared_helpers.ts";
import { server, withRole } from "../_conninfo_helpers.ts";

const db = await createTestDatabase();
Deno.test.afterAll(() => db.drop());
const FAST = { initialDelay: 50, jitter: 0 };

function wrongPasswordUrl(user: string): string {
  const { host, port } = server();
  return `postgres://${user}:not-the-password@${host}:${port}/${db.name}`;
}

Deno.test("a wrong password: the request is refused at once with PoolConnectError whose message carries the server's text, not the password (ConnectionPool, NullConnectionPool)", () =>
  withRole("the-password", async (user) => {
    for (
      const make of [
        () => new ConnectionPool({ conninfo: wrongPasswordUrl(user), minSize: 1, maxSize: 1, backoff: FAST }),
        () => new NullConnectionPool({ conninfo: wrongPasswordUrl(user), maxSize: 1, backoff: FAST }),
      ]
    ) {
      await using pool = make();
      const error = await pool.getconn({ timeout: 10_000 }).catch((e) => e);
      assert.ok(error instanceof PoolConnectError, String(error));
      assert.match(error.message, new RegExp(`password authentication failed for user "${user}" \\(28P01\\)$`));
      assert.equal((error.cause as { code?: string }).code, "28P01", "the driver's error stays the cause");
      assert.ok(!error.message.includes("not-the-password"));
    }
  }));

Deno.test("a server that refuses connections: the timeout's message carries the cause and counts the attempt as connecting, not as open (ConnectionPool, NullConnectionPool)", async () => {
  const port = closedPort();
  const conninfo = `postgres://u:not-the-password@127.0.0.1:${port}/db`;
  for (
    const make of [
      () => new ConnectionPool({ conninfo, minSize: 1, maxSize: 1, backoff: { initialDelay: 5_000, jitter: 0 } }),
      () => new NullConnectionPool({ conninfo, maxSize: 1, backoff: { initialDelay: 5_000, jitter: 0 } }),
    ]
  ) {
    await using pool = make();
    const error = await pool.getconn({ timeout: 400 }).catch((e) => e);
    assert.ok(error instanceof PoolTimeoutError, String(error));
    assert.match(
      error.message,
      /after 400 ms: size 0 \(max 1\), connecting 1, idle 0, in use 0, waiting 1; last connection error: .*ECONNREFUSED/,
      pool.constructor.name,
    );
    assert.ok(!error.message.includes("not-the-password"));
  }
});

Deno.test("open({wait}) that times out on a wrong password names the cause in its message", () =>
  withRole("the-password", async (user) => {
    await using pool = new ConnectionPool({ conninfo: wrongPasswordUrl(user), minSize: 2, backoff: FAST });
    const error = await pool.open({ wait: true, timeout: 400 }).catch((e) => e);
    assert.ok(error instanceof PoolTimeoutError, String(error));
    assert.match(
      error.message,
      /not ready after 400 ms: size 0 \(max 2\), connecting 2, .*password authentication failed/,
    );
  }));

Deno.test("a Worker attached to a pool with a wrong password gets PoolConnectError with the cause's text in the message", () =>
  withRole("the-password", async (user) => {
    await using pool = new ConnectionPool({ conninfo: wrongPasswordUrl(user), minSize: 1, maxSize: 1, backoff: FAST });
    const w = startWorker();
    try {
      await w.attach(pool.share());
      const error = await w.fail("hold", { timeout: 10_000 });
      assert.ok(error.isPoolConnectError, `${error.name}: ${error.message}`);
      assert.match(error.message, /password authentication failed/);
    } finally {
      w.terminate();
    }
  }));

Deno.test("a Worker gets the owner's HostsExhaustedError, with its hosts, as the cause of its timeout", async () => {
  const ports = [closedPort(), closedPort()];
  await using pool = new ConnectionPool({
    conninfo: `postgres://u:not-the-password@127.0.0.1:${ports[0]},127.0.0.1:${ports[1]}/db`,
    minSize: 1,
    maxSize: 1,
    backoff: FAST,
  });
  const w = startWorker();
  try {
    await w.attach(pool.share());
    const error = await w.fail("hold", { timeout: 400 });
    assert.ok(error.isPoolTimeoutError, `${error.name}: ${error.message}`);
    const cause = error.cause;
    assert.ok(cause?.isHostsExhaustedError && cause.isPoolError, JSON.stringify(cause));
    assert.deepEqual(cause.hosts, ports.map((port) => `127.0.0.1:${port}`));
    assert.match(cause.message, /^No server accepted a session/);
    assert.ok(!JSON.stringify(error).includes("not-the-password"));
  } finally {
    w.terminate();
  }
});

Deno.test("a pool too small, after the server came back: the timeout's message has counts and no stale connection error", async () => {
  await using proxy = await proxyToServer();
  await proxy.stop();
  await using pool = new ConnectionPool({ conninfo: proxy.url(db.url), minSize: 1, maxSize: 1, backoff: FAST });
  const down = await pool.open({ wait: true, timeout: 300 }).catch((e) => e);
  assert.ok(down instanceof PoolTimeoutError);
  assert.match(down.message, /last connection error: .*ECONNREFUSED/);
  await proxy.start();
  await pool.wait({ timeout: 5_000 });
  const held = await pool.getconn();
  try {
    const error = await pool.getconn({ timeout: 200 }).catch((e) => e);
    assert.ok(error instanceof PoolTimeoutError, String(error));
    assert.match(error.message, /size 1 \(max 1\), connecting 0, idle 0, in use 1, waiting 1$/);
    assert.equal(error.cause, undefined);
  } finally {
    await pool.putconn(held);
  }
  await waitFor(() => pool.getStats().poolAvailable === 1);
});
