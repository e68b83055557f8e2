/**
 * A library beyond Kysely and Drizzle that takes a `pg.Pool`: connect-pg-simple
 * (express-session's PostgreSQL store) on `toPgPool`. It uses the facade's
 * callback and promise `query()`, runs its multi-statement table DDL through
 * it, and must not end a pool it did not make.
 */
import assert from "node:assert/strict";
import { EventEmitter } from "node:events";
import connectPgSimple from "connect-pg-simple";
import { ConnectionPool, toPgPool } from "../../mod.ts";
import { withTestDatabase } from "../_db.ts";

/** express-session's `Store` is an EventEmitter subclass; the store only extends it. */
const PgStore = connectPgSimple({ Store: class Store extends EventEmitter {} });

type Callback<T> = (err: unknown, value?: T) => void;
interface SessionStore {
  set(sid: string, session: unknown, cb: Callback<void>): void;
  get(sid: string, cb: Callback<unknown>): void;
  touch(sid: string, session: unknown, cb: Callback<void>): void;
  destroy(sid: string, cb: Callback<void>): void;
  close(): Promise<void>;
}

function call<T>(fn: (cb: Callback<T>) => void): Promise<T | undefined> {
  return new Promise((resolve, reject) => fn((err, value) => err ? reject(err) : resolve(value)));
}

Deno.test("connect-pg-simple stores, reads, touches and destroys sessions through toPgPool", () =>
  withTestDatabase(async (db) => {
    const pool = new ConnectionPool({ conninfo: db.url, minSize: 1, maxSize: 3 });
    const store = new PgStore({
      pool: toPgPool(pool),
      createTableIfMissing: true,
      pruneSessionInterval: false,
    }) as unknown as SessionStore;
    try {
      const cookie = { maxAge: 60_000, expires: new Date(Date.now() + 60_000) };
      // Concurrent writers: the table is created once, then 20 sessions on at most 3 connections.
      await Promise.all(
        Array.from({ length: 20 }, (_, i) => call<void>((cb) => store.set(`sid-${i}`, { cookie, user: i }, cb))),
      );
      assert.deepEqual(await call((cb) => store.get("sid-7", cb)), {
        cookie: { ...cookie, expires: cookie.expires.toISOString() },
        user: 7,
      });
      assert.equal(await call((cb) => store.get("missing", cb)), undefined); // fn(null): no session
      await call<void>((cb) =>
        store.touch("sid-7", { cookie: { ...cookie, expires: new Date(Date.now() + 120_000) } }, cb)
      );
      await call<void>((cb) => store.destroy("sid-7", cb));
      assert.equal(await call((cb) => store.get("sid-7", cb)), undefined);
      const { rows } = await pool.query<{ n: number }>("select count(*)::int as n from session");
      assert.equal(rows[0].n, 19);
      assert.ok(pool.getStats().connectionsNum <= 3);
      await store.close();
      // The store did not make the pool, so closing the store leaves it open.
      assert.equal(pool.closed, false);
      assert.equal((await pool.query<{ one: number }>("select 1 as one")).rows[0].one, 1);
    } finally {
      await pool.close();
    }
  }));
