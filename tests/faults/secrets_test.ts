/**
 * Passwords never leak: not in errors (wrong password, unreachable host), not
 * in any log line at debug level, not in `Deno.inspect(pool)` or the stats.
 */
import assert from "node:assert/strict";
import { configure, type LogRecord, reset } from "@logtape/logtape";
import { ConnectionPool, PoolTimeoutError } from "../../mod.ts";
import { adminUrl, createTestDatabase, type TestDatabase } from "../_db.ts";
import { FAST_BACKOFF, proxyToServer } from "../_faults.ts";

let db: TestDatabase;
const lines: string[] = [];
Deno.test.beforeAll(async () => {
  db = await createTestDatabase();
  await configure({
    sinks: { capture: (record: LogRecord) => lines.push(render(record)) },
    loggers: [
      { category: ["tidepool"], lowestLevel: "debug", sinks: ["capture"] },
      { category: ["logtape", "meta"], lowestLevel: "warning", sinks: [] },
    ],
  });
});
Deno.test.afterAll(async () => {
  await reset();
  await db.drop();
});

/** Everything a log sink could print: the message, the properties, errors with stacks and causes. */
function render(record: LogRecord): string {
  return [
    record.message.map((part) => typeof part === "string" ? part : Deno.inspect(part, { depth: 10 })).join(""),
    Deno.inspect(record.properties, { depth: 10 }),
  ].join(" ");
}

/** An error as fully as a user could print it. */
function dump(error: unknown): string {
  return [String(error), (error as Error)?.stack, Deno.inspect(error, { depth: 10 })].join("\n");
}

function assertNoSecret(text: string, secret: string, where: string): void {
  for (const form of new Set([secret, encodeURIComponent(secret)])) {
    assert.ok(!text.includes(form), `${where} contains the password:\n${text}`);
  }
}

Deno.test("a wrong password, an unreachable host and every debug log line never show the password", async () => {
  const realPassword = decodeURIComponent(new URL(adminUrl()).password);
  const wrongPassword = "Wr0ng+S3cret/pw";
  const wrongUrl = new URL(db.url);
  wrongUrl.password = encodeURIComponent(wrongPassword);

  // Wrong password: the server refuses, the pool times out with that as cause.
  const refused = new ConnectionPool({
    conninfo: wrongUrl.toString(),
    minSize: 1,
    timeout: 300,
    backoff: FAST_BACKOFF,
  });
  try {
    const error = await refused.open({ wait: true, timeout: 300 }).then(() => undefined, (e) => e);
    assert.ok(error instanceof PoolTimeoutError);
    assert.match(String((error.cause as Error).message), /password authentication failed/);
    assertNoSecret(dump(error), wrongPassword, "wrong-password error");
    assertNoSecret(Deno.inspect(refused, { depth: 10 }), wrongPassword, "Deno.inspect(pool)");
  } finally {
    await refused.close();
  }

  // Unreachable host, with the real password in a pg.ClientConfig.
  await using proxy = await proxyToServer();
  await proxy.stop();
  const url = new URL(db.url);
  const down = new ConnectionPool({
    conninfo: {
      host: "127.0.0.1",
      port: proxy.port,
      user: url.username,
      password: realPassword,
      database: db.name,
    },
    minSize: 1,
    timeout: 200,
    backoff: FAST_BACKOFF,
  });
  try {
    const error = await down.getconn().then(() => undefined, (e) => e);
    assert.ok(error instanceof PoolTimeoutError);
    assertNoSecret(dump(error), realPassword, "unreachable-host error");
  } finally {
    await down.close();
  }

  // A healthy pool, for the debug lines of a normal life.
  const pool = new ConnectionPool({ conninfo: db.url, minSize: 1, timeout: 2_000, name: "healthy" });
  try {
    await pool.open({ wait: true, timeout: 3_000 });
    await pool.query("select 1");
    const conn = await pool.getconn();
    await conn.query("begin");
    await pool.putconn(conn); // a warning line
    for (
      const text of [
        Deno.inspect(pool, { depth: 10 }),
        String(pool),
        JSON.stringify(pool),
        JSON.stringify(pool.getStats()),
        JSON.stringify(pool.popStats()),
      ]
    ) assertNoSecret(text, realPassword, "pool summary");
  } finally {
    await pool.close();
  }

  assert.ok(lines.some((l) => l.includes("healthy")), "debug lines were captured");
  assert.ok(lines.some((l) => /password authentication failed/.test(l)), "the auth failure was logged");
  for (const line of lines) {
    assertNoSecret(line, realPassword, "log line");
    assertNoSecret(line, wrongPassword, "log line");
  }
});
