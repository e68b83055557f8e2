/**
 * The node-postgres driver: the only file that knows `npm:pg`.
 *
 * @module
 */
import pg from "pg";
import process from "node:process";
import { type ConnectionStatus, type Driver, FORGET_SESSION, type QueryResult } from "../driver.ts";
import { sendCancelRequest } from "./_pg_cancel.ts";
import { type ConninfoFunction, conninfoFunctionDriver } from "./pg_conninfo_fn.ts";

/** Options of {@linkcode createPgDriver}. */
export interface PgDriverOptions {
  /** Limit of one connection attempt (TCP, TLS and auth), in ms; 0 = none. @default 10000 */
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
  };
}

/**
 * Clients whose server sent a FATAL/PANIC error: the session is ending. pg
 * hands that error to the running query before the socket's `end` event, so
 * a borrower that returns the connection from its `catch` would otherwise
 * give back a connection that still looks idle.
 */
const doomed = new WeakSet<pg.Client>();
// Session-ending SQLSTATEs, for servers whose severity text is localized.
const SESSION_ENDING = new Set(["57P01", "57P02", "57P03", "57P05", "25P03"]);

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
 * console.log(driver.description); // "postgres://app@localhost/app"
 * ```
 */
export function createPgDriver(
  conninfo: string | pg.ClientConfig | ConninfoFunction,
  options: PgDriverOptions = {},
): Driver<pg.Client> {
  if (typeof conninfo === "function") return conninfoFunctionDriver(conninfo, options, createPgDriver);
  const config: pg.ClientConfig = typeof conninfo === "string" ? { connectionString: conninfo } : { ...conninfo };
  const secrets = collectSecrets(conninfo);
  const scrub = (error: unknown): Error => scrubError(error, secrets);
  const connectTimeout = options.connectTimeout ?? 10_000;
  if (connectTimeout > 0) {
    // Capped at the longest timer: beyond 2^31-1 ms pg's setTimeout would fire at once.
    config.connectionTimeoutMillis = Math.min(Math.max(1, Math.round(connectTimeout)), 2_147_483_647);
  }

  return {
    description: describe(conninfo),

    async connect(signal: AbortSignal): Promise<pg.Client> {
      signal.throwIfAborted();
      const client = new pg.Client(config);
      // An 'error' event with no listener would crash the process.
      client.on("error", () => {});
      (client as unknown as PgInternals).connection?.on("errorMessage", (msg) => {
        if (msg.severity === "FATAL" || msg.severity === "PANIC" || SESSION_ENDING.has(msg.code ?? "")) {
          doomed.add(client);
        }
      });
      const abort = () => (client as unknown as PgInternals).connection?.stream?.destroy();
      signal.addEventListener("abort", abort, { once: true });
      try {
        await client.connect();
      } catch (error) {
        throw scrub(error);
      } finally {
        signal.removeEventListener("abort", abort);
      }
      if (signal.aborted) {
        await client.end().catch(() => {});
        throw signal.reason;
      }
      Object.defineProperty(client, FORGET_SESSION, { value: forgetPreparedStatements, configurable: true });
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
      switch (client.getTransactionStatus()) {
        case "I":
          return "idle";
        case "T":
          return "intrans";
        case "E":
          return "inerror";
        default:
          return "broken";
      }
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
    ): Promise<QueryResult> {
      if ((client as unknown as { pipeline: boolean }).pipeline) corkBehindOthers(client);
      return client.query(text, params) as Promise<QueryResult>;
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
 * skip the Parse next time ("prepared statement ... does not exist").
 */
function forgetPreparedStatements(this: pg.Client): void {
  const cache = (this as unknown as { connection?: { parsedStatements?: Record<string, unknown> } }).connection
    ?.parsedStatements;
  if (cache !== undefined) {
    for (const name of Object.keys(cache)) delete cache[name];
  }
}

function collectSecrets(conninfo: string | pg.ClientConfig): string[] {
  const secrets: string[] = [];
  const add = (s: unknown) => {
    if (typeof s === "string" && s.length > 0) {
      secrets.push(s, encodeURIComponent(s));
    }
  };
  if (typeof conninfo === "string") {
    try {
      const url = new URL(conninfo);
      add(decodeURIComponent(url.password));
      add(url.password);
    } catch {
      const m = /(?:^|\s)password\s*=\s*('(?:[^'\\]|\\.)*'|\S+)/.exec(conninfo);
      if (m) add(m[1].replace(/^'|'$/g, ""));
    }
  } else {
    if (typeof conninfo.password === "string") add(conninfo.password);
    if (typeof conninfo.connectionString === "string") {
      add(collectSecrets(conninfo.connectionString)[0]);
    }
  }
  return [...new Set(secrets)].sort((a, b) => b.length - a.length);
}

/** Replaces every occurrence of a secret in an error's message and stack. */
function scrubError(error: unknown, secrets: string[]): Error {
  const err = error instanceof Error ? error : new Error(String(error));
  for (const secret of secrets) {
    if (err.message.includes(secret)) {
      err.message = err.message.split(secret).join("***");
    }
    if (err.stack?.includes(secret)) {
      err.stack = err.stack.split(secret).join("***");
    }
  }
  return err;
}

/** The target as `postgres://user@host:port/db`, never with the password. */
function describe(conninfo: string | pg.ClientConfig): string {
  if (typeof conninfo === "string") {
    try {
      const url = new URL(conninfo);
      url.password = "";
      url.search = "";
      return url.toString();
    } catch {
      return conninfo.replace(
        /(^|\s)password\s*=\s*('(?:[^'\\]|\\.)*'|\S+)/g,
        "$1password=***",
      );
    }
  }
  if (conninfo.connectionString) return describe(conninfo.connectionString);
  const user = conninfo.user ?? "";
  return `postgres://${user}${user ? "@" : ""}${conninfo.host ?? "localhost"}:${conninfo.port ?? 5432}/${
    conninfo.database ?? ""
  }`;
}
