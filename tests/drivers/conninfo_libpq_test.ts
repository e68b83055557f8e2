/**
 * Conninfo read as libpq reads it: URL passwords with an unencoded `?`,
 * keywords named as written, security keywords refused rather than ignored,
 * and no piece of a password in any conninfo error. A property test sets
 * random passwords on a real role and connects with each.
 */
import assert from "node:assert/strict";
import { ConnectionPool, PoolConnectError } from "../../mod.ts";
import { parseConninfo } from "../../src/drivers/_conninfo.ts";
import { adminQuery, createTestDatabase } from "../_db.ts";
import { prng } from "../_prng.ts";
import { assertNoSecret, quoted, server, surfaces, withRole } from "../_conninfo_helpers.ts";

const db = await createTestDatabase();
Deno.test.afterAll(() => db.drop());

/** The error `fn` throws (it must throw). */
function thrown(fn: () => unknown): Error {
  try {
    fn();
  } catch (error) {
    return error as Error;
  }
  throw new Error("did not throw");
}

Deno.test("a URL password with an unencoded '?' is read as libpq reads it: the user info ends at the '@'", () => {
  for (const password of ["?Secret-1", "2024?Secret", "7?x=1", "12?secret=x", "a?b&c=d?e"]) {
    const info = parseConninfo(`postgres://app:${password}@db.internal:5433/shop`);
    assert.equal(info.password, password);
    assert.equal(info.user, "app");
    assert.equal(info.database, "shop");
    assert.deepEqual(info.hosts, [{ host: "db.internal", port: 5433 }]);
  }
  // A real query with an '@' in a value still reads as a query.
  const query = parseConninfo("postgres://db.internal:5432?application_name=me@home");
  assert.equal(query.password, undefined);
  assert.equal(query.config.application_name, "me@home");
});

Deno.test("an unknown keyword is named as written (HOST=, Port=, connect-timeout=), with the libpq spelling suggested", () => {
  for (
    const [conninfo, named, near] of [
      ["HOST=localhost", "HOST", "host"],
      ["host=h Port=5432", "Port", "port"],
      ["host=h connect-timeout=3", "connect-timeout", "connect_timeout"],
      ["postgres://h/db?Application_Name=x", "Application_Name", "application_name"],
    ]
  ) {
    const error = thrown(() => parseConninfo(conninfo));
    assert.ok(error instanceof TypeError, String(error));
    assert.match(error.message, new RegExp(`unknown or unsupported keyword '${named}'`), conninfo);
    assert.match(error.message, new RegExp(`did you mean '${near}'`), conninfo);
  }
});

Deno.test("gssencmode=require, channel_binding=require and require_auth are refused with a TypeError naming them, never ignored", () => {
  for (
    const conninfo of [
      "host=h gssencmode=require",
      "postgres://h/db?gssencmode=require",
      "host=h channel_binding=require",
      "host=h require_auth=scram-sha-256",
      "host=h require_auth=!password",
    ]
  ) {
    const error = thrown(() => new ConnectionPool({ conninfo }));
    assert.ok(error instanceof TypeError, `${conninfo}: ${error}`);
    const key = conninfo.match(/(gssencmode|channel_binding|require_auth)/)![1];
    assert.match(error.message, new RegExp(`'${key}=[^']*' is not supported`), conninfo);
  }
  // Values that ask for nothing node-postgres lacks are accepted.
  for (const conninfo of ["host=h gssencmode=disable", "host=h gssencmode=prefer", "host=h channel_binding=prefer"]) {
    parseConninfo(conninfo);
  }
});

Deno.test("no piece of a password shows in a conninfo error: misquoted, unquoted with spaces, or in a URL", () => {
  const cases: [string, string[]][] = [
    ["host=h password='p4ss'word=hunter2'", ["p4ss", "word", "hunter2"]],
    ["host=h password=ab secret='ef", ["ab", "secret", "ef"]],
    ["host=h password=ab secret=ef", ["secret", "ef"]],
    ["host=h password='ab' 'cd' host=x", ["ab", "cd"]],
    ["password=ab Secret=x host=h", ["Secret"]],
    ["postgres://u:12?secret=x@h/db?nokey=1", ["12", "secret"]],
  ];
  for (const [conninfo, pieces] of cases) {
    const error = thrown(() => new ConnectionPool({ conninfo }));
    assert.ok(error instanceof TypeError || error instanceof RangeError, `${conninfo}: ${error}`);
    for (const piece of pieces) {
      // As a word: "word" is in "password", which the message may say.
      const shown = new RegExp(`\\b${piece}\\b`).test(`${error.message}\n${error.stack}`);
      assert.ok(!shown, `${conninfo}: '${piece}' in ${error.message}`);
    }
  }
});

Deno.test("a URL password with an unencoded '?' connects to the real server", () =>
  withRole("2024?Secret", async (user) => {
    const { host, port } = server();
    await using pool = new ConnectionPool({
      conninfo: `postgres://${user}:2024?Secret@${host}:${port}/${db.name}`,
      minSize: 0,
    });
    const { rows } = await pool.query<{ u: string }>("select current_user as u");
    assert.equal(rows[0].u, user);
  }));

/** Printable ASCII (minus what a URL cannot hold unencoded) and letters SASLprep leaves as they are. */
const ASCII = Array.from({ length: 95 }, (_, i) => String.fromCharCode(32 + i)).join("");
const UNICODE = "éßжλøü日本語ñçÅ";

function password(next: () => number, forUrl: boolean): string {
  const alphabet = forUrl ? ASCII.replace(/[@/%]/g, "") + UNICODE : ASCII + UNICODE;
  // At least 6 characters: a shorter one ("r") is found by chance in any message ("error"), scrubbed or not,
  // while 6 random characters turning up by chance in a few KB of text is about a one in a billion event.
  const length = 6 + Math.floor(next() * 20);
  let out = "";
  while (out.length < length) out += alphabet[Math.floor(next() * alphabet.length)];
  return out;
}

Deno.test("property: random passwords libpq would read (printable ASCII and unicode; no @ / % in URLs) all connect, and none shows in an error when wrong", async () => {
  const seed = Number(Deno.env.get("TP_PASSWORD_SEED") ?? Date.now() % 1_000_000);
  const next = prng(seed);
  const { host, port } = server();
  const user = `tp_prop_${crypto.randomUUID().slice(0, 8)}`;
  await adminQuery(`create role ${user} login password 'x'`);
  try {
    for (let i = 0; i < 100; i++) {
      const forUrl = i % 2 === 0;
      const pw = password(next, forUrl);
      const where = `seed ${seed}, case ${i}, ${forUrl ? "URL" : "key=value"} password ${JSON.stringify(pw)}`;
      await adminQuery(`alter role ${user} password '${pw.replaceAll("'", "''")}'`);
      const conninfo = (p: string) =>
        forUrl
          ? `postgres://${user}:${p}@${host}:${port}/${db.name}`
          : `host=${host} port=${port} dbname=${db.name} user=${user} password=${quoted(p)}`;
      {
        await using pool = new ConnectionPool({ conninfo: conninfo(pw), minSize: 0, timeout: 10_000, name: "prop" });
        const { rows } = await pool.query<{ u: string }>("select current_user as u").catch((e) => {
          throw new Error(`${where}: ${e}`);
        });
        assert.equal(rows[0].u, user, where);
      }
      // The same password, wrong by one character at the end: refused, and no form of it in any surface.
      const wrong = `${pw}Q`;
      await using pool = new ConnectionPool({ conninfo: conninfo(wrong), minSize: 0, timeout: 10_000, name: "prop" });
      const error = await pool.query("select 1").catch((e) => e);
      assert.ok(error instanceof PoolConnectError, `${where}: ${error}`);
      assertNoSecret(surfaces(pool, error, []), wrong, where);
    }
  } finally {
    await adminQuery(`drop role if exists ${user}`);
  }
});
