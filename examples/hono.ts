/**
 * Hono with one pooled connection per request.
 *
 * ```sh
 * DATABASE_URL=postgres://... PORT=8000 deno run -A examples/hono.ts
 * curl -X POST localhost:8000/items -d '{"name":"apple","qty":3}'
 * curl -X POST localhost:8000/transfer -d '{"from":1,"to":2,"qty":1}'
 * ```
 *
 * The `db` middleware borrows a connection with `await using`, so it goes back
 * to the pool when the request is done, whatever happened: a response, a
 * thrown `HTTPException`, a database error. A transaction left open by a
 * handler that threw is rolled back by the pool on return. Only routes that
 * need the database use the middleware, so `/healthz` and `/metrics` never
 * wait for a connection.
 *
 * Hold the connection only for the request: a streamed response that still
 * reads from `c.var.db` after the handler returns would use a connection that
 * is already back in the pool.
 *
 * Environment: `DATABASE_URL`, `PORT` (0 = any free port; printed as
 * `listening on http://...`), `POOL_MAX_SIZE`, `POOL_TIMEOUT_MS`.
 *
 * @module
 */
import { Hono } from "hono";
import { createMiddleware } from "hono/factory";
import { HTTPException } from "hono/http-exception";
// In your app: import { ConnectionPool, PoolTimeoutError, toPrometheus } from "@tidepool/pg";
import { ConnectionPool, PoolTimeoutError, toPrometheus } from "../mod.ts";

const maxSize = Number(Deno.env.get("POOL_MAX_SIZE") ?? 10);
const pool = new ConnectionPool({
  conninfo: Deno.env.get("DATABASE_URL"),
  name: "hono",
  minSize: Math.min(2, maxSize),
  maxSize,
  timeout: Number(Deno.env.get("POOL_TIMEOUT_MS") ?? 5_000),
});
await pool.open({ wait: true, timeout: 10_000 });
await pool.query(`
  create table if not exists hono_items (
    id integer generated always as identity primary key,
    name text not null,
    qty integer not null default 0
  )`);

type Connection = Awaited<ReturnType<typeof pool.connection>>;
type Env = { Variables: { db: Connection } };

/** Lends one connection per request as `c.var.db` and always returns it. */
const db = createMiddleware<Env>(async (c, next) => {
  await using conn = await pool.connection();
  c.set("db", conn);
  await next();
});

/** BEGIN ... COMMIT on the request's connection; ROLLBACK when `fn` throws. */
async function inTransaction<T>(conn: Connection, fn: () => Promise<T>): Promise<T> {
  await conn.query("begin");
  try {
    const result = await fn();
    await conn.query("commit");
    return result;
  } catch (error) {
    // If the rollback fails too, the pool sees the broken connection on return and replaces it.
    await conn.query("rollback").catch(() => {});
    throw error;
  }
}

async function jsonBody(c: { req: { json(): Promise<unknown> } }): Promise<Record<string, unknown>> {
  let body: unknown;
  try {
    body = await c.req.json();
  } catch {
    throw new HTTPException(400, { message: "Body is not valid JSON" });
  }
  if (body === null || typeof body !== "object" || Array.isArray(body)) {
    throw new HTTPException(400, { message: "Body must be a JSON object" });
  }
  return body as Record<string, unknown>;
}

function positiveInteger(value: unknown, field: string): number {
  if (!Number.isSafeInteger(value) || (value as number) <= 0) {
    throw new HTTPException(400, { message: `Field '${field}' must be a positive integer` });
  }
  return value as number;
}

const app = new Hono<Env>();

app.get("/healthz", (c) => c.json({ status: pool.closed ? "closed" : "ok", pool: pool.getStats() }));
app.get("/metrics", (c) => c.text(toPrometheus(pool), 200, { "content-type": "text/plain; version=0.0.4" }));

app.get("/items", db, async (c) => {
  const { rows } = await c.var.db.query("select id, name, qty from hono_items order by id limit 100");
  return c.json(rows);
});

app.post("/items", db, async (c) => {
  const { name, qty = 0 } = await jsonBody(c);
  if (typeof name !== "string" || name.trim() === "") {
    throw new HTTPException(400, { message: "Field 'name' is required: a non-empty string" });
  }
  if (!Number.isSafeInteger(qty) || (qty as number) < 0) {
    throw new HTTPException(400, { message: "Field 'qty' must be an integer >= 0" });
  }
  const { rows } = await c.var.db.query("insert into hono_items (name, qty) values ($1, $2) returning id, name, qty", [
    name,
    qty,
  ]);
  return c.json(rows[0], 201);
});

// Moves qty from one item to another: both updates or neither.
app.post("/transfer", db, async (c) => {
  const body = await jsonBody(c);
  const from = positiveInteger(body.from, "from");
  const to = positiveInteger(body.to, "to");
  const qty = positiveInteger(body.qty, "qty");
  const conn = c.var.db;
  const result = await inTransaction(conn, async () => {
    const taken = await conn.query("update hono_items set qty = qty - $2 where id = $1 returning qty", [from, qty]);
    if (taken.rowCount === 0) throw new HTTPException(404, { message: `No item ${from}` });
    if (taken.rows[0].qty < 0) throw new HTTPException(409, { message: `Item ${from} has fewer than ${qty}` });
    const given = await conn.query("update hono_items set qty = qty + $2 where id = $1 returning qty", [to, qty]);
    if (given.rowCount === 0) throw new HTTPException(404, { message: `No item ${to}` });
    return { from: { id: from, qty: taken.rows[0].qty }, to: { id: to, qty: given.rows[0].qty } };
  });
  return c.json(result);
});

app.onError((error, c) => {
  if (error instanceof HTTPException) return c.json({ error: error.message }, error.status);
  if (error instanceof PoolTimeoutError) return c.json({ error: "Service busy, try again" }, 503);
  // Never send a database error's text (it can quote SQL and values) to the client.
  const id = crypto.randomUUID();
  console.error(`error ${id} on ${c.req.method} ${c.req.path}:`, String(error));
  return c.json({ error: "Internal server error", id }, 500);
});

const server = Deno.serve({
  port: Number(Deno.env.get("PORT") ?? 8000),
  onListen: ({ hostname, port }) => console.log(`listening on http://${hostname}:${port}/`),
}, app.fetch);

// Graceful shutdown: stop accepting, let requests finish, then close the pool.
let stopping = false;
const stop = async (signal: Deno.Signal) => {
  if (stopping) return;
  stopping = true;
  console.log(`${signal}: shutting down`);
  Deno.removeSignalListener("SIGINT", onSigint);
  Deno.removeSignalListener("SIGTERM", onSigterm);
  await server.shutdown();
  await pool.close({ timeout: 5_000 });
  console.log("stopped");
};
const onSigint = () => void stop("SIGINT");
const onSigterm = () => void stop("SIGTERM");
Deno.addSignalListener("SIGINT", onSigint);
Deno.addSignalListener("SIGTERM", onSigterm);
