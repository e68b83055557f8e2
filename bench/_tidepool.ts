/**
 * Loads tidepool for the benchmarks. The import is dynamic so the harness runs
 * (and reports clearly) while parts of the library do not exist yet: `mod.ts`
 * missing, or `attachPool` not exported before the Worker feature lands.
 *
 * @module
 */

import type { Driver } from "../src/driver.ts";

/** The slice of ConnectionPool the benchmarks use. */
export interface BenchPool<C = unknown> {
  open(opts?: { wait?: boolean; timeout?: number }): Promise<void>;
  getconn(opts?: { timeout?: number }): Promise<C>;
  putconn(conn: C): Promise<void>;
  query(text: string, params?: unknown[]): Promise<unknown>;
  close(opts?: { timeout?: number }): Promise<void>;
  share?(): MessagePort;
}

/** Options the benchmarks pass; a subset of ConnectionPool's. */
export interface BenchPoolOptions<C> {
  conninfo?: string;
  driver?: Driver<C>;
  minSize: number;
  maxSize: number;
  name?: string;
  order?: "fifo" | "lifo";
  pipeline?: number;
}

type PoolCtor = new <C>(opts: BenchPoolOptions<C>) => BenchPool<C>;

/** What {@linkcode loadTidepool} found. */
export interface Tidepool {
  ConnectionPool: PoolCtor;
  /** Present once the Worker feature exists. */
  attachPool?: (port: MessagePort) => Promise<BenchPool>;
}

/**
 * Imports `../mod.ts`, or the module named by `TIDEPOOL_MODULE` (a path or URL:
 * lets you bench another checkout against the same peers). Throws with a clear
 * message if it has no ConnectionPool.
 */
export async function loadTidepool(): Promise<Tidepool> {
  const override = Deno.env.get("TIDEPOOL_MODULE");
  const specifier = override
    ? new URL(override, `file://${Deno.cwd()}/`).href
    : new URL("../mod.ts", import.meta.url).href;
  let mod: Record<string, unknown>;
  try {
    mod = await import(specifier);
  } catch (e) {
    throw new Error(`tidepool not loadable: cannot import ${specifier}: ${e}`, { cause: e });
  }
  if (typeof mod.ConnectionPool !== "function") {
    throw new Error(`tidepool not loadable: ${specifier} does not export ConnectionPool`);
  }
  return {
    ConnectionPool: mod.ConnectionPool as PoolCtor,
    attachPool: typeof mod.attachPool === "function" ? mod.attachPool as Tidepool["attachPool"] : undefined,
  };
}
