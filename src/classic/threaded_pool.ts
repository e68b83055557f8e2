/**
 * `ThreadedConnectionPool`: psycopg2.pool's pool meant for sharing.
 *
 * @module
 */
import type * as pg from "../drivers/pg_types.ts";
import { SimpleConnectionPool } from "./simple_pool.ts";

/**
 * psycopg2's `ThreadedConnectionPool`: the same semantics as
 * `SimpleConnectionPool` (`getconn(key?)` never waits and throws
 * `PoolExhaustedError` at `maxconn`; `putconn(conn, key?, close?)`;
 * `closeall()`). psycopg2's version only adds a lock; in one isolate the event
 * loop already serialises every decision, so this is the class meant to be
 * shared with Workers, where each Worker borrows through the owner's
 * connections under one `maxconn` cap. It is a `SimpleConnectionPool`
 * under psycopg2's other name, so ported code reads as it did.
 *
 * @typeParam C The driver's connection type (`pg.Client` by default).
 * @example Borrow and return
 * ```ts
 * import { ThreadedConnectionPool } from "@tidepool/pg";
 * const pool = new ThreadedConnectionPool(2, 8, Deno.env.get("DATABASE_URL")!);
 * const conn = await pool.getconn();
 * await conn.query("select 1");
 * await pool.putconn(conn);
 * await pool.closeall();
 * ```
 */
export class ThreadedConnectionPool<C extends object = pg.Client> extends SimpleConnectionPool<C> {}
