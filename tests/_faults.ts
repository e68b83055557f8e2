/**
 * Helpers shared by the fault-injection tests (`tests/faults_*_test.ts`): a
 * proxy in front of the test server, fast pool options, a driver wrapper that
 * records connection attempts, timing assertions with tolerance, and
 * `pg_stat_activity` queries.
 *
 * @module
 */
import assert from "node:assert/strict";
import type pg from "pg";
import { createPgDriver, type Driver } from "../mod.ts";
import { adminQuery, adminUrl } from "./_db.ts";
import { type Proxy, startProxy } from "./_proxy.ts";

/** Backoff shrunk for tests: 50, 100, 200... ms, no jitter. */
export const FAST_BACKOFF: { initialDelay: number; multiplier: number; jitter: number } = {
  initialDelay: 50,
  multiplier: 2,
  jitter: 0,
};

/**
 * A proxy in front of the server named by `DATABASE_URL`.
 *
 * @returns The running proxy; close it (or `await using`).
 * @example Route a pool through it
 * ```ts
 * await using proxy = await proxyToServer();
 * const url = proxy.url(db.url);
 * ```
 */
export async function proxyToServer(): Promise<Proxy> {
  const target = new URL(adminUrl());
  return await startProxy({ targetHost: target.hostname, targetPort: Number(target.port || 5432) });
}

/** A driver that records when each connection attempt starts and how it ends. */
export interface CountingDriver<C> extends Driver<C> {
  /** performance.now() at the start of each attempt. */
  readonly attempts: number[];
  /** Attempts that failed. */
  readonly failures: number;
}

/**
 * Wraps a driver to record connection attempts (for backoff timing).
 *
 * @param inner The real driver.
 * @returns The same driver, counting.
 * @example Count a pool's attempts
 * ```ts
 * const driver = countingDriver(createPgDriver(url));
 * const pool = new ConnectionPool({ driver });
 * ```
 */
export function countingDriver<C>(inner: Driver<C>): CountingDriver<C> {
  const attempts: number[] = [];
  let failures = 0;
  return {
    ...inner,
    description: inner.description,
    attempts,
    get failures() {
      return failures;
    },
    async connect(signal: AbortSignal): Promise<C> {
      attempts.push(performance.now());
      try {
        return await inner.connect(signal);
      } catch (error) {
        failures++;
        throw error;
      }
    },
  };
}

/**
 * The pg driver for `url`, counting attempts.
 *
 * @param url Connection string.
 * @param connectTimeout Limit of one attempt, ms.
 * @returns A counting driver.
 * @example
 * ```ts
 * const driver = pgCounting(proxy.url(db.url), 500);
 * ```
 */
export function pgCounting(url: string, connectTimeout = 2_000): CountingDriver<pg.Client> {
  return countingDriver(createPgDriver(url, { connectTimeout }));
}

/**
 * Asserts `actual` is within `relative` of `expected`, plus `floor` ms (timer and scheduling slack).
 *
 * @param actual Measured ms.
 * @param expected Expected ms.
 * @param what Name for the message.
 * @param relative Relative tolerance. @default 0.2
 * @param floor Absolute slack in ms. @default 40
 * @example
 * ```ts
 * assertAbout(elapsed, 300, "getconn wait");
 * ```
 */
export function assertAbout(actual: number, expected: number, what: string, relative = 0.2, floor = 40): void {
  const slack = expected * relative + floor;
  assert.ok(
    Math.abs(actual - expected) <= slack,
    `${what}: ${actual.toFixed(1)} ms, expected ${expected} ms +/- ${slack.toFixed(0)}`,
  );
}

/**
 * Sessions of a database in a given `pg_stat_activity` state (e.g. 'idle in transaction').
 *
 * @param dbName Database name.
 * @param state The state.
 * @returns How many.
 * @example
 * ```ts
 * assert.equal(await sessionsInState(db.name, "idle in transaction"), 0);
 * ```
 */
export async function sessionsInState(dbName: string, state: string): Promise<number> {
  const [row] = await adminQuery<{ n: number }>(
    `select count(*)::int as n from pg_stat_activity
      where datname = $1 and pid <> pg_backend_pid() and backend_type = 'client backend' and state = $2`,
    [dbName, state],
  );
  return row.n;
}

/**
 * Backend pids of a database's client sessions.
 *
 * @param dbName Database name.
 * @returns The pids.
 * @example
 * ```ts
 * const pids = await backendPids(db.name);
 * ```
 */
export async function backendPids(dbName: string): Promise<number[]> {
  const rows = await adminQuery<{ pid: number }>(
    `select pid from pg_stat_activity
      where datname = $1 and pid <> pg_backend_pid() and backend_type = 'client backend' order by pid`,
    [dbName],
  );
  return rows.map((r) => r.pid);
}

/**
 * Terminates one backend.
 *
 * @param pid The backend.
 * @returns Whether it was signalled.
 * @example
 * ```ts
 * await terminate(pid);
 * ```
 */
export async function terminate(pid: number): Promise<boolean> {
  const [row] = await adminQuery<{ ok: boolean }>("select pg_terminate_backend($1) as ok", [pid]);
  return row.ok;
}

/**
 * The server-side pid of a pooled pg connection (no round trip).
 *
 * @param conn A pg client.
 * @returns Its backend pid.
 * @example
 * ```ts
 * const pid = pidOf(conn);
 * ```
 */
export function pidOf(conn: pg.Client): number {
  return (conn as unknown as { processID: number }).processID;
}

/**
 * Measures how long a promise takes to settle, and its outcome.
 *
 * @param p The promise.
 * @returns Elapsed ms and the value or error.
 * @example
 * ```ts
 * const { ms, error } = await timed(pool.getconn({ timeout: 100 }));
 * ```
 */
export async function timed<T>(p: Promise<T>): Promise<{ ms: number; value?: T; error?: unknown }> {
  const start = performance.now();
  try {
    const value = await p;
    return { ms: performance.now() - start, value };
  } catch (error) {
    return { ms: performance.now() - start, error };
  }
}
