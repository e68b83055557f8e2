/**
 * node-postgres's types, as tidepool's pools lend them: `pg.Client` from every
 * pool, `pg.PoolClient` from the `pg.Pool` facade. They come from
 * `npm:@types/pg`, pinned to the `pg` version tidepool runs, so tidepool's
 * declarations read the same whatever `@types/pg` an app has, or none.
 * `mod.ts` exports them with a `Pg` prefix (`PgClient`, `PgQueryResult`, ...).
 *
 * @example
 * ```ts
 * import { ConnectionPool, type PgClient } from "@tidepool/pg";
 * const pool = new ConnectionPool({ conninfo: Deno.env.get("DATABASE_URL") });
 * const conn: PgClient = await pool.getconn();
 * await pool.putconn(conn);
 * await pool.close();
 * ```
 *
 * @module
 */
// @ts-types="@types/pg"
import type * as types from "pg";

/** node-postgres's client: what every pool with the default driver lends. */
export type Client = types.Client;
/** node-postgres's connection settings (`conninfo` as an object). */
export type ClientConfig = types.ClientConfig;
/** A client lent by `pg.Pool` (and by `toPgPool(pool).connect()`): a `Client` with `release(err?)`. */
export type PoolClient = types.PoolClient;
/** A query config: `{ text, values, rowMode, types, name }`. */
export type QueryConfig = types.QueryConfig;
/** A query config with `rowMode: "array"`. */
export type QueryArrayConfig = types.QueryArrayConfig;
/** One row as an object keyed by column name. */
export type QueryResultRow = types.QueryResultRow;
/** A statement's result with untyped rows. */
export type AnyQueryResult = types.QueryResult;
/**
 * A statement's result with rows of type `R` (objects, or arrays with `rowMode: "array"`): the shape of pg's
 * `QueryResult<R>` and `QueryArrayResult<R>`, and assignable to both.
 */
// Spelled over the non-generic alias: doc tooling flags generic aliases of npm types as private references.
// deno-lint-ignore no-explicit-any
export type QueryResult<R = any> = Omit<AnyQueryResult, "rows"> & { rows: R[] };
