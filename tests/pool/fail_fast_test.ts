/**
 * Fail fast: errors waiting will not fix (wrong password, missing database,
 * unknown host) refuse requests at once with PoolConnectError; the pool keeps
 * retrying and heals when the cause is fixed. Transient errors still wait.
 */
import assert from "node:assert/strict";
import { ConnectionPool, PoolConnectError, PoolError, PoolTimeoutError } from "../../mod.ts";
import { adminQuery, createTestDatabase, databaseUrl, type TestDatabase, waitFor } from "../_db.ts";
import { closedPort, timed, withPort } from "../_pool_helpers.ts";
import { isPermanentConnectError } from "../../src/pool/_failfast.ts";

/** Retries every 50 ms: the heal is seen quickly. */
const STEADY_BACKOFF = { initialDelay: 50, multiplier: 1, jitter: 0 };

let db: TestDatabase;
Deno.test.beforeAll(async () => {
  db = await createTestDatabase();
});
Deno.test.afterAll(async () => {
  await db.drop();
});

function randomName(prefix: string): string {
  return `${prefix}_${crypto.randomUUID().replaceAll("-", "").slice(0, 12)}`;
}

function withCredentials(base: string, user: string, password: string): string {
  const url = new URL(base);
  url.username = user;
  url.password = password;
  return url.toString();
}

Deno.test("a wrong password rejects getconn with PoolConnectError at once, and the pool heals after ALTER ROLE", async () => {
  const role = randomName("tp_ff");
  const password = `pw-${crypto.randomUUID()}`;
  await adminQuery(`create role ${role} login password 'something-else'`);
  const pool = new ConnectionPool({
    conninfo: withCredentials(db.url, role, password),
    minSize: 1,
    timeout: 10_000,
    backoff: STEADY_BACKOFF,
  });
  try {
    const { ms, error } = await timed(() => pool.getconn());
    assert.ok(error instanceof PoolConnectError, `expected PoolConnectError, got ${error}`);
    assert.ok(error instanceof PoolError);
    assert.ok(ms < 3_000, `rejected after ${Math.round(ms)} ms, pool timeout is 10000`);
    assert.equal((error.cause as { code?: string }).code, "28P01");
    assert.match(error.message, /password authentication failed/);
    assert.ok(!error.message.includes(password), "no password in the message");
    assert.ok(!String(error.stack).includes(password), "no password in the stack");

    // A second request, while the pool keeps failing, is refused without waiting either.
    const again = await timed(() => pool.query("select 1"));
    assert.ok(again.error instanceof PoolConnectError, `expected PoolConnectError, got ${again.error}`);
    assert.ok(again.ms < 3_000);
    const errors = pool.getStats().connectionsErrors;
    await waitFor(() => pool.getStats().connectionsErrors > errors + 1, { message: "keeps retrying" });

    await adminQuery(`alter role ${role} password '${password}'`);
    await waitFor(() => pool.getStats().poolAvailable >= 1, { timeout: 5_000, message: "heals without restart" });
    const { rows } = await pool.query<{ u: string }>("select current_user as u");
    assert.equal(rows[0].u, role);
  } finally {
    await pool.close();
    await adminQuery(`drop role if exists ${role}`);
  }
});

Deno.test("a missing database rejects getconn with PoolConnectError at once, and CREATE DATABASE heals the pool", async () => {
  const name = randomName("tp_ff_missing");
  const pool = new ConnectionPool({
    conninfo: databaseUrl(db.url, name),
    minSize: 1,
    timeout: 10_000,
    backoff: STEADY_BACKOFF,
  });
  try {
    const { ms, error } = await timed(() => pool.getconn());
    assert.ok(error instanceof PoolConnectError, `expected PoolConnectError, got ${error}`);
    assert.ok(ms < 3_000, `rejected after ${Math.round(ms)} ms`);
    assert.equal((error.cause as { code?: string }).code, "3D000");
    assert.match(error.message, /does not exist/);

    await adminQuery(`create database ${name} template template0`);
    await waitFor(() => pool.getStats().poolAvailable >= 1, { timeout: 5_000, message: "heals without restart" });
    const { rows } = await pool.query<{ d: string }>("select current_database() as d");
    assert.equal(rows[0].d, name);
  } finally {
    await pool.close();
    await adminQuery(`drop database if exists ${name} with (force)`);
  }
});

Deno.test("an unknown host rejects getconn with PoolConnectError at once; the password stays out of it", async () => {
  const url = new URL(db.url);
  url.hostname = "no-such-host.invalid";
  url.password = "hunter2-secret";
  const pool = new ConnectionPool({ conninfo: url.toString(), minSize: 1, timeout: 10_000, backoff: STEADY_BACKOFF });
  try {
    const { ms, error } = await timed(() => pool.getconn());
    assert.ok(error instanceof PoolConnectError, `expected PoolConnectError, got ${error}`);
    assert.ok(ms < 5_000, `rejected after ${Math.round(ms)} ms`);
    assert.match(String((error.cause as { code?: string }).code), /ENOTFOUND|EAI_AGAIN/);
    assert.ok(!error.message.includes("hunter2-secret"));
  } finally {
    await pool.close();
  }
});

Deno.test("a refused connection is transient: getconn still waits its timeout and rejects with PoolTimeoutError", async () => {
  const pool = new ConnectionPool({
    conninfo: withPort(db.url, closedPort()),
    minSize: 1,
    timeout: 400,
    backoff: STEADY_BACKOFF,
  });
  try {
    const { ms, error } = await timed(() => pool.getconn());
    assert.ok(error instanceof PoolTimeoutError, `expected PoolTimeoutError, got ${error}`);
    assert.ok(!(error instanceof PoolConnectError));
    assert.ok(ms >= 350, `waited ${Math.round(ms)} ms`);
  } finally {
    await pool.close();
  }
});

Deno.test("errors waiting will not fix are told apart from transient ones", () => {
  const error = (code: string | undefined, message = "x") => Object.assign(new Error(message), { code });
  for (
    const permanent of [
      error("28P01"),
      error("28000"),
      error("3D000"),
      error("ENOTFOUND"),
      error("ERR_TLS_CERT_ALTNAME_INVALID"),
      error("DEPTH_ZERO_SELF_SIGNED_CERT"),
      error(undefined, "invalid peer certificate: UnknownIssuer"),
      error(undefined, "The server does not support SSL connections"),
    ]
  ) assert.equal(isPermanentConnectError(permanent), true, `${permanent.message} (${permanent.code})`);
  for (
    const transient of [
      error("ECONNREFUSED"),
      error("ECONNRESET"),
      error("ETIMEDOUT"),
      error("EAI_AGAIN", "getaddrinfo EAI_AGAIN db.internal"), // the resolver is down or slow: it comes back
      error("57P03", "the database system is starting up"),
      error("53300", "sorry, too many clients already"),
      error(undefined, "Connection terminated due to connection timeout"),
      error("XX000", "self-signed certificate"), // a SQLSTATE is the server's word, whatever the text
      new Error("configure failed"),
      "not an error",
      null,
    ]
  ) assert.equal(isPermanentConnectError(transient), false, String((transient as Error)?.message ?? transient));
});

/** A URL for `role` on the test server, with `hosts` in place of its host:port and `target_session_attrs`. */
function hostListUrl(role: string, password: string, hosts: string[], attrs: string): string {
  const url = new URL(withCredentials(db.url, role, password));
  return `postgres://${url.username}:${url.password}@${hosts.join(",")}${url.pathname}?target_session_attrs=${attrs}`;
}

Deno.test("fail fast holds with target_session_attrs and host lists: every host refusing the password is no failover", async () => {
  const role = randomName("tp_ff_hosts");
  await adminQuery(`create role ${role} login password 'right-one'`);
  const server = new URL(db.url).host;
  try {
    for (const [hosts, attrs] of [[[server], "read-write"], [[server, server], "any"], [[server, server], "primary"]]) {
      const pool = new ConnectionPool({
        conninfo: hostListUrl(role, "wrong-one", hosts as string[], attrs as string),
        minSize: 1,
        timeout: 10_000,
        backoff: STEADY_BACKOFF,
      });
      try {
        const { ms, error } = await timed(() => pool.getconn());
        assert.ok(error instanceof PoolConnectError, `${hosts} ${attrs}: expected PoolConnectError, got ${error}`);
        assert.ok(ms < 3_000, `${hosts} ${attrs}: refused after ${Math.round(ms)} ms, pool timeout is 10000`);
        assert.match(error.message, /password authentication failed/);
        assert.ok(!error.message.includes("wrong-one") && !String(error.stack).includes("wrong-one"));
      } finally {
        await pool.close();
      }
    }
  } finally {
    await adminQuery(`drop role if exists ${role}`);
  }
});

Deno.test("a host list with one host refusing the password and one refusing the connection still waits (a failover may be under way)", async () => {
  const role = randomName("tp_ff_mixed");
  await adminQuery(`create role ${role} login password 'right-one'`);
  const server = new URL(db.url).host;
  const port = await closedPort();
  const pool = new ConnectionPool({
    conninfo: hostListUrl(role, "wrong-one", [server, `127.0.0.1:${port}`], "read-write"),
    minSize: 1,
    timeout: 600,
    backoff: STEADY_BACKOFF,
  });
  try {
    const { ms, error } = await timed(() => pool.getconn());
    assert.ok(error instanceof PoolTimeoutError, `expected PoolTimeoutError, got ${error}`);
    assert.ok(ms >= 550, `waited ${Math.round(ms)} ms of its 600`);
  } finally {
    await pool.close();
    await adminQuery(`drop role if exists ${role}`);
  }
});

Deno.test("an sslrootcert file that cannot be read is a setup error: getconn is refused at once, the path named", async () => {
  const missing = `/nonexistent-${crypto.randomUUID()}/root.crt`;
  const pool = new ConnectionPool({
    conninfo: `${db.url}${db.url.includes("?") ? "&" : "?"}sslmode=verify-full&sslrootcert=${missing}`,
    minSize: 1,
    timeout: 10_000,
    backoff: STEADY_BACKOFF,
  });
  try {
    const { ms, error } = await timed(() => pool.getconn());
    assert.ok(error instanceof PoolConnectError, `expected PoolConnectError, got ${error}`);
    assert.ok(ms < 3_000, `refused after ${Math.round(ms)} ms, pool timeout is 10000`);
    assert.match(error.message, /sslrootcert file/);
    assert.ok(error.message.includes(missing));
  } finally {
    await pool.close();
  }
});
