/**
 * The owner side of a shared pool: the isolate that holds the connections
 * lends them to Workers through `MessagePort`s. A Worker's `getconn()` becomes
 * a *lease*: one connection bound to that port until it is put back, so a
 * transaction stays on one server session. Queries run here, on the owner's
 * connections; results and errors go back through the port.
 *
 * The owner works against a small interface ({@linkcode ShareOps}: acquire,
 * release, query, status), so every pool plugs in with a few lines.
 *
 * A Worker that dies gives no sign on its port (Deno fires no close event), so
 * each port has a heartbeat: the Worker pings while it holds leases or waits
 * for replies, and the owner reclaims the leases of a port silent for
 * `heartbeatTimeout` (or at once on the Worker's `error` event with
 * `share({ worker })`). Reclaimed connections go through the pool's normal
 * return path, which rolls back an open transaction.
 *
 * @module
 */
import type { Logger } from "@logtape/logtape";
import type { ConnectionStatus, QueryResult } from "../driver.ts";
import { ConnectionLostError, PoolClosedError, PoolError } from "../errors.ts";
import { describeError, poolLogger } from "../_util/_log.ts";
import { duration } from "../_util/_validate.ts";
import { Outbox } from "./_outbox.ts";
import { onTerminate } from "./_terminate.ts";
import {
  isMessage,
  type PoolInfo,
  type ToOwner,
  toWireError,
  toWireResult,
  type ToWorker,
  WIRE_VERSION,
  type WireKey,
} from "./_wire.ts";

/**
 * Options of `pool.share()`.
 *
 * @example Faster reclaim when the Worker crashes
 * ```ts
 * import { ConnectionPool, type ShareOptions } from "@tidepool/pg";
 * const pool = new ConnectionPool({ conninfo: Deno.env.get("DATABASE_URL") });
 * const worker = new Worker(new URL("./job.ts", import.meta.url), { type: "module" });
 * const options: ShareOptions = { heartbeatTimeout: 5_000, worker };
 * const port = pool.share(options);
 * worker.postMessage({ pool: port }, [port]);
 * ```
 */
export interface ShareOptions {
  /**
   * Reclaim the leases of a Worker that sent nothing for this many ms while
   * holding leases or waiting for a reply. The Worker pings every
   * `heartbeatTimeout / 5` ms, so a Worker whose event loop is blocked for
   * longer than about 4/5 of this loses its leases (its next use of them fails
   * with `PoolError`). @default 5000
   */
  heartbeatTimeout?: number;
  /**
   * The Worker the port is for: its `error` event (an uncaught error) and its `terminate()` reclaim at once, and
   * the requests it had queued never start. Without it a dead Worker is noticed after `heartbeatTimeout`.
   */
  worker?: Worker;
}

/** What the owner needs to know about the pool it shares. */
export interface SharedPoolInfo {
  readonly name: string;
  readonly minSize: number;
  readonly maxSize: number;
  readonly closed: boolean;
  /** Bound (ms) of the pool's own COMMIT/ROLLBACK, told to Workers so theirs match. */
  readonly finishTimeout: number;
}

/**
 * A pool's name, sizes and state as the owner side reads them, live (getters:
 * `resize()` and `close()` show). `min` and `max` name the pool's size
 * properties: the modern pool's by default, a classic pool passes `"minconn"`, `"maxconn"`.
 */
export function poolInfo<Min extends string = "minSize", Max extends string = "maxSize">(
  pool: { readonly name: string; readonly closed: boolean } & { readonly [K in NoInfer<Min | Max>]: number },
  finishTimeout: number,
  min: Min = "minSize" as Min,
  max: Max = "maxSize" as Max,
): SharedPoolInfo {
  return {
    get name() {
      return pool.name;
    },
    get minSize() {
      return pool[min];
    },
    get maxSize() {
      return pool[max];
    },
    get closed() {
      return pool.closed;
    },
    finishTimeout,
  };
}

/** One request for a connection, as a pool adapter receives it. */
export interface AcquireRequest {
  /** The Worker's wait limit in ms, if it gave one. */
  timeout?: number;
  /** Aborted when the Worker gives up or its leases are reclaimed. */
  signal?: AbortSignal;
  /** A classic pool's key, as the Worker passed it. */
  key?: WireKey;
  /** Which attached port asks: classic adapters scope keys by it, persistent ones bind to it. */
  port: number;
  /** For one `pool.query()` run (given back right after), not a lease the Worker holds. */
  run?: boolean;
  /**
   * The port's lease generation (it changes when its leases are reclaimed): a keyed request from before a reclaim
   * never shares a connection with one after it, which the Worker may already be using.
   */
  epoch?: number;
}

/** How a connection comes back from a Worker, as a pool adapter receives it. */
export interface ReleaseRequest {
  /** The key the lease was acquired with. */
  key?: WireKey;
  /** Discard the connection instead of keeping it. */
  close?: boolean;
  /** Which attached port gives it back. */
  port: number;
  /** The end of a `pool.query()` run, not of a lease. */
  run?: boolean;
}

/** How a pool lends connections to its Workers: a few lines per pool. */
export interface ShareOps<C> {
  /** Which API the Worker side mirrors. */
  flavor: PoolInfo["flavor"];
  acquire(request: AcquireRequest): Promise<C>;
  /** May keep the connection bound (a persistent pool's port still uses it): the pool's own rule. */
  release(conn: C, request: ReleaseRequest): Promise<void>;
  query(conn: C, text: string, params?: unknown[]): Promise<QueryResult>;
  status(conn: C): ConnectionStatus;
}

interface Lease<C> {
  conn: C;
  key: WireKey | undefined;
  /** Settles when the lease's last statement has: the next one starts only then (see `#query`). */
  tail?: Promise<void>;
}

let linkCounter = 0;
/** How long (ms) a reply may wait for others of the same port before it is posted. */
const LINGER_MS = 1;

/**
 * The ports of one pool. Pools create it on their first `share()` and close it
 * when they close.
 */
export class SharedPool<C> {
  readonly #links = new Set<Link<C>>();
  readonly #log: Logger;
  #closed = false;

  /**
   * @param pool The pool's name, sizes and state.
   * @param ops How to lend its connections.
   */
  constructor(readonly pool: SharedPoolInfo, readonly ops: ShareOps<C>) {
    this.#log = poolLogger(pool.name);
  }

  /**
   * A new port for one Worker; transfer it with `worker.postMessage(x, [port])`.
   *
   * @throws {PoolClosedError} The pool is closed.
   * @throws {RangeError} `heartbeatTimeout` is not a positive duration.
   */
  share(options: ShareOptions = {}): MessagePort {
    if (this.#closed || this.pool.closed) throw new PoolClosedError(`Pool '${this.pool.name}' is closed`);
    const heartbeatTimeout = duration(options.heartbeatTimeout, "heartbeatTimeout", 5_000);
    if (heartbeatTimeout < 10) {
      throw new RangeError(`Invalid option 'heartbeatTimeout': must be at least 10 ms, got ${heartbeatTimeout}`);
    }
    const { port1, port2 } = new MessageChannel();
    const link = new Link(this, port1, heartbeatTimeout, options.worker, this.#log);
    this.#links.add(link);
    return port2;
  }

  /** Number of attached ports still open (for tests and stats). */
  get ports(): number {
    return this.#links.size;
  }

  /** Tells every Worker the pool closed and closes the ports. Called once the pool has closed. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const link of this.#links) link.close(`Pool '${this.pool.name}' is closed`);
  }

  /** @internal */
  forget(link: Link<C>): void {
    this.#links.delete(link);
  }
}

/** One attached port: its leases, requests in flight and heartbeat. */
class Link<C> {
  readonly id = ++linkCounter;
  readonly #outbox: Outbox<ToWorker>;
  readonly #leases = new Map<number, Lease<C>>();
  readonly #leaseOf = new Map<C, number>();
  readonly #cancels = new Map<number, AbortController>();
  readonly #period: number;
  readonly #timer: number;
  #nextLease = 1;
  #inflight = 0;
  /** Of #inflight, the statements running (not waits for a connection): their replies come soon. */
  #running = 0;
  /** Bumped on reclaim: requests that started before it finish by giving their connection back. */
  #epoch = 0;
  #lastSeen = performance.now();
  #lastSweep = performance.now();
  #attached = false;
  #closed = false;
  /** A detach arrived: nothing more starts on this port. */
  #detaching = false;
  #idle: PromiseWithResolvers<void> | undefined;
  readonly #onWorkerError: (() => void) | undefined;
  #unwatchTerminate: (() => void) | undefined;

  constructor(
    readonly owner: SharedPool<C>,
    readonly port: MessagePort,
    readonly heartbeatTimeout: number,
    readonly worker: Worker | undefined,
    readonly log: Logger,
  ) {
    this.#outbox = new Outbox<ToWorker>(
      port,
      (message, error) => {
        // Rows that cannot be cloned: fail that request instead of the batch.
        if (message.kind === "ok") this.#outbox.send({ v: 1, kind: "err", id: message.id, error: toWireError(error) });
      },
      // Replies linger (<= 1 ms) while other statements of this port still run: one wake-up of
      // the Worker for several replies. A lone request's reply leaves at once.
      () => this.#running > 0,
      LINGER_MS,
    );
    port.onmessage = (event) => this.#receive(event.data);
    port.onmessageerror = () => this.#warn("a message that could not be deserialized");
    this.#period = Math.max(5, heartbeatTimeout / 4);
    this.#timer = setInterval(() => this.#sweep(), this.#period) as unknown as number;
    Deno.unrefTimer(this.#timer);
    if (worker !== undefined) {
      this.#onWorkerError = () => this.#reclaim("its Worker failed with an uncaught error", true);
      worker.addEventListener("error", this.#onWorkerError);
      this.#unwatchTerminate = onTerminate(worker, () => this.#reclaim("its Worker was terminated", true));
    }
  }

  #receive(data: unknown): void {
    this.#lastSeen = performance.now();
    if (Array.isArray(data)) {
      for (const message of data) this.#handle(message);
    } else {
      this.#handle(data);
    }
  }

  #handle(message: unknown): void {
    if (!isMessage(message)) return this.#warn("a message that is not tidepool's");
    if (message.v !== WIRE_VERSION) return this.#warn(`a message of protocol version ${String(message.v)}`);
    const m = message as ToOwner;
    if (m.kind === "ping") return;
    if (typeof m.id !== "number") return this.#warn(`a '${m.kind}' message without an id`);
    if (this.#detaching && m.kind !== "cancel") {
      return this.#fail(m.id, new PoolClosedError("The Worker detached from the pool"));
    }
    switch (m.kind) {
      case "run":
        if (!this.#validSql(m)) return;
        return void this.#run(m.id, m.text, m.params);
      case "acquire":
        return void this.#acquire(m);
      case "query":
        if (!this.#validSql(m)) return;
        return void this.#query(m.id, m.lease, m.text, m.params);
      case "release":
        return void this.#release(m.id, m.lease, m.close === true);
      case "cancel":
        this.#cancels.get(m.id)?.abort(new PoolError("The Worker cancelled the request"));
        return;
      case "hello":
        return this.#hello(m.id);
      case "detach":
        return void this.#detach(m.id);
      default:
        this.#warn(`a message of unknown kind '${(m as { kind: string }).kind}'`);
    }
  }

  #validSql(m: { id: number; text: unknown; params?: unknown }): boolean {
    if (typeof m.text === "string" && (m.params === undefined || Array.isArray(m.params))) return true;
    this.#fail(m.id, new TypeError("Invalid query: expected SQL text and an optional array of parameters"));
    return false;
  }

  /**
   * Why a request granted a connection must not start: its port closed, detached or was reclaimed meanwhile
   * (`epoch` is the port's generation when the request arrived), or its Worker has been silent past the
   * heartbeat timeout (reclaimed now rather than at the next sweep). Undefined: it may start. What a Worker is
   * told failed never runs, so a retry after that error cannot write twice.
   */
  #abandoned(epoch: number): Error | undefined {
    if (this.#detaching) return new PoolClosedError("The request was abandoned: the Worker detached from the pool");
    const now = performance.now();
    // As in #sweep: if the owner's own timers ran late, the Worker's pings may sit unread in the port.
    const ownerLate = now - this.#lastSweep > this.#period * 2;
    if (!this.#closed && epoch === this.#epoch && !ownerLate && now - this.#lastSeen > this.heartbeatTimeout) {
      this.#reclaim(`its Worker sent no heartbeat for ${this.heartbeatTimeout} ms`, false);
    }
    if (this.#closed || epoch !== this.#epoch) {
      return new PoolError("The request was abandoned: its Worker's leases were reclaimed");
    }
    return undefined;
  }

  #hello(id: number): void {
    if (this.#attached) {
      this.#warn("a second attach on the same port");
      return this.#fail(id, new PoolError("This port is already attached: call pool.share() once per Worker"));
    }
    this.#attached = true;
    const { pool, ops } = this.owner;
    const info: PoolInfo = {
      name: pool.name,
      flavor: ops.flavor,
      minSize: pool.minSize,
      maxSize: pool.maxSize,
      heartbeatInterval: this.heartbeatTimeout / 5,
      heartbeatTimeout: this.heartbeatTimeout,
      finishTimeout: pool.finishTimeout,
    };
    this.#outbox.send({ v: 1, kind: "welcome", id, info });
  }

  /** `pool.query()` in one round trip: checkout, statement, return. */
  async #run(id: number, text: string, params: unknown[] | undefined): Promise<void> {
    const { ops } = this.owner;
    const epoch = this.#epoch;
    this.#inflight++;
    // A run waiting for a connection is abandoned, never started, when its Worker dies or detaches.
    const controller = new AbortController();
    this.#cancels.set(id, controller);
    let conn: C;
    try {
      conn = await ops.acquire({ port: this.id, run: true, signal: controller.signal });
    } catch (error) {
      this.#inflight--;
      return this.#fail(id, error);
    } finally {
      this.#cancels.delete(id);
    }
    const abandoned = this.#abandoned(epoch);
    if (abandoned !== undefined) {
      this.#inflight--;
      this.#fail(id, abandoned);
      return await this.#giveBack(conn, undefined, false, true);
    }
    this.#running++;
    try {
      const result = await ops.query(conn, text, params);
      this.#stopped();
      this.#outbox.send({ v: 1, kind: "ok", id, result: toWireResult(result) });
    } catch (error) {
      this.#stopped();
      this.#fail(id, error);
    } finally {
      this.#inflight--;
      await this.#giveBack(conn, undefined, false, true);
    }
  }

  async #acquire(m: Extract<ToOwner, { kind: "acquire" }>): Promise<void> {
    const epoch = this.#epoch;
    this.#inflight++;
    let controller: AbortController | undefined;
    if (m.cancellable === true) {
      controller = new AbortController();
      this.#cancels.set(m.id, controller);
    }
    let conn: C;
    try {
      conn = await this.owner.ops.acquire({
        timeout: m.timeout,
        signal: controller?.signal,
        key: m.key,
        port: this.id,
        epoch,
      });
    } catch (error) {
      return this.#fail(m.id, error);
    } finally {
      this.#inflight--;
      if (controller !== undefined) this.#cancels.delete(m.id);
    }
    const abandoned = this.#abandoned(epoch);
    if (abandoned !== undefined) {
      await this.#giveBack(conn, m.key, false);
      return this.#fail(m.id, abandoned);
    }
    // A classic pool hands the same connection for the same key (a persistent one for the same port).
    let lease = this.#leaseOf.get(conn);
    if (lease === undefined) {
      lease = this.#nextLease++;
      this.#leases.set(lease, { conn, key: m.key });
      this.#leaseOf.set(conn, lease);
    }
    this.#outbox.send({ v: 1, kind: "ok", id: m.id, lease, status: this.owner.ops.status(conn) });
  }

  /**
   * One statement on a lease. The lease's statements run one after another here, not queued in the driver, so
   * that when the lease is reclaimed meanwhile the ones not started yet are abandoned (they never run: what the
   * Worker is told failed never ran), and only the one running can have run: that one fails with
   * `ConnectionLostError` ("may have run"), never with the bare socket error of the closed connection.
   */
  async #query(id: number, leaseId: number, text: string, params: unknown[] | undefined): Promise<void> {
    const lease = this.#leases.get(leaseId);
    if (lease === undefined) return this.#unknownLease(id, leaseId);
    const { ops } = this.owner;
    const previous = lease.tail;
    const { promise: tail, resolve: done } = Promise.withResolvers<void>();
    lease.tail = tail;
    this.#inflight++;
    try {
      if (previous !== undefined) await previous;
      if (this.#leases.get(leaseId) !== lease) {
        return this.#fail(
          id,
          this.#detaching
            ? new PoolClosedError("The request was abandoned: the Worker detached from the pool")
            : new PoolError("The request was abandoned: its Worker's lease was reclaimed"),
        );
      }
      this.#running++;
      try {
        const result = await ops.query(lease.conn, text, params);
        this.#stopped();
        this.#outbox.send({ v: 1, kind: "ok", id, result: toWireResult(result), status: ops.status(lease.conn) });
      } catch (error) {
        this.#stopped();
        const lost = this.#leases.get(leaseId) !== lease
          ? new ConnectionLostError("The lease was reclaimed while the statement ran: it may have run", {
            cause: error,
          })
          : error;
        this.#outbox.send({ v: 1, kind: "err", id, error: toWireError(lost), status: ops.status(lease.conn) });
      }
    } finally {
      this.#inflight--;
      done();
    }
  }

  async #release(id: number, leaseId: number, close: boolean): Promise<void> {
    const lease = this.#leases.get(leaseId);
    if (lease === undefined) return this.#unknownLease(id, leaseId);
    this.#leases.delete(leaseId);
    this.#leaseOf.delete(lease.conn);
    this.#inflight++;
    try {
      await this.owner.ops.release(lease.conn, { key: lease.key, close, port: this.id });
      this.#outbox.send({ v: 1, kind: "ok", id });
    } catch (error) {
      this.#fail(id, error);
    } finally {
      this.#inflight--;
    }
  }

  async #detach(id: number): Promise<void> {
    // Requests still waiting for a connection fail now and never run; statements already running finish and
    // their replies go out before this one, so the Worker learns each outcome.
    this.#detaching = true;
    const detached = new PoolClosedError("The request was abandoned: the Worker detached from the pool");
    for (const controller of this.#cancels.values()) controller.abort(detached);
    while (this.#running > 0) await (this.#idle ??= Promise.withResolvers<void>()).promise;
    const leases = this.#takeLeases();
    await Promise.all(leases.map((lease) => this.#giveBack(lease.conn, lease.key, false)));
    this.#outbox.send({ v: 1, kind: "ok", id });
    this.close(undefined);
  }

  /** One statement of this port finished: wakes a detach waiting for the last one. */
  #stopped(): void {
    if (--this.#running > 0 || this.#idle === undefined) return;
    this.#idle.resolve();
    this.#idle = undefined;
  }

  #unknownLease(id: number, leaseId: unknown): void {
    this.#warn(`an unknown lease ${String(leaseId)}`);
    this.#fail(
      id,
      new PoolError(
        `Connection lease ${String(leaseId)} is not held: it was returned, or reclaimed after a missed heartbeat`,
      ),
    );
  }

  #fail(id: number, error: unknown): void {
    this.#outbox.send({ v: 1, kind: "err", id, error: toWireError(error) });
  }

  /** Returns a connection through the pool's normal path (rollback, reset); never throws. */
  async #giveBack(conn: C, key: WireKey | undefined, close: boolean, run = false): Promise<void> {
    try {
      await this.owner.ops.release(conn, { key, close, port: this.id, run });
    } catch (error) {
      this.log.warn("Pool {pool}: returning a Worker's connection failed: {error}", {
        pool: this.owner.pool.name,
        error: describeError(error),
      });
    }
  }

  #takeLeases(): Lease<C>[] {
    const leases = [...this.#leases.values()];
    this.#leases.clear();
    this.#leaseOf.clear();
    return leases;
  }

  #sweep(): void {
    const now = performance.now();
    const late = now - this.#lastSweep > this.#period * 2;
    this.#lastSweep = now;
    // The owner's own loop was blocked: pings may sit unread in the port. Look again next time.
    if (late) return;
    if (this.#leases.size === 0 && this.#inflight === 0) return;
    if (now - this.#lastSeen > this.heartbeatTimeout) {
      this.#reclaim(`its Worker sent no heartbeat for ${this.heartbeatTimeout} ms`, false);
    }
  }

  /**
   * Takes back every lease of this port through the normal return path. A
   * Worker known dead loses its port; a silent one may only be blocked, so
   * its port stays open and it is told which leases it lost.
   */
  #reclaim(reason: string, dead: boolean): void {
    if (this.#closed) return;
    this.#epoch++;
    const ids = [...this.#leases.keys()];
    const leases = this.#takeLeases();
    for (const controller of this.#cancels.values()) controller.abort(new PoolError(`Request abandoned: ${reason}`));
    if (leases.length > 0 || this.#inflight > 0) {
      this.log.warn("Pool {pool}: reclaiming {count} connection(s) of a Worker: {reason}", {
        pool: this.owner.pool.name,
        count: leases.length,
        reason,
      });
    }
    for (const lease of leases) void this.#giveBack(lease.conn, lease.key, false);
    // Reset the clock so a blocked-but-alive Worker is not reclaimed again before it speaks.
    this.#lastSeen = performance.now();
    if (dead) this.close(undefined);
    else if (ids.length > 0) this.#outbox.send({ v: 1, kind: "reclaimed", leases: ids, reason });
  }

  /** Closes the port; with a reason, the Worker is told first (the pool closed). */
  close(reason: string | undefined): void {
    if (this.#closed) return;
    this.#closed = true;
    if (reason !== undefined) this.#outbox.send({ v: 1, kind: "closed", reason });
    this.#outbox.close();
    clearInterval(this.#timer);
    this.worker?.removeEventListener("error", this.#onWorkerError!);
    this.#unwatchTerminate?.();
    this.port.onmessage = null;
    this.port.close();
    for (const lease of this.#takeLeases()) void this.#giveBack(lease.conn, lease.key, false);
    this.owner.forget(this);
  }

  #warn(what: string): void {
    this.log.warn("Pool {pool}: ignoring {what} on a shared port", { pool: this.owner.pool.name, what });
  }
}
