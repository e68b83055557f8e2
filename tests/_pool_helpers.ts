/**
 * Helpers shared by the `pool_*_test.ts` files: backend pids, a closed TCP
 * port, a LogTape capture, and timing. Everything here talks to the real
 * server through the connection under test; nothing mocks PostgreSQL.
 *
 * @module
 */
import { configure, type LogRecord, reset } from "@logtape/logtape";
import type pg from "pg";
import { backendCount, waitFor } from "./_db.ts";

/**
 * The server process id behind a connection.
 *
 * @param conn A connected client.
 * @returns `pg_backend_pid()`.
 * @example Compare two checkouts
 * ```ts
 * const pid = await backendPid(conn);
 * ```
 */
export async function backendPid(conn: pg.Client): Promise<number> {
  const { rows } = await conn.query<{ pid: number }>("select pg_backend_pid() as pid");
  return rows[0].pid;
}

/**
 * A TCP port on 127.0.0.1 that nothing listens on (bound by the OS, then
 * released), so connecting to it is refused at once.
 *
 * @returns The port number.
 * @example A conninfo that can never connect
 * ```ts
 * const url = `postgres://u@127.0.0.1:${closedPort()}/db`;
 * ```
 */
export function closedPort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

/**
 * Rewrites a `postgres://` URL's port (e.g. to a closed one).
 *
 * @param base The URL.
 * @param port The new port.
 * @returns The rewritten URL.
 * @example
 * ```ts
 * const url = withPort(db.url, closedPort());
 * ```
 */
export function withPort(base: string, port: number): string {
  const url = new URL(base);
  url.port = String(port);
  return url.toString();
}

/** Log records captured from the `["tidepool"]` category; dispose to reset LogTape. */
export interface LogCapture extends AsyncDisposable {
  /** Every record so far, oldest first. */
  readonly records: LogRecord[];
  /** The records' rendered messages (template with values substituted). */
  messages(): string[];
}

/**
 * Configures LogTape to capture every tidepool log record at debug level and up.
 *
 * @returns The capture; `await using` resets LogTape at scope exit.
 * @example
 * ```ts
 * await using logs = await captureLogs();
 * // ... use a pool ...
 * assert(logs.messages().some((m) => m.includes("leak")));
 * ```
 */
export async function captureLogs(): Promise<LogCapture> {
  const records: LogRecord[] = [];
  await configure({
    sinks: { mem: (record: LogRecord) => records.push(record) },
    loggers: [
      { category: ["tidepool"], lowestLevel: "debug", sinks: ["mem"] },
      // Silences LogTape's own "meta logger" notice on the console.
      { category: ["logtape", "meta"], lowestLevel: "error", sinks: [] },
    ],
    reset: true,
  });
  return {
    records,
    messages: () =>
      records.map((r) => r.message.map((part) => typeof part === "string" ? part : String(part)).join("")),
    [Symbol.asyncDispose]: () => reset(),
  };
}

/**
 * How long `fn` takes, in ms, and what it settled with.
 *
 * @param fn Work to time.
 * @returns The elapsed ms and the value or the error.
 * @example
 * ```ts
 * const { ms, error } = await timed(() => pool.getconn({ timeout: 100 }));
 * ```
 */
export async function timed<T>(
  fn: () => Promise<T>,
): Promise<{ ms: number; value?: T; error?: unknown }> {
  const start = performance.now();
  try {
    const value = await fn();
    return { ms: performance.now() - start, value };
  } catch (error) {
    return { ms: performance.now() - start, error };
  }
}

/**
 * Asserts `ms` is `expected` within a relative tolerance plus a floor, the
 * house rule for time assertions on a shared, busy machine.
 *
 * @param ms Measured duration.
 * @param expected Expected duration.
 * @param options `rel` (default 0.2) and `floor` ms added above (default 150: slow CI).
 * @throws {Error} When out of range.
 * @example
 * ```ts
 * assertAbout(ms, 300);
 * ```
 */
export function assertAbout(ms: number, expected: number, options: { rel?: number; floor?: number } = {}): void {
  const { rel = 0.2, floor = 150 } = options;
  const low = expected * (1 - rel);
  const high = expected * (1 + rel) + floor;
  if (ms < low || ms > high) {
    throw new Error(
      `Expected about ${expected} ms (${Math.round(low)}..${Math.round(high)}), took ${Math.round(ms)} ms`,
    );
  }
}

/**
 * Polls until the database has exactly `n` client sessions (a closed socket
 * takes a moment to leave `pg_stat_activity`).
 *
 * @param dbName Database name.
 * @param n Expected session count.
 * @param timeout Deadline in ms (default 3000).
 * @example
 * ```ts
 * await expectBackends(db.name, 0);
 * ```
 */
export async function expectBackends(dbName: string, n: number, timeout = 3_000): Promise<void> {
  let last = -1;
  await waitFor(async () => (last = await backendCount(dbName)) === n, {
    timeout,
    message: `expected ${n} sessions on ${dbName}, last saw ${last}`,
  });
}
