/**
 * The node-postgres driver: the only file that knows `npm:pg`.
 *
 * @module
 */
import pg from "pg";
import type { ConnectionStatus, Driver, QueryResult } from "../driver.ts";
import { clientConfig, type Conninfo, describeConninfo, hostLabel, parseConninfo } from "../_conninfo.ts";
import { scrubber } from "../_scrub.ts";

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
 * @param conninfo A `postgres://` URL, a libpq `key=value` string, or a `pg.ClientConfig`.
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
  conninfo: string | pg.ClientConfig,
  options: PgDriverOptions = {},
): Driver<pg.Client> {
  // Parsed here, so that a plainly invalid conninfo is a TypeError/RangeError at construction.
  const info = parseConninfo(conninfo);
  const scrub = scrubber(info);
  // Capped at the longest timer: beyond 2^31-1 ms setTimeout would fire at once.
  const limit = (ms: number) => ms > 0 ? Math.min(Math.max(1, Math.round(ms)), 2_147_483_647) : 0;
  const connectTimeout = limit(info.connectTimeout ?? options.connectTimeout ?? 10_000);

  return {
    description: describeConninfo(info),

    async connect(signal: AbortSignal): Promise<pg.Client> {
      signal.throwIfAborted();
      return await connectToHosts(info, signal, connectTimeout, scrub);
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

    async ping(client: pg.Client): Promise<void> {
      await client.query("");
    },

    query(
      client: pg.Client,
      text: string,
      params?: unknown[],
    ): Promise<QueryResult> {
      return client.query(text, params) as Promise<QueryResult>;
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

/** Tries the hosts in order (libpq's rule); the first that connects wins. */
async function connectToHosts(
  info: Conninfo,
  signal: AbortSignal,
  timeoutMs: number,
  scrub: (error: unknown) => Error,
): Promise<pg.Client> {
  let lastError: unknown;
  for (const host of info.hosts) {
    try {
      return await connectClient(await clientConfig(info, host), signal, timeoutMs, hostLabel(host));
    } catch (error) {
      if (signal.aborted) throw signal.reason;
      lastError = error;
    }
  }
  throw scrub(lastError);
}
