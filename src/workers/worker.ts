/**
 * The Worker side of a shared pool: {@linkcode attachPool} turns a port from
 * the owner's `pool.share()` into a pool with the same API (`getconn`,
 * `putconn`, `connection`, `withConnection`, `query`, `transaction`), whose
 * connections live in the owner isolate and are reached by message.
 *
 * @module
 */
import type { ConnectionStatus, QueryResult } from "../driver.ts";
import { PoolClosedError, PoolError, PoolTimeoutError } from "../errors.ts";
import { returnedInScope } from "../core/_entry.ts";
import {
  transaction as runTransaction,
  type TransactionHost,
  type TransactionOptions,
  withConnection as runWithConnection,
} from "../query/transaction.ts";
import { duration } from "../_util/_validate.ts";
import { Channel, type Reply, STATUS_KEY } from "./_channel.ts";
import { untilAborted } from "../_util/_abort.ts";
import type { PoolInfo } from "./_wire.ts";

/** node-postgres' transaction status letters: idle, in a transaction, in a failed one; null when broken. */
export type TransactionStatus = "I" | "T" | "E" | null;

const STATUS: Record<string, TransactionStatus> = { idle: "I", intrans: "T", inerror: "E", active: "T" };

/** The owner's status of a lease after its last statement, as the transaction helpers read it. */
let statusOf: (conn: RemoteConnection) => ConnectionStatus;

/**
 * Options of {@linkcode AttachedPool.getconn}.
 *
 * @example Wait at most one second
 * ```ts
 * import type { AttachedGetconnOptions } from "@tidepool/pg";
 * const options: AttachedGetconnOptions = { timeout: 1_000 };
 * ```
 */
export interface AttachedGetconnOptions {
  /** Longest wait in ms. @default the owner pool's `timeout` */
  timeout?: number;
  /** Aborting rejects the request with the signal's reason (and cancels it on the owner). */
  signal?: AbortSignal;
  /** A classic pool's key (`getconn(key)`). */
  key?: string | number;
}

/**
 * Options of {@linkcode attachPool}.
 *
 * @example
 * ```ts
 * import type { AttachOptions } from "@tidepool/pg";
 * const options: AttachOptions = { timeout: 2_000 };
 * ```
 */
export interface AttachOptions {
  /** Longest wait for the owner to answer, in ms. @default 10000 */
  timeout?: number;
}

/** What an attached pool's `withConnection()` accepts: its getconn options. */
const ATTACHED_CONNECTION_OPTIONS: ReadonlySet<string> = new Set(["timeout", "signal", "key"]);

/** Why a RemoteConnection is gone after its putconn. */
const RETURNED = "it was already returned";

/**
 * A connection borrowed by a Worker: its queries run on one of the owner's
 * connections, the same one until it is put back, so transactions work.
 *
 * @example Inside a Worker
 * ```ts
 * import { attachPool } from "@tidepool/pg";
 * declare const port: MessagePort; // from the owner's pool.share()
 * const pool = await attachPool(port);
 * await using conn = await pool.connection();
 * const { rows } = await conn.query("select $1::int as x", [1]);
 * console.log(rows[0].x, conn.getTransactionStatus()); // 1 "I"
 * ```
 */
export class RemoteConnection implements AsyncDisposable {
  /** The owner's status of the connection after the last statement (unknown values read as broken). */
  #status: ConnectionStatus;
  /** Why this lease is no longer usable; undefined while held. */
  gone: string | undefined;

  /** @internal Made by {@linkcode AttachedPool.getconn}. */
  constructor(readonly pool: AttachedPool, readonly lease: number, status: ConnectionStatus | undefined) {
    this.#status = known(status);
  }

  static {
    statusOf = (conn) => conn.gone === undefined ? conn.#status : "broken";
  }

  /**
   * Runs a statement on the leased connection.
   *
   * @param text SQL with `$1`-style placeholders, or `{ text, values }`.
   * @param params Values of the placeholders.
   * @returns `{ rows, rowCount, fields }`.
   * @throws {PoolError} The connection was returned, or its lease reclaimed.
   * @throws The server's error, with its SQLSTATE `code`, `detail`, `hint`.
   */
  async query<R = Record<string, unknown>>(
    text: string | { text: string; values?: unknown[] },
    params?: unknown[],
  ): Promise<QueryResult<R>> {
    if (typeof text === "object" && text !== null) {
      params ??= text.values;
      text = text.text;
    }
    if (this.gone !== undefined) throw new PoolError(`Cannot query: ${this.gone}`);
    try {
      const reply = await this.pool.channel.request({ v: 1, kind: "query", lease: this.lease, text, params });
      this.#status = known(reply.status);
      return reply.result as QueryResult<R>;
    } catch (error) {
      const status = (error as { [STATUS_KEY]?: ConnectionStatus })[STATUS_KEY];
      if (status !== undefined) this.#status = known(status);
      throw error;
    }
  }

  /**
   * The transaction status after the last statement, like node-postgres'
   * `client.getTransactionStatus()`: `"I"` idle, `"T"` in a transaction, `"E"`
   * in a failed one, `null` when the connection is broken or gone. No round trip.
   */
  getTransactionStatus(): TransactionStatus {
    return this.gone === undefined ? STATUS[this.#status] ?? null : null;
  }

  /** `await using conn = await pool.connection()` puts it back at scope exit. */
  [Symbol.asyncDispose](): Promise<void> {
    if (this.gone === undefined) return this.pool.putconn(this);
    // Put back by hand inside the scope: refused like any second return. Reclaimed or closed: nothing to do.
    if (this.gone === RETURNED) return Promise.reject(new PoolError(`Cannot return connection: ${RETURNED}`));
    return Promise.resolve();
  }
}

/**
 * A pool attached to another isolate's pool: same API, the owner's
 * connections and cap. Made by {@linkcode attachPool}.
 *
 * @example
 * ```ts
 * import { attachPool } from "@tidepool/pg";
 * self.addEventListener("message", async (e) => {
 *   const pool = await attachPool((e as MessageEvent).data.pool);
 *   const { rows } = await pool.query("select 1 as x");
 *   await pool.close(); // detaches; the owner's pool stays open
 * });
 * ```
 */
export class AttachedPool implements AsyncDisposable {
  /** @internal */
  readonly channel: Channel;
  readonly #info: PoolInfo;
  readonly #held = new Map<number, RemoteConnection>();
  /** What `withConnection()` / `transaction()` run against: the same code as the owner's (src/query/transaction.ts). */
  readonly #transactions: TransactionHost<RemoteConnection, AttachedGetconnOptions | undefined>;

  /** @internal Made by {@linkcode attachPool}. */
  constructor(channel: Channel, info: PoolInfo) {
    this.channel = channel;
    this.#info = info;
    this.#transactions = {
      getconn: (o) => this.getconn(o),
      // A lease reclaimed or closed meanwhile has nothing left to give back.
      putconn: (conn) => conn.gone === undefined ? this.putconn(conn) : Promise.resolve(),
      status: (conn) => statusOf(conn),
      query: (conn, text) => conn.query(text),
      finishTimeout: info.finishTimeout ?? 10_000,
      connectionOptions: ATTACHED_CONNECTION_OPTIONS,
      // One RemoteConnection per lease: it holds its lease until it is gone (returned, reclaimed, closed).
      leaseOf: () => 0,
      holds: (conn) => conn.gone === undefined,
      leaseEnded: (conn, helper) =>
        conn.gone === RETURNED
          ? returnedInScope(helper)
          : this.closed
          ? new PoolClosedError(this.channel.closedReason!)
          : new PoolError(`${helper}: the connection is gone: ${conn.gone}`),
    };
    channel.setHeartbeatInterval(info.heartbeatInterval);
    channel.onReclaimed = (leases, reason) => {
      for (const id of leases) this.#drop(id, `its lease was reclaimed by the owner (${reason})`);
    };
    channel.onClosed = () => {
      for (const id of [...this.#held.keys()]) this.#drop(id, "the pool is closed");
    };
  }

  /** The owner pool's name. */
  get name(): string {
    return this.#info.name;
  }
  /** The owner pool's `minSize` (classic: `minconn`) when attached. */
  get minSize(): number {
    return this.#info.minSize;
  }
  /** The owner pool's cap, shared by every isolate (classic: `maxconn`). */
  get maxSize(): number {
    return this.#info.maxSize;
  }
  /** `"pool"`, `"classic"` or `"persistent"`: which owner API this mirrors. */
  get flavor(): "pool" | "classic" | "persistent" {
    return this.#info.flavor;
  }
  /** After heartbeatTimeout ms without a heartbeat the owner reclaims this Worker's leases. */
  get heartbeatTimeout(): number {
    return this.#info.heartbeatTimeout;
  }
  /** True once detached (`close()`) or the owner's pool closed. */
  get closed(): boolean {
    return this.channel.closedReason !== undefined;
  }

  /**
   * Borrows one of the owner's connections (a lease). A classic pool takes a
   * `key` and throws `PoolExhaustedError` when full; a persistent one gives
   * this Worker the same connection until it is put back.
   *
   * @param options `timeout`, `signal`, or a classic pool's key.
   * @returns A {@linkcode RemoteConnection}.
   * @throws {PoolTimeoutError} None became free in time.
   * @throws {PoolClosedError} The owner's pool closed, or this one was closed.
   * @throws {PoolExhaustedError} A classic pool has `maxconn` in use.
   * @throws {TooManyRequestsError} `maxWaiting` requests already wait.
   * @example
   * ```ts
   * import { attachPool } from "@tidepool/pg";
   * declare const port: MessagePort;
   * const pool = await attachPool(port);
   * const conn = await pool.getconn({ timeout: 1_000 });
   * try {
   *   await conn.query("select 1");
   * } finally {
   *   await pool.putconn(conn);
   * }
   * ```
   */
  async getconn(options?: AttachedGetconnOptions | string | number): Promise<RemoteConnection> {
    const o: AttachedGetconnOptions = typeof options === "object" && options !== null
      ? options
      : options === undefined
      ? {}
      : { key: options };
    const timeout = o.timeout === undefined ? undefined : duration(o.timeout, "timeout", 0);
    const signal = o.signal;
    signal?.throwIfAborted();
    const id = this.channel.nextId;
    const reply = this.channel.request({
      v: 1,
      kind: "acquire",
      timeout,
      key: o.key,
      cancellable: signal !== undefined,
    });
    let lease: Reply;
    if (signal === undefined) {
      lease = await reply;
    } else {
      try {
        lease = await untilAborted(reply, signal); // O(1) however many requests share the signal
      } catch (error) {
        if (signal.aborted) {
          this.channel.send({ v: 1, kind: "cancel", id });
          // A connection granted before the cancel arrived goes straight back.
          // Unless it is a lease this Worker already holds (a bound key, its persistent connection).
          reply.then((late) => {
            if (!this.#held.has(late.lease!)) this.#releaseLease(late.lease!);
          }, () => {});
        }
        throw error;
      }
    }
    const conn = this.#hold(lease.lease!, lease.status);
    if (o.key !== undefined) this.#keyOf.set(conn, o.key);
    return conn;
  }

  /**
   * Borrows a connection for a scope: `await using conn = await pool.connection()`.
   *
   * @param options As for `getconn()`.
   * @returns A {@linkcode RemoteConnection}, put back at scope exit.
   * @example
   * ```ts
   * import { attachPool } from "@tidepool/pg";
   * declare const port: MessagePort;
   * const pool = await attachPool(port);
   * {
   *   await using conn = await pool.connection();
   *   await conn.query("select 1");
   * }
   * ```
   */
  connection(options?: AttachedGetconnOptions): Promise<RemoteConnection> {
    return this.getconn(options);
  }

  /**
   * Puts a connection back; the owner rolls back an open transaction.
   * Signature of both APIs: `putconn(conn)` and classic `putconn(conn, key, close)`.
   *
   * @param conn A connection from this pool's `getconn()`; on a `PersistentConnectionPool`, omit it for the one this
   *   Worker holds.
   * @param key A classic pool's key (the owner remembers it; accepted for psycopg2 parity). On a
   *   `PersistentConnectionPool` this is psycopg2's `close` flag: `putconn(conn, true)`.
   * @param close Classic: discard the connection instead of keeping it.
   * @throws {PoolError} Not from this pool, already returned, or its lease was reclaimed.
   * @example
   * ```ts
   * import { attachPool } from "@tidepool/pg";
   * declare const port: MessagePort;
   * const pool = await attachPool(port);
   * const conn = await pool.getconn();
   * await pool.putconn(conn);
   * ```
   */
  async putconn(conn?: RemoteConnection, key?: string | number | boolean, close = false): Promise<void> {
    if (this.flavor === "persistent") {
      // PersistentConnectionPool.putconn(conn?, close?): the same call as in the owner isolate.
      if (typeof key === "boolean") close = key;
      if (conn === undefined) {
        conn = this.#held.values().next().value;
        if (conn === undefined) {
          throw new PoolError(`Cannot return connection: this Worker holds none in pool '${this.name}'`);
        }
      }
    }
    if (!(conn instanceof RemoteConnection) || conn.pool !== this) {
      throw new PoolError(`Cannot return connection: it is not from pool '${this.name}'`);
    }
    if (conn.gone !== undefined) throw new PoolError(`Cannot return connection: ${conn.gone}`);
    if (this.flavor === "classic") {
      // The owner's psycopg2 rules, checked here since the key stays in this isolate.
      if (typeof key === "boolean") {
        throw new TypeError("Invalid argument 'key': got a boolean; to close, call putconn(conn, undefined, true)");
      }
      const bound = this.#keyOf.get(conn);
      if (key !== undefined && key !== null && key !== bound) {
        throw new PoolError(
          `Cannot return connection: it is bound to key ${String(bound ?? "(none)")}, not ${
            String(key)
          }, in pool '${this.name}'`,
        );
      }
    }
    this.#drop(conn.lease, RETURNED);
    this.channel.leaseCount = this.#held.size;
    await this.channel.request({ v: 1, kind: "release", lease: conn.lease, close });
  }

  /**
   * Runs `fn` with a connection; commits a transaction left open on success,
   * rolls back on throw, always puts the connection back.
   *
   * @param fn Work to do with the connection.
   * @param options As for `getconn()`.
   * @returns What `fn` returns.
   * @throws Whatever `fn` throws; {@linkcode PoolError} when `fn` left a failed transaction.
   * @example
   * ```ts
   * import { attachPool } from "@tidepool/pg";
   * declare const port: MessagePort;
   * const pool = await attachPool(port);
   * await pool.withConnection(async (conn) => {
   *   await conn.query("begin");
   *   await conn.query("insert into t values (1)");
   * }); // committed
   * ```
   */
  withConnection<T>(
    fn: (conn: RemoteConnection) => Promise<T> | T,
    options?: AttachedGetconnOptions,
  ): Promise<T> {
    return runWithConnection(this.#transactions, fn, options);
  }

  /**
   * Runs one statement on one of the owner's connections, in one round trip.
   *
   * @param text SQL with `$1`-style placeholders.
   * @param params Values of the placeholders.
   * @returns `{ rows, rowCount, fields }`.
   * @example
   * ```ts
   * import { attachPool } from "@tidepool/pg";
   * declare const port: MessagePort;
   * const pool = await attachPool(port);
   * const { rows } = await pool.query("select $1::int as x", [1]);
   * ```
   */
  async query<R = Record<string, unknown>>(text: string, params?: unknown[]): Promise<QueryResult<R>> {
    const reply = await this.channel.request({ v: 1, kind: "run", text, params });
    return reply.result as QueryResult<R>;
  }

  /**
   * Runs `fn` inside BEGIN ... COMMIT on one leased connection; rolls back on
   * throw; re-runs on SQLSTATE 40001/40P01 up to `retries` times.
   *
   * @param fn The transaction's work; may run more than once with `retries`.
   * @param options `isolation`, `readOnly`, `retries` (default 0).
   * @returns What `fn` returns.
   * @example
   * ```ts
   * import { attachPool } from "@tidepool/pg";
   * declare const port: MessagePort;
   * const pool = await attachPool(port);
   * await pool.transaction(async (conn) => {
   *   await conn.query("update accounts set n = n - 1 where id = 1");
   * }, { isolation: "serializable", retries: 3 });
   * ```
   */
  transaction<T>(fn: (conn: RemoteConnection) => Promise<T> | T, options: TransactionOptions = {}): Promise<T> {
    return runTransaction(this.#transactions, fn, options);
  }

  /**
   * Detaches from the owner: connections still held go back (rolled back),
   * the port closes, later calls fail with `PoolClosedError`. The owner's pool
   * stays open.
   *
   * @example
   * ```ts
   * import { attachPool } from "@tidepool/pg";
   * declare const port: MessagePort;
   * const pool = await attachPool(port);
   * await pool.close();
   * ```
   */
  async close(): Promise<void> {
    if (this.closed) return;
    try {
      await this.channel.request({ v: 1, kind: "detach" });
    } catch {
      // The owner closed meanwhile: nothing left to give back.
    }
    this.channel.close(`Pool '${this.name}' was detached from its owner`);
  }

  /** `await using pool = await attachPool(port)` detaches at scope exit. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /** The key each connection was taken with (classic pools), for putconn's key check. */
  readonly #keyOf = new WeakMap<RemoteConnection, string | number>();

  #hold(lease: number, status: ConnectionStatus | undefined): RemoteConnection {
    let conn = this.#held.get(lease);
    if (conn === undefined) {
      conn = new RemoteConnection(this, lease, status);
      this.#held.set(lease, conn);
      this.channel.leaseCount = this.#held.size;
    }
    return conn;
  }

  #drop(lease: number, why: string): void {
    const conn = this.#held.get(lease);
    if (conn === undefined) return;
    conn.gone = why;
    this.#held.delete(lease);
    this.channel.leaseCount = this.#held.size;
    this.channel.touch();
  }

  #releaseLease(lease: number): void {
    if (this.closed) return;
    this.channel.request({ v: 1, kind: "release", lease }).catch(() => {});
  }
}

const STATUSES: ReadonlySet<string> = new Set(["idle", "intrans", "inerror", "active", "broken"]);

function known(status: unknown): ConnectionStatus {
  return typeof status === "string" && STATUSES.has(status) ? status as ConnectionStatus : "broken";
}

const attached = new WeakSet<MessagePort>();

/**
 * Attaches to a pool shared by another isolate. Call it inside a Worker with
 * the port the owner made with `pool.share()` and transferred to it.
 *
 * @param port The port from the owner's `pool.share()`.
 * @param options `timeout` for the owner's answer.
 * @returns A pool with the owner's API whose connections stay in the owner.
 * @throws {PoolError} The port is already attached.
 * @throws {PoolTimeoutError} The owner did not answer in time (not a port from `share()`?).
 * @throws {PoolClosedError} The owner's pool is closed.
 * @example Inside a Worker
 * ```ts
 * import { attachPool } from "@tidepool/pg";
 * self.addEventListener("message", async (e) => {
 *   const pool = await attachPool((e as MessageEvent).data.pool);
 *   await pool.transaction(async (conn) => {
 *     await conn.query("insert into jobs(done) values (true)");
 *   });
 *   await pool.close();
 * });
 * ```
 */
export async function attachPool(port: MessagePort, options: AttachOptions = {}): Promise<AttachedPool> {
  if (!(port instanceof MessagePort)) throw new TypeError("attachPool: expected the MessagePort from pool.share()");
  const timeout = duration(options.timeout, "timeout", 10_000);
  if (attached.has(port)) throw new PoolError("This port is already attached: call pool.share() once per Worker");
  attached.add(port);
  const channel = new Channel(port);
  let timer: number | undefined;
  const timedOut = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      reject(new PoolTimeoutError(`attachPool: no answer from the pool's owner after ${timeout} ms`));
      channel.close("attachPool timed out");
    }, timeout) as unknown as number;
  });
  try {
    const welcome = await Promise.race([channel.request({ v: 1, kind: "hello" }), timedOut]);
    return new AttachedPool(channel, (welcome as unknown as { info: PoolInfo }).info);
  } catch (error) {
    channel.close(error instanceof Error ? error.message : String(error));
    throw error;
  } finally {
    clearTimeout(timer);
  }
}
