import assert from "node:assert/strict";
import pg from "pg";
import { adminQuery, waitFor, withTestDatabase } from "../_db.ts";
import { startExample } from "../_example.ts";

async function json(res: Response): Promise<Record<string, unknown>> {
  return await res.json();
}

function metricValue(text: string, name: string): number {
  const m = new RegExp(`^${name}\\{pool="serve"\\} (\\S+)$`, "m").exec(text);
  assert.ok(m, `${name} not in /metrics`);
  return Number(m[1]);
}

Deno.test("examples/serve.ts serves items, health and metrics, and stops cleanly on SIGTERM", () =>
  withTestDatabase(async (db) => {
    const app = await startExample(["run", "-A", "examples/serve.ts"], {
      env: { DATABASE_URL: db.url, PORT: "0", POOL_MAX_SIZE: "2", POOL_TIMEOUT_MS: "20000" },
    });
    const locker = new pg.Client({ connectionString: db.url });
    locker.on("error", () => {});
    try {
      let res = await fetch(`${app.url}/healthz`);
      assert.equal(res.status, 200);
      const health = await json(res);
      assert.equal(health.status, "ok");
      assert.equal((health.pool as Record<string, number>).poolMax, 2);

      res = await fetch(`${app.url}/items`, { method: "POST", body: '{"name": "apple",' });
      assert.equal(res.status, 400);
      assert.match(String((await json(res)).error), /JSON/);

      res = await fetch(`${app.url}/items`, { method: "POST", body: '{"qty": 1}' });
      assert.equal(res.status, 400);
      assert.match(String((await json(res)).error), /'name'/);

      res = await fetch(`${app.url}/items`, { method: "POST", body: '{"name": "pear", "qty": 1.5}' });
      assert.equal(res.status, 400);
      assert.match(String((await json(res)).error), /'qty'/);

      res = await fetch(`${app.url}/items`, { method: "POST", body: '{"name": "apple", "qty": 3}' });
      assert.equal(res.status, 201);
      const created = await json(res);
      assert.equal(created.name, "apple");
      assert.equal(typeof created.id, "number", `id ${JSON.stringify(created.id)} is not a JSON number`);

      res = await fetch(`${app.url}/items`);
      assert.equal(res.status, 200);
      const items = await res.json() as Record<string, unknown>[];
      assert.deepEqual(items.map((i) => [i.id, i.name, i.qty]), [[created.id, "apple", 3]]);

      // Busy pool: a lock holds both connections in queries, with at most the default depth (16) of statements
      // pipelined behind each, so of 33 requests at least one queues. /metrics must still answer at once, reporting it.
      await locker.connect();
      await locker.query("begin; lock table serve_items in access exclusive mode");
      const blocked = Array.from({ length: 2 * 16 + 1 }, () => fetch(`${app.url}/items`));
      let metrics = "";
      await waitFor(async () => {
        const started = performance.now();
        const r = await fetch(`${app.url}/metrics`);
        metrics = await r.text();
        assert.equal(r.status, 200);
        assert.match(r.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
        assert.ok(performance.now() - started < 1_000, "/metrics waited for the busy pool");
        return metricValue(metrics, "tidepool_requests_waiting") >= 1;
      }, { timeout: 10_000, message: "a request never queued" });
      assert.equal(metricValue(metrics, "tidepool_pool_available"), 0);
      assert.equal(metricValue(metrics, "tidepool_pool_size"), 2);
      assert.match(metrics, /^# TYPE tidepool_requests_total counter$/m);
      await locker.query("commit");
      for (const r of await Promise.all(blocked)) {
        assert.equal(r.status, 200);
        await r.body?.cancel();
      }

      // A database error is a 500 that says nothing about the SQL or the credentials.
      await adminQuery("select 1"); // the admin connection works
      await locker.query("drop table serve_items");
      res = await fetch(`${app.url}/items`);
      assert.equal(res.status, 500);
      const body = await res.text();
      const { error, id } = JSON.parse(body);
      assert.equal(error, "Internal server error");
      const password = decodeURIComponent(new URL(db.url).password);
      for (const secret of ["select", "items", "relation", db.name, password].filter((s) => s !== "")) {
        assert.ok(!body.includes(secret), `500 body leaks ${secret}: ${body}`);
      }

      res = await fetch(`${app.url}/nope`);
      assert.equal(res.status, 404);
      await res.body?.cancel();

      // Graceful drain: a request in flight when SIGTERM arrives still completes.
      await locker.query(
        "create table serve_items (id integer generated always as identity primary key, name text not null, " +
          "qty integer not null default 0, created_at timestamptz not null default now())",
      );
      await locker.query("begin; lock table serve_items in access exclusive mode");
      const inFlight = fetch(`${app.url}/items`);
      await waitFor(async () => {
        const [row] = await adminQuery<{ n: number }>(
          "select count(*)::int as n from pg_stat_activity where datname = $1 and wait_event_type = 'Lock'",
          [db.name],
        );
        return row.n === 1;
      }, { timeout: 10_000, message: "the in-flight request never reached the lock" });
      const stopping = app.stop("SIGTERM");
      await waitFor(() => app.stdout().includes("SIGTERM: shutting down"), { timeout: 10_000 });
      await locker.query("commit");
      const drained = await inFlight;
      assert.equal(drained.status, 200);
      assert.deepEqual(await drained.json(), []);
      const exit = await stopping;
      assert.equal(exit.code, 0, exit.stderr);
      assert.equal(exit.signal, null);
      assert.match(exit.stdout, /stopped/);
      assert.ok(exit.stderr.includes(id), "the 500's id is in the server log");
    } finally {
      await locker.end().catch(() => {});
      await app.stop("SIGKILL");
    }
  }));
