/**
 * `@tidepool/pg/kysely`: a Kysely dialect over a tidepool pool. Queries
 * outside a transaction go through `pool.query()`, so they are pipelined and
 * prepared like any other; `db.transaction()` gets a connection of its own.
 *
 * Typed structurally: the main entry (`@tidepool/pg`) never loads Kysely,
 * and this one takes only Kysely's PostgreSQL query compiler, adapter and
 * introspector from it. They come from the Kysely this package pins, or,
 * with the `kysely` option, from the application's own module, so that the
 * program holds one Kysely of the application's version.
 *
 * @example Kysely over a tidepool pool
 * ```ts
 * import * as kysely from "kysely";
 * import { ConnectionPool } from "@tidepool/pg";
 * import { TidepoolDialect } from "@tidepool/pg/kysely";
 *
 * const pool = new ConnectionPool({ conninfo: Deno.env.get("DATABASE_URL") });
 * const db = new kysely.Kysely<{ items: { id: number; name: string } }>({
 *   dialect: new TidepoolDialect({ pool }), // or { pool, kysely }: the application's Kysely classes
 * });
 * const rows = await db.selectFrom("items").selectAll().where("id", "=", 1).execute();
 * await db.destroy(); // closes the pool
 * ```
 *
 * @module
 */
import type * as pg from "../drivers/pg_types.ts";
// The client type this entry's signatures name, documented here as in the main entry.
export type { Client as PgClient } from "../drivers/pg_types.ts";
import { PostgresAdapter, PostgresIntrospector, PostgresQueryCompiler } from "kysely";
import { pipelinable } from "../query/_pipeline.ts";

/** Kysely's PostgreSQL classes of the version this package pins: used when the `kysely` option is not given. */
const PINNED_KYSELY: KyselyPostgresParts<unknown, unknown, unknown> = {
  PostgresQueryCompiler,
  PostgresAdapter,
  PostgresIntrospector,
};

/**
 * One statement's result, as `pool.query()` gives it. *
 * @example What pool.query() returns
 * ```ts
 * import type { TidepoolQueryResult } from "@tidepool/pg/kysely";
 * const result: TidepoolQueryResult = { rows: [{ n: 1 }], rowCount: 1, command: "SELECT" };
 * ```
 */
export interface TidepoolQueryResult {
  /** The rows. */
  rows: unknown[];
  /** Rows affected or returned. */
  rowCount: number | null;
  /** The command tag's verb. */
  command?: string;
}

/**
 * What the dialect needs of a tidepool pool: a `ConnectionPool` or `NullConnectionPool` of `pg.Client`. *
 * @example A ConnectionPool fits
 * ```ts
 * import { ConnectionPool } from "@tidepool/pg";
 * import type { TidepoolKyselyPool } from "@tidepool/pg/kysely";
 * const pool: TidepoolKyselyPool = new ConnectionPool({ conninfo: "postgres://localhost/app" });
 * ```
 */
export interface TidepoolKyselyPool {
  /** `pool.query()`. */
  query(text: string, params?: unknown[]): Promise<TidepoolQueryResult>;
  /** `pool.getconn()`. */
  getconn(): Promise<pg.Client>;
  /** `pool.putconn()`. */
  putconn(conn: pg.Client): Promise<void>;
  /** `pool.close()`. */
  close(): Promise<void>;
}

/**
 * A query Kysely compiled: SQL text with `$n` placeholders and its parameters. *
 * @example Kysely's compiled query
 * ```ts
 * import type { KyselyCompiledQuery } from "@tidepool/pg/kysely";
 * const query: KyselyCompiledQuery = { sql: "select * from t where id = $1", parameters: [1] };
 * ```
 */
export interface KyselyCompiledQuery {
  /** The SQL text. */
  readonly sql: string;
  /** Its parameters, `$1` first. */
  readonly parameters: readonly unknown[];
}

/**
 * What a Kysely connection returns for one query. *
 * @example An UPDATE's result
 * ```ts
 * import type { KyselyQueryResult } from "@tidepool/pg/kysely";
 * const result: KyselyQueryResult<never> = { rows: [], numAffectedRows: 2n };
 * ```
 */
export interface KyselyQueryResult<R> {
  /** Rows affected by INSERT, UPDATE, DELETE or MERGE. */
  readonly numAffectedRows?: bigint;
  /** The rows. */
  readonly rows: R[];
}

/**
 * The classes of Kysely's PostgreSQL dialect this dialect borrows: pass `import * as kysely from "kysely"`. *
 * @example The Kysely module
 * ```ts
 * import * as kysely from "kysely";
 * import type { KyselyPostgresParts } from "@tidepool/pg/kysely";
 * const parts: KyselyPostgresParts<unknown, unknown, unknown> = kysely;
 * ```
 */
export interface KyselyPostgresParts<Compiler, Adapter, Introspector> {
  /** Kysely's `PostgresQueryCompiler`. */
  readonly PostgresQueryCompiler: new () => Compiler;
  /** Kysely's `PostgresAdapter`. */
  readonly PostgresAdapter: new () => Adapter;
  /** Kysely's `PostgresIntrospector`. */
  // deno-lint-ignore no-explicit-any
  readonly PostgresIntrospector: new (db: any) => Introspector;
}

/**
 * Options of {@linkcode TidepoolDialect}. *
 * @example Pool and Kysely
 * ```ts
 * import * as kysely from "kysely";
 * import { ConnectionPool } from "@tidepool/pg";
 * import { TidepoolDialect } from "@tidepool/pg/kysely";
 * const dialect = new TidepoolDialect({ pool: new ConnectionPool({ conninfo: "postgres://localhost/app" }), kysely });
 * ```
 */
export interface TidepoolDialectOptions<Compiler, Adapter, Introspector> {
  /** The pool the queries run on; `db.destroy()` closes it. */
  readonly pool: TidepoolKyselyPool;
  /**
   * The application's Kysely module (`import * as kysely from "kysely"`), for its PostgreSQL compiler.
   * @default the Kysely version this package pins
   */
  readonly kysely?: KyselyPostgresParts<Compiler, Adapter, Introspector>;
}

/**
 * Kysely's transaction settings. *
 * @example A serializable read-only transaction
 * ```ts
 * import type { KyselyTransactionSettings } from "@tidepool/pg/kysely";
 * const settings: KyselyTransactionSettings = { isolationLevel: "serializable", accessMode: "read only" };
 * ```
 */
export interface KyselyTransactionSettings {
  /** `read only` or `read write`. */
  readonly accessMode?: string;
  /** `serializable`, `repeatable read`, ... */
  readonly isolationLevel?: string;
}

/**
 * One Kysely connection. Outside a transaction it holds no pool connection:
 * each query goes through `pool.query()`. A transaction, or a statement that
 * leaves session state (`SET`, a temp table, several statements; what
 * `pool.query()` would run alone), pins it to a connection of its own until
 * Kysely releases it, so what `db.connection()` runs after such a statement
 * sees its session.
 */
export class TidepoolKyselyConnection {
  readonly #pool: TidepoolKyselyPool;
  #pinned: pg.Client | undefined;
  #cursors = 0;

  /**
   * Wraps the pool; made by the dialect for each connection Kysely acquires.
   *
   * @param pool The pool.
   * @example Made by the dialect
   * ```ts
   * import { ConnectionPool } from "@tidepool/pg";
   * import { TidepoolKyselyConnection } from "@tidepool/pg/kysely";
   * const conn = new TidepoolKyselyConnection(new ConnectionPool({ conninfo: "postgres://localhost/app" }));
   * ```
   */
  constructor(pool: TidepoolKyselyPool) {
    this.#pool = pool;
  }

  /**
   * Runs one compiled query.
   *
   * @param compiledQuery Kysely's compiled query.
   * @returns Its rows and, for writes, the rows affected.
   * @example Through Kysely
   * ```ts
   * import * as kysely from "kysely";
   * import { ConnectionPool } from "@tidepool/pg";
   * import { TidepoolDialect } from "@tidepool/pg/kysely";
   * const pool = new ConnectionPool({ conninfo: "postgres://localhost/app" });
   * const db = new kysely.Kysely<{ t: { id: number } }>({ dialect: new TidepoolDialect({ pool }) });
   * await db.selectFrom("t").selectAll().execute();
   * ```
   */
  async executeQuery<R>(compiledQuery: KyselyCompiledQuery): Promise<KyselyQueryResult<R>> {
    const { sql, parameters } = compiledQuery;
    const params = parameters as unknown[];
    if (this.#pinned === undefined && !pipelinable(sql)) await this.pin();
    const result = this.#pinned === undefined
      ? await this.#pool.query(sql, params)
      : await this.#pinned.query(sql, params) as unknown as TidepoolQueryResult;
    return toKysely<R>(result);
  }

  /**
   * Streams a query's rows `chunkSize` at a time through a server-side cursor
   * (`DECLARE ... NO SCROLL CURSOR`, `FETCH`), inside the transaction when in
   * one, else in a transaction of its own (rolled back at the end) on a pinned connection.
   *
   * @param compiledQuery Kysely's compiled query.
   * @param chunkSize Rows per chunk.
   * @returns The chunks.
   * @example Through Kysely
   * ```ts
   * import * as kysely from "kysely";
   * import { ConnectionPool } from "@tidepool/pg";
   * import { TidepoolDialect } from "@tidepool/pg/kysely";
   * const pool = new ConnectionPool({ conninfo: "postgres://localhost/app" });
   * const db = new kysely.Kysely<{ t: { id: number } }>({ dialect: new TidepoolDialect({ pool }) });
   * for await (const row of db.selectFrom("t").selectAll().stream(100)) console.log(row.id);
   * ```
   */
  async *streamQuery<R>(compiledQuery: KyselyCompiledQuery, chunkSize = 100): AsyncIterableIterator<
    KyselyQueryResult<R>
  > {
    if (!Number.isInteger(chunkSize) || chunkSize < 1) {
      throw new RangeError(`Invalid argument 'chunkSize': expected an integer >= 1, got ${chunkSize}`);
    }
    const conn = await this.pin();
    // Outside a transaction (a fresh connection, or one pinned by session state in `db.connection()`): one of its own.
    const own = conn.getTransactionStatus() === "I";
    const cursor = `tidepool_cursor_${++this.#cursors}`;
    let open = false;
    try {
      // A cursor lives in a transaction: outside one, a transaction of its own that changes nothing.
      if (own) await conn.query("BEGIN");
      await conn.query(`DECLARE ${cursor} NO SCROLL CURSOR FOR ${compiledQuery.sql}`, [
        ...compiledQuery.parameters,
      ]);
      open = true;
      while (true) {
        const { rows } = await conn.query(`FETCH ${chunkSize} FROM ${cursor}`);
        if (rows.length > 0) yield { rows: rows as R[] };
        if (rows.length < chunkSize) break;
      }
    } finally {
      if (own) {
        // ROLLBACK closes the cursor too; the connection goes back when Kysely releases this one.
        await conn.query("ROLLBACK").catch(() => {});
      } else if (open) {
        await conn.query(`CLOSE ${cursor}`).catch(() => {});
      }
    }
  }

  /**
   * The connection this one runs on from now until it is released (transactions, session state).
   *
   * @returns The pinned `pg.Client`.
   * @example Pinned by a transaction
   * ```ts
   * import { ConnectionPool } from "@tidepool/pg";
   * import { TidepoolKyselyConnection } from "@tidepool/pg/kysely";
   * const conn = new TidepoolKyselyConnection(new ConnectionPool({ conninfo: "postgres://localhost/app" }));
   * const client = await conn.pin();
   * await conn.release();
   * ```
   */
  async pin(): Promise<pg.Client> {
    return this.#pinned ??= await this.#pool.getconn();
  }

  /**
   * Gives the pinned connection back to the pool, if any.
   *
   * @example Released by the dialect
   * ```ts
   * import { ConnectionPool } from "@tidepool/pg";
   * import { TidepoolKyselyConnection } from "@tidepool/pg/kysely";
   * const conn = new TidepoolKyselyConnection(new ConnectionPool({ conninfo: "postgres://localhost/app" }));
   * await conn.release();
   * ```
   */
  async release(): Promise<void> {
    const conn = this.#pinned;
    this.#pinned = undefined;
    if (conn !== undefined) await this.#pool.putconn(conn);
  }
}

/**
 * Kysely's Driver over the pool: see {@linkcode TidepoolDialect}. *
 * @example Made by the dialect
 * ```ts
 * import * as kysely from "kysely";
 * import { ConnectionPool } from "@tidepool/pg";
 * import { TidepoolDialect } from "@tidepool/pg/kysely";
 * const dialect = new TidepoolDialect({ pool: new ConnectionPool({ conninfo: "postgres://localhost/app" }), kysely });
 * const driver = dialect.createDriver();
 * ```
 */
export class TidepoolKyselyDriver {
  readonly #pool: TidepoolKyselyPool;

  /**
   * Wraps the pool; made by the dialect for each connection Kysely acquires.
   *
   * @param pool The pool.
   * @example Made by the dialect
   * ```ts
   * import { ConnectionPool } from "@tidepool/pg";
   * import { TidepoolKyselyDriver } from "@tidepool/pg/kysely";
   * const driver = new TidepoolKyselyDriver(new ConnectionPool({ conninfo: "postgres://localhost/app" }));
   * ```
   */
  constructor(pool: TidepoolKyselyPool) {
    this.#pool = pool;
  }

  /** Nothing to do: the pool opens on first use. */
  async init(): Promise<void> {}

  /**
   * A connection that borrows from the pool only when it must.
   *
   * @returns The connection.
   */
  acquireConnection(): Promise<TidepoolKyselyConnection> {
    return Promise.resolve(new TidepoolKyselyConnection(this.#pool));
  }

  /**
   * Pins a connection and starts the transaction.
   *
   * @param connection The Kysely connection.
   * @param settings Isolation level and access mode.
   */
  async beginTransaction(connection: TidepoolKyselyConnection, settings: KyselyTransactionSettings): Promise<void> {
    let sql = "BEGIN";
    if (settings.isolationLevel || settings.accessMode) {
      sql = "START TRANSACTION";
      if (settings.isolationLevel) sql += ` ISOLATION LEVEL ${settings.isolationLevel}`;
      if (settings.accessMode) sql += ` ${settings.accessMode}`;
    }
    await (await connection.pin()).query(sql);
  }

  /**
   * Commits; rejects when the transaction had failed (PostgreSQL answers COMMIT with ROLLBACK then).
   *
   * @param connection The Kysely connection.
   * @throws {Error} The transaction was aborted by an earlier error and rolled back.
   */
  async commitTransaction(connection: TidepoolKyselyConnection): Promise<void> {
    const result = await (await connection.pin()).query("COMMIT") as unknown as TidepoolQueryResult;
    if (result.command === "ROLLBACK") {
      throw new Error("Transaction rolled back on COMMIT: an earlier statement in it failed");
    }
  }

  /**
   * Rolls back.
   *
   * @param connection The Kysely connection.
   */
  async rollbackTransaction(connection: TidepoolKyselyConnection): Promise<void> {
    await (await connection.pin()).query("ROLLBACK");
  }

  /**
   * `SAVEPOINT name`.
   *
   * @param connection The Kysely connection.
   * @param name The savepoint's name.
   */
  async savepoint(connection: TidepoolKyselyConnection, name: string): Promise<void> {
    await this.#savepointCommand(connection, "SAVEPOINT", name);
  }

  /**
   * `ROLLBACK TO SAVEPOINT name`.
   *
   * @param connection The Kysely connection.
   * @param name The savepoint's name.
   */
  async rollbackToSavepoint(connection: TidepoolKyselyConnection, name: string): Promise<void> {
    await this.#savepointCommand(connection, "ROLLBACK TO SAVEPOINT", name);
  }

  /**
   * `RELEASE SAVEPOINT name`.
   *
   * @param connection The Kysely connection.
   * @param name The savepoint's name.
   */
  async releaseSavepoint(connection: TidepoolKyselyConnection, name: string): Promise<void> {
    await this.#savepointCommand(connection, "RELEASE SAVEPOINT", name);
  }

  /**
   * Gives a pinned connection back to the pool (its return path rolls back an open transaction).
   *
   * @param connection The Kysely connection.
   */
  async releaseConnection(connection: TidepoolKyselyConnection): Promise<void> {
    await connection.release();
  }

  /** Closes the pool (`db.destroy()`). */
  async destroy(): Promise<void> {
    await this.#pool.close();
  }

  async #savepointCommand(
    connection: TidepoolKyselyConnection,
    command: string,
    name: string,
  ): Promise<void> {
    // Quoted as an identifier, as Kysely's own PostgreSQL driver does through its compiler.
    await (await connection.pin()).query(`${command} "${name.replaceAll('"', '""')}"`);
  }
}

/**
 * Kysely dialect over a tidepool `ConnectionPool`: queries outside
 * a transaction go through `pool.query()` (pipelined, prepared), each
 * `db.transaction()` runs on a connection of its own, and `db.destroy()`
 * closes the pool.
 *
 * @example Kysely over a tidepool pool
 * ```ts
 * import * as kysely from "kysely";
 * import { ConnectionPool } from "@tidepool/pg";
 * import { TidepoolDialect } from "@tidepool/pg/kysely";
 *
 * const pool = new ConnectionPool({ conninfo: Deno.env.get("DATABASE_URL") });
 * const db = new kysely.Kysely<{ items: { id: number; name: string } }>({
 *   dialect: new TidepoolDialect({ pool }),
 * });
 * await db.transaction().execute(async (trx) => {
 *   await trx.insertInto("items").values({ id: 1, name: "a" }).execute();
 * });
 * await db.destroy();
 * ```
 */
// The defaults are `any`, not Kysely's classes: tidepool's types never name Kysely's (structural typing), and
// Kysely's Dialect interface accepts what `any` gives it.
// deno-lint-ignore no-explicit-any
export class TidepoolDialect<Compiler = any, Adapter = any, Introspector = any> {
  readonly #pool: TidepoolKyselyPool;
  readonly #kysely: KyselyPostgresParts<Compiler, Adapter, Introspector>;

  /**
   * Creates the dialect.
   *
   * @param options The pool, and optionally the application's Kysely module.
   * @throws {TypeError} `pool` is missing or `kysely` lacks Kysely's PostgreSQL classes.
   */
  constructor(options: TidepoolDialectOptions<Compiler, Adapter, Introspector>) {
    const { pool } = options ?? {};
    for (const key of Object.keys(options ?? {})) {
      if (key !== "pool" && key !== "kysely") throw new TypeError(`Unknown TidepoolDialect option '${key}'`);
    }
    const kysely = options?.kysely ??
      (PINNED_KYSELY as unknown as KyselyPostgresParts<Compiler, Adapter, Introspector>);
    if (
      pool === undefined || pool === null || typeof pool.query !== "function" || typeof pool.getconn !== "function" ||
      typeof pool.putconn !== "function" || typeof pool.close !== "function"
    ) {
      throw new TypeError("Invalid option 'pool': expected a ConnectionPool");
    }
    for (const name of ["PostgresQueryCompiler", "PostgresAdapter", "PostgresIntrospector"] as const) {
      if (typeof kysely?.[name] !== "function") {
        throw new TypeError(
          `Invalid option 'kysely': expected the Kysely module (import * as kysely from "kysely"), missing ${name}`,
        );
      }
    }
    this.#pool = pool;
    this.#kysely = kysely;
  }

  /**
   * Kysely's driver over the pool.
   *
   * @returns The driver.
   */
  createDriver(): TidepoolKyselyDriver {
    return new TidepoolKyselyDriver(this.#pool);
  }

  /**
   * Kysely's PostgreSQL query compiler.
   *
   * @returns A compiler.
   */
  createQueryCompiler(): Compiler {
    return new this.#kysely.PostgresQueryCompiler();
  }

  /**
   * Kysely's PostgreSQL adapter.
   *
   * @returns An adapter.
   */
  createAdapter(): Adapter {
    return new this.#kysely.PostgresAdapter();
  }

  /**
   * Kysely's PostgreSQL introspector.
   *
   * @param db The Kysely instance.
   * @returns An introspector.
   */
  createIntrospector(db: unknown): Introspector {
    return new this.#kysely.PostgresIntrospector(db);
  }
}

function toKysely<R>(result: TidepoolQueryResult): KyselyQueryResult<R> {
  const { command, rowCount } = result;
  const writes = command === "INSERT" || command === "UPDATE" || command === "DELETE" || command === "MERGE";
  return {
    numAffectedRows: writes && rowCount !== null ? BigInt(rowCount) : undefined,
    rows: (result.rows ?? []) as R[],
  };
}
