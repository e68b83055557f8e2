/**
 * A Worker for the `promises_*_test.ts` files: each command replays, inside
 * the Worker, one sequence on an attached pool (the calls must
 * run back to back in the Worker's isolate). Same protocol as
 * `shared_client.ts`: `{ id, cmd, ...args }` in, `{ id, value }` or `{ id, error }` out.
 *
 * @module
 */
/// <reference lib="deno.worker" />
import { type AttachedPool, attachPool, PoolError, PoolTimeoutError, type RemoteConnection } from "../../mod.ts";
import { type Command, describe, serveCommands } from "./_commands.ts";

let pool: AttachedPool | undefined;
let second: RemoteConnection | undefined;

const commands: Record<string, (m: Command) => Promise<unknown> | unknown> = {
  async attach(m) {
    pool = await attachPool(m.port as MessagePort);
    return { name: pool.name, maxSize: pool.maxSize, flavor: pool.flavor };
  },
  /**
   * `await using` a connection, put it back by hand inside the scope while a
   * second borrower waits; the scope's own return comes after the second got it.
   */
  async staleScopeReturn() {
    let scopeError: Record<string, unknown> | undefined;
    try {
      await using conn = await pool!.connection();
      const waiting = pool!.getconn();
      await pool!.putconn(conn);
      second = await waiting;
    } catch (error) {
      scopeError = describe(error);
    }
    // A third borrower must not get the connection the second one holds.
    let third: string;
    try {
      const c = await pool!.getconn({ timeout: 300 });
      await pool!.putconn(c);
      third = "got a connection";
    } catch (error) {
      third = error instanceof PoolTimeoutError ? "timed out" : String(error);
    }
    const { rows } = await second!.query("select 1 as x");
    await pool!.putconn(second!);
    return { scopeError, third, secondStillWorks: rows[0].x === 1 };
  },
  /**
   * `withConnection()`/`transaction()` whose callback puts the connection back
   * itself while a second borrower waits; the second one then opens a
   * transaction on its new lease. The helper must neither commit nor return it.
   */
  async scopedSelfReturn(m) {
    const helper = m.helper as "withConnection" | "transaction";
    let other: RemoteConnection | undefined;
    const body = async (conn: RemoteConnection) => {
      const waiting = pool!.getconn();
      await pool!.putconn(conn); // a mistake: the helper returns it
      other = await waiting;
      await other.query("begin");
      await other.query(`insert into ${m.table as string} values (1)`);
    };
    let error: Record<string, unknown> | undefined;
    try {
      await (helper === "withConnection" ? pool!.withConnection(body) : pool!.transaction(body));
    } catch (e) {
      error = describe(e);
    }
    const otherStatus = other!.getTransactionStatus();
    await other!.query("rollback");
    const { rows } = await other!.query(`select count(*)::int as n from ${m.table as string}`);
    await pool!.putconn(other!); // still the other borrower's lease: its own return works
    return { error, otherStatus, rows: rows[0].n };
  },
  /** `n` getconn() calls sharing one AbortSignal on a saturated pool; returns the ms queuing them and the abort call took. */
  async abortMany(m) {
    const n = m.n as number;
    const held = await pool!.getconn();
    const controller = new AbortController();
    const requests: Promise<unknown>[] = [];
    const queuing = performance.now();
    for (let i = 0; i < n; i++) {
      requests.push(pool!.getconn({ signal: controller.signal, timeout: 60_000 }).catch((e) => e));
    }
    const enqueueMs = performance.now() - queuing;
    // The abort's own dispatch: where one listener per request made it quadratic (each
    // once-listener is removed from the signal's list by a linear search).
    const started = performance.now();
    controller.abort(new PoolError("stop"));
    const stallMs = performance.now() - started;
    const results = await Promise.all(requests);
    const allAborted = results.every((r) => r instanceof PoolError && r.message === "stop");
    await pool!.putconn(held);
    return { enqueueMs, stallMs, allAborted };
  },
  async close() {
    await pool!.close();
    return pool!.closed;
  },
  /** A classic pool's putconn rules in a Worker: a wrong key and a boolean key are refused, the right key works. */
  async keyedPutconn() {
    const conn = await pool!.getconn("a");
    const refusal = (p: Promise<unknown>) => p.then(() => undefined, (e) => describe(e));
    const wrongKey = await refusal(pool!.putconn(conn, "b"));
    const booleanKey = await refusal(pool!.putconn(conn, true));
    await pool!.putconn(conn, "a");
    return { wrongKey, booleanKey };
  },
};

serveCommands(commands);
