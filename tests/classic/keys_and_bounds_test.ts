/**
 * Promises the classic pools keep beyond psycopg2's: a plain getconn() never
 * takes a key a caller bound (one borrower per connection), an overridden
 * connect() hook is bounded like every other wait; and every pool error class
 * crosses to a Worker as itself.
 */
import assert from "node:assert/strict";
import type pg from "pg";
import {
  AbstractConnectionPool,
  ConnectionLostError,
  HostsExhaustedError,
  PoolClosedError,
  PoolConnectError,
  PoolError,
  PoolExhaustedError,
  type PoolKey,
  PoolTimeoutError,
  SimpleConnectionPool,
  ThreadedConnectionPool,
  TooManyRequestsError,
} from "../../mod.ts";
import { fromWireError, toWireError } from "../../src/workers/_wire.ts";
import { withTestDatabase } from "../_db.ts";
import { startWorker, type WorkerError } from "../_shared_helpers.ts";

Deno.test("SimpleConnectionPool: a plain getconn() never gets the connection a caller bound to a numeric key", () =>
  withTestDatabase(async (db) => {
    const pool = new SimpleConnectionPool(0, 4, db.url);
    try {
      const bound = await pool.getconn(2); // psycopg2's counter would make key 2 for the second plain getconn()
      const first = await pool.getconn();
      const second = await pool.getconn();
      assert.notEqual(second, bound);
      assert.notEqual(first, bound);
      assert.notEqual(first, second);
      for (const conn of [first, second]) await pool.putconn(conn);
      await pool.putconn(bound, 2);
    } finally {
      await pool.closeall();
    }
  }));

/** A connect() override that never settles: a hook waiting on something that never answers. */
class HangingPool extends AbstractConnectionPool {
  get(key?: PoolKey): Promise<pg.Client> {
    return this._getconn(key);
  }
  shutdown(): Promise<void> {
    return this._closeall();
  }
  protected override connect(): Promise<pg.Client> {
    return new Promise(() => {});
  }
}

Deno.test("AbstractConnectionPool: a connect() override that never settles fails the request within connectTimeout, and closeall() still ends", () =>
  withTestDatabase(async (db) => {
    const pool = new HangingPool(0, 2, { conninfo: db.url, connectTimeout: 300 });
    const started = performance.now();
    const error = await pool.get().catch((e) => e);
    const took = performance.now() - started;
    assert.ok(error instanceof PoolTimeoutError, String(error));
    assert.ok(took < 5_000, `rejected after ${Math.round(took)} ms`);
    const closing = pool.shutdown();
    await closing;
  }));

Deno.test("every pool error class crosses the Worker channel as itself", () => {
  const errors: Error[] = [
    new PoolError("e"),
    new PoolTimeoutError("e"),
    new PoolClosedError("e"),
    new TooManyRequestsError("e"),
    new PoolExhaustedError("e"),
    new PoolConnectError("e"),
    new ConnectionLostError("e"),
    new HostsExhaustedError("e", ["h1:5432"]),
    new TypeError("e"),
    new RangeError("e"),
  ];
  for (const error of errors) {
    const back = fromWireError(toWireError(error));
    assert.equal(back.constructor, error.constructor, error.name);
    assert.equal(back.name, error.name);
  }
});

/** A pool whose new connections take a while, so a Worker's keyed request is still connecting when it is reclaimed. */
class SlowThreadedPool extends ThreadedConnectionPool {
  slow = false;
  protected override async connect(key?: PoolKey): Promise<pg.Client> {
    if (this.slow) await new Promise((r) => setTimeout(r, 1_500));
    return await super.connect(key);
  }
}

Deno.test("ThreadedConnectionPool shared with a Worker: a keyed request still connecting when its leases are reclaimed never shares its connection with the Worker's next request or the owner", () =>
  withTestDatabase(async (db) => {
    const pool = new SlowThreadedPool(1, 4, db.url);
    const worker = new Worker(new URL("../_workers/rekey_client.ts", import.meta.url), { type: "module" });
    try {
      const owners = await pool.getconn("owner"); // the one idle connection: the Worker's request must connect
      pool.slow = true;
      const port = pool.share({ worker, heartbeatTimeout: 100 });
      const reply = (): Promise<Record<string, unknown>> =>
        new Promise((resolve) => worker.onmessage = (e) => resolve(e.data));
      let answer = reply();
      worker.postMessage({ pool: port }, [port]);
      const got = await answer;
      const other = await pool.getconn("b");
      const otherPid = (await other.query("select pg_backend_pid() as p")).rows[0].p;
      assert.notEqual(otherPid, got.pid, "the owner's getconn('b') got the backend the Worker holds");
      answer = reply();
      worker.postMessage("check");
      assert.equal((await answer).still, got.pid, "the Worker's lease still works on its own backend");
      await pool.putconn(other);
      await pool.putconn(owners);
    } finally {
      worker.terminate();
      await pool.closeall();
    }
  }));

Deno.test("ThreadedConnectionPool in a Worker: putconn with another key, or a boolean where the key goes, is refused as in the owner isolate", () =>
  withTestDatabase(async (db) => {
    const pool = new ThreadedConnectionPool(0, 2, db.url);
    const w = startWorker("promises_client.ts");
    try {
      await w.attach(pool.share());
      const r = await w.call<{ wrongKey?: WorkerError; booleanKey?: WorkerError }>("keyedPutconn");
      assert.ok(r.wrongKey?.isPoolError, JSON.stringify(r.wrongKey));
      assert.match(String(r.wrongKey?.message), /bound to key a, not b/);
      assert.equal(r.booleanKey?.name, "TypeError", JSON.stringify(r.booleanKey));
      assert.match(String(r.booleanKey?.message), /putconn\(conn, undefined, true\)/);
    } finally {
      w.terminate();
      await pool.closeall();
    }
  }));
