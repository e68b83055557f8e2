/**
 * A JSON API for `deno serve --parallel`: every isolate runs this module and
 * builds its own pool, and the pools share one budget of server connections
 * through `capGroup`, so the server sees at most `POOL_MAX_SIZE` connections
 * however many cores Deno uses.
 *
 * ```sh
 * DATABASE_URL=postgres://... DENO_JOBS=4 deno serve --parallel -A --port 8000 examples/parallel.ts
 * curl -X POST localhost:8000/items -d '{"name":"apple"}'
 * curl localhost:8000/items
 * curl 'localhost:8000/work?ms=20'
 * curl localhost:8000/stats
 * ```
 *
 * - `GET /items`, `POST /items` (`{"name": string}`): a small table.
 * - `GET /work?ms=20`: holds a connection for `ms` (a slow query), to load the pool.
 * - `GET /stats`: this isolate's pool stats next to the group's
 *   (`groupSize`, `groupMax`, `groupWaiting`).
 *
 * Every answer carries `isolate`, an id drawn when the isolate loaded this
 * module, to see which isolate served it. A pool timeout gives 503 with
 * `retry-after`. Environment: `DATABASE_URL`, `POOL_MAX_SIZE` (default 10),
 * `POOL_TIMEOUT_MS` (default 10000).
 *
 * @module
 */
// In your app: import { ConnectionPool, PoolTimeoutError } from "@tidepool/pg";
import { ConnectionPool, PoolTimeoutError } from "../mod.ts";

const isolate = crypto.randomUUID().slice(0, 8);
const pool = new ConnectionPool({
  conninfo: Deno.env.get("DATABASE_URL"),
  name: `parallel-${isolate}`,
  // One budget for every isolate of this process; each keeps its own sockets.
  capGroup: "parallel-api",
  maxSize: Number(Deno.env.get("POOL_MAX_SIZE") ?? 10),
  // Per isolate, counted against the budget (lowered with a warning if the isolates' sum does not fit).
  minSize: 1,
  timeout: Number(Deno.env.get("POOL_TIMEOUT_MS") ?? 10_000),
});

// Every isolate runs this: the advisory lock makes the isolates create the table one at a time.
const ready = pool.transaction(async (conn) => {
  await conn.query("select pg_advisory_xact_lock(7411)");
  await conn.query("create table if not exists parallel_items (id serial primary key, name text not null)");
});

// SIGINT/SIGTERM: deno serve stops accepting and waits for each isolate to go quiet; open
// sockets would keep it waiting, so each isolate closes its pool (giving its slots back).
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  Deno.addSignalListener(signal, () => void pool.close({ timeout: 5_000 }));
}

function json(body: unknown, status = 200, headers: Record<string, string> = {}): Response {
  return Response.json(body, { status, headers });
}

async function route(req: Request): Promise<Response> {
  await ready;
  const url = new URL(req.url);
  if (url.pathname === "/items" && req.method === "GET") {
    const { rows } = await pool.query("select id, name from parallel_items order by id");
    return json({ isolate, items: rows });
  }
  if (url.pathname === "/items" && req.method === "POST") {
    let name: unknown;
    try {
      name = (await req.json())?.name;
    } catch {
      return json({ isolate, error: "body is not JSON" }, 400);
    }
    if (typeof name !== "string" || name === "") {
      return json({ isolate, error: "'name' must be a non-empty string" }, 400);
    }
    const { rows } = await pool.query("insert into parallel_items (name) values ($1) returning id, name", [name]);
    return json({ isolate, item: rows[0] }, 201);
  }
  if (url.pathname === "/work") {
    const ms = Math.min(Math.max(Number(url.searchParams.get("ms") ?? 20) || 0, 0), 5_000);
    await pool.query("select pg_sleep($1)", [ms / 1000]);
    return json({ isolate });
  }
  if (url.pathname === "/stats") return json({ isolate, stats: pool.getStats() });
  return json({ isolate, error: "not found" }, 404);
}

export default {
  async fetch(req: Request): Promise<Response> {
    try {
      return await route(req);
    } catch (error) {
      if (error instanceof PoolTimeoutError) return json({ isolate, error: "busy" }, 503, { "retry-after": "1" });
      console.error(error);
      return json({ isolate, error: "internal error" }, 500);
    }
  },
} satisfies Deno.ServeDefaultExport;
