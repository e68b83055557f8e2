/**
 * Conninfo forms: libpq `key=value` strings and URLs are
 * parsed the way libpq parses them, and every form connects to the real
 * server as the right user, for every pool class.
 */
import assert from "node:assert/strict";
import {
  ConnectionPool,
  createPgDriver,
  NullConnectionPool,
  PersistentConnectionPool,
  SimpleConnectionPool,
  ThreadedConnectionPool,
} from "../../mod.ts";
import { parseConninfo } from "../../src/drivers/_conninfo.ts";
import { createTestDatabase } from "../_db.ts";
import { startProxy } from "../_proxy.ts";
import { conninfoForms, quoted, server, withRole } from "../_conninfo_helpers.ts";

const db = await createTestDatabase();
Deno.test.afterAll(() => db.drop());

/** Every character a URL or libpq quoting could trip on. */
const NASTY = `Sup3r#Se/cr?et@:1 'q"\\x=y&z`;

Deno.test("every conninfo form (URL as typed or encoded, key=value quoted or spaced, pg.ClientConfig) connects as the right user, with a password of # / ? @ : ' \\ space", () =>
  withRole(NASTY, async (user) => {
    const forms = conninfoForms(user, NASTY, db.name);
    assert.ok(forms.length >= 6);
    for (const [form, conninfo] of forms) {
      await using pool = new ConnectionPool({ conninfo, minSize: 1, timeout: 5_000 });
      const { rows } = await pool.query<{ u: string; d: string }>("select current_user as u, current_database() as d");
      assert.deepEqual(rows[0], { u: user, d: db.name }, form);
    }
  }));

Deno.test("a key=value conninfo works in NullConnectionPool, SimpleConnectionPool, ThreadedConnectionPool and PersistentConnectionPool", () =>
  withRole("kv-Pa55 word", async (user) => {
    const { host, port } = server();
    const conninfo = `host=${host} port=${port} dbname=${db.name} user=${user} password='kv-Pa55 word'`;
    const who = "select current_user as u";
    {
      await using pool = new NullConnectionPool({ conninfo, maxSize: 1, timeout: 5_000 });
      assert.equal((await pool.query<{ u: string }>(who)).rows[0].u, user, "NullConnectionPool");
    }
    for (const Class of [SimpleConnectionPool, ThreadedConnectionPool, PersistentConnectionPool]) {
      const pool = new Class(0, 1, conninfo);
      try {
        const conn = await pool.getconn();
        assert.equal((await conn.query(who)).rows[0].u, user, Class.name);
        await pool.putconn(conn);
      } finally {
        await pool.closeall();
      }
    }
  }));

Deno.test("key=value: application_name, options and connect_timeout reach the connection", async () => {
  const { host, port } = server();
  const password = new URL(Deno.env.get("DATABASE_URL")!).password;
  const user = new URL(Deno.env.get("DATABASE_URL")!).username;
  const conninfo = `host=${host} port=${port} dbname=${db.name} user=${user} password=${
    quoted(decodeURIComponent(password))
  } application_name='tidepool kv' options='-c search_path=kv_schema,public' connect_timeout=5`;
  await using pool = new ConnectionPool({ conninfo, minSize: 1 });
  const { rows } = await pool.query<{ app: string; path: string }>(
    "select current_setting('application_name') as app, current_setting('search_path') as path",
  );
  assert.deepEqual(rows[0], { app: "tidepool kv", path: "kv_schema,public" });
});

Deno.test("libpq quoting: backslash escapes in and out of quotes, empty quoted values, spaces around '='", () => {
  const info = parseConninfo(String.raw`host = h  user=a\ b password='it\'s \\ here' dbname='' application_name=x\'y`);
  assert.equal(info.user, "a b");
  assert.equal(info.password, String.raw`it's \ here`);
  assert.equal(info.database, "");
  assert.equal(info.config.application_name, "x'y");
  assert.deepEqual(info.hosts, [{ host: "h" }]);
  assert.throws(() => parseConninfo("host=h password='unterminated"), /unterminated quoted value of 'password'/);
});

Deno.test("a URL's user info ends at the first '@' followed by hosts and a database: passwords with @ / ? # : parse, and an '@' in a query value stays there", () => {
  const cases: [string, { user?: string; password?: string; host?: string; port?: number; database?: string }][] = [
    ["postgres://app:Sup3r#Secret@db.example/app", {
      user: "app",
      password: "Sup3r#Secret",
      host: "db.example",
      database: "app",
    }],
    ["postgres://app:p@ss@db.example:5433/app", {
      user: "app",
      password: "p@ss",
      host: "db.example",
      port: 5433,
      database: "app",
    }],
    ["postgres://app:pa/ss?x@db.example/app", {
      user: "app",
      password: "pa/ss?x",
      host: "db.example",
      database: "app",
    }],
    ["postgres://app:12/34@db.example/app", { user: "app", password: "12/34", host: "db.example", database: "app" }],
    ["postgres://app:p%40ss@db.example/app", { user: "app", password: "p@ss", host: "db.example", database: "app" }],
    ["postgres://app:a@b/c@db.example/app", { user: "app", password: "a@b/c", host: "db.example", database: "app" }],
    ["postgres://app:pw@db.example/app?application_name=me@home", {
      user: "app",
      password: "pw",
      host: "db.example",
      database: "app",
    }],
    ["postgres://db.example/app?user=a@b", { user: "a@b", host: "db.example", database: "app" }],
    ["postgres://db.example:5432/app?application_name=me@home", { host: "db.example", port: 5432, database: "app" }],
    ["postgresql://%2Fvar%2Frun%2Fpostgresql/app", { host: "/var/run/postgresql", database: "app" }],
  ];
  for (const [url, expected] of cases) {
    const info = parseConninfo(url);
    const got = {
      user: info.user,
      password: info.password,
      host: info.hosts[0].host,
      port: info.hosts[0].port,
      database: info.database,
    };
    for (const key of Object.keys(got) as (keyof typeof got)[]) if (got[key] === undefined) delete got[key];
    assert.deepEqual(got, expected, url);
  }
});

Deno.test("an unknown keyword is a TypeError naming it; a bad value a RangeError naming the parameter; no value is echoed", () => {
  const cases: [string, new (...args: never[]) => Error, RegExp][] = [
    ["host=h foo=bar", TypeError, /unknown or unsupported keyword 'foo'/],
    ["postgres://h/db?schema=s3cretvalue", TypeError, /keyword 'schema'/],
    ["host=h sslmode=sometimes", RangeError, /'sslmode' must be one of/],
    ["host=h connect_timeout=soon", RangeError, /'connect_timeout'/],
    ["host=h sslnegotiation=sometimes", RangeError, /'sslnegotiation' must be postgres or direct/],
    ["host=h channel_binding=require", TypeError, /'channel_binding=require' is not supported/],
    ["host=h target_session_attrs=whatever", RangeError, /'target_session_attrs' must be one of/],
    ["host=h1,h2 port=1,2,3", RangeError, /'port' lists 3 ports for 2 hosts/],
    ["host=h hostaddr=not-an-ip", TypeError, /'hostaddr'/],
    ["just-a-word", TypeError, /expected a postgres:\/\/ URL or libpq key=value pairs/],
    ["mysql://u:s3cretvalue@h/db", TypeError, /unsupported URL scheme 'mysql'/],
    ["postgres://u:s3cret%zzvalue@h/db", TypeError, /invalid percent-encoding in the URL's password/],
  ];
  for (const [conninfo, Class, message] of cases) {
    for (const make of [() => new ConnectionPool({ conninfo }), () => new SimpleConnectionPool(0, 1, conninfo)]) {
      const error = (() => {
        try {
          make();
        } catch (e) {
          return e;
        }
      })();
      assert.ok(error instanceof Class, `${conninfo}: ${error}`);
      assert.match(error.message, message, conninfo);
      assert.match(error.message, /^Invalid conninfo: /);
      assert.ok(!/s3cret|bar|sometimes|soon|whatever|not-an-ip|just-a-word/.test(error.message), error.message);
    }
  }
});

Deno.test("a password with an unquoted space is refused without echoing any part of it", () => {
  for (const conninfo of ["host=h password=correct horse", "password=correct horse=battery host=h"]) {
    const error = (() => {
      try {
        new ConnectionPool({ conninfo });
      } catch (e) {
        return e as Error;
      }
    })();
    assert.ok(error instanceof TypeError, String(error));
    assert.match(error.message, /quote a password with spaces/);
    assert.ok(!/correct|horse|battery/.test(`${error.message}\n${error.stack}`), error.message);
  }
});

Deno.test("the driver's description shows user, hosts and database, never the password", () => {
  const cases: [string | { host: string; port: number; user: string; password: string; database: string }, string][] = [
    ["postgres://app:Sup3r#Secret@db.example/app", "postgres://app@db.example:5432/app"],
    ["host=h1,h2 port=5432,5433 user=app password='Sup3r#Secret' dbname=app", "postgres://app@h1:5432,h2:5433/app"],
    [
      { host: "db.example", port: 6432, user: "app", password: "Sup3r#Secret", database: "app" },
      "postgres://app@db.example:6432/app",
    ],
  ];
  for (const [conninfo, expected] of cases) {
    assert.equal(createPgDriver(conninfo).description, expected);
  }
});

Deno.test("sslmode: disable and prefer connect in plaintext; require against a server without TLS fails clearly, never in plaintext", async () => {
  const url = new URL(Deno.env.get("DATABASE_URL")!);
  const base = `host=${url.hostname} port=${url.port} dbname=${db.name} user=${url.username} password=${
    quoted(decodeURIComponent(url.password))
  }`;
  for (const mode of ["disable", "allow", "prefer"]) {
    await using pool = new ConnectionPool({ conninfo: `${base} sslmode=${mode}`, minSize: 1, timeout: 5_000 });
    const { rows } = await pool.query<{ ssl: boolean }>(
      "select ssl from pg_stat_ssl where pid = pg_backend_pid()",
    );
    assert.equal(rows[0].ssl, false, mode);
  }
  for (const mode of ["require", "verify-ca", "verify-full"]) {
    await using pool = new ConnectionPool({
      conninfo: `${base} sslmode=${mode}`,
      minSize: 1,
      backoff: { initialDelay: 50, jitter: 0 },
    });
    const error = await pool.getconn({ timeout: 400 }).catch((e) => e);
    // TLS refused is an error waiting will not fix: PoolConnectError at once, the server's text in its message.
    assert.equal(error?.name, "PoolConnectError", mode);
    assert.match(String(error?.message), /The server does not support SSL connections/, mode);
    assert.equal(pool.getStats().connectionsNum, 0, `${mode}: no plaintext session`);
  }
});

Deno.test("connect_timeout in the conninfo bounds each attempt instead of the pool's connectTimeout", async () => {
  const url = new URL(Deno.env.get("DATABASE_URL")!);
  await using proxy = await startProxy({ targetHost: url.hostname, targetPort: Number(url.port) });
  proxy.blackhole();
  const conninfo = `host=127.0.0.1 port=${proxy.port} dbname=${db.name} user=${url.username} connect_timeout=2`;
  await using pool = new ConnectionPool({
    conninfo,
    minSize: 1,
    connectTimeout: 60_000,
    backoff: { initialDelay: 50, jitter: 0 },
  });
  const error = await pool.getconn({ timeout: 4_500 }).catch((e) => e);
  assert.match(
    String(error?.message),
    /last connection error: timeout expired: no connection to 127\.0\.0\.1:\d+ within 2000 ms/,
  );
});

Deno.test("sslnegotiation=direct without sslmode=require or stronger is a RangeError, as libpq refuses it", () => {
  for (
    const conninfo of [
      "host=h sslnegotiation=direct",
      "host=h sslnegotiation=direct sslmode=prefer",
      "postgres://h/db?sslnegotiation=direct&sslmode=disable",
    ]
  ) {
    assert.throws(() => new ConnectionPool({ conninfo }), { name: "RangeError", message: /sslnegotiation=direct/ });
  }
  for (
    const conninfo of [
      "host=h sslnegotiation=direct sslmode=require",
      "postgres://h/db?sslnegotiation=direct&sslmode=verify-full",
    ]
  ) {
    assert.doesNotThrow(() => new ConnectionPool({ conninfo }));
  }
});
