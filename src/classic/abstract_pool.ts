/**
 * `AbstractConnectionPool`: psycopg2.pool's key-based pooling code, on the
 * shared driver seam, entry bookkeeping and return path of the pool core.
 *
 * @module
 */
import type * as pg from "../drivers/pg_types.ts";
import type { Logger } from "@logtape/logtape";
import { Connections, inspectPool } from "../core/_connections.ts";
import { type Entry, entryOf, type Owner } from "../core/_entry.ts";
import { describeError, poolLogger } from "../_util/_log.ts";
import { prepareForReuse } from "../core/_return_path.ts";
import type { Driver } from "../driver.ts";
import { PoolClosedError, PoolError, PoolExhaustedError } from "../errors.ts";
import { type ClassicPoolOptions, resolveClassicArgs } from "./options.ts";
import { poolInfo, SharedPool, type ShareOptions } from "../workers/owner.ts";
import { classicShareOps } from "../workers/classic.ts";

/**
 * What a connection is bound to while in use: psycopg2's hashable key. Keys
 * the pool makes itself (`getconn()` without a key) are numbers 1, 2, ...
 *
 * @example Binding a connection to a request id
 * ```ts
 * import { type PoolKey, SimpleConnectionPool } from "@tidepool/pg";
 * const pool = new SimpleConnectionPool(0, 4, Deno.env.get("DATABASE_URL")!);
 * const key: PoolKey = "request-42";
 * const conn = await pool.getconn(key);
 * await pool.putconn(conn, key);
 * await pool.closeall();
 * ```
 */
export type PoolKey = string | number | symbol;

/**
 * Why a classic pool closed a connection, as told to
 * `AbstractConnectionPool.onConnectionDiscarded`:
 *
 * - `requested`: `putconn(conn, key, true)`.
 * - `broken`: returned closed, broken, with a query running, or rollback/`reset` failed.
 * - `surplus`: returned while `minconn` connections were already idle.
 * - `lost`: died by itself (server terminated it) while idle.
 * - `closeall`: `closeall()`.
 *
 * @example
 * ```ts
 * import type { DiscardReason } from "@tidepool/pg";
 * const reason: DiscardReason = "surplus";
 * ```
 */
export type DiscardReason = "requested" | "broken" | "surplus" | "lost" | "closeall";

type State = "new" | "open" | "closed";

let poolCounter = 0;
const RESOLVED: Promise<void> = Promise.resolve();

/**
 * psycopg2's `AbstractConnectionPool`: the generic key-based pooling code the
 * classic pools share. Each connection in use is bound to a key (`_used`
 * key → connection, `_rused` connection → key); idle ones wait in `_pool`;
 * keys the pool makes come from the `_keys` counter. At most `maxconn`
 * connections exist at once (counting those being opened or returned); a
 * returned connection stays open only while fewer than `minconn` are idle.
 *
 * The core methods are protected, as in psycopg2 (`_getconn`, `_putconn`,
 * `_closeall`): a subclass decides which ones to expose and how keys are
 * chosen. Hooks a subclass may override: {@linkcode connect} (open one
 * connection), {@linkcode getKey} (make a key) and
 * {@linkcode onConnectionDiscarded} (observe closes).
 *
 * Connections are the driver's own objects (`pg.Client`), also
 * `AsyncDisposable`: `await using conn = await pool.getconn()` returns it.
 *
 * @typeParam C The driver's connection type (`pg.Client` by default).
 * @example A custom subclass: one connection per tenant, tagged for pg_stat_activity
 * ```ts
 * import { AbstractConnectionPool, type PoolKey } from "@tidepool/pg";
 * import type pg from "pg";
 *
 * class TenantPool extends AbstractConnectionPool {
 *   // Expose key-based borrowing under domain names.
 *   forTenant(tenant: string): Promise<pg.Client> {
 *     return this._getconn(`tenant:${tenant}`);
 *   }
 *   release(conn: pg.Client): Promise<void> {
 *     return this._putconn(conn);
 *   }
 *   shutdown(): Promise<void> {
 *     return this._closeall();
 *   }
 *   // Tag each new connection with the key it is opened for.
 *   protected override async connect(key?: PoolKey): Promise<pg.Client> {
 *     const conn = await super.connect(key);
 *     await conn.query(`set application_name = '${String(key ?? "idle")}'`);
 *     return conn;
 *   }
 * }
 *
 * const pool = new TenantPool(0, 10, Deno.env.get("DATABASE_URL")!);
 * const conn = await pool.forTenant("acme");
 * await conn.query("select 1");
 * await pool.release(conn);
 * await pool.shutdown();
 * ```
 */
export abstract class AbstractConnectionPool<C extends object = pg.Client> {
  /** Idle connections (psycopg2's `_pool`); the last returned is lent first. */
  protected readonly _pool: C[] = [];
  /** Connections in use by key (psycopg2's `_used`). */
  protected readonly _used: Map<PoolKey, C> = new Map();
  /** Keys by connection in use (psycopg2's `_rused`). */
  protected readonly _rused: Map<C, PoolKey> = new Map();
  /** The last key `getKey()` made (psycopg2's `_keys`). */
  protected _keys: number = 0;
  /** The driver every connection is opened, checked and closed through. */
  protected readonly driver: Driver<C>;

  readonly #minconn: number;
  readonly #maxconn: number;
  readonly #name: string;
  readonly #reset: ((conn: C) => Promise<void> | void) | undefined;
  readonly #connectTimeout: number;
  /** Category `["tidepool", name]`. */
  readonly #log: Logger;
  /** `await using` on a connection comes back here, with the key it is bound to. */
  readonly #owner: Owner<C>;
  #state: State = "new";
  /** The `open()` in flight, shared by concurrent callers. */
  #opening: Promise<void> | undefined;
  /** Keyed connection attempts in flight: a second `getconn(key)` gets the same one. */
  readonly #connecting = new Map<PoolKey, Promise<C>>();
  /**
   * Connections neither idle nor bound: being opened or being returned. They
   * count against `maxconn` from before the first await, so concurrent
   * `getconn()` calls can never open more than `maxconn`.
   */
  #pending = 0;
  /** Opening, adopting, discarding and closing connections: the same lifecycle as ConnectionPool's. */
  readonly #connections: Connections<C>;
  /** The ports lent to Workers by `share()`, made on first use. */
  #sharing: SharedPool<C> | undefined;

  /**
   * Creates a pool. Does no I/O: `open()` or the first `getconn()` opens
   * `minconn` connections.
   *
   * @param minconn Connections kept open when idle (psycopg2's `minconn`), >= 0.
   * @param maxconn Most connections open at once, >= max(1, minconn).
   * @param conninfo A connection string, a `pg.ClientConfig`, or {@linkcode ClassicPoolOptions}.
   * @throws {TypeError} An argument has the wrong type, or an option is unknown.
   * @throws {RangeError} `minconn < 0`, `maxconn < 1`, `maxconn < minconn`, or a non-integer count.
   */
  constructor(minconn: number, maxconn: number, conninfo: string | pg.ClientConfig | ClassicPoolOptions<C>) {
    const args = resolveClassicArgs<C>(minconn, maxconn, conninfo);
    this.#minconn = args.minconn;
    this.#maxconn = args.maxconn;
    this.#name = args.name ?? `classic-${++poolCounter}`;
    this.#reset = args.reset;
    this.#connectTimeout = args.connectTimeout;
    this.driver = args.driver;
    this.#log = poolLogger(this.#name);
    this.#owner = { putconn: (conn) => this.#disposeReturn(conn) };
    this.#connections = new Connections<C>({
      driver: this.driver,
      name: this.#name,
      log: this.#log,
      configure: args.configure,
      connectTimeout: args.connectTimeout,
    });
  }

  /** Connections kept open when idle. */
  get minconn(): number {
    return this.#minconn;
  }

  /** Most connections open at once. */
  get maxconn(): number {
    return this.#maxconn;
  }

  /** True after `closeall()`. */
  get closed(): boolean {
    return this.#state === "closed";
  }

  /** The pool's name, used in logs and errors. */
  get name(): string {
    return this.#name;
  }

  /**
   * Opens `minconn` connections (psycopg2 does this in the constructor). The
   * first `getconn()` calls it when it was not called. Resolves at once when
   * already open. If a connection attempt fails it rejects with the driver's
   * error; the connections that did open stay idle and the next call tries
   * again for the rest.
   *
   * @returns Resolves when `minconn` connections are open.
   * @throws {PoolClosedError} After `closeall()`.
   * @example
   * ```ts
   * import { SimpleConnectionPool } from "@tidepool/pg";
   * const pool = new SimpleConnectionPool(2, 10, Deno.env.get("DATABASE_URL")!);
   * await pool.open(); // 2 connections open now
   * await pool.closeall();
   * ```
   */
  open(): Promise<void> {
    if (this.#state === "closed") return Promise.reject(this.#closedError());
    if (this.#state === "open") return RESOLVED;
    return this.#opening ??= this.#fill().finally(() => this.#opening = undefined);
  }

  /** `await using pool = new SimpleConnectionPool(...)` closes it at scope exit (unless already closed). */
  [Symbol.asyncDispose](): Promise<void> {
    return this.#state === "closed" ? RESOLVED : this._closeall();
  }

  /** What `Deno.inspect(pool)` shows: counts, no connection objects, no secrets. */
  [Symbol.for("Deno.customInspect")](): string {
    return inspectPool(this);
  }

  /**
   * A summary without secrets, for logs and `JSON.stringify`.
   *
   * @returns Name, target without password, state, limits and counts; with a host list, open connections per
   *   `host:port` (`hosts`).
   * @example
   * ```ts
   * import { SimpleConnectionPool } from "@tidepool/pg";
   * const pool = new SimpleConnectionPool(1, 5, "postgres://u:secret@localhost/db");
   * console.log(JSON.stringify(pool)); // no "secret" in it
   * ```
   */
  toJSON(): {
    name: string;
    target: string;
    state: string;
    minconn: number;
    maxconn: number;
    size: number;
    idle: number;
    used: number;
    hosts?: Record<string, number>;
  } {
    return this.#connections.summary<ReturnType<AbstractConnectionPool<C>["toJSON"]>>({
      name: this.#name,
      target: this.driver.description,
      state: this.#state,
      minconn: this.#minconn,
      maxconn: this.#maxconn,
      size: this.#size(),
      idle: this._pool.length,
      used: this._used.size,
    });
  }

  // ---- the key-based core (psycopg2's _getconn / _putconn / _closeall) ------

  /**
   * Returns the connection bound to `key`, or binds one: an idle one first,
   * else a new one while fewer than `maxconn` exist. Never waits for a
   * connection to be returned.
   *
   * @param key The key to bind; `undefined`/`null` binds a fresh key from `getKey()`.
   * @returns The connection bound to the key.
   * @throws {PoolExhaustedError} `maxconn` connections exist and none is idle.
   * @throws {PoolClosedError} After `closeall()`.
   * @throws {TypeError} `key` is not a string, number or symbol.
   */
  protected _getconn(key?: PoolKey | null): Promise<C> {
    if (this.#state === "closed") return Promise.reject(this.#closedError());
    if (key != null && !isKey(key)) {
      return Promise.reject(new TypeError(`Invalid argument 'key': expected a string, number or symbol`));
    }
    if (this.#state === "new") return this.open().then(() => this._getconn(key));
    // From here to the return nothing awaits: looking and taking are one step.
    const k = key ?? this.#freeKey();
    if (k === undefined) {
      return Promise.reject(new PoolError(`getKey() of pool '${this.name}' keeps making keys already in use`));
    }
    const bound = this._used.get(k);
    if (bound !== undefined) return Promise.resolve(bound);
    const connecting = this.#connecting.get(k);
    if (connecting !== undefined) return connecting;
    const idle = this.#takeIdle();
    if (idle !== undefined) {
      this.#bind(k, idle);
      return Promise.resolve(idle.conn);
    }
    if (this.#size() >= this.#maxconn) return Promise.reject(new PoolExhaustedError());
    return this.#connectFor(k);
  }

  /**
   * Unbinds a connection and keeps it idle or closes it. Kept only when
   * `close` is false, it comes back usable (an open transaction is rolled
   * back, then `reset` runs) and fewer than `minconn` are idle.
   *
   * @param conn A connection from this pool, in use.
   * @param key The key it is bound to; `undefined`/`null` looks it up.
   * @param close Close it instead of keeping it.
   * @returns Resolves when the connection is idle or closed.
   * @throws {PoolError} The connection is not from this pool, not in use, or bound to another key.
   * @throws {PoolClosedError} After `closeall()`.
   */
  protected _putconn(conn: C, key?: PoolKey | null, close: boolean = false): Promise<void> {
    if (this.#state === "closed") return Promise.reject(this.#closedError());
    if (typeof close !== "boolean") {
      return Promise.reject(new TypeError(`Invalid argument 'close': expected a boolean, got ${typeof close}`));
    }
    if (typeof key === "boolean") {
      // Python's `putconn(conn, close=True)` ported positionally lands the flag in `key`.
      return Promise.reject(
        new TypeError("Invalid argument 'key': got a boolean; to close, call putconn(conn, undefined, true)"),
      );
    }
    const entry = entryOf(conn);
    if (entry === undefined || entry.owner !== this.#owner) {
      return Promise.reject(new PoolError(`Cannot return connection: it is not from pool '${this.#name}'`));
    }
    const bound = this._rused.get(conn);
    if (bound === undefined) {
      return Promise.reject(
        new PoolError(`Cannot return connection: it is not in use in pool '${this.#name}' (returned twice?)`),
      );
    }
    if (key != null && key !== bound) {
      return Promise.reject(
        new PoolError(
          `Cannot return connection: it is bound to key ${String(bound)}, not ${String(key)}, in pool '${this.#name}'`,
        ),
      );
    }
    this._used.delete(bound);
    this._rused.delete(conn);
    entry.moveTo("reserved");
    if (!close && this.#reset === undefined && this.driver.status(conn) === "idle") {
      return this.#keepOrClose(entry); // the common case: no I/O before deciding
    }
    return this.#returnSlow(entry, close);
  }

  /**
   * Closes every connection, in use or not, and stops connection attempts.
   * Connections still borrowed are closed under their borrowers, whose next
   * query fails. Every later call on the pool throws `PoolClosedError`.
   *
   * @returns Resolves when every socket is closed.
   * @throws {PoolClosedError} Already closed (as psycopg2).
   */
  protected async _closeall(): Promise<void> {
    if (this.#state === "closed") throw this.#closedError();
    this.#state = "closed";
    this.#log.debug("Pool {pool} closing all connections", { pool: this.#name });
    this.#connections.abort(this.#closedError());
    for (const entry of [...this.#connections.all]) this.#discard(entry, "closeall");
    this._pool.length = 0;
    this._used.clear();
    this._rused.clear();
    // Attempts in flight see the abort and close what they opened.
    try {
      // open() and keyed attempts first: what they opened meanwhile they close themselves.
      await Promise.allSettled([this.#opening, ...this.#connecting.values()]);
      await this.#connections.settle();
    } finally {
      this.#sharing?.close(); // attached Workers' next call throws PoolClosedError
    }
  }

  /**
   * The `share()` of every classic pool: a port through which a Worker
   * borrows this pool's connections under the one `maxconn` cap.
   *
   * @param flavor `"classic"`: Workers use keys like here; `"persistent"`: one connection per Worker.
   * @param options `heartbeatTimeout` and the `worker`.
   * @returns The port to transfer to the Worker.
   */
  protected _share(flavor: "classic" | "persistent", options: ShareOptions | undefined): MessagePort {
    this.#sharing ??= new SharedPool<C>(
      poolInfo(this, this.#connectTimeout, "minconn", "maxconn"),
      classicShareOps(flavor, {
        getconn: (key) => this.getconnForShare(key),
        putconn: (conn, key, close) => this.putconnForShare(key, conn, close),
        driver: this.driver,
      }),
    );
    return this.#sharing.share(options);
  }

  /** What a Worker's `getconn(key)` runs in the owner; `PersistentConnectionPool` binds the key to the Worker. */
  protected getconnForShare(key: PoolKey | undefined): Promise<C> {
    return this._getconn(key);
  }

  /** What a Worker's `putconn(conn, key, close)` runs in the owner. */
  protected putconnForShare(key: PoolKey | undefined, conn: C | undefined, close: boolean): Promise<void> {
    return this._putconn(conn as C, key, close);
  }

  // ---- hooks a subclass may override ---------------------------------------

  /**
   * Opens one connection (psycopg2's `_connect`): the driver connects, then
   * the `configure` option runs. Override to prepare connections per key;
   * call `super.connect(key)` to open it.
   *
   * @param key The key it will be bound to, or `undefined` for an idle one opened by `open()`.
   * @returns A new connection.
   * @throws {PoolError} `configure` failed (`cause` is its error); driver errors as they are.
   */
  protected connect(key?: PoolKey): Promise<C> {
    void key;
    return this.#connections.open();
  }

  /**
   * Makes a key for `getconn()` without one (psycopg2's `_getkey`): 1, 2, ...
   *
   * @returns A key not made before by this pool.
   */
  protected getKey(): PoolKey {
    return ++this._keys;
  }

  /**
   * Called when the pool closes a connection, just before its socket closes.
   * A no-op by default; a throw is logged and ignored.
   *
   * @param conn The connection being closed.
   * @param reason Why.
   */
  protected onConnectionDiscarded(conn: C, reason: DiscardReason): void {
    void conn;
    void reason;
  }

  /** Aborted by `closeall()`: pass it to anything an overridden `connect` awaits. */
  protected get closingSignal(): AbortSignal {
    return this.#connections.signal;
  }

  // ---- internals ------------------------------------------------------------

  /**
   * A made key that is not bound or connecting: psycopg2 would hand a plain `getconn()` the connection a caller
   * bound to key 2 when its counter reached 2 (two borrowers of one connection).
   */
  #freeKey(): PoolKey | undefined {
    for (let tries = 0; tries < 1_000; tries++) {
      const k = this.getKey();
      if (!this._used.has(k) && !this.#connecting.has(k)) return k;
    }
    return undefined;
  }

  /** Every connection the pool holds or is opening or returning. */
  #size(): number {
    return this._pool.length + this._used.size + this.#pending;
  }

  async #fill(): Promise<void> {
    const missing = Math.max(0, this.#minconn - this.#size());
    this.#pending += missing;
    const attempts = Array.from({ length: missing }, () => this.#connections.attemptBounded(() => this.connect()));
    const results = await Promise.allSettled(attempts);
    this.#pending -= missing;
    let failure: unknown;
    for (const result of results) {
      if (result.status === "rejected") {
        failure ??= result.reason;
      } else if (this.#state === "closed") {
        void this.#connections.close(result.value);
      } else {
        this.#makeIdle(this.#adopt(result.value));
      }
    }
    if (this.#state === "closed") throw this.#closedError();
    if (failure !== undefined) throw failure;
    this.#state = "open";
  }

  #connectFor(key: PoolKey): Promise<C> {
    this.#pending++;
    const done = () => {
      this.#pending--;
      this.#connecting.delete(key);
    };
    const attempt = this.#connections.attemptBounded(() => this.connect(key)).then(
      (conn) => {
        done();
        if (this.#state === "closed") {
          void this.#connections.close(conn);
          throw this.#closedError();
        }
        const entry = this.#adopt(conn);
        this.#bind(key, entry);
        return conn;
      },
      (error) => {
        done();
        throw this.#state === "closed" ? this.#closedError(error) : error;
      },
    );
    this.#connecting.set(key, attempt);
    return attempt;
  }

  /** Pops an idle connection, dropping any found broken on the way. */
  #takeIdle(): Entry<C> | undefined {
    for (;;) {
      const conn = this._pool.pop();
      if (conn === undefined) return undefined;
      const entry = entryOf(conn)!;
      entry.moveTo("reserved");
      if (!entry.lost && this.driver.status(conn) === "idle") return entry;
      this.#discard(entry, "lost");
    }
  }

  #bind(key: PoolKey, entry: Entry<C>): void {
    entry.moveTo("in_use");
    entry.lease++;
    entry.lentAt = Date.now();
    this._used.set(key, entry.conn);
    this._rused.set(entry.conn, key);
  }

  /** An idle connection that dies by itself is dropped at once; a borrowed one is discarded on return. */
  #adopt(conn: C): Entry<C> {
    return this.#connections.adopt(conn, this.#owner, Infinity, (entry) => this.#discard(entry, "lost"));
  }

  async #returnSlow(entry: Entry<C>, close: boolean): Promise<void> {
    if (close) return await this.#discard(entry, "requested");
    this.#pending++;
    let usable: boolean;
    try {
      usable = await prepareForReuse(
        this.driver,
        entry.conn,
        this.#reset,
        this.#log,
        this.#name,
        this.#connectTimeout,
      );
    } finally {
      this.#pending--;
    }
    if (entry.state === "closed") return; // closeall() ran meanwhile
    if (!usable) return await this.#discard(entry, "broken");
    await this.#keepOrClose(entry);
  }

  #keepOrClose(entry: Entry<C>): Promise<void> {
    if (this._pool.length >= this.#minconn) return this.#discard(entry, "surplus");
    this.#makeIdle(entry);
    return RESOLVED;
  }

  /** Being in `_pool` and being `idle` are one fact: only this and `#discard` change both. */
  #makeIdle(entry: Entry<C>): void {
    entry.moveTo("idle");
    this._pool.push(entry.conn);
  }

  #discard(entry: Entry<C>, reason: DiscardReason): Promise<void> {
    if (entry.state === "closed") return RESOLVED;
    if (entry.state === "idle") {
      // Rare (an idle connection that died by itself), so a scan of the psycopg2-shaped array is fine.
      const at = this._pool.indexOf(entry.conn);
      if (at >= 0) this._pool.splice(at, 1);
      entry.moveTo("reserved");
    }
    try {
      this.onConnectionDiscarded(entry.conn, reason);
    } catch (error) {
      this.#log.warn("Pool {pool}: onConnectionDiscarded threw: {error}", {
        pool: this.#name,
        error: describeError(error),
      });
    }
    return this.#connections.discard(entry);
  }

  /** `await using` after `closeall()` has nothing left to do: the connection is closed already. */
  #disposeReturn(conn: C): Promise<void> {
    return this.#state === "closed" ? RESOLVED : this._putconn(conn);
  }

  #closedError(cause?: unknown): PoolClosedError {
    return new PoolClosedError(
      `Pool '${this.#name}' is closed`,
      cause === undefined || cause instanceof PoolClosedError ? undefined : { cause },
    );
  }
}

function isKey(key: unknown): key is PoolKey {
  return typeof key === "string" || typeof key === "number" || typeof key === "symbol";
}
