import assert from "node:assert/strict";
import { backendCount, waitFor, withTestDatabase } from "../_db.ts";
import { startExample } from "../_example.ts";

Deno.test("examples/deploy.ts under deno serve opens its pool on the first data request and exits 0 on SIGTERM", () =>
  withTestDatabase(async (db) => {
    const app = await startExample(["serve", "-A", "--port", "0", "examples/deploy.ts"], {
      env: { DATABASE_URL: db.url },
    });
    try {
      // Health and metrics do not open the pool: still no session on the server.
      let res = await fetch(`${app.url}/healthz`);
      assert.equal(res.status, 200);
      assert.deepEqual(await res.json(), { status: "ok", pool: null });
      res = await fetch(`${app.url}/metrics`);
      assert.equal(res.status, 200);
      assert.equal(await res.text(), "");
      res = await fetch(`${app.url}/items`, { method: "POST", body: "{oops" });
      assert.equal(res.status, 400);
      assert.match((await res.json()).error, /JSON/);
      assert.equal(await backendCount(db.name), 0);

      res = await fetch(`${app.url}/items`, { method: "POST", body: '{"name": "apple"}' });
      assert.equal(res.status, 201);
      assert.equal((await res.json()).name, "apple");
      assert.ok(await backendCount(db.name) >= 1, "the first data request opened a connection");
      res = await fetch(`${app.url}/items`);
      assert.deepEqual(await res.json(), [{ id: 1, name: "apple" }]);

      res = await fetch(`${app.url}/metrics`);
      const metrics = await res.text();
      assert.match(metrics, /^tidepool_pool_size\{pool="deploy"\} 1$/m);
      // create table, insert, select
      assert.match(metrics, /^tidepool_requests_total\{pool="deploy"\} 3$/m);
      res = await fetch(`${app.url}/healthz`);
      assert.equal((await res.json()).pool.poolSize, 1);

      // deno serve waits for open sockets after SIGTERM: the example's listener closes the pool,
      // so the stop takes milliseconds rather than maxIdle (30 s).
      const stopping = performance.now();
      const exit = await app.stop("SIGTERM");
      assert.ok(performance.now() - stopping < 5_000, `SIGTERM took ${Math.round(performance.now() - stopping)} ms`);
      assert.equal(exit.code, 0, exit.stderr);
      assert.equal(exit.signal, null);
      await waitFor(async () => (await backendCount(db.name)) === 0, { message: "sessions outlived the isolate" });
    } finally {
      await app.stop("SIGKILL");
    }
  }));

Deno.test("examples/deploy.ts keeps no timer alive: a script that used it exits once idle connections close", () =>
  withTestDatabase(async (db) => {
    // Call the handler directly, without a server, and let the script end. Only the
    // idle connection keeps it running; maxIdle closes that, and then nothing may be left.
    const script = `
      import handler from "./examples/deploy.ts";
      const res = await handler.fetch(new Request("http://deploy.test/items"));
      console.log("status", res.status, JSON.stringify(await res.json()));
    `;
    const started = performance.now();
    const child = new Deno.Command(Deno.execPath(), {
      args: ["eval", "--ext=ts", script],
      env: { DATABASE_URL: db.url, POOL_MAX_IDLE_MS: "300", NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const killer = setTimeout(() => child.kill("SIGKILL"), 20_000);
    const out = await child.output();
    clearTimeout(killer);
    const elapsed = performance.now() - started;
    const stdout = new TextDecoder().decode(out.stdout);
    assert.equal(out.signal, null, `still running after 20 s: ${stdout}`);
    assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
    assert.match(stdout, /^status 200 \[\]$/m);
    // Exits by itself well before the 20 s kill; the idle close takes maxIdle (300 ms) plus a sweep.
    assert.ok(elapsed < 15_000, `took ${Math.round(elapsed)} ms`);
    assert.equal(await backendCount(db.name), 0);
  }));
