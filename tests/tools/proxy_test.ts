import assert from "node:assert/strict";
import pg from "pg";
import { adminUrl, backendCount, waitFor, withTestDatabase } from "../_db.ts";
import { type Proxy, startProxy } from "../_proxy.ts";

/** A pg client that records being cut instead of crashing the test. */
interface Probe {
  client: pg.Client;
  ended: () => boolean;
}

async function openProxy(): Promise<Proxy> {
  const target = new URL(adminUrl());
  return await startProxy({
    targetHost: target.hostname,
    targetPort: Number(target.port || 5432),
  });
}

async function connect(url: string, connectTimeout = 5_000): Promise<Probe> {
  const client = new pg.Client({
    connectionString: url,
    connectionTimeoutMillis: connectTimeout,
  });
  let ended = false;
  client.on("error", () => {});
  client.on("end", () => ended = true);
  await client.connect();
  return { client, ended: () => ended };
}

async function selectOne(client: pg.Client): Promise<number> {
  const { rows } = await client.query("select 1 as x");
  return rows[0].x;
}

Deno.test("proxy pipes queries and counts its open connections", async () => {
  await using proxy = await openProxy();
  await withTestDatabase(async (db) => {
    const a = await connect(proxy.url(db.url));
    const b = await connect(proxy.url(db.url));
    assert.equal(await selectOne(a.client), 1);
    assert.equal(await selectOne(b.client), 1);
    assert.equal(proxy.connections, 2);
    assert.equal(await backendCount(db.name), 2);
    await a.client.end();
    await waitFor(() => proxy.connections === 1);
    await b.client.end();
    await waitFor(() => proxy.connections === 0);
    await waitFor(async () => (await backendCount(db.name)) === 0);
  });
});

Deno.test("proxy.url() rewrites only the host and port", async () => {
  await using proxy = await openProxy();
  assert.equal(
    proxy.url("postgres://u:p%40ss@db.example:5432/app?sslmode=disable"),
    `postgres://u:p%40ss@127.0.0.1:${proxy.port}/app?sslmode=disable`,
  );
});

Deno.test("proxy.stop() cuts open connections and refuses new ones; start() reopens the same port", async () => {
  await using proxy = await openProxy();
  const url = proxy.url(adminUrl());
  const port = proxy.port;
  const a = await connect(url);
  await proxy.stop();
  await waitFor(a.ended, { message: "client was not cut" });
  assert.equal(proxy.connections, 0);
  await assert.rejects(() => connect(url));
  await proxy.start();
  assert.equal(proxy.port, port);
  const b = await connect(url);
  assert.equal(await selectOne(b.client), 1);
  await b.client.end();
  await a.client.end();
});

Deno.test("proxy.cutAll() cuts open connections and keeps accepting", async () => {
  await using proxy = await openProxy();
  const url = proxy.url(adminUrl());
  const a = await connect(url);
  const b = await connect(url);
  await proxy.cutAll();
  await waitFor(() => a.ended() && b.ended(), { message: "clients not cut" });
  await assert.rejects(() => a.client.query("select 1"));
  assert.equal(proxy.connections, 0);
  const c = await connect(url);
  assert.equal(await selectOne(c.client), 1);
  await Promise.all([a, b, c].map((p) => p.client.end()));
});

Deno.test("proxy.blackhole() stalls new and open connections until start()", async () => {
  await using proxy = await openProxy();
  const url = proxy.url(adminUrl());
  const open = await connect(url);
  proxy.blackhole();
  const stalled = selectOne(open.client);
  let answered = false;
  stalled.then(() => answered = true, () => answered = true);
  // A new connection is accepted but never answered, so it times out.
  await assert.rejects(() => connect(url, 200), /timeout/i);
  assert.ok(!answered, "query was answered through a blackhole");
  assert.equal(open.ended(), false);
  await proxy.start();
  assert.equal(await stalled, 1);
  const fresh = await connect(url);
  assert.equal(await selectOne(fresh.client), 1);
  await Promise.all([open.client.end(), fresh.client.end()]);
  await waitFor(() => proxy.connections === 0 && proxy.pending === 0);
});

Deno.test("proxy.delay(ms) delays new connections and delay(0) resets it", async () => {
  await using proxy = await openProxy();
  const url = proxy.url(adminUrl());
  const delayMs = 300;
  proxy.delay(delayMs);
  let start = performance.now();
  const slow = await connect(url);
  const slowMs = performance.now() - start;
  assert.ok(slowMs >= delayMs * 0.9, `connected after ${slowMs} ms`);
  assert.equal(await selectOne(slow.client), 1);
  proxy.delay(0);
  start = performance.now();
  const fast = await connect(url);
  const fastMs = performance.now() - start;
  assert.ok(fastMs < delayMs, `connect still delayed: ${fastMs} ms`);
  await Promise.all([slow.client.end(), fast.client.end()]);
});

Deno.test("proxy.close() cuts everything, frees the port and is idempotent", async () => {
  const proxy = await openProxy();
  const url = proxy.url(adminUrl());
  const a = await connect(url);
  proxy.delay(10_000);
  // A connection held in the delay must not keep a timer alive after close().
  const held = connect(url).catch((error) => error);
  await waitFor(() => proxy.pending === 1);
  await proxy.close();
  await proxy.close();
  await waitFor(a.ended);
  assert.ok((await held) instanceof Error);
  await assert.rejects(() => connect(url));
  await a.client.end();
});
