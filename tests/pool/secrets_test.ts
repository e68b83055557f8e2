/**
 * Passwords never appear in errors, logs, stats, `Deno.inspect(pool)` or
 * `JSON.stringify(pool)`.
 */
import assert from "node:assert/strict";
import { ConnectionPool, PoolConnectError } from "../../mod.ts";
import { adminQuery, withTestDatabase } from "../_db.ts";
import { captureLogs } from "../_pool_helpers.ts";

/** Everything a password could leak into, as one string. */
function surfaces(pool: ConnectionPool, error: unknown, logs: string[]): string {
  const parts = [Deno.inspect(pool), JSON.stringify(pool), JSON.stringify(pool.getStats()), ...logs];
  for (let e = error; e instanceof Error; e = e.cause) {
    parts.push(e.message, e.stack ?? "", Deno.inspect(e, { depth: 10 }));
  }
  return parts.join("\n");
}

async function withRole(password: string, fn: (user: string) => Promise<void>): Promise<void> {
  const user = `tp_user_${crypto.randomUUID().slice(0, 8)}`;
  await adminQuery(`create role ${user} login password '${password}'`);
  try {
    await fn(user);
  } finally {
    await adminQuery(`drop role if exists ${user}`);
  }
}

Deno.test("a wrong password gives PoolConnectError (fail fast) caused by the auth error, with no password anywhere", () =>
  withTestDatabase((db) =>
    withRole("Right-Pa55word-Q7", async (user) => {
      await using logs = await captureLogs();
      const secret = "Wr0ng-Pa55word-X9";
      const url = new URL(db.url);
      url.username = user;
      url.password = secret;
      await using pool = new ConnectionPool({
        conninfo: url.toString(),
        minSize: 1,
        backoff: { initialDelay: 50, jitter: 0 },
      });
      const error = await pool.getconn({ timeout: 400 }).catch((e) => e);
      assert.ok(error instanceof PoolConnectError, String(error));
      assert.ok(error.cause instanceof Error);
      assert.equal((error.cause as { code?: string }).code, "28P01", "invalid_password from the server");
      assert.match(error.cause.message, /password authentication failed/);
      assert.ok(logs.records.length > 0, "debug logs were captured");
      const text = surfaces(pool, error, [...logs.messages(), ...logs.records.map((r) => Deno.inspect(r.properties))]);
      assert.ok(!text.includes(secret), "the password leaked");
      assert.ok(!text.includes(encodeURIComponent(secret)));
      assert.ok(text.includes(user), "the user name is fine to show");
    })
  ));

Deno.test("a correct password works and never shows in inspect, JSON, stats or logs", () =>
  withTestDatabase((db) =>
    withRole("S3cret-Pa55word-K2", async (user) => {
      await using logs = await captureLogs();
      const secret = "S3cret-Pa55word-K2";
      await using pool = new ConnectionPool({
        conninfo: {
          host: new URL(db.url).hostname,
          port: Number(new URL(db.url).port),
          database: db.name,
          user,
          password: secret,
        },
        name: "secrets",
        minSize: 1,
      });
      const { rows } = await pool.query<{ u: string }>("select current_user as u");
      assert.equal(rows[0].u, user);
      const text = surfaces(pool, undefined, [
        ...logs.messages(),
        ...logs.records.map((r) => Deno.inspect(r.properties)),
      ]);
      assert.ok(text.includes("secrets"));
      assert.ok(!text.includes(secret), "the password leaked");
      const json = JSON.parse(JSON.stringify(pool));
      assert.equal(json.name, "secrets");
      assert.match(json.target, new RegExp(user));
    })
  ));
