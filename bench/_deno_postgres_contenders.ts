/**
 * deno-postgres contenders for the throughput bench: its own `Pool`, and
 * tidepool over {@linkcode createDenoPostgresDriver}. deno-postgres is loaded
 * at run time (JSR first, then the vendored copy in `../shared/vendor/`); when
 * neither loads the bench runs without them and says why.
 *
 * @module
 */

import { CONNECTIONS, type DbContender } from "./_db_contenders.ts";
import { loadTidepool } from "./_tidepool.ts";
import { loadDenoPostgres } from "../tests/_deno_postgres.ts";
import { createDenoPostgresDriver, type DenoPostgresClient } from "../src/drivers/deno_postgres.ts";

type DpClient = DenoPostgresClient & { queryArray(query: string, args?: unknown[]): Promise<unknown> };
interface DpPool {
  connect(): Promise<DpClient & { release(): void }>;
  end(): Promise<void>;
}

/** The contenders, or none and the reason. */
export interface DenoPostgresContenders {
  contenders: DbContender[];
  /** Where deno-postgres came from (JSR or the vendored copy), for the report's versions. */
  source?: string;
  /** Why there are none. */
  skipped?: string;
}

/**
 * Loads deno-postgres and builds its contenders.
 *
 * @param params Parameters each query sends unless `create` is given its own (none: simple protocol, one write
 *   per query).
 * @returns The contenders, or the reason there are none.
 */
export async function loadDenoPostgresContenders(params: unknown[] = []): Promise<DenoPostgresContenders> {
  const dp = await loadDenoPostgres();
  if (typeof dp === "string") return { contenders: [], skipped: dp };
  // The throughput bench passes each shape's parameters to create(); bench/deno_postgres.ts passes them here.
  const argsOf = (own: unknown[] | undefined) => {
    const p = own ?? params;
    return p.length > 0 ? p : undefined;
  };
  const denoPostgresPool: DbContender = {
    name: "deno-postgres Pool",
    async create(url, sql, params) {
      const args = argsOf(params);
      // lazy = false: it opens all CONNECTIONS up front, like the other contenders.
      const pool: DpPool = new dp.Pool(url, CONNECTIONS, false);
      const clients = await Promise.all(Array.from({ length: CONNECTIONS }, () => pool.connect()));
      for (const c of clients) c.release();
      return {
        async query() {
          const client = await pool.connect();
          try {
            return await client.queryArray(sql, args);
          } finally {
            client.release();
          }
        },
        close: () => pool.end(),
      };
    },
  };
  const tidepoolDenoPostgres: DbContender = {
    name: "tidepool over deno-postgres",
    async create(url, sql, params) {
      const args = argsOf(params);
      const { ConnectionPool } = await loadTidepool();
      const pool = new ConnectionPool<DpClient>({
        driver: createDenoPostgresDriver<DpClient>(dp.Client, url),
        minSize: CONNECTIONS,
        maxSize: CONNECTIONS,
        name: "bench-deno-postgres",
      });
      await pool.open({ wait: true });
      return { query: () => pool.query(sql, args), close: () => pool.close() };
    },
  };
  const source = dp.source.startsWith("jsr:") ? dp.source : "vendored copy in ../shared/vendor";
  return { contenders: [denoPostgresPool, tidepoolDenoPostgres], source };
}
