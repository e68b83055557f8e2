/**
 * Contenders that talk to the real server (`DATABASE_URL`), each with
 * {@linkcode CONNECTIONS} connections opened before timing starts.
 *
 * @module
 */

import pg from "pg";
import postgres from "postgres";
import { loadTidepool } from "./_tidepool.ts";

/** Server connections per contender. */
export const CONNECTIONS = 8;

/** The parts of pg.PoolClient / pg.Pool we call (raw contenders use pg.Client itself). */
export interface PgClientLike {
  connect(): Promise<unknown>;
  query(text: string, params?: unknown[]): Promise<unknown>;
  end(): Promise<void>;
  release(): void;
}
interface PgPoolLike {
  connect(): Promise<PgClientLike>;
  query(text: string, params?: unknown[]): Promise<unknown>;
  end(): Promise<void>;
}

/** A ready contender: `query(task)` runs the statement once for task number `task`. */
export interface DbTarget {
  query(task: number): Promise<unknown>;
  close(): Promise<void>;
}

/** A named way to build a {@linkcode DbTarget}: `params` (if any) go with every statement. */
export interface DbContender {
  name: string;
  create(url: string, sql: string, params?: unknown[]): Promise<DbTarget>;
}

/** The database URL, or a clear error: these benches need a server. */
export function databaseUrl(): string {
  const url = Deno.env.get("DATABASE_URL");
  if (!url) {
    throw new Error(
      "DATABASE_URL is not set: run through `deno run -A tools/with_postgres.ts ...`",
    );
  }
  return url;
}

/** Opens a tidepool ConnectionPool of CONNECTIONS and waits until it is full. */
export async function openTidepool(
  url: string,
  name: string,
  order?: "fifo" | "lifo",
  pipeline?: number,
) {
  const { ConnectionPool } = await loadTidepool();
  const pool = new ConnectionPool<PgClientLike>({
    conninfo: url,
    minSize: CONNECTIONS,
    maxSize: CONNECTIONS,
    name,
    order,
    pipeline,
  });
  await pool.open({ wait: true });
  return pool;
}

/**
 * Opens a `pg.Pool` of CONNECTIONS and checks out every connection once so all
 * exist. `min` = `max`, like tidepool's minSize = maxSize: otherwise pg.Pool
 * closes clients idle for 10 s (its default), which happens between its turns
 * in a long run, and it would pay reconnects inside its timed windows.
 */
export async function openPgPool(url: string): Promise<PgPoolLike> {
  const pool: PgPoolLike = new pg.Pool({ connectionString: url, min: CONNECTIONS, max: CONNECTIONS });
  const clients = await Promise.all(Array.from({ length: CONNECTIONS }, () => pool.connect()));
  for (const c of clients) c.release();
  return pool;
}

/** tidepool's one-call path: `pool.query` = checkout, query, return. */
export const tidepoolQuery: DbContender = {
  name: "tidepool query()",
  async create(url, sql, params) {
    const pool = await openTidepool(url, "bench-query");
    return { query: () => pool.query(sql, params), close: () => pool.close() };
  },
};

/**
 * `pool.query` with `order: "fifo"` (psycopg_pool's order, tidepool's default
 * before pipelining): the longest-idle connection goes out first, so at low
 * concurrency every backend is touched in turn. The default is `"lifo"`, as in
 * pg.Pool: one server backend stays hot.
 */
export const tidepoolFifo: DbContender = {
  name: "tidepool query() fifo",
  async create(url, sql, params) {
    const pool = await openTidepool(url, "bench-fifo", "fifo");
    return { query: () => pool.query(sql, params), close: () => pool.close() };
  },
};

/** tidepool's explicit path, as most application code uses it. */
export const tidepoolGetconn: DbContender = {
  name: "tidepool getconn/putconn",
  async create(url, sql, params) {
    const pool = await openTidepool(url, "bench-getconn");
    return {
      async query() {
        const c = await pool.getconn();
        try {
          return await c.query(sql, params);
        } finally {
          await pool.putconn(c);
        }
      },
      close: () => pool.close(),
    };
  },
};

/** node-postgres' pool: `max: 8` (and `min: 8`, see openPgPool), defaults otherwise. */
export const pgPool: DbContender = {
  name: "pg.Pool",
  async create(url, sql, params) {
    const pool = await openPgPool(url);
    return { query: () => pool.query(sql, params), close: () => pool.end() };
  },
};

/**
 * postgres.js with `max: 8`, defaults otherwise. `sql.unsafe(text)` without
 * parameters uses the simple protocol, like `pg`'s `query(text)`, so both send
 * the same bytes. postgres.js pipelines queries on a connection, so it is not
 * limited to one query in flight per connection the way the pools above are.
 */
export const postgresJs: DbContender = {
  name: "postgres.js",
  async create(url, text, params) {
    const sql = postgres(url, { max: CONNECTIONS, onnotice: () => {} });
    const run = params === undefined ? () => sql.unsafe(text) : () => sql.unsafe(text, params as never[]);
    // Enough concurrent queries to make it open every connection before timing.
    await Promise.all(Array.from({ length: CONNECTIONS * 4 }, run));
    return { query: run, close: () => sql.end({ timeout: 5 }) };
  },
};

/**
 * The limit: 8 dedicated `pg.Client`s, task i always on client i % 8, no pool.
 * pg.Client queues queries itself, so tasks just fire them.
 */
export const rawClients: DbContender = {
  name: "8 raw pg.Clients",
  async create(url, sql, params) {
    const clients: pg.Client[] = Array.from(
      { length: CONNECTIONS },
      () => new pg.Client({ connectionString: url }),
    );
    await Promise.all(clients.map((c) => c.connect()));
    return {
      query: (task) => clients[task % CONNECTIONS].query(sql, params),
      close: async () => {
        await Promise.all(clients.map((c) => c.end()));
      },
    };
  },
};

/**
 * tidepool with pipelining off (`pipeline: 1`): one statement per connection at
 * a time, as before pipelining (and as every borrower gets its connection).
 */
export const tidepoolUnpipelined: DbContender = {
  name: "tidepool query() pipeline:1",
  async create(url, sql, params) {
    const pool = await openTidepool(url, "bench-unpipelined", undefined, 1);
    return { query: () => pool.query(sql, params), close: () => pool.close() };
  },
};

/** A second instance of the default tidepool: the A/A row, its ratio shows the run's noise. */
export const tidepoolQueryAA: DbContender = { ...tidepoolQuery, name: "tidepool query() A/A" };

/** tidepool pipelining deeper than the default (`pipeline: 32`). */
export const tidepoolPipelined32: DbContender = {
  name: "tidepool query() pipeline:32",
  async create(url, sql, params) {
    const pool = await openTidepool(url, "bench-pipelined-32", undefined, 32);
    return { query: () => pool.query(sql, params), close: () => pool.close() };
  },
};

/**
 * The pipelined limit: 8 dedicated `pg.Client({ pipeline: true })`, task i on
 * client i % 8, no pool: every statement is written at once, unbounded depth.
 */
export const rawPipelinedClients: DbContender = {
  name: "8 raw pipelined pg.Clients",
  async create(url, sql, params) {
    const clients: pg.Client[] = Array.from(
      { length: CONNECTIONS },
      () => new pg.Client({ connectionString: url, pipeline: true } as pg.ClientConfig),
    );
    await Promise.all(clients.map((c) => c.connect()));
    return {
      query: (task) => clients[task % CONNECTIONS].query(sql, params),
      close: async () => {
        await Promise.all(clients.map((c) => c.end()));
      },
    };
  },
};
