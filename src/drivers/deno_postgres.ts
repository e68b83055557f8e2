/**
 * The deno-postgres driver (`jsr:@db/postgres`): the app passes deno-postgres's
 * `Client` class, so tidepool never imports it; the client is typed by the few
 * members the driver uses.
 *
 * deno-postgres does not expose the server's transaction status (it ignores
 * ReadyForQuery's status byte) and opens its sockets without TCP no-delay.
 * The driver fixes both at the socket: while the client connects, it catches
 * the socket deno-postgres opens (a `Deno.connect` call made synchronously
 * inside `client.connect()`, so nothing else can be caught), turns no-delay on,
 * and watches the protocol bytes deno-postgres itself reads and writes
 * (`_wire_watch.ts`). Status then costs no round trip, exactly as with pg.
 *
 * @module
 */
import { type ConnectionStatus, type Driver, type QueryResult, statusOfReadyByte } from "../driver.ts";
import { watchConn, WireState } from "./_wire_watch.ts";
import { scrubberOf } from "./_scrub.ts";
import { type Conninfo, parseConninfo } from "./_conninfo.ts";
import { MAX_DELAY } from "../_util/_timers.ts";
import { markAbandoned } from "./_abandoned.ts";

/** What the driver uses of a deno-postgres `Client` (jsr:@db/postgres 0.19). */
export interface DenoPostgresClient {
  /** Opens the session. */
  connect(): Promise<void>;
  /** Ends the session. */
  end(): Promise<void>;
  /** Whether the session is open, as deno-postgres sees it. */
  readonly connected: boolean;
  /** Runs a statement, rows as objects. */
  queryObject(query: string, args?: unknown[]): Promise<DenoPostgresResult>;
}

/** What the driver reads of a deno-postgres query result. */
export interface DenoPostgresResult {
  /** Rows as objects. */
  rows: unknown[];
  /** Rows affected or returned, if the command reports it. */
  rowCount?: number;
  /** The command tag's verb. */
  command?: string;
  /** Column descriptions. */
  rowDescription?: { columns: { name: string; typeOid: number }[] };
}

/** deno-postgres's connection options (`ClientOptions`), passed to `new Client()` as given. */
export type DenoPostgresConninfo = string | Record<string, unknown>;

/** Options of {@linkcode createDenoPostgresDriver}. */
export interface DenoPostgresDriverOptions {
  /** Limit of one connection attempt (TCP, TLS and auth), in ms; 0 = none. @default 10000 */
  connectTimeout?: number;
}

interface TlsHook {
  users: number;
  original: typeof Deno.startTls;
  patched: typeof Deno.startTls;
}
// Sockets being connected whose TLS stream must be watched too. deno-postgres
// upgrades to TLS after awaits, so Deno.startTls is wrapped while any connect
// is in flight: a pass-through for every socket not in this map.
const tlsTargets = new WeakMap<Deno.Conn, WireState>();
let tlsHook: TlsHook | undefined;

function holdTlsHook(): void {
  if (tlsHook === undefined) {
    const original = Deno.startTls;
    const patched: typeof Deno.startTls = (conn, options) =>
      original.call(Deno, conn, options).then((tls) => {
        const state = tlsTargets.get(conn);
        if (state !== undefined) watchConn(tls, state);
        return tls;
      });
    Deno.startTls = patched; // throws first if read-only, leaving nothing half done
    tlsHook = { users: 0, original, patched };
  }
  tlsHook.users++;
}

function releaseTlsHook(): void {
  if (tlsHook === undefined || --tlsHook.users > 0) return;
  // Someone else wrapped it meanwhile: leave theirs (ours passes through).
  if (Deno.startTls === tlsHook.patched) Deno.startTls = tlsHook.original;
  tlsHook = undefined;
}

/**
 * Creates a driver over deno-postgres's `Client` for `ConnectionPool` and the
 * classic pools. TCP only, with or without TLS (over a unix socket the driver
 * could not see the transaction status, so it refuses to connect).
 *
 * Every return is as safe as with node-postgres: the driver reads each
 * ReadyForQuery's transaction status from the wire, so an open or failed
 * transaction is rolled back and a connection still running a statement or
 * ended by the server is discarded, with no extra round trip. Its sockets use
 * TCP no-delay (deno-postgres's own do not: each of its 5 writes per
 * parameterised query then waits on delayed ACKs, ~25 queries/s on one
 * connection). While a connection is idle the driver keeps one read pending on
 * its socket, so a session the server ends is noticed at once and the pool's
 * size matches the server's, as with node-postgres. NotificationResponse
 * messages (a session that ran LISTEN) are dropped before deno-postgres sees
 * them, so they cannot break the next borrower; deno-postgres has no
 * notification API, so LISTEN through this driver receives nothing. Commands
 * without a count give `rowCount` null from `pool.query()`. Cost: one copy of
 * each chunk read from the socket.
 *
 * @param Client deno-postgres's `Client` class (`import { Client } from "jsr:@db/postgres"`).
 * @param conninfo What you would pass to `new Client()`: a URL or `ClientOptions`.
 * @param options The connect timeout.
 * @returns A {@linkcode Driver} of deno-postgres `Client` connections.
 * @throws {TypeError} `Client` is not a class, or `conninfo` is a URL deno-postgres cannot read (never echoed).
 * @example
 * ```ts ignore
 * import { Client } from "jsr:@db/postgres";
 * import { ConnectionPool, createDenoPostgresDriver } from "@tidepool/pg";
 * const pool = new ConnectionPool({
 *   driver: createDenoPostgresDriver(Client, Deno.env.get("DATABASE_URL")!),
 *   maxSize: 10,
 * });
 * await using conn = await pool.connection();
 * const { rows } = await conn.queryObject("select $1::int as x", [1]);
 * ```
 */
export function createDenoPostgresDriver<C extends DenoPostgresClient>(
  // deno-lint-ignore no-explicit-any
  Client: new (config: any) => C,
  conninfo: DenoPostgresConninfo,
  options: DenoPostgresDriverOptions = {},
): Driver<C> {
  if (typeof Client !== "function") {
    throw new TypeError(`Invalid argument 'Client': expected deno-postgres's Client class, got ${typeof Client}`);
  }
  if (typeof conninfo !== "string" && (conninfo === null || typeof conninfo !== "object")) {
    throw new TypeError(`Invalid argument 'conninfo': expected a URL or deno-postgres ClientOptions`);
  }
  conninfo = splitAsLibpq(conninfo);
  const connectTimeout = options.connectTimeout ?? 10_000;
  const scrub = scrubberFor(conninfo);
  const states = new WeakMap<C, WireState>();

  const close = async (client: C, timeoutMs = 5_000): Promise<void> => {
    const state = states.get(client);
    if (state !== undefined) closing.add(state);
    let timer: number | undefined;
    const timedOut = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, timeoutMs) as unknown as number;
    });
    try {
      await Promise.race([client.end().catch(() => {}), timedOut]);
    } finally {
      clearTimeout(timer);
      // end() may have stopped on a dead socket: make sure it is closed.
      if (state !== undefined && !state.closed) {
        try {
          state.conn?.close();
        } catch {
          // already closed
        }
      }
    }
  };

  return {
    description: describe(conninfo),

    async connect(signal: AbortSignal): Promise<C> {
      signal.throwIfAborted();
      let client: C;
      try {
        client = new Client(conninfo);
      } catch (error) {
        throw scrub(error);
      }
      const state = new WireState();
      const connecting = catchSocket(client, state);
      const abort = () => {
        state.closed = true;
        try {
          state.conn?.close();
        } catch {
          // already closed
        }
      };
      signal.addEventListener("abort", abort, { once: true });
      let timer: number | undefined;
      const timedOut = connectTimeout > 0
        ? new Promise<never>((_, reject) => {
          timer = setTimeout(() => {
            abort();
            reject(new Error(`Connection attempt timed out after ${connectTimeout} ms`));
          }, Math.min(connectTimeout, MAX_DELAY)) as unknown as number;
        })
        : undefined;
      try {
        await (timedOut ? Promise.race([connecting, timedOut]) : connecting);
        signal.throwIfAborted();
        if (state.status === undefined || state.closed || !client.connected) {
          throw new Error(
            "createDenoPostgresDriver: could not watch the connection's socket (unix sockets, connection.attempts above 1 and a TLS fallback to plaintext are not supported)",
          );
        }
      } catch (error) {
        abort();
        await connecting.catch(() => {});
        await client.end().catch(() => {});
        throw signal.aborted ? signal.reason : scrub(error);
      } finally {
        clearTimeout(timer);
        signal.removeEventListener("abort", abort);
      }
      countCalls(client, state);
      states.set(client, state);
      return client;
    },

    close,

    status(client: C): ConnectionStatus {
      const state = states.get(client);
      if (state === undefined || state.closed || state.doomed || !client.connected) return "broken";
      if (state.pending > 0 || state.calls > 0) return "active";
      return statusOfReadyByte(state.status);
    },

    async rollback(client: C): Promise<void> {
      await client.queryObject("ROLLBACK");
    },

    async ping(client: C): Promise<void> {
      await client.queryObject("SELECT 1");
    },

    async query(client: C, text: string, params?: unknown[]): Promise<QueryResult> {
      let result: DenoPostgresResult;
      try {
        result = await client.queryObject(text, params);
      } catch (error) {
        throw withCode(scrub(error));
      }
      return {
        rows: result.rows as Record<string, unknown>[],
        // deno-postgres reports NaN for commands whose tag has no count (CREATE, SET, BEGIN); pg reports null.
        rowCount: Number.isFinite(result.rowCount) ? result.rowCount! : null,
        fields: (result.rowDescription?.columns ?? []).map((c) => ({ name: c.name, dataTypeID: c.typeOid })),
        command: result.command,
      };
    },

    watch(client: C, onLost: (error: Error | undefined) => void): void {
      const state = states.get(client);
      if (state === undefined) return;
      state.onLost = (error) => onLost(error === undefined ? undefined : scrub(error));
      if (state.closed || state.doomed) state.onLost(undefined);
      // Keep a read pending on the idle socket, so a session the server ends is noticed now, not at its next use.
      else state.readAhead?.();
    },
  };
}

/**
 * Starts `client.connect()` with the socket it opens caught: deno-postgres
 * calls `Deno.connect` synchronously inside `connect()` for a TCP host, so
 * swapping `Deno.connect` for exactly that synchronous stretch catches its
 * socket and no other.
 */
function catchSocket(client: DenoPostgresClient, state: WireState): Promise<void> {
  const original = Deno.connect;
  let caught = false;
  const connect = original as (opts: Deno.ConnectOptions) => Promise<Deno.Conn>;
  const patched = ((opts: Deno.ConnectOptions) => {
    const opening = connect.call(Deno, opts);
    if (caught || (opts as { transport?: string }).transport === "unix") return opening;
    caught = true;
    return opening.then((conn) => {
      (conn as Deno.TcpConn).setNoDelay(true);
      watchConn(conn, state);
      tlsTargets.set(conn, state);
      if (state.closed) conn.close(); // aborted while the socket opened
      return conn;
    });
  }) as typeof Deno.connect;
  let connecting: Promise<void>;
  try {
    holdTlsHook();
  } catch (error) {
    return Promise.reject(cannotHook(error));
  }
  try {
    Deno.connect = patched;
  } catch (error) {
    releaseTlsHook();
    return Promise.reject(cannotHook(error));
  }
  try {
    connecting = client.connect();
  } catch (error) {
    connecting = Promise.reject(error);
  } finally {
    if (Deno.connect === patched) Deno.connect = original;
  }
  return connecting.finally(releaseTlsHook);
}

function cannotHook(cause: unknown): Error {
  return new Error(
    "createDenoPostgresDriver: cannot catch deno-postgres's socket here (Deno.connect / Deno.startTls are read-only)",
    { cause },
  );
}

/** Clients the driver is closing: statements of theirs that fail now fail because of it. */
const closing = new WeakSet<WireState>();

/**
 * deno-postgres writes a statement only after awaits, so a borrower that
 * returns the client without awaiting its query would pass for idle: the
 * client's query methods count calls until they settle.
 */
function countCalls(client: DenoPostgresClient, state: WireState): void {
  for (const name of ["queryArray", "queryObject"] as const) {
    const method = (client as unknown as Record<string, unknown>)[name];
    if (typeof method !== "function") continue;
    Object.defineProperty(client, name, {
      configurable: true,
      writable: true,
      value: function (this: unknown, ...args: unknown[]): Promise<unknown> {
        state.calls++;
        let running: Promise<unknown>;
        try {
          running = method.apply(this, args);
        } catch (error) {
          state.calls--;
          throw error;
        }
        return running.then((value) => {
          state.calls--;
          return value;
        }, (error) => {
          state.calls--;
          // Failed because the pool closed the client under it: the borrower was told with a PoolError.
          if (closing.has(state)) markAbandoned(error);
          throw error;
        });
      },
    });
  }
}

function withCode(error: Error): Error {
  // deno-postgres puts the SQLSTATE in `fields.code`; the pool (retries, Worker errors) reads `code`.
  const e = error as Error & { code?: unknown; fields?: { code?: unknown } };
  if (e.code === undefined && typeof e.fields?.code === "string") e.code = e.fields.code;
  return e;
}

/**
 * A URL whose password holds an unencoded `#`, `/` or `?` is split by
 * deno-postgres elsewhere than libpq splits it: it then reports a piece of the
 * password as the port or host, where no scrubber can find it. Such a URL is
 * read with libpq's rules and handed to deno-postgres as `ClientOptions`; one
 * that cannot be read is refused here, without echoing it.
 */
function splitAsLibpq(conninfo: DenoPostgresConninfo): DenoPostgresConninfo {
  if (typeof conninfo !== "string") return conninfo;
  let url: URL | undefined;
  try {
    url = new URL(conninfo);
  } catch {
    // read below
  }
  let info: Conninfo | undefined;
  try {
    info = parseConninfo(conninfo);
  } catch {
    // deno-postgres may know keywords tidepool does not: when the URL parses, it decides
  }
  if (url !== undefined && (info === undefined || (info.password ?? "") === decoded(url.password))) return conninfo;
  if (info === undefined || !/^postgres(ql)?:\/\//.test(conninfo)) {
    throw new TypeError(
      "Invalid argument 'conninfo': not a URL deno-postgres can read (percent-encode reserved characters such as # / ? in the password, or pass ClientOptions)",
    );
  }
  return clientOptionsOf(info);
}

/** deno-postgres `ClientOptions` for a parsed URL, refusing what they cannot express. */
function clientOptionsOf(info: Conninfo): Record<string, unknown> {
  const unsupported = (what: string) =>
    new TypeError(
      `Invalid argument 'conninfo': its password needs percent-encoding (# / ?) for deno-postgres, which then cannot take ${what}; percent-encode it or pass ClientOptions`,
    );
  if (info.hosts.length !== 1 || info.hosts[0].hostaddr !== undefined) throw unsupported("a host list or hostaddr");
  if (info.tls?.rootcert !== undefined || info.tls?.cert !== undefined || info.tls?.key !== undefined) {
    throw unsupported("certificate files");
  }
  const { application_name, ...rest } = info.config as Record<string, unknown>;
  if (Object.keys(rest).length > 0 || info.targetSessionAttrs !== "any" || info.connectTimeout !== undefined) {
    throw unsupported("parameters other than host, port, user, dbname, application_name and sslmode");
  }
  const { host, port } = info.hosts[0];
  const mode = info.tls?.mode;
  if (mode === "no-verify") throw unsupported("sslmode=no-verify");
  const options = {
    hostname: host,
    host_type: host?.startsWith("/") ? "socket" : undefined,
    port,
    user: info.user,
    password: info.password,
    database: info.database,
    applicationName: application_name,
    tls: mode === undefined
      ? undefined
      : mode === "disable"
      ? { enabled: false, enforce: false }
      : { enabled: true, enforce: mode !== "prefer" && mode !== "allow" },
  };
  // An absent field takes deno-postgres' default (PG* variables), as in a URL.
  return Object.fromEntries(Object.entries(options).filter(([, value]) => value !== undefined));
}

/** The scrubber of `_scrub.ts` fed with the password forms and names deno-postgres' conninfo holds. */
function scrubberFor(conninfo: DenoPostgresConninfo): (error: unknown) => Error {
  if (typeof conninfo !== "string") {
    return scrubberOf([conninfo.password], [conninfo.user, conninfo.hostname, conninfo.database]);
  }
  try {
    const url = new URL(conninfo);
    return scrubberOf(
      [url.password, decoded(url.password), url.searchParams.get("password")],
      [decoded(url.username), url.hostname, decoded(url.pathname.slice(1))],
    );
  } catch {
    return scrubberOf([], []); // not a URL: deno-postgres will reject it
  }
}

/** `decodeURIComponent`, or the text as is when it is not valid percent-encoding. */
function decoded(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

function describe(conninfo: DenoPostgresConninfo): string {
  if (typeof conninfo === "string") {
    try {
      const url = new URL(conninfo);
      url.password = "";
      url.search = "";
      return url.toString();
    } catch {
      return "postgres://(unparsed conninfo)";
    }
  }
  const user = typeof conninfo.user === "string" ? conninfo.user : "";
  const host = typeof conninfo.hostname === "string" ? conninfo.hostname : "localhost";
  const port = conninfo.port ?? 5432;
  const database = typeof conninfo.database === "string" ? conninfo.database : "";
  return `postgres://${user}${user ? "@" : ""}${host}:${port}/${database}`;
}
