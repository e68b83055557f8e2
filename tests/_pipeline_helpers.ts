/**
 * Helpers of the pipelining tests: a pg driver that records how statements
 * share connections, and finding the backend running a statement.
 *
 * @module
 */
import type pg from "pg";
import { createPgDriver, type Driver } from "../mod.ts";
import { adminQuery } from "./_db.ts";

/** The pg driver, recording which connection each statement ran on and how many were in flight at once. */
export interface Recording extends Driver<pg.Client> {
  /** Most statements in flight on one connection at any moment. */
  maxInFlight: number;
  /** Statements sent to each connection. */
  sentTo: Map<pg.Client, number>;
  /** Per statement text: the most statements in flight on its connection while it was (itself included). */
  company: Map<string, number>;
  /** Every statement in the order sent: its connection and parameters. */
  calls: { conn: pg.Client; params?: unknown[] }[];
}

/**
 * The pg driver for `url`, recording statements; without `setPipelined` when `pipelined` is false.
 *
 * @param url Connection string.
 * @param pipelined Whether the driver offers pipelining.
 * @returns The recording driver.
 * @example
 * ```ts
 * const driver = recordingDriver(db.url);
 * const pool = new ConnectionPool({ driver, pipeline: 8 });
 * ```
 */
export function recordingDriver(url: string, pipelined = true): Recording {
  const inner = createPgDriver(url);
  // Per connection: the texts in flight, with how many of each.
  const inFlight = new Map<pg.Client, Map<string, number>>();
  const driver: Recording = {
    ...inner,
    description: inner.description,
    maxInFlight: 0,
    sentTo: new Map(),
    company: new Map(),
    calls: [],
    query(conn, text, params) {
      const now = inFlight.get(conn) ?? new Map<string, number>();
      inFlight.set(conn, now);
      now.set(text, (now.get(text) ?? 0) + 1);
      let total = 0;
      for (const n of now.values()) total += n;
      for (const t of now.keys()) driver.company.set(t, Math.max(driver.company.get(t) ?? 0, total));
      driver.maxInFlight = Math.max(driver.maxInFlight, total);
      driver.sentTo.set(conn, (driver.sentTo.get(conn) ?? 0) + 1);
      driver.calls.push({ conn, params });
      return inner.query(conn, text, params).finally(() => {
        const left = now.get(text)! - 1;
        if (left === 0) now.delete(text);
        else now.set(text, left);
      });
    },
  };
  if (!pipelined) delete driver.setPipelined;
  return driver;
}

/**
 * The backend running a statement whose text contains `marker`, if one is running now.
 *
 * @param dbName Database name.
 * @param marker A unique piece of the statement's text.
 * @returns The backend's pid, or undefined.
 * @example
 * ```ts
 * await waitFor(async () => (await running(db.name, "slow-head")) !== undefined);
 * ```
 */
export async function running(dbName: string, marker: string): Promise<number | undefined> {
  const rows = await adminQuery<{ pid: number }>(
    "select pid from pg_stat_activity where datname = $1 and state = 'active' and query like $2",
    [dbName, `%${marker}%`],
  );
  return rows[0]?.pid;
}
