/**
 * No-I/O stand-ins for the cycle benchmark: a tidepool {@linkcode Driver} and a
 * `pg.Client`-shaped class for pg-pool. Both do the least work their pool
 * needs, so the benchmark measures pool bookkeeping, not the fakes.
 *
 * @module
 */

import { EventEmitter } from "node:events";
import type { ConnectionStatus, Driver, QueryResult } from "../src/driver.ts";

/** A connection that holds nothing; `id` only helps when debugging. */
export class FakeConnection {
  constructor(readonly id: number) {}
}

// One shared result object: allocating per query would charge the fake, not the pool.
const EMPTY_RESULT: QueryResult = { rows: [], rowCount: 0, fields: [] };

/**
 * A driver whose every operation resolves at once. `status` is always "idle",
 * so the pool never rolls back or discards on return.
 */
export function createFakeDriver(): Driver<FakeConnection> {
  let next = 0;
  return {
    description: "fake (no I/O)",
    connect: (_signal: AbortSignal) => Promise.resolve(new FakeConnection(next++)),
    close: (_conn: FakeConnection) => Promise.resolve(),
    status: (_conn: FakeConnection): ConnectionStatus => "idle",
    rollback: (_conn: FakeConnection) => Promise.resolve(),
    ping: (_conn: FakeConnection) => Promise.resolve(),
    query: (_conn: FakeConnection) => Promise.resolve(EMPTY_RESULT),
    // Never lost: nothing to watch.
    watch: (_conn: FakeConnection, _onLost: (e: Error | undefined) => void) => {},
  };
}

type Callback = (err?: Error, res?: unknown) => void;

/**
 * The part of `pg.Client` that pg-pool 3.14 touches (read from its index.js):
 * an EventEmitter (`on`/`once`/`removeListener` for 'error' and 'end'),
 * `connect(cb)`, `end(cb)`, `query(text, values, cb)`, `ref`/`unref`, and the
 * private flags `_queryable` / `_ending` that `_release` checks before keeping
 * a client. pg-pool assigns `release` itself on checkout.
 */
export class FakePgClient extends EventEmitter {
  _queryable = true;
  _ending = false;
  release?: (err?: Error) => void;

  // pg-pool passes its options; the fake needs none of them.
  constructor(_options?: unknown) {
    super();
  }

  connect(cb?: Callback): Promise<void> | void {
    // pg calls back asynchronously; queueMicrotask keeps that without a timer.
    if (cb) return queueMicrotask(() => cb());
    return Promise.resolve();
  }

  query(_text: string, _values?: unknown, cb?: Callback): Promise<unknown> | void {
    if (cb) return queueMicrotask(() => cb(undefined, EMPTY_RESULT));
    return Promise.resolve(EMPTY_RESULT);
  }

  end(cb?: Callback): Promise<void> | void {
    this._ending = true;
    this._queryable = false;
    queueMicrotask(() => this.emit("end"));
    if (cb) return queueMicrotask(() => cb());
    return Promise.resolve();
  }

  ref(): void {}
  unref(): void {}
}
