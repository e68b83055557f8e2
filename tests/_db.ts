/**
 * Test database helpers: one fresh database per test file (so files can run
 * with `deno test --parallel` against one server), admin queries, and
 * polling with a deadline instead of sleeping.
 *
 * Everything talks to the server named by `DATABASE_URL` through a plain
 * `pg.Client` that is always closed before the helper returns, so Deno's op
 * and resource sanitizers stay happy.
 *
 * @module
 */
import pg from "pg";

/** A database created for one test file. */
export interface TestDatabase extends AsyncDisposable {
  /** Database name, `tp_<random>`. */
  readonly name: string;
  /** `DATABASE_URL` with the path replaced by this database. */
  readonly url: string;
  /** Drop the database, terminating any sessions still in it. Idempotent. */
  drop(): Promise<void>;
}

/**
 * The admin connection string: `DATABASE_URL`.
 *
 * @returns The URL.
 * @throws {Error} If `DATABASE_URL` is unset (run through `deno task test`).
 * @example Read it
 * ```ts
 * const url = adminUrl();
 * ```
 */
export function adminUrl(): string {
  const url = Deno.env.get("DATABASE_URL");
  if (!url) {
    throw new Error(
      "DATABASE_URL is not set: run tests with `deno task test` or tools/with_postgres.ts",
    );
  }
  return url;
}

/**
 * Rewrite a postgres URL to point at another database on the same server.
 *
 * @param base A `postgres://` URL.
 * @param database Database name.
 * @returns The rewritten URL.
 * @example Point at another database
 * ```ts
 * databaseUrl("postgres://u:p@h:5432/postgres", "tp_x"); // ".../tp_x"
 * ```
 */
export function databaseUrl(base: string, database: string): string {
  const url = new URL(base);
  url.pathname = `/${encodeURIComponent(database)}`;
  return url.toString();
}

/**
 * Run one statement on the admin database and close the connection.
 *
 * @param sql SQL text with `$1`-style placeholders.
 * @param params Placeholder values.
 * @returns The result rows.
 * @example Kill every session of a database
 * ```ts
 * await adminQuery(
 *   "select pg_terminate_backend(pid) from pg_stat_activity where datname = $1",
 *   [db.name],
 * );
 * ```
 */
export async function adminQuery<R extends Record<string, unknown>>(
  sql: string,
  params: unknown[] = [],
): Promise<R[]> {
  const client = new pg.Client({ connectionString: adminUrl() });
  // A server-side kill of this short-lived session must not crash the test.
  client.on("error", () => {});
  await client.connect();
  try {
    const result = await client.query(sql, params);
    return result.rows as R[];
  } finally {
    await client.end();
  }
}

/**
 * Create a fresh, empty database for the calling test file.
 *
 * @param name Database name. @default `tp_<random>`
 * @returns The database; `drop()` it (or `await using`) when done.
 * @example One database per test file
 * ```ts
 * const db = await createTestDatabase();
 * try {
 *   // ... new ConnectionPool({ conninfo: db.url }) ...
 * } finally {
 *   await db.drop();
 * }
 * ```
 */
export async function createTestDatabase(
  name: string = `tp_${crypto.randomUUID().replaceAll("-", "").slice(0, 16)}`,
): Promise<TestDatabase> {
  const ident = quoteIdent(name);
  // template0 is never connected to, so parallel CREATEs never collide on
  // "source database is being accessed by other users".
  await adminQuery(`create database ${ident} template template0`);
  let dropped = false;
  const drop = async () => {
    if (dropped) return;
    dropped = true;
    await adminQuery(`drop database if exists ${ident} with (force)`);
  };
  return {
    name,
    url: databaseUrl(adminUrl(), name),
    drop,
    [Symbol.asyncDispose]: drop,
  };
}

/**
 * Run `fn` with a fresh database and drop it afterwards, even on failure.
 *
 * @param fn Receives the database.
 * @returns What `fn` returns.
 * @example Inside a test
 * ```ts
 * Deno.test("pool works", () =>
 *   withTestDatabase(async (db) => {
 *     // ... use db.url ...
 *   }));
 * ```
 */
export async function withTestDatabase<T>(
  fn: (db: TestDatabase) => Promise<T>,
): Promise<T> {
  const db = await createTestDatabase();
  try {
    return await fn(db);
  } finally {
    await db.drop();
  }
}

/**
 * Count server sessions connected to a database (not counting the one this
 * helper uses to ask).
 *
 * @param dbName Database name.
 * @returns Number of client backends in `pg_stat_activity`.
 * @example Assert a pool holds exactly its minSize
 * ```ts
 * await waitFor(async () => (await backendCount(db.name)) === 4);
 * ```
 */
export async function backendCount(dbName: string): Promise<number> {
  const [row] = await adminQuery<{ n: number }>(
    `select count(*)::int as n from pg_stat_activity
      where datname = $1 and pid <> pg_backend_pid()
        and backend_type = 'client backend'`,
    [dbName],
  );
  return row.n;
}

/**
 * Terminate every session connected to a database (as a server restart or
 * an admin would), returning how many were killed.
 *
 * @param dbName Database name.
 * @returns Number of sessions signalled.
 * @example Kill the pool's connections
 * ```ts
 * await terminateBackends(db.name);
 * ```
 */
export async function terminateBackends(dbName: string): Promise<number> {
  const [row] = await adminQuery<{ n: number }>(
    `select count(pg_terminate_backend(pid))::int as n from pg_stat_activity
      where datname = $1 and pid <> pg_backend_pid()
        and backend_type = 'client backend'`,
    [dbName],
  );
  return row.n;
}

/** Options for {@linkcode waitFor}. */
export interface WaitForOptions {
  /** Give up after this many ms. @default 5_000 */
  timeout?: number;
  /** Pause between checks, in ms. @default 10 */
  interval?: number;
  /** Included in the timeout error. */
  message?: string;
}

/**
 * Poll `condition` until it returns true, or reject after a deadline. Use it
 * instead of sleeping and hoping.
 *
 * @param condition Sync or async predicate.
 * @param options Deadline, polling interval and error message.
 * @returns Resolves once the condition held.
 * @throws {Error} When the deadline passes first.
 * @example Wait until the pool filled
 * ```ts
 * await waitFor(() => pool.getStats().poolSize === 4, { timeout: 2_000 });
 * ```
 */
export async function waitFor(
  condition: () => boolean | Promise<boolean>,
  options: WaitForOptions = {},
): Promise<void> {
  const { timeout = 5_000, interval = 10 } = options;
  const deadline = performance.now() + timeout;
  while (!(await condition())) {
    if (performance.now() >= deadline) {
      throw new Error(
        `Condition not met within ${timeout} ms${options.message ? `: ${options.message}` : ""}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, interval));
  }
}

function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/**
 * Runs `sql` on a client of its own (connected for this one statement) and returns its rows.
 *
 * @param config Where to connect.
 * @param sql The statement.
 * @returns Its rows.
 * @example
 * ```ts
 * const rows = await queryOnce({ connectionString: url }, "select 1 as x");
 * ```
 */
export async function queryOnce(
  config: pg.ClientConfig,
  sql: string,
): Promise<Record<string, unknown>[]> {
  const client = new pg.Client(config);
  client.on("error", () => {});
  await client.connect();
  try {
    return (await client.query(sql)).rows;
  } finally {
    await client.end();
  }
}
