/**
 * Host lists and `target_session_attrs`, against two real
 * embedded servers: A takes writes, B is read-only
 * (`default_transaction_read_only`), and a switchover swaps them.
 */
import assert from "node:assert/strict";
import pg from "pg";
import {
  ConnectionPool,
  createPgDriver,
  HostsExhaustedError,
  NullConnectionPool,
  PoolTimeoutError,
  SimpleConnectionPool,
  ThreadedConnectionPool,
} from "../../mod.ts";
import { sessionFits, type SessionWant } from "../../src/drivers/_session_attrs.ts";
import { type EmbeddedServer, startEmbedded } from "../../tools/_embedded.ts";
import { captureLogs, closedPort } from "../_pool_helpers.ts";
import { waitFor } from "../_db.ts";
import { startProxy } from "../_proxy.ts";
import { assertNoSecret } from "../_conninfo_helpers.ts";

const PASSWORD = "Host#List/pw?1";
const a = await startEmbedded({ password: PASSWORD });
const b = await startEmbedded({ password: PASSWORD });
Deno.test.afterAll(async () => {
  await a.close();
  await b.close();
});

/** A superuser client of `server`, not connected yet. */
function adminClient(server: EmbeddedServer): pg.Client {
  return new pg.Client({
    host: server.host,
    port: server.port,
    user: "postgres",
    password: PASSWORD,
    database: "postgres",
  });
}

/** Runs `sql` on `server` as the superuser on a connection of its own; returns its rows. */
async function admin(server: EmbeddedServer, sql: string): Promise<Record<string, unknown>[]> {
  const client = adminClient(server);
  await client.connect();
  try {
    return (await client.query(sql)).rows;
  } finally {
    await client.end();
  }
}

/** Makes `server` refuse writes (or take them again) for new transactions, as a demoted primary would. */
async function setReadOnly(server: EmbeddedServer, readOnly: boolean): Promise<void> {
  await admin(server, `alter system set default_transaction_read_only = ${readOnly ? "on" : "off"}`);
  await admin(server, "select pg_reload_conf()");
  // Wait until new sessions see it.
  await waitFor(async () =>
    (await admin(server, "show default_transaction_read_only"))[0].default_transaction_read_only ===
      (readOnly ? "on" : "off")
  );
}

for (const server of [a, b]) await admin(server, "create table if not exists t (v int)");
await setReadOnly(b, true);

const url = (hosts: (EmbeddedServer | number)[], query = "") =>
  `postgres://postgres:${encodeURIComponent(PASSWORD)}@${
    hosts.map((h) => `127.0.0.1:${typeof h === "number" ? h : h.port}`).join(",")
  }/postgres${query}`;
const keyValue = (hosts: (EmbeddedServer | number)[], attrs = "any") =>
  `host=${hosts.map(() => "127.0.0.1").join(",")} port=${
    hosts.map((h) => typeof h === "number" ? h : h.port).join(",")
  } user=postgres password='${PASSWORD}' dbname=postgres target_session_attrs=${attrs}`;

async function portOf(conninfo: string): Promise<number> {
  await using pool = new ConnectionPool({ conninfo, minSize: 1, timeout: 5_000 });
  const { rows } = await pool.query<{ port: number }>("select inet_server_port() as port");
  return rows[0].port;
}

Deno.test("host list: the first host down, the second is used (URL and key=value)", async () => {
  const down = closedPort();
  assert.equal(await portOf(url([down, a.port])), a.port);
  assert.equal(await portOf(keyValue([down, a.port])), a.port);
});

Deno.test("read-write skips a read-only server, in URL and key=value form, for every pool class", async () => {
  for (const conninfo of [url([b, a], "?target_session_attrs=read-write"), keyValue([b, a], "read-write")]) {
    assert.equal(await portOf(conninfo), a.port, conninfo);
    {
      await using pool = new NullConnectionPool({ conninfo, maxSize: 1, timeout: 5_000 });
      assert.equal((await pool.query<{ port: number }>("select inet_server_port() as port")).rows[0].port, a.port);
    }
    for (const Class of [SimpleConnectionPool, ThreadedConnectionPool]) {
      const pool = new Class(0, 1, conninfo);
      try {
        const conn = await pool.getconn();
        assert.equal((await conn.query("select inet_server_port() as port")).rows[0].port, a.port, Class.name);
        assert.deepEqual(pool.toJSON().hosts, { [`127.0.0.1:${a.port}`]: 1 }, `${Class.name}.toJSON() names the host`);
        await pool.putconn(conn);
      } finally {
        await pool.closeall();
      }
    }
  }
});

Deno.test("read-only picks the read-only server; primary accepts it (not a standby, libpq's meaning); prefer-standby with no standby takes the first", async () => {
  assert.equal(await portOf(url([a, b], "?target_session_attrs=read-only")), b.port);
  assert.equal(await portOf(keyValue([a, b], "read-only")), b.port);
  assert.equal(await portOf(url([b, a], "?target_session_attrs=primary")), b.port);
  assert.equal(await portOf(url([a, b], "?target_session_attrs=prefer-standby")), a.port);
  assert.equal(await portOf(url([b, a], "?target_session_attrs=any")), b.port);
});

Deno.test("no host matching: HostsExhaustedError naming each host tried and why, never the password", async () => {
  await using logs = await captureLogs();
  const down = closedPort();
  await using pool = new ConnectionPool({
    conninfo: url([a, down, b], "?target_session_attrs=standby"),
    minSize: 1,
    backoff: { initialDelay: 50, jitter: 0 },
  });
  const error = await pool.getconn({ timeout: 1_500 }).catch((e) => e);
  assert.ok(error instanceof PoolTimeoutError, String(error));
  const cause = error.cause as HostsExhaustedError;
  assert.ok(cause instanceof HostsExhaustedError, String(cause));
  assert.deepEqual(cause.hosts, [`127.0.0.1:${a.port}`, `127.0.0.1:${down}`, `127.0.0.1:${b.port}`]);
  assert.match(cause.message, /target_session_attrs=standby/);
  assert.match(
    cause.message,
    new RegExp(`127\\.0\\.0\\.1:${a.port}: server 127\\.0\\.0\\.1:${a.port} is not a standby`),
  );
  assert.match(cause.message, new RegExp(`127\\.0\\.0\\.1:${down}: .*ECONNREFUSED`));
  assert.match(error.message, /last connection error: No server accepted a session/);
  const text = [
    error.message,
    error.stack,
    cause.message,
    cause.stack,
    Deno.inspect(error, { depth: 10 }),
    ...logs.messages(),
  ]
    .join("\n");
  assertNoSecret(text, PASSWORD, "no-host error");
});

Deno.test("target_session_attrs checks: the server's reports and the fallback queries (SHOW transaction_read_only, pg_is_in_recovery()) agree", async () => {
  const wants: SessionWant[] = ["any", "read-write", "read-only", "primary", "standby"];
  const expected: Record<string, Record<SessionWant, boolean>> = {
    a: { any: true, "read-write": true, "read-only": false, primary: true, standby: false },
    b: { any: true, "read-write": false, "read-only": true, primary: true, standby: false },
  };
  for (const [name, server] of [["a", a], ["b", b]] as const) {
    const reported = new Map<string, string>();
    const client = adminClient(server);
    (client as unknown as {
      connection: { on(e: string, f: (m: { parameterName: string; parameterValue: string }) => void): void };
    })
      .connection.on("parameterStatus", (m) => reported.set(m.parameterName, m.parameterValue));
    await client.connect();
    try {
      assert.ok(
        reported.has("in_hot_standby") && reported.has("default_transaction_read_only"),
        "PostgreSQL 14+ reports both",
      );
      for (const want of wants) {
        assert.equal(await sessionFits(client, want, reported), expected[name][want], `${name} ${want} (reports)`);
        assert.equal(await sessionFits(client, want, new Map()), expected[name][want], `${name} ${want} (queries)`);
      }
    } finally {
      await client.end();
    }
  }
});

Deno.test("bad host-list input is a TypeError/RangeError naming the parameter", () => {
  const cases: [string, RegExp][] = [
    ["host=h1,h2,h3 port=1,2", /'port' lists 2 ports for 3 hosts/],
    [url([a, b], "?target_session_attrs=writable"), /'target_session_attrs' must be one of any, read-write/],
    ["host=h1,h2 hostaddr=127.0.0.1", /'hostaddr' lists 1 addresses for 2 hosts/],
    [url([a], "?load_balance_hosts=sometimes"), /'load_balance_hosts'/],
  ];
  for (const [conninfo, message] of cases) {
    assert.throws(() => new ConnectionPool({ conninfo }), (e: Error) => {
      assert.ok(e instanceof RangeError || e instanceof TypeError, String(e));
      assert.match(e.message, message);
      return true;
    });
  }
});

Deno.test("switchover under a steady write loop: writes heal on the new primary without a restart, and none reaches the read-only host afterwards", async () => {
  await using logs = await captureLogs();
  await using pool = new ConnectionPool({
    conninfo: url([a, b], "?target_session_attrs=read-write"),
    minSize: 2,
    maxSize: 4,
    timeout: 5_000,
    backoff: { initialDelay: 50, jitter: 0 },
    name: "switchover",
  });
  await pool.open({ wait: true, timeout: 5_000 });
  const writes: { at: number; port?: number; error?: string }[] = [];
  let running = true;
  const writer = async () => {
    while (running) {
      try {
        const { rows } = await pool.query<{ port: number }>(
          "insert into t(v) values (1) returning inet_server_port() as port",
        );
        writes.push({ at: performance.now(), port: rows[0].port });
      } catch (error) {
        writes.push({ at: performance.now(), error: (error as { code?: string }).code ?? String(error) });
      }
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  };
  const tasks = Array.from({ length: 4 }, writer);
  try {
    await waitFor(() => writes.filter((w) => w.port === a.port).length >= 20);
    // The switchover: A stops taking writes, B starts.
    await setReadOnly(b, false);
    await setReadOnly(a, true);
    const switched = performance.now();
    await waitFor(() => writes.some((w) => w.at > switched && w.port === b.port), { timeout: 10_000 });
    const healed = writes.find((w) => w.at > switched && w.port === b.port)!.at - switched;
    const healedAt = switched + healed;
    await waitFor(() => writes.filter((w) => w.at > healedAt && w.port === b.port).length >= 40);
    running = false;
    await Promise.all(tasks);
    console.log(`switchover healed in ${Math.round(healed)} ms`);
    assert.ok(healed < 5_000, `healed in ${healed} ms`);
    const errorsOutside = writes.filter((w) => w.error !== undefined && w.error !== "25006");
    assert.deepEqual(errorsOutside, [], "the only failures are writes refused by the read-only server");
    // Once the first write landed on B, every later one did (a write already running on A may still finish with 25006).
    const late = writes.filter((w) => w.at > healedAt + 500 && w.port !== b.port);
    assert.deepEqual(late, [], "no write reached the read-only host after the heal");
    assert.ok(
      logs.messages().some((m) => m.includes(`127.0.0.1:${a.port} is now read-only`)),
      "the log names the host that stopped taking writes",
    );
  } finally {
    running = false;
    await Promise.all(tasks);
    await setReadOnly(a, false);
    await setReadOnly(b, true);
  }
});

Deno.test("failover with idle connections: the first sign that the primary went read-only closes every idle connection to it, the pool refills on the new primary, and toJSON shows the move", async () => {
  const sessionsOn = async (server: EmbeddedServer) =>
    (await admin(server, "select count(*)::int as n from pg_stat_activity where application_name = 'tp-failover'"))[0]
      .n as number;
  await using pool = new ConnectionPool({
    conninfo: url([a, b], "?target_session_attrs=read-write&application_name=tp-failover"),
    minSize: 3,
    timeout: 5_000,
    backoff: { initialDelay: 50, jitter: 0 },
  });
  await pool.open({ wait: true, timeout: 5_000 });
  assert.equal(await sessionsOn(a), 3);
  assert.deepEqual(JSON.parse(JSON.stringify(pool)).hosts, { [`127.0.0.1:${a.port}`]: 3 }, "toJSON names the host");
  try {
    await setReadOnly(b, false);
    await setReadOnly(a, true);
    // A borrower in the middle of the switchover may see its write refused (25006), once.
    const first = await pool.query("insert into t(v) values (2)").then(() => "ok", (e) => e.code);
    assert.ok(first === "ok" || first === "25006", String(first));
    await waitFor(async () => (await sessionsOn(a)) === 0 && (await sessionsOn(b)) === 3, {
      timeout: 5_000,
      message: "the idle connections to the old primary were closed and replaced on the new one",
    });
    await waitFor(() => JSON.stringify(pool.toJSON().hosts) === JSON.stringify({ [`127.0.0.1:${b.port}`]: 3 }));
    assert.match(Deno.inspect(pool), new RegExp(`127\\.0\\.0\\.1:${b.port}`));
    for (let i = 0; i < 20; i++) {
      const { rows } = await pool.query<{ port: number }>(
        "insert into t(v) values (3) returning inet_server_port() as port",
      );
      assert.equal(rows[0].port, b.port);
    }
  } finally {
    await setReadOnly(a, false);
    await setReadOnly(b, true);
  }
});

Deno.test("load_balance_hosts=random spreads connections over the hosts; disable always takes the first", async () => {
  for (const [query, expected] of [["?load_balance_hosts=random", 2], ["", 1]] as const) {
    const driver = createPgDriver(url([a, b], query), { connectTimeout: 5_000 });
    const seen = new Set<string | undefined>();
    for (let i = 0; i < 20 && seen.size < 2; i++) {
      const client = await driver.connect(new AbortController().signal);
      seen.add(driver.hostOf?.(client));
      await driver.close(client);
    }
    assert.equal(seen.size, expected, `${query}: ${[...seen]}`);
  }
});

Deno.test("a first host that accepts and never answers costs one connectTimeout, then the next host is used", async () => {
  await using proxy = await startProxy({ targetPort: a.port });
  proxy.blackhole();
  const started = performance.now();
  await using pool = new ConnectionPool({
    conninfo: url([proxy.port, b], "?target_session_attrs=any"),
    minSize: 1,
    connectTimeout: 300,
    timeout: 5_000,
  });
  const { rows } = await pool.query<{ port: number }>("select inet_server_port() as port");
  const elapsed = performance.now() - started;
  assert.equal(rows[0].port, b.port);
  assert.ok(elapsed >= 250 && elapsed < 3_000, `took ${elapsed} ms`);
});

Deno.test("failover without a failed write: a read on the demoted primary brings its default_transaction_read_only report, and the pool leaves that host", async () => {
  await using logs = await captureLogs();
  await using pool = new ConnectionPool({
    conninfo: url([a, b], "?target_session_attrs=read-write"),
    minSize: 2,
    timeout: 5_000,
    backoff: { initialDelay: 50, jitter: 0 },
  });
  await pool.open({ wait: true, timeout: 5_000 });
  assert.deepEqual(pool.toJSON().hosts, { [`127.0.0.1:${a.port}`]: 2 });
  try {
    await setReadOnly(b, false);
    await setReadOnly(a, true);
    await pool.query("select 1"); // succeeds: reads are fine on a read-only server
    await waitFor(() => JSON.stringify(pool.toJSON().hosts) === JSON.stringify({ [`127.0.0.1:${b.port}`]: 2 }), {
      timeout: 5_000,
      message: "the pool moved to the new primary",
    });
    assert.ok(logs.messages().some((m) => m.includes(`127.0.0.1:${a.port} is now read-only`)));
    const { rows } = await pool.query<{ port: number }>(
      "insert into t(v) values (4) returning inet_server_port() as port",
    );
    assert.equal(rows[0].port, b.port);
  } finally {
    await setReadOnly(a, false);
    await setReadOnly(b, true);
  }
});
