/**
 * A Worker the `cap_group_*_test.ts` files drive by message: it builds its own
 * pool on a capGroup (its own sockets) and runs one command per message.
 *
 * @module
 */
/// <reference lib="deno.worker" />
import { ConnectionPool, NullConnectionPool, type PooledConnection } from "../../mod.ts";
import { SlotTable } from "../../src/cap_group/_slot_table.ts";
import { serveCommands } from "./_commands.ts";
import type pg from "pg";

let pool: ConnectionPool | undefined;
const held: PooledConnection<pg.Client>[] = [];

serveCommands({
  open(m) {
    const options = {
      conninfo: m.url as string,
      capGroup: m.group as string,
      maxSize: m.maxSize as number,
      name: m.name as string,
      timeout: (m.timeout as number | undefined) ?? 30_000,
    };
    pool = m.null
      ? new NullConnectionPool(options)
      : new ConnectionPool({ ...options, minSize: (m.minSize as number | undefined) ?? 0 });
    return pool.open();
  },
  /** Borrows `n` connections and keeps them. */
  async hold(m) {
    for (let i = 0; i < (m.n as number); i++) held.push(await pool!.getconn());
    return held.length;
  },
  /** Starts `text` on every held connection without waiting for it (it runs until the Worker dies). */
  runOnHeld(m) {
    for (const conn of held) conn.query(m.text as string).catch(() => {});
  },
  /** Returns every held connection (they stay idle in this Worker's pool). */
  async putAll() {
    for (const conn of held.splice(0)) await pool!.putconn(conn);
  },
  /** Borrows one connection within `timeout` and returns it; resolves with the wait in ms. */
  async borrow(m) {
    const started = performance.now();
    const conn = await pool!.getconn({ timeout: m.timeout as number });
    const waited = performance.now() - started;
    await pool!.putconn(conn);
    return waited;
  },
  /** `n` queries, all at once. */
  async burst(m) {
    await Promise.all(Array.from({ length: m.n as number }, () => pool!.query(m.text as string)));
  },
  /**
   * A steady load for `ms`: `loops` callers each borrow, run `text`, return, again.
   * Resolves with the operations done and the borrows that timed out (each within `timeout`).
   */
  async load(m) {
    const until = performance.now() + (m.ms as number);
    let ops = 0;
    let timeouts = 0;
    await Promise.all(Array.from({ length: m.loops as number }, async () => {
      while (performance.now() < until) {
        let conn: PooledConnection<pg.Client>;
        try {
          conn = await pool!.getconn({ timeout: m.timeout as number });
        } catch (error) {
          if ((error as Error).name !== "PoolTimeoutError") throw error;
          timeouts++;
          continue;
        }
        try {
          await conn.query(m.text as string);
          ops++;
        } finally {
          await pool!.putconn(conn);
        }
      }
    }));
    return { ops, timeouts };
  },
  /** Like `load`, through `pool.query()` (pipelined): `loops` callers, for `ms`; timeouts are the pool's `timeout`. */
  async queryLoad(m) {
    const until = performance.now() + (m.ms as number);
    let ops = 0;
    let timeouts = 0;
    await Promise.all(Array.from({ length: m.loops as number }, async () => {
      while (performance.now() < until) {
        try {
          await pool!.query(m.text as string);
          ops++;
        } catch (error) {
          if ((error as Error).name !== "PoolTimeoutError") throw error;
          timeouts++;
        }
      }
    }));
    return { ops, timeouts };
  },
  stats: () => pool!.getStats(),
  /** Blocks this isolate's event loop for `ms` (a long synchronous computation). */
  block(m) {
    const until = Date.now() + (m.ms as number);
    while (Date.now() < until) { /* busy */ }
  },
  close: () => pool!.close(),
  /** Hammers a slot table: reserve, check the cap, release; counts violations. */
  hammer(m) {
    const table = new SlotTable(m.buffer as SharedArrayBuffer);
    const joined = table.join(table.max, table.target, 0, Date.now());
    if (typeof joined === "string") throw new Error(joined);
    let violations = 0;
    let reserved = 0;
    for (let i = 0; i < (m.rounds as number); i++) {
      if (!table.tryReserve(joined.row)) continue;
      reserved++;
      if (table.used > table.max) violations++;
      table.release(joined.row);
    }
    table.leave(joined.row);
    return { violations, reserved };
  },
});
