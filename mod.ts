/**
 * tidepool: PostgreSQL connection pools for Deno.
 *
 * - {@linkcode ConnectionPool} and {@linkcode NullConnectionPool}: psycopg_pool's
 *   behaviour (min/max size, FIFO waiters with timeouts, lifetime and idle
 *   limits, reconnect with backoff, rollback of dirty returns, stats).
 * - {@linkcode SimpleConnectionPool}, {@linkcode ThreadedConnectionPool},
 *   {@linkcode PersistentConnectionPool} and {@linkcode AbstractConnectionPool}:
 *   psycopg2.pool's classic pools, for porting code.
 * - `pool.share()` and {@linkcode attachPool}: one pool shared by several
 *   Workers under one connection cap.
 * - {@linkcode toPgPool}: a `pg.Pool` look-alike for Kysely and Drizzle.
 * - {@linkcode createDenoPostgresDriver}: pools of deno-postgres clients.
 * - {@linkcode toPrometheus} (and `@tidepool/pg/opentelemetry`): metrics.
 *
 * Logs go through LogTape, category `["tidepool", poolName]`, silent until the
 * application configures it.
 *
 * @example Quick start
 * ```ts
 * import { ConnectionPool } from "@tidepool/pg";
 *
 * const pool = new ConnectionPool({ conninfo: Deno.env.get("DATABASE_URL"), minSize: 2 });
 * {
 *   await using conn = await pool.connection();
 *   const { rows } = await conn.query("select 1 as x");
 *   console.log(rows);
 * }
 * await pool.close();
 * ```
 *
 * @module
 */
export { ConnectionPool } from "./src/pool/connection_pool.ts";
export type { GetconnOptions, OpenOptions, PooledConnection, PutconnOptions } from "./src/pool/options.ts";
export { NullConnectionPool } from "./src/pool/null_pool.ts";
export type { ConnectionPoolOptions } from "./src/pool/options.ts";
export type { BackoffOptions } from "./src/pool/_backoff.ts";
export type { PoolStats } from "./src/stats.ts";
export type { IsolationLevel, TransactionOptions } from "./src/query/transaction.ts";
export {
  ConnectionLostError,
  HostsExhaustedError,
  PoolClosedError,
  PoolConnectError,
  PoolError,
  PoolExhaustedError,
  PoolTimeoutError,
  TooManyRequestsError,
} from "./src/errors.ts";
export type { ConnectionStatus, Driver, QueryResult } from "./src/driver.ts";
export type { RowShape } from "./src/driver.ts";
export { createPgDriver } from "./src/drivers/pg.ts";
export { type StatsSource, toPrometheus } from "./src/metrics/prometheus.ts";
export type { PgDriverOptions } from "./src/drivers/pg.ts";
export type { PreparedStatementsOptions } from "./src/drivers/_statement_cache.ts";
export type { ConninfoFunction } from "./src/drivers/pg_conninfo_fn.ts";
export type { DeadlineOptions } from "./src/query/deadline.ts";
export { AbstractConnectionPool } from "./src/classic/abstract_pool.ts";
export type { DiscardReason, PoolKey } from "./src/classic/abstract_pool.ts";
export { SimpleConnectionPool } from "./src/classic/simple_pool.ts";
export { ThreadedConnectionPool } from "./src/classic/threaded_pool.ts";
export { PersistentConnectionPool } from "./src/classic/persistent_pool.ts";
export type { ClassicPoolOptions } from "./src/classic/options.ts";
export { AttachedPool, attachPool, RemoteConnection } from "./src/workers/worker.ts";
export type { AttachedGetconnOptions, AttachOptions, TransactionStatus } from "./src/workers/worker.ts";
export type { ShareOptions } from "./src/workers/owner.ts";
export { PgPool, toPgPool } from "./src/compat/pg_pool.ts";
export type { PgConnectCallback, PgPoolClient, PgPoolOptions, PgQueryCallback } from "./src/compat/pg_pool.ts";
export { createDenoPostgresDriver } from "./src/drivers/deno_postgres.ts";
export type {
  DenoPostgresClient,
  DenoPostgresConninfo,
  DenoPostgresDriverOptions,
  DenoPostgresResult,
} from "./src/drivers/deno_postgres.ts";
export type {
  AnyQueryResult as PgAnyQueryResult,
  Client as PgClient,
  ClientConfig as PgClientConfig,
  QueryArrayConfig as PgQueryArrayConfig,
  QueryConfig as PgQueryConfig,
  QueryResult as PgQueryResult,
  QueryResultRow as PgQueryResultRow,
} from "./src/drivers/pg_types.ts";
