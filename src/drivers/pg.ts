/**
 * The node-postgres driver: the only file that knows `npm:pg`.
 *
 * @module
 */
// @ts-types="@types/pg"
import pg from "pg";
import { getLogger } from "@logtape/logtape";
import process from "node:process";
import { type ConnectionStatus, type Driver, FORGET_SESSION, type QueryResult, statusOfReadyByte } from "../driver.ts";
import type { RowShape } from "../driver.ts";
// The public signature names the pinned aliases (what mod.ts exports), not the value import's types.
import type { Client as PgClient, ClientConfig as PgClientConfig } from "./pg_types.ts";
import { sendCancelRequest } from "./_pg_cancel.ts";
import { type ConninfoFunction, conninfoFunctionDriver } from "./pg_conninfo_fn.ts";
import { markBaseline, restoreBaseline } from "./_pg_session.ts";
import { SESSION_ENDING } from "./_wire_watch.ts";
import { clientConfig, type Conninfo, describeConninfo, hostLabel, parseConninfo } from "./_conninfo.ts";
import { scrubber } from "./_scrub.ts";
import { fitsReported, mismatch, passesFor, sessionFits, type SessionWant } from "./_session_attrs.ts";
import { HostsExhaustedError } from "../errors.ts";
import { MAX_DELAY, within } from "../_util/_timers.ts";

/** Options of {@linkcode createPgDriver}. */
export interface PgDriverOptions {
  /**
   * Limit of one connection attempt on one host (TCP, TLS, auth and the
   * `target_session_attrs` check), in ms; 0 = none. A `connect_timeout` in the
   * conninfo overrides it. @default 10000
   */
  connectTimeout?: number;
}

// node-postgres internals read without a round trip. They are stable across
// pg 8.x; status() treats anything unexpected as "broken", which only costs a
// reconnect.
interface PgInternals {
  _ending?: boolean;
  _ended?: boolean;
  _connected?: boolean;
  _queryable?: boolean;
  _activeQuery?: unknown;
  _queryQueue?: unknown[];
  _sentQueryQueue?: unknown[];
  connection?: {
    stream?: { destroy(error?: Error): void };
    on(event: "errorMessage", listener: (msg: { severity?: string; code?: string }) => void): void;
    on(event: "parameterStatus", listener: (msg: { parameterName: string; parameterValue: string }) => void): void;
  };
}

/**
 * Clients whose server sent a FATAL/PANIC error: the session is ending. pg
 * hands that error to the running query before the socket's `end` event, so
 * a borrower that returns the connection from its `catch` would otherwise
 * give back a connection that still looks idle.
 */
const doomed = new WeakSet<pg.Client>();

/**
 * Creates the node-postgres driver for a connection string or `pg.ClientConfig`.
 * The password stays inside the driver: `description` and every error it
 * throws are scrubbed of it.
 *
 * @param conninfo A `postgres://` URL, a libpq `key=value` string, a `pg.ClientConfig`, or a function (sync or
 *   async) returning one, called for each new connection (rotating passwords, IAM tokens).
 * @param options The connect timeout.
 * @returns A {@linkcode Driver} of `pg.Client` connections.
 * @example Using the driver directly
 * ```ts
 * import { createPgDriver } from "@tidepool/pg";
 * const driver = createPgDriver("postgres://app:secret@localhost/app");
 * console.log(driver.description); // "postgres://app@localhost:5432/app"
 * ```
 */
export function createPgDriver(
  conninfo: string | PgClientConfig | ConninfoFunction,
  options: PgDriverOptions = {},
): Driver<PgClient> {
  if (typeof conninfo === "function") {
    // One Failover for all the function's connections: a host that stops fitting drops every one of them.
    const failover = new Failover();
    return conninfoFunctionDriver(conninfo, options, (result, o) => pgDriver(result, o, failover));
  }
  return pgDriver(conninfo, options, new Failover());
}

/** {@linkcode createPgDriver} for one conninfo, its connections watched by `failover`. */
function pgDriver(conninfo: string | pg.ClientConfig, options: PgDriverOptions, failover: Failover): Driver<pg.Client> {
  // Parsed here, so that a plainly invalid conninfo is a TypeError/RangeError at construction.
  const info = parseConninfo(conninfo);
  const scrub = scrubber(info);
  // Capped at the longest timer: beyond 2^31-1 ms setTimeout would fire at once.
  const limit = (ms: number) => ms > 0 ? Math.min(Math.max(1, Math.round(ms)), MAX_DELAY) : 0;
  const connectTimeout = limit(info.connectTimeout ?? options.connectTimeout ?? 10_000);

  return {
    description: describeConninfo(info),

    async connect(signal: AbortSignal): Promise<pg.Client> {
      signal.throwIfAborted();
      const client = await connectToHosts(info, signal, connectTimeout, scrub, failover);
      Object.defineProperty(client, FORGET_SESSION, { value: forgetSession, configurable: true });
      return client;
    },

    async close(client: pg.Client, timeoutMs = 5_000): Promise<void> {
      const internals = client as unknown as PgInternals;
      if (internals._ended) return;
      let timer: number | undefined;
      const timedOut = new Promise<void>((resolve) => {
        timer = setTimeout(() => {
          internals.connection?.stream?.destroy();
          resolve();
        }, timeoutMs) as unknown as number;
      });
      try {
        await Promise.race([client.end().catch(() => {}), timedOut]);
      } finally {
        clearTimeout(timer);
      }
    },

    status(client: pg.Client): ConnectionStatus {
      const c = client as unknown as PgInternals;
      // pg sets these flags itself when the socket errors or ends.
      if (c._ending || c._ended || !c._connected || c._queryable === false || doomed.has(client)) return "broken";
      if (
        c._activeQuery || c._queryQueue?.length || c._sentQueryQueue?.length
      ) return "active";
      return statusOfReadyByte(client.getTransactionStatus());
    },

    async rollback(client: pg.Client): Promise<void> {
      await client.query("ROLLBACK");
    },

    cancel(client: pg.Client): Promise<void> {
      return sendCancelRequest(client, connectTimeout > 0 ? connectTimeout : 10_000);
    },

    setRef(client: pg.Client, ref: boolean): void {
      const stream = (client as unknown as PgInternals).connection?.stream as
        | { ref?(): void; unref?(): void }
        | undefined;
      if (ref) stream?.ref?.();
      else stream?.unref?.();
    },

    async ping(client: pg.Client): Promise<void> {
      await client.query("");
    },

    query(
      client: pg.Client,
      text: string,
      params?: unknown[],
      shape?: RowShape,
    ): Promise<QueryResult> {
      if ((client as unknown as { pipeline: boolean }).pipeline) corkBehindOthers(client);
      if (shape !== undefined) {
        return client.query({ text, values: params, ...shape } as pg.QueryConfig) as Promise<QueryResult>;
      }
      return client.query(text, params) as Promise<QueryResult>;
    },

    hostOf(client: pg.Client): string | undefined {
      return info.hosts.length > 1 ? hostOfClient.get(client) : undefined;
    },

    setPipelined(client: pg.Client, on: boolean): void {
      // pg 8.23 reads the flag on every send; flipping it while nothing is queued or in flight is safe.
      (client as unknown as { pipeline: boolean }).pipeline = on;
    },

    watch(client: pg.Client, onLost: (error: Error | undefined) => void): void {
      let fired = false;
      const fire = (error?: Error) => {
        if (fired) return;
        fired = true;
        onLost(error === undefined ? undefined : scrub(error));
      };
      client.on("error", fire);
      client.on("end", () => fire());
      failover.watch(client, fire);
      markBaseline(client); // what ConnectionPool.discardAll restores: the pool's own listeners included
    },
  };
}

/**
 * Pipelined statements sent in the same turn of the event loop leave in one
 * socket write: pg writes each message at once, and under load the writes
 * cost more than everything else on the client (postgres.js batches the same
 * way). Only behind statements already in flight: a statement alone on its
 * connection goes out at once, since a corked write leaves later (measured:
 * one task got slower).
 */
function corkBehindOthers(client: pg.Client): void {
  const c = client as unknown as PgInternals;
  if (!c._activeQuery && !c._sentQueryQueue?.length) return;
  const stream = c.connection?.stream as { writableCorked?: number; cork(): void; uncork(): void } | undefined;
  if (stream === undefined || stream.writableCorked) return;
  stream.cork();
  // After the microtasks of this turn, so every statement they send joins the write.
  process.nextTick(() => stream.uncork());
}

/**
 * After DISCARD ALL (`ConnectionPool.discardAll`): the server deallocated the
 * statements pg prepared for named queries, but pg keeps their names and would
 * skip the Parse next time ("prepared statement ... does not exist"). A clean
 * session also drops what the borrower changed on the client itself (type
 * parsers, event listeners) since the pool adopted it: see _pg_session.ts.
 */
function forgetSession(this: pg.Client): void {
  restoreBaseline(this);
}

/**
 * One attempt on one server, bounded by `timeoutMs`. The timer is ours, not
 * pg's `connectionTimeoutMillis`: pg arms its timer before opening the socket,
 * and when the socket throws at once (bad port, NUL in the host) the timer
 * later destroys a socket nobody listens to, an uncaught exception.
 *
 * @param config The server's `pg.ClientConfig`.
 * @param signal Aborts the attempt (pool closing).
 * @param timeoutMs Limit of the attempt; 0 = none.
 * @param label `host:port`, for the timeout's message.
 * @returns The connected client.
 */
export async function connectClient(
  config: pg.ClientConfig,
  signal: AbortSignal,
  timeoutMs: number,
  label: string,
): Promise<pg.Client> {
  const client = new pg.Client(config);
  // An 'error' event with no listener would crash the process.
  client.on("error", () => {});
  const internals = client as unknown as PgInternals;
  const reported = reportedBy(client);
  internals.connection?.on("parameterStatus", (msg) => reported.set(msg.parameterName, msg.parameterValue));
  internals.connection?.on("errorMessage", (msg) => {
    if (msg.severity === "FATAL" || msg.severity === "PANIC" || SESSION_ENDING.has(msg.code ?? "")) {
      doomed.add(client);
    }
  });
  const destroy = (error?: Error) => internals.connection?.stream?.destroy(error);
  const abort = () => destroy();
  signal.addEventListener("abort", abort, { once: true });
  let timer: number | undefined;
  if (timeoutMs > 0) {
    const id = setTimeout(
      () => destroy(new Error(`timeout expired: no connection to ${label} within ${timeoutMs} ms`)),
      timeoutMs,
    ) as unknown as number;
    Deno.unrefTimer(id);
    timer = id;
  }
  try {
    await client.connect();
  } finally {
    clearTimeout(timer);
    signal.removeEventListener("abort", abort);
  }
  if (signal.aborted) {
    await client.end().catch(() => {});
    throw signal.reason;
  }
  return client;
}

/**
 * Tries the hosts in order (libpq's rule), each attempt within `timeoutMs`,
 * and keeps the first server that fits `target_session_attrs`. One host and
 * no attributes: the driver's own error, as is. Otherwise, when no server
 * fits, a {@linkcode HostsExhaustedError} naming each host tried and why.
 */
async function connectToHosts(
  info: Conninfo,
  signal: AbortSignal,
  timeoutMs: number,
  scrub: (error: unknown) => Error,
  failover: Failover,
): Promise<pg.Client> {
  const hosts = info.loadBalanceHosts === "random" ? shuffled(info.hosts) : info.hosts;
  const tried: string[] = [];
  let lastError: unknown;
  for (const want of passesFor(info.targetSessionAttrs)) {
    for (const host of hosts) {
      const label = hostLabel(host);
      const started = performance.now();
      let client: pg.Client;
      try {
        client = await connectClient(await clientConfig(info, host), signal, timeoutMs, label);
      } catch (error) {
        if (signal.aborted) throw signal.reason;
        lastError = error;
        tried.push(`${label}: ${scrub(error).message}`);
        continue;
      }
      try {
        // The check is part of the attempt: bounded by what is left of its time.
        const left = timeoutMs > 0 ? Math.max(1, timeoutMs - (performance.now() - started)) : 0;
        const fits = await within(
          sessionFits(client, want, reportedBy(client)),
          left,
          () => new Error(`timeout expired: ${label} did not answer the target_session_attrs check`),
        );
        if (fits) {
          failover.adopt(client, label, want);
          hostOfClient.set(client, label);
          if (info.hosts.length > 1) {
            log.debug("Connected to {host} (target_session_attrs={attrs})", {
              host: label,
              attrs: info.targetSessionAttrs,
            });
          }
          return client;
        }
        lastError = new Error(`server ${label} is ${mismatch(want)}`);
        // A server that stopped fitting: its other connections must go too (failover).
        failover.unfit(label, want);
      } catch (error) {
        lastError = error;
      }
      await client.end().catch(() => {});
      if (signal.aborted) throw signal.reason;
      tried.push(`${label}: ${scrub(lastError).message}`);
      log.debug("Skipped {host}: {reason}", { host: label, reason: scrub(lastError).message });
    }
  }
  if (info.hosts.length === 1 && info.targetSessionAttrs === "any") throw scrub(lastError);
  throw scrub(
    new HostsExhaustedError(
      `No server accepted a session (target_session_attrs=${info.targetSessionAttrs}); tried ${tried.join("; ")}`,
      hosts.map(hostLabel),
      { cause: lastError === undefined ? undefined : scrub(lastError) },
    ),
  );
}

function shuffled<T>(items: readonly T[]): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

/**
 * The driver's log lines (category `["tidepool", "pg"]`): which host a
 * connection went to, which were skipped and why, and failovers. Never a secret:
 * hosts are shown as `host:port` and errors are scrubbed first.
 */
const log = getLogger(["tidepool", "pg"]);

/** The `host:port` each client connected to. */
const hostOfClient = new WeakMap<pg.Client, string>();

/** Parameters each server reported about itself (ParameterStatus), per client. */
const reports = new WeakMap<pg.Client, Map<string, string>>();

function reportedBy(client: pg.Client): Map<string, string> {
  let map = reports.get(client);
  if (map === undefined) reports.set(client, map = new Map());
  return map;
}

/**
 * Failover: each connection remembers its host and what it was opened for
 * (`target_session_attrs`). When a server stops fitting (25006 on a write,
 * `in_hot_standby` or `default_transaction_read_only` reported on, a new
 * connection's check failing), every connection to that host is marked broken
 * (discarded on return) and reported lost through `watch` (the pool closes the
 * idle ones at once), so the next attempt goes down the host list.
 */
class Failover {
  readonly #byHost = new Map<string, Set<pg.Client>>();
  readonly #meta = new WeakMap<pg.Client, { label: string; want: SessionWant; onLost?: (error: Error) => void }>();

  adopt(client: pg.Client, label: string, want: SessionWant): void {
    if (want === "any") return; // any server fits: nothing can stop fitting
    this.#meta.set(client, { label, want });
    let set = this.#byHost.get(label);
    if (set === undefined) this.#byHost.set(label, set = new Set());
    set.add(client);
    client.once("end", () => {
      set.delete(client);
      if (set.size === 0 && this.#byHost.get(label) === set) this.#byHost.delete(label);
    });
    const connection = (client as unknown as PgInternals).connection;
    connection?.on("parameterStatus", () => {
      if (fitsReported(want, reportedBy(client)) === false) this.unfit(label, want);
    });
    connection?.on("errorMessage", (msg) => {
      // read_only_sql_transaction: a write reached a server that no longer takes writes.
      if (msg.code === "25006" && (want === "read-write" || want === "primary")) this.unfit(label, want);
    });
  }

  /** The pool's `watch` callback for a connection, called when its server stops fitting. */
  watch(client: pg.Client, onLost: (error: Error) => void): void {
    const meta = this.#meta.get(client);
    if (meta !== undefined) meta.onLost = onLost;
  }

  /** `label` no longer fits `want`: drop every connection opened to it for `want`. */
  unfit(label: string, want: SessionWant): void {
    const set = this.#byHost.get(label);
    if (set === undefined) return;
    let dropped = 0;
    for (const client of [...set]) {
      const meta = this.#meta.get(client);
      if (meta === undefined || meta.want !== want || doomed.has(client)) continue;
      doomed.add(client);
      set.delete(client);
      dropped++;
      meta.onLost?.(
        new Error(`server ${label} is now ${mismatch(want)} (target_session_attrs=${want}): connection dropped`),
      );
    }
    if (dropped > 0) {
      log.warn("Server {host} is now {state} (target_session_attrs={want}): dropping its {count} connections", {
        host: label,
        state: mismatch(want),
        want,
        count: dropped,
      });
    }
  }
}
