/**
 * examples/parallel.ts under `deno serve --parallel`: several isolates, each
 * with its own pool and sockets, share one budget through capGroup.
 */
import assert from "node:assert/strict";
import { adminQuery, waitFor, withTestDatabase } from "../_db.ts";
import { startExample } from "../_example.ts";
import { sampleApp } from "../_shared_helpers.ts";

const ISOLATES = 3;
const MAX_SIZE = 4;

function freePort(): number {
  const listener = Deno.listen({ port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

Deno.test("examples/parallel.ts: a burst over several deno serve --parallel isolates never holds more than maxSize backends", () =>
  withTestDatabase(async (db) => {
    const app = `tp-parallel-${Math.random().toString(36).slice(2, 8)}`;
    const url = new URL(db.url);
    url.searchParams.set("application_name", app);
    const server = await startExample(
      ["serve", "--parallel", "-A", "--port", String(freePort()), "examples/parallel.ts"],
      {
        env: { DATABASE_URL: url.toString(), DENO_JOBS: String(ISOLATES), POOL_MAX_SIZE: String(MAX_SIZE) },
        listening: /listening on (http:\/\/\S+?)\/? with \d+ threads/i,
      },
    );
    let peak: { stop(): Promise<number> } | undefined;
    try {
      let res = await fetch(`${server.url}/items`, { method: "POST", body: '{"name": "apple"}' });
      assert.equal(res.status, 201);
      await res.body?.cancel();
      res = await fetch(`${server.url}/items`, { method: "POST", body: "{" });
      assert.equal(res.status, 400);
      await res.body?.cancel();

      peak = sampleApp(app);
      const seen = new Set<string>();
      // Bursts until requests were served by several isolates: the kernel spreads new connections, so each request
      // gets one of its own (a kept-alive connection stays with the isolate that accepted it).
      await using client = Deno.createHttpClient({ poolMaxIdlePerHost: 0 });
      await waitFor(async () => {
        const answers = await Promise.all(Array.from({ length: 40 }, async () => {
          const r = await fetch(`${server.url}/work?ms=30`, { client });
          return { status: r.status, body: await r.json() as { isolate: string } };
        }));
        for (const a of answers) {
          assert.equal(a.status, 200, JSON.stringify(a.body));
          seen.add(a.body.isolate);
        }
        return seen.size >= 2;
      }, { timeout: 60_000, interval: 0, message: "requests reached several isolates" });
      const highest = await peak.stop();
      peak = undefined;
      assert.ok(highest <= MAX_SIZE, `peak ${highest} backends > maxSize ${MAX_SIZE}`);
      assert.ok(highest >= 1, "the sampler saw the pools' sessions");

      res = await fetch(`${server.url}/stats`);
      const { stats } = await res.json() as { stats: Record<string, number> };
      assert.equal(stats.groupMax, MAX_SIZE);
      assert.ok(stats.groupSize <= MAX_SIZE);

      const out = await server.stop("SIGTERM");
      assert.equal(out.code, 0, out.stderr);
      await waitFor(async () => {
        const [row] = await adminQuery<{ n: number }>(
          "select count(*)::int as n from pg_stat_activity where application_name = $1",
          [app],
        );
        return row.n === 0;
      }, { message: "every isolate closed its connections" });
    } finally {
      await peak?.stop();
      await server.stop("SIGKILL");
    }
  }));

Deno.test("examples/parallel.ts: with more deno serve --parallel isolates than maxSize, every isolate serves requests under a steady load", () =>
  withTestDatabase(async (db) => {
    const isolates = 4;
    const maxSize = 3;
    const app = `tp-parallel-${Math.random().toString(36).slice(2, 8)}`;
    const url = new URL(db.url);
    url.searchParams.set("application_name", app);
    const server = await startExample(
      ["serve", "--parallel", "-A", "--port", String(freePort()), "examples/parallel.ts"],
      {
        env: {
          DATABASE_URL: url.toString(),
          DENO_JOBS: String(isolates),
          POOL_MAX_SIZE: String(maxSize),
          POOL_TIMEOUT_MS: "5000",
        },
        listening: /listening on (http:\/\/\S+?)\/? with \d+ threads/i,
      },
    );
    // A new TCP connection per request, so the kernel spreads them over every isolate.
    const client = Deno.createHttpClient({ poolMaxIdlePerHost: 0 });
    const peak = sampleApp(app);
    try {
      const served = new Map<string, number>();
      const refused: string[] = [];
      const until = performance.now() + 4_000;
      await Promise.all(Array.from({ length: 8 }, async () => {
        while (performance.now() < until || served.size < isolates) {
          const r = await fetch(`${server.url}/work?ms=10`, { client });
          const body = await r.json() as { isolate: string; error?: string };
          if (r.status !== 200) refused.push(`${r.status} from ${body.isolate}: ${body.error}`);
          else served.set(body.isolate, (served.get(body.isolate) ?? 0) + 1);
          if (performance.now() > until + 30_000) break;
        }
      }));
      assert.deepEqual(refused, [], "no isolate answered busy");
      assert.equal(served.size, isolates, `isolates served: ${JSON.stringify([...served])}`);
    } finally {
      client.close();
      const highest = await peak.stop();
      await server.stop("SIGKILL");
      assert.ok(highest <= maxSize, `peak ${highest} backends > maxSize ${maxSize}`);
    }
  }));
