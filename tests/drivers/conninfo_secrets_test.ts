/**
 * No password shows anywhere, whatever its characters and however it was
 * given: not in errors, their
 * causes' messages and stacks, `Deno.inspect`, JSON, stats, logs, nor in an
 * error a Worker gets; and scrubbing hides the password, not every string
 * equal to it.
 */
import assert from "node:assert/strict";
import {
  ConnectionPool,
  NullConnectionPool,
  PersistentConnectionPool,
  PoolConnectError,
  SimpleConnectionPool,
  ThreadedConnectionPool,
} from "../../mod.ts";
import { createTestDatabase } from "../_db.ts";
import { captureLogs, type LogCapture } from "../_pool_helpers.ts";
import { startWorker } from "../_shared_helpers.ts";
import { assertNoSecret, conninfoForms, server, surfaces, withRole } from "../_conninfo_helpers.ts";

const db = await createTestDatabase();
Deno.test.afterAll(() => db.drop());

const RIGHT = `R1ght#Pa/ss?w@rd:%41 'q"\\`;
const WRONG = `Wr0ng#Pa/ss?w@rd:%42 'q"\\`;
const FAST = { initialDelay: 50, jitter: 0 };

function logText(logs: LogCapture): string[] {
  return [...logs.messages(), ...logs.records.map((r) => Deno.inspect(r.properties, { depth: 10 }))];
}

Deno.test("a wrong password with # / ? @ : % ' \\ never shows in any conninfo form, for ConnectionPool and NullConnectionPool: not in the error, its cause's message or stack, inspect, JSON, stats or debug logs", () =>
  withRole(RIGHT, async (user) => {
    await using logs = await captureLogs();
    for (const [form, conninfo] of conninfoForms(user, WRONG, db.name)) {
      for (
        const make of [
          () => new ConnectionPool({ conninfo, minSize: 1, backoff: FAST, name: "secrets-wrong" }),
          () => new NullConnectionPool({ conninfo, maxSize: 1, backoff: FAST, name: "secrets-wrong" }),
        ]
      ) {
        await using pool = make();
        const error = await pool.getconn({ timeout: 10_000 }).catch((e) => e);
        const where = `${pool.constructor.name}, ${form}`;
        assert.ok(error instanceof PoolConnectError, `${where}: ${error}`);
        assert.equal((error.cause as { code?: string }).code, "28P01", where);
        assert.match(error.message, /password authentication failed/, where);
        assertNoSecret(surfaces(pool, error, logText(logs)), WRONG, where);
      }
    }
    assert.ok(logs.messages().some((m) => /password authentication failed/.test(m)), "the failures were logged");
  }));

Deno.test("the right password with # / ? @ : % ' \\ connects in every form and never shows in inspect, JSON, stats or logs", () =>
  withRole(RIGHT, async (user) => {
    await using logs = await captureLogs();
    for (const [form, conninfo] of conninfoForms(user, RIGHT, db.name)) {
      await using pool = new ConnectionPool({ conninfo, minSize: 1, name: "secrets-right" });
      const conn = await pool.getconn();
      await conn.query("begin");
      await pool.putconn(conn); // rolled back with a warning line
      assertNoSecret(surfaces(pool, undefined, logText(logs)), RIGHT, form);
    }
    assert.ok(logs.messages().some((m) => m.includes("secrets-right")), "debug lines were captured");
  }));

Deno.test("a wrong password never shows in the classic pools' errors, inspect, JSON or logs", () =>
  withRole(RIGHT, async (user) => {
    await using logs = await captureLogs();
    for (const [form, conninfo] of conninfoForms(user, WRONG, db.name)) {
      for (const Class of [SimpleConnectionPool, ThreadedConnectionPool, PersistentConnectionPool]) {
        const pool = new Class(0, 1, conninfo);
        try {
          const error = await pool.getconn().catch((e) => e);
          const where = `${Class.name}, ${form}`;
          assert.equal(error?.code, "28P01", `${where}: ${error}`);
          assertNoSecret(surfaces(pool, error, logText(logs)), WRONG, where);
        } finally {
          await pool.closeall();
        }
      }
    }
  }));

Deno.test("an error a Worker gets from a pool with a wrong password shows the cause's text, never the password", () =>
  withRole(RIGHT, async (user) => {
    const { host, port } = server();
    for (
      const make of [
        () =>
          new ConnectionPool({
            conninfo: `postgres://${user}:${WRONG.replace("%", "%25")}@${host}:${port}/${db.name}`,
            minSize: 1,
            backoff: FAST,
          }),
        () =>
          new ThreadedConnectionPool(
            0,
            1,
            `host=${host} port=${port} dbname=${db.name} user=${user} password='${
              WRONG.replaceAll("\\", "\\\\").replaceAll("'", "\\'")
            }'`,
          ),
      ]
    ) {
      const pool = make();
      const w = startWorker("dump_client.ts");
      try {
        await w.attach(pool.share());
        const got = await w.call<{ name: string; message: string; causeMessage?: string; text: string }>(
          "getconn",
          { timeout: 400 },
        );
        const where = `Worker on ${pool.constructor.name}`;
        assert.match(`${got.message}\n${got.causeMessage}`, /password authentication failed/, where);
        assertNoSecret(got.text, WRONG, where);
      } finally {
        w.terminate();
        if (pool instanceof ConnectionPool) await pool.close();
        else await pool.closeall();
      }
    }
  }));

Deno.test("an unparseable URL is a clear TypeError that does not echo it", () => {
  const secret = "Sup3r%Secret";
  for (
    const conninfo of [
      `postgres://app:${secret}@db.example/app`,
      `postgres://app:${secret}@db.example/app?sslmode`,
      `postgres://app:${secret}@db.example:5432:1/app`,
    ]
  ) {
    let error: unknown;
    try {
      new ConnectionPool({ conninfo });
    } catch (e) {
      error = e;
    }
    assert.ok(error instanceof TypeError || error instanceof RangeError, `${conninfo}: ${error}`);
    assert.match(error.message, /^Invalid conninfo: /);
    assertNoSecret(`${error.message}\n${error.stack}\n${Deno.inspect(error)}`, secret, conninfo);
    assertNoSecret(`${error.message}\n${error.stack}`, "Secret", conninfo);
  }
});

Deno.test("scrubbing hides the password, not every equal string: with user and password alike, the cause still names the user", async () => {
  const user = `tp_same_${crypto.randomUUID().slice(0, 8)}`;
  await withRole("a-different-password", async () => {
    const { host, port } = server();
    for (
      const conninfo of [
        `postgres://${user}:${user}@${host}:${port}/${db.name}`,
        { host, port, user, password: user, database: db.name },
      ]
    ) {
      await using pool = new ConnectionPool({ conninfo, minSize: 1, backoff: FAST });
      const error = await pool.getconn({ timeout: 10_000 }).catch((e) => e);
      assert.ok(error instanceof PoolConnectError, String(error));
      assert.match((error.cause as Error).message, new RegExp(`password authentication failed for user "${user}"`));
      assert.match(error.message, new RegExp(`for user "${user}"`));
      assert.ok(!error.message.includes("***"), error.message);
      assert.ok(JSON.stringify(pool).includes(user), "the user name shows in the target");
    }
  }, user);
});

Deno.test("a URL query password with an unencoded '&' is reported by position: no piece of it in the error", () => {
  for (const conninfo of ["postgres://u@127.0.0.1/db?password=SEK&RITtail=1", "postgres://u@h/db?password=a1&b2c3"]) {
    const tail = conninfo.slice(conninfo.lastIndexOf("&") + 1).split("=")[0];
    assert.throws(() => new ConnectionPool({ conninfo }), (error: unknown) => {
      assert.ok(error instanceof TypeError, String(error));
      assert.match(error.message, /after the password value \(at character \d+\)/);
      assert.ok(!error.message.includes(tail), `the password's tail '${tail}' is in: ${error.message}`);
      return true;
    });
  }
  // A keyword after the password is still read as one.
  assert.doesNotThrow(() => new ConnectionPool({ conninfo: "postgres://u@h/db?password=SEK&application_name=x" }));
});
