/**
 * A Deno Deploy style handler: `export default { fetch }`, run with `deno serve`.
 *
 * ```sh
 * DATABASE_URL=postgres://... deno serve -A --port 8000 examples/deploy.ts
 * ```
 *
 * The platform owns the isolate's life, so the module keeps nothing running:
 *
 * - One pool per isolate, at module level, created on the first request that
 *   needs it. The constructor does no I/O and `minSize: 0` opens nothing
 *   ahead: `/healthz` and `/metrics` never connect, and an isolate that is
 *   started and never asked for data never touches the database.
 * - `maxIdle` closes connections nobody used for a while, so a quiet isolate
 *   holds no server session; the pool's timers are unref'd, so none of them
 *   keeps an isolate (or a `deno run` script) alive.
 * - No `close()` in the handler: Deploy simply drops an isolate, and the
 *   server ends its sessions when the sockets close. Locally, `deno serve`
 *   stops on SIGTERM or Ctrl-C (SIGINT) only once every socket is closed, so
 *   a listener for both closes the pool (without it, the stop would wait for
 *   `maxIdle`).
 * - Its table is `deploy_items`: the other examples own theirs, so they can
 *   share one database in any order.
 *
 * Environment: `DATABASE_URL`, `POOL_MAX_SIZE` (default 5: several isolates
 * share the server's `max_connections`), `POOL_MAX_IDLE_MS` (default 30000).
 *
 * @module
 */
// In your app: import { ConnectionPool, PoolTimeoutError, toPrometheus } from "@tidepool/pg";
import { ConnectionPool, PoolTimeoutError, toPrometheus } from "../mod.ts";

let pool: ConnectionPool | undefined;
let schema: Promise<void> | undefined;

/** The isolate's pool, created on first use. */
function getPool(): ConnectionPool {
  return pool ??= new ConnectionPool({
    conninfo: Deno.env.get("DATABASE_URL"),
    name: "deploy",
    minSize: 0,
    maxSize: Number(Deno.env.get("POOL_MAX_SIZE") ?? 5),
    maxIdle: Number(Deno.env.get("POOL_MAX_IDLE_MS") ?? 30_000),
    timeout: 5_000,
  });
}

/** Creates the table once per isolate; a failure is retried by the next request. */
function ensureSchema(): Promise<void> {
  return schema ??= getPool().query(`
    create table if not exists deploy_items (
      id integer generated always as identity primary key,
      name text not null
    )`).then(() => {}, (error) => {
    schema = undefined;
    throw error;
  });
}

async function route(req: Request): Promise<Response> {
  const { pathname } = new URL(req.url);
  switch (`${req.method} ${pathname}`) {
    case "GET /healthz":
      return Response.json({ status: "ok", pool: pool?.getStats() ?? null });
    case "GET /metrics":
      return new Response(pool ? toPrometheus(pool) : "", {
        headers: { "content-type": "text/plain; version=0.0.4; charset=utf-8" },
      });
    case "GET /items": {
      await ensureSchema();
      const { rows } = await getPool().query("select id, name from deploy_items order by id limit 100");
      return Response.json(rows);
    }
    case "POST /items": {
      let body: { name?: unknown };
      try {
        body = await req.json();
      } catch {
        return Response.json({ error: "Body is not valid JSON" }, { status: 400 });
      }
      if (typeof body?.name !== "string" || body.name.trim() === "") {
        return Response.json({ error: "Field 'name' is required: a non-empty string" }, { status: 400 });
      }
      await ensureSchema();
      const { rows } = await getPool().query("insert into deploy_items (name) values ($1) returning id, name", [
        body.name,
      ]);
      return Response.json(rows[0], { status: 201 });
    }
  }
  return Response.json({ error: "Not found" }, { status: 404 });
}

// Local `deno serve` stops on SIGTERM and on Ctrl-C (SIGINT) only once every
// socket is closed, pool connections included: close the pool on either so it
// stops at once, not after maxIdle. Deno Deploy has no signals.
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  try {
    Deno.addSignalListener(signal, () => void pool?.close());
  } catch {
    // No signal support here: the platform drops the isolate instead.
  }
}

export default {
  async fetch(req: Request): Promise<Response> {
    try {
      return await route(req);
    } catch (error) {
      if (error instanceof PoolTimeoutError) return Response.json({ error: "Service busy" }, { status: 503 });
      // Log the detail, send nothing of it: database errors can quote SQL and values.
      const id = crypto.randomUUID();
      console.error(`error ${id}:`, String(error));
      return Response.json({ error: "Internal server error", id }, { status: 500 });
    }
  },
} satisfies Deno.ServeDefaultExport;
