/**
 * A Worker for `shared_regressions_test.ts`: each command replays, inside the
 * Worker, one sequence a review found broken in Worker sharing (the calls must
 * run back to back in the Worker's isolate, so they cannot be driven one
 * message at a time). Same protocol as `shared_client.ts`: `{ id, cmd, ...args }`
 * in, `{ id, value }` or `{ id, error }` out.
 *
 * @module
 */
/// <reference lib="deno.worker" />
import { type AttachedPool, attachPool, type RemoteConnection } from "../../mod.ts";
import { type Command, describe, serveCommands } from "./_commands.ts";

let pool: AttachedPool | undefined;
const held: RemoteConnection[] = [];

async function pidOf(conn: RemoteConnection): Promise<number> {
  const { rows } = await conn.query<{ pid: number }>("select pg_backend_pid() as pid");
  return rows[0].pid;
}

function keep(conn: RemoteConnection): number {
  if (!held.includes(conn)) held.push(conn);
  return held.indexOf(conn);
}

const commands: Record<string, (m: Command) => Promise<unknown>> = {
  async attach(m) {
    pool = await attachPool(m.port as MessagePort);
    return { flavor: pool.flavor };
  },
  /**
   * Attaches, borrows a connection at once (while the heartbeat the attach
   * started still runs), opens a transaction, leaves the event loop free for
   * `ms`, then queries on the same connection.
   */
  async attachThenIdleInTransaction(m) {
    pool = await attachPool(m.port as MessagePort);
    const conn = await pool.getconn();
    const pid = await pidOf(conn);
    await conn.query("begin");
    await new Promise((resolve) => setTimeout(resolve, m.ms as number));
    return { pid, pidAfter: await pidOf(conn), status: conn.getTransactionStatus() };
  },
  /** Two `pool.query()` calls at once, the first finishing before the second. */
  async twoConcurrentQueries() {
    const settled = await Promise.allSettled([
      pool!.query<{ pid: number }>("select pg_sleep(0.05), pg_backend_pid() as pid"),
      pool!.query<{ pid: number }>("select pg_sleep(0.2), pg_backend_pid() as pid"),
    ]);
    return settled.map((s) => s.status === "fulfilled" ? { pid: s.value.rows[0].pid } : { error: describe(s.reason) });
  },
  /** `getconn()` together with a `pool.query()` that outlives the checkout; keeps the connection. */
  async holdWhileQuerying() {
    const [conn] = await Promise.all([pool!.getconn(), pool!.query("select pg_sleep(0.05)")]);
    return { index: keep(conn), pid: await pidOf(conn) };
  },
  /** `getconn(key)`, kept. */
  async hold(m) {
    const conn = await pool!.getconn(m.key as string | undefined);
    return { index: keep(conn), pid: await pidOf(conn) };
  },
  async pid(m) {
    return await pidOf(held[m.index as number]);
  },
  /**
   * Holds `getconn(key)`, then aborts a second `getconn({ key, signal })`
   * before its reply; after a round trip that lets the late reply land, queries
   * on the first connection again.
   */
  async abortSecondGetconnOfHeldKey(m) {
    const key = m.key as string;
    const first = await pool!.getconn(key);
    const pid = await pidOf(first);
    const controller = new AbortController();
    const second = pool!.getconn({ key, signal: controller.signal });
    controller.abort(new Error("gave up"));
    const abortError = await second.then(() => undefined, (error) => describe(error));
    // Replies come in order: once this one is back, so is the aborted request's late one.
    await pool!.query("select 1");
    try {
      return { pid, abortError, pidAfter: await pidOf(first), index: keep(first) };
    } catch (error) {
      return { pid, abortError, firstError: describe(error) };
    }
  },
  /**
   * Persistent pool, psycopg2's calls ported: `putconn(conn, true)` closes,
   * then `putconn()` without a connection returns the one held.
   */
  async persistentPutconnForms() {
    const conn = await pool!.getconn();
    const pid = await pidOf(conn);
    // psycopg2's putconn(conn, close=True) as a port writes it: the flag lands in the second argument.
    await pool!.putconn(conn, true);
    const next = await pool!.getconn();
    const pidAfterClose = await pidOf(next);
    let putconnNoArg: unknown = "returned";
    try {
      await pool!.putconn();
    } catch (error) {
      putconnNoArg = describe(error);
    }
    // Returned: the connection object is no longer usable in the Worker.
    const queryAfterReturn = await next.query("select 1").then(() => "ran", (error) => describe(error));
    return { pid, pidAfterClose, putconnNoArg, queryAfterReturn };
  },
};

serveCommands(commands);
