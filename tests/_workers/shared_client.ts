/**
 * A Worker the `shared_*_test.ts` files drive by message: it attaches to the
 * owner's pool through the port it is sent and runs one command per message,
 * answering `{ id, value }` or `{ id, error }` (the error described from inside
 * the Worker, so its class is checked with `instanceof` on this side).
 *
 * @module
 */
/// <reference lib="deno.worker" />
import { type AttachedPool, attachPool, type RemoteConnection } from "../../mod.ts";
import { type Command, serveCommands } from "./_commands.ts";

let pool: AttachedPool | undefined;
const held: RemoteConnection[] = [];
const paused = Promise.withResolvers<() => void>();

const commands: Record<string, (m: Command) => Promise<unknown> | unknown> = {
  async attach(m) {
    pool = await attachPool(m.port as MessagePort);
    return { name: pool.name, maxSize: pool.maxSize, flavor: pool.flavor };
  },
  /** Attaching the same port a second time must fail. */
  async attachAgain(m) {
    pool = await attachPool(m.port as MessagePort);
    return await attachPool(m.port as MessagePort);
  },
  async query(m) {
    const r = await pool!.query(m.text as string, m.params as unknown[] | undefined);
    return { rows: r.rows, rowCount: r.rowCount, fields: r.fields };
  },
  /** Runs `n` pool.query calls, `concurrency` at a time. */
  async load(m) {
    let left = m.n as number;
    const one = async () => {
      while (left-- > 0) await pool!.query(m.text as string);
    };
    await Promise.all(Array.from({ length: m.concurrency as number }, one));
    return "done";
  },
  /** Borrows a connection and keeps it; returns its index and backend pid. */
  async hold(m) {
    const conn = await pool!.getconn({ timeout: m.timeout as number | undefined, key: m.key as string | undefined });
    const { rows } = await conn.query<{ pid: number }>("select pg_backend_pid() as pid");
    if (!held.includes(conn)) held.push(conn);
    return { index: held.indexOf(conn), pid: rows[0].pid, status: conn.getTransactionStatus() };
  },
  async connQuery(m) {
    const conn = held[m.index as number];
    const r = await conn.query(m.text as string, m.params as unknown[] | undefined);
    return { rows: r.rows, status: conn.getTransactionStatus() };
  },
  async release(m) {
    await pool!.putconn(held[m.index as number], undefined, m.close === true);
    return "released";
  },
  /** A transaction that inserts `value` and then commits or throws. */
  async transaction(m) {
    try {
      return await pool!.transaction(async (conn) => {
        await conn.query("insert into t(v) values ($1)", [m.value]);
        const status = conn.getTransactionStatus();
        if (m.fail) throw new Error("boom");
        return status;
      });
    } catch (error) {
      if ((error as Error).message === "boom") return "rolled back";
      throw error;
    }
  },
  /** A transaction whose connection dies after its insert, the error swallowed: must not report a commit. */
  async transactionLost(m) {
    return await pool!.transaction(async (conn) => {
      await conn.query(`insert into ${m.table as string} values (1)`);
      try {
        await conn.query("select pg_terminate_backend(pg_backend_pid())");
      } catch {
        // swallowed on purpose: the transaction layer must still see the loss
      }
      return "done";
    });
  },
  /** A transaction that runs a statement, then waits for `resume` before its COMMIT. */
  async transactionPaused() {
    return await pool!.transaction(async (conn) => {
      await conn.query("select 1");
      await new Promise<void>((resolve) => paused.resolve(resolve));
      return "done";
    });
  },
  /** Resolves once `transactionPaused` reached its pause. */
  async waitPaused() {
    await paused.promise;
    return "paused";
  },
  async resume() {
    (await paused.promise)();
    return "resumed";
  },
  /** withConnection with an explicit BEGIN left open (committed on success, rolled back on throw). */
  async withConnection(m) {
    try {
      return await pool!.withConnection(async (conn) => {
        await conn.query("begin");
        await conn.query("insert into t(v) values ($1)", [m.value]);
        if (m.fail) throw new Error("boom");
        return conn.getTransactionStatus();
      });
    } catch (error) {
      if ((error as Error).message === "boom") return "rolled back";
      throw error;
    }
  },
  /** Dies with an uncaught error on the next tick. */
  crash() {
    setTimeout(() => {
      throw new Error("worker crashed on purpose");
    }, 0);
    return "crashing";
  },
  /** Blocks the event loop for `ms`. */
  spin(m) {
    const end = performance.now() + (m.ms as number);
    while (performance.now() < end) { /* busy */ }
    return "spun";
  },
  async close() {
    await pool!.close();
    return pool!.closed;
  },
};

serveCommands(commands);
