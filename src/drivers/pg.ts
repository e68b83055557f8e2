/**
 * The node-postgres driver: the only file that knows `npm:pg`.
 *
 * @module
 */
import { abandonQueries } from "./_abandoned.ts";
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
import {
  clientConfig,
  type Conninfo,
  type ConninfoHost,
  describeConninfo,
  hostLabel,
  parseConninfo,
} from "./_conninfo.ts";
import { scrubber } from "./_scrub.ts";
import { fitsReported, mismatch, passesFor, sessionFits, type SessionWant } from "./_session_attrs.ts";
import { HostsExhaustedError } from "../errors.ts";
import { MAX_DELAY, within } from "../_util/_timers.ts";
import {
  clearStatementCache,
  DEFAULT_PREPARED_STATEMENTS,
  installStatementCache,
  type PreparedStatementsOptions,
  resolvePreparedStatements,
} from "./_statement_cache.ts";

/** Options of {@linkcode createPgDriver}. */
export interface PgDriverOptions {
  /**
   * Limit of one connection attempt on one host (TCP, TLS, auth and the
   * `target_session_attrs` check), in ms; 0 = none. A `connect_timeout` in the
   * conninfo overrides it. @default 10000
   */
  connectTimeout?: number;
  /**
   * The statement cache: parameterized statements are prepared server-side and reused per connection
   * (`max` kept, least recently used deallocated; prepared from the use after `after`); `false` turns it off.
   * See docs/statement_cache.md. @default { max: 100, after: 1 }
   */
  preparedStatements?: PreparedStatementsOptions | false;
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
  const statements = resolvePreparedStatements(options.preparedStatements) ?? DEFAULT_PREPARED_STATEMENTS;

  return {
    description: describeConninfo(info),

    async connect(signal: AbortSignal): Promise<pg.Client> {
      signal.throwIfAborted();
      const client = await connectToHosts(info, signal, connectTimeout, scrub, failover);
      Object.defineProperty(client, FORGET_SESSION, { value: forgetSession, configurable: true });
      if (statements !== false) installStatementCache(client, statements);
      return client;
    },

    async close(client: pg.Client, timeoutMs = 5_000): Promise<void> {
      const internals = client as unknown as PgInternals;
      if (internals._ended) return;
      // Statements still running or queued fail as the socket closes: that failure is the pool's doing.
      abandonQueries([internals._activeQuery, ...(internals._queryQueue ?? []), ...(internals._sentQueryQueue ?? [])]);
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
 * statements pg prepared for named queries (the statement cache's included), but pg keeps their names and would
 * skip the Parse next time ("prepared statement ... does not exist"). A clean
 * session also drops what the borrower changed on the client itself (type
 * parsers, event listeners) since the pool adopted it: see _pg_session.ts.
 */
function forgetSession(this: pg.Client): void {
  restoreBaseline(this);
  clearStatementCache(this);
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
  const reasons: Error[] = [];
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
        reasons.push(scrub(error));
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
          failover.adopt(client, label, want, () => stillFits(info, host, want, timeoutMs));
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
      reasons.push(scrub(lastError));
      tried.push(`${label}: ${scrub(lastError).message}`);
      log.debug("Skipped {host}: {reason}", { host: label, reason: scrub(lastError).message });
    }
  }
  if (info.hosts.length === 1 && info.targetSessionAttrs === "any") throw scrub(lastError);
  throw scrub(
    new HostsExhaustedError(
      `No server accepted a session (target_session_attrs=${info.targetSessionAttrs}); tried ${tried.join("; ")}`,
      hosts.map(hostLabel),
      { cause: lastError === undefined ? undefined : scrub(lastError), reasons },
    ),
  );
}

/**
 * Failover's second opinion: whether a fresh session on `host` still fits
 * `want`. A session's own `SET default_transaction_read_only` (or a 25006 it
 * brought on itself) looks like a demotion from inside that session; a new
 * session sees the server's state. `undefined` when the host cannot be asked.
 */
async function stillFits(
  info: Conninfo,
  host: ConninfoHost,
  want: SessionWant,
  timeoutMs: number,
): Promise<boolean | undefined> {
  let client: pg.Client;
  try {
    client = await connectClient(
      await clientConfig(info, host),
      new AbortController().signal,
      timeoutMs,
      hostLabel(host),
    );
  } catch {
    return undefined; // down or refusing: its connections end by themselves, nothing to decide here
  }
  try {
    return await within(
      sessionFits(client, want, reportedBy(client)),
      timeoutMs > 0 ? timeoutMs : MAX_DELAY,
      () => new Error("timeout expired"),
    );
  } catch {
    return undefined;
  } finally {
    await client.end().catch(() => {});
  }
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
 * (`target_session_attrs`). When a server stops fitting, every connection to
 * that host is marked broken (discarded on return) and reported lost through
 * `watch` (the pool closes the idle ones at once), so the next attempt goes
 * down the host list.
 *
 * Only the server's own state counts: `in_hot_standby` is the server's and no
 * session can set it, so a report of it decides at once; a
 * `default_transaction_read_only` report or a 25006 on a write may be one
 * session's `SET` (or `SET LOCAL` in a transaction), so it only asks a fresh
 * session on the same host ({@linkcode stillFits}), one check per host at a
 * time, and fails over when that session does not fit either. A new
 * connection's own check failing also decides ({@linkcode unfit}).
 */
class Failover {
  readonly #byHost = new Map<string, Set<pg.Client>>();
  readonly #meta = new WeakMap<pg.Client, { label: string; want: SessionWant; onLost?: (error: Error) => void }>();
  /** Hosts with a second-opinion check in flight. */
  readonly #checking = new Set<string>();

  adopt(client: pg.Client, label: string, want: SessionWant, check: () => Promise<boolean | undefined>): void {
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
    connection?.on("parameterStatus", (msg) => {
      if (fitsReported(want, reportedBy(client)) !== false) return;
      if (msg.parameterName === "in_hot_standby") this.unfit(label, want); // the server's state, not a session's
      else this.#suspect(label, want, check);
    });
    connection?.on("errorMessage", (msg) => {
      // read_only_sql_transaction: a write was refused, by the server's state or by this session's own setting.
      if (msg.code === "25006" && (want === "read-write" || want === "primary")) this.#suspect(label, want, check);
    });
  }

  /** The pool's `watch` callback for a connection, called when its server stops fitting. */
  watch(client: pg.Client, onLost: (error: Error) => void): void {
    const meta = this.#meta.get(client);
    if (meta !== undefined) meta.onLost = onLost;
  }

  /** A sign from one session that `label` may no longer fit: fail over only if a fresh session agrees. */
  #suspect(label: string, want: SessionWant, check: () => Promise<boolean | undefined>): void {
    if (this.#checking.has(label) || !this.#byHost.has(label)) return;
    this.#checking.add(label);
    void check().then((fits) => {
      this.#checking.delete(label);
      if (fits === false) this.unfit(label, want);
      else if (fits === true) {
        log.debug("Server {host} still fits target_session_attrs={want}: a session's own setting", {
          host: label,
          want,
        });
      }
    });
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
