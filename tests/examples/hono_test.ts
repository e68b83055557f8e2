import assert from "node:assert/strict";
import { withTestDatabase } from "../_db.ts";
import { startExample } from "../_example.ts";

function metricValue(text: string, name: string): number {
  const m = new RegExp(`^${name}\\{pool="hono"\\} (\\S+)$`, "m").exec(text);
  assert.ok(m, `${name} not in /metrics`);
  return Number(m[1]);
}

Deno.test("examples/hono.ts lends one connection per request and always returns it", () =>
  withTestDatabase(async (db) => {
    // One connection and a short pool timeout: a request that kept its connection
    // would make every later request fail with 503.
    const app = await startExample(["run", "-A", "examples/hono.ts"], {
      env: { DATABASE_URL: db.url, PORT: "0", POOL_MAX_SIZE: "1", POOL_TIMEOUT_MS: "2000" },
    });
    const post = (path: string, body: string) => fetch(`${app.url}${path}`, { method: "POST", body });
    const items = async () => {
      const res = await fetch(`${app.url}/items`);
      assert.equal(res.status, 200);
      return Object.fromEntries((await res.json() as { name: string; qty: number }[]).map((i) => [i.name, i.qty]));
    };
    try {
      let res = await fetch(`${app.url}/healthz`);
      assert.equal(res.status, 200);
      assert.equal((await res.json()).status, "ok");

      res = await post("/items", "{not json");
      assert.equal(res.status, 400);
      assert.match((await res.json()).error, /JSON/);
      res = await post("/items", '{"qty": 2}');
      assert.equal(res.status, 400);
      assert.match((await res.json()).error, /'name'/);

      res = await post("/items", '{"name": "apple", "qty": 3}');
      assert.equal(res.status, 201);
      const apple = (await res.json()).id;
      res = await post("/items", '{"name": "pear"}');
      assert.equal(res.status, 201);
      const pear = (await res.json()).id;
      assert.deepEqual(await items(), { apple: 3, pear: 0 });

      // Commit: both rows change.
      res = await post("/transfer", JSON.stringify({ from: apple, to: pear, qty: 1 }));
      assert.equal(res.status, 200);
      assert.deepEqual(await res.json(), { from: { id: apple, qty: 2 }, to: { id: pear, qty: 1 } });
      assert.deepEqual(await items(), { apple: 2, pear: 1 });

      // The handler throws after the first update: rolled back, connection returned.
      res = await post("/transfer", JSON.stringify({ from: apple, to: 999_999, qty: 1 }));
      assert.equal(res.status, 404);
      assert.match((await res.json()).error, /No item 999999/);
      res = await post("/transfer", JSON.stringify({ from: apple, to: pear, qty: 5 }));
      assert.equal(res.status, 409);
      await res.body?.cancel();
      // A database error inside the transaction (integer out of range): 500 without the SQL.
      res = await post("/transfer", JSON.stringify({ from: apple, to: pear, qty: 1e12 }));
      assert.equal(res.status, 500);
      const body = await res.text();
      assert.equal(JSON.parse(body).error, "Internal server error");
      assert.ok(!/update|items|range/i.test(body), `500 body leaks the error: ${body}`);
      assert.deepEqual(await items(), { apple: 2, pear: 1 });

      // The only connection is back and idle after all of that.
      res = await fetch(`${app.url}/metrics`);
      const metrics = await res.text();
      assert.equal(metricValue(metrics, "tidepool_pool_size"), 1);
      assert.equal(metricValue(metrics, "tidepool_pool_available"), 1);
      assert.equal(metricValue(metrics, "tidepool_requests_errors_total"), 0);

      const exit = await app.stop("SIGTERM");
      assert.equal(exit.code, 0, exit.stderr);
      assert.match(exit.stdout, /SIGTERM: shutting down\nstopped/);
      // The 500's detail went to the server log, under the id the client got.
      assert.match(exit.stderr, /error [0-9a-f-]{36} on POST \/transfer/);
    } finally {
      await app.stop("SIGKILL");
    }
  }));
