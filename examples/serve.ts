/**
 * A small JSON API on `Deno.serve` with one pool: the shape of a production
 * service.
 *
 * ```sh
 * DATABASE_URL=postgres://... PORT=8000 deno run -A examples/serve.ts
 * curl -X POST localhost:8000/items -d '{"name":"apple","qty":3}'
 * curl localhost:8000/items
 * curl localhost:8000/healthz
 * curl localhost:8000/metrics
 * ```
 *
 * - `GET /items`, `POST /items` (`{"name": string, "qty"?: integer}`): bad JSON
 *   or fields give 400 with a message; a database error gives 500 with a
 *   generic message (the SQL and the connection string stay in the server log);
 *   a pool timeout gives 503 with `retry-after`.
 * - `GET /healthz`: the pool's stats, 503 while shutting down. It does no
 *   query, so probes never compete with requests for a connection.
 * - `GET /metrics`: Prometheus text. It only reads `getStats()`, so a scrape
 *   answers at once even when every connection is busy.
 * - SIGINT/SIGTERM: stop accepting, let requests in flight finish (at most
 *   `DRAIN_TIMEOUT_MS`), then `pool.close()`; exit code 0.
 *
 * Environment: `DATABASE_URL`, `PORT` (0 = any free port; the chosen one is
 * printed as `listening on http://...`), `POOL_MAX_SIZE`, `POOL_TIMEOUT_MS`.
 *
 * @module
 */
// In your app: import { ConnectionPool, PoolTimeoutError, toPrometheus } from "@tidepool/pg";
import { ConnectionPool, PoolTimeoutError, toPrometheus } from "../mod.ts";

const DRAIN_TIMEOUT_MS = 10_000;

const maxSize = Number(Deno.env.get("POOL_MAX_SIZE") ?? 10);
const pool = new ConnectionPool({
  conninfo: Deno.env.get("DATABASE_URL"),
  name: "serve",
  minSize: Math.min(2, maxSize),
  maxSize,
  // Fail a request fast (503) rather than queue it for 30 s behind a stuck database.
  timeout: Number(Deno.env.get("POOL_TIMEOUT_MS") ?? 5_000),
});
// Fail at boot, not on the first request, when the database is unreachable.
await pool.open({ wait: true, timeout: 10_000 });
await pool.query(`
  create table if not exists serve_items (
    id integer generated always as identity primary key,
    name text not null,
    qty integer not null default 0,
    created_at timestamptz not null default now()
  )`);

/** A 4xx with a message the client may see. */
class HttpError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

let shuttingDown = false;

async function handle(req: Request): Promise<Response> {
  const { pathname } = new URL(req.url);
  const route = `${req.method} ${pathname}`;
  switch (route) {
    case "GET /items": {
      const { rows } = await pool.query("select id, name, qty, created_at from serve_items order by id limit 100");
      return Response.json(rows);
    }
    case "POST /items": {
      const { name, qty } = await readItem(req);
      const { rows } = await pool.query(
        "insert into serve_items (name, qty) values ($1, $2) returning id, name, qty, created_at",
        [name, qty],
      );
      return Response.json(rows[0], { status: 201 });
    }
    case "GET /healthz": {
      const stats = pool.getStats();
      const ok = !shuttingDown && !pool.closed;
      return Response.json({ status: ok ? "ok" : "shutting down", pool: stats }, { status: ok ? 200 : 503 });
    }
    case "GET /metrics":
      return new Response(toPrometheus(pool), {
        headers: { "content-type": "text/plain; version=0.0.4; charset=utf-8" },
      });
  }
  throw new HttpError(404, `No route for ${route}`);
}

async function readItem(req: Request): Promise<{ name: string; qty: number }> {
  let body: unknown;
  try {
    body = await req.json();
  } catch {
    throw new HttpError(400, "Body is not valid JSON");
  }
  if (body === null || typeof body !== "object" || Array.isArray(body)) {
    throw new HttpError(400, "Body must be a JSON object");
  }
  const { name, qty = 0 } = body as Record<string, unknown>;
  if (typeof name !== "string" || name.trim() === "" || name.length > 200) {
    throw new HttpError(400, "Field 'name' is required: a non-empty string of at most 200 characters");
  }
  if (!Number.isInteger(qty) || (qty as number) < 0 || (qty as number) > 2_147_483_647) {
    throw new HttpError(400, "Field 'qty' must be an integer between 0 and 2147483647");
  }
  return { name, qty: qty as number };
}

/** Maps errors to responses; nothing from a database error reaches the client. */
async function handleSafely(req: Request): Promise<Response> {
  try {
    return await handle(req);
  } catch (error) {
    if (error instanceof HttpError) return Response.json({ error: error.message }, { status: error.status });
    if (error instanceof PoolTimeoutError) {
      return Response.json({ error: "Service busy, try again" }, { status: 503, headers: { "retry-after": "1" } });
    }
    // The id ties the client's report to the server log line, which has the detail.
    const id = crypto.randomUUID();
    const code = (error as { code?: unknown }).code;
    console.error(`error ${id} on ${req.method} ${new URL(req.url).pathname}:`, String(error), code ?? "");
    return Response.json({ error: "Internal server error", id }, { status: 500 });
  }
}

const server = Deno.serve({
  port: Number(Deno.env.get("PORT") ?? 8000),
  onListen: ({ hostname, port }) => console.log(`listening on http://${hostname}:${port}/`),
}, handleSafely);

async function shutdown(signal: Deno.Signal): Promise<void> {
  if (shuttingDown) return;
  shuttingDown = true;
  console.log(`${signal}: shutting down`);
  for (const s of SIGNALS) Deno.removeSignalListener(s, onSignal[s]);
  // shutdown() stops accepting and resolves when requests in flight are done.
  let drainTimer: ReturnType<typeof setTimeout> | undefined;
  const drained = await Promise.race([
    server.shutdown().then(() => true),
    new Promise<false>((resolve) => drainTimer = setTimeout(() => resolve(false), DRAIN_TIMEOUT_MS)),
  ]);
  clearTimeout(drainTimer);
  if (!drained) console.error(`requests still running after ${DRAIN_TIMEOUT_MS} ms: closing the pool under them`);
  // Connections still borrowed after the timeout are closed anyway, which fails the stuck requests.
  await pool.close({ timeout: 5_000 });
  await server.finished;
  console.log("stopped");
}

const SIGNALS = ["SIGINT", "SIGTERM"] as const;
const onSignal = { SIGINT: () => void shutdown("SIGINT"), SIGTERM: () => void shutdown("SIGTERM") };
for (const s of SIGNALS) Deno.addSignalListener(s, onSignal[s]);
