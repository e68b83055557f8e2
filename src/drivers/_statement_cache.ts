/**
 * The statement cache of the pg driver (option `preparedStatements`): each
 * `pg.Client` prepares the parameterized statements it runs again and again
 * under a name of its own, so PostgreSQL parses and plans them once per
 * connection (postgres.js and pgx do the same; psycopg and Npgsql after a few
 * uses). node-postgres prepares a statement when its query config has a
 * `name`; the cache picks the names.
 *
 * Only statements with parameters are cached: pg already sends those with the
 * extended protocol, which runs exactly one statement, so naming them changes
 * nothing but the Parse. A text without parameters goes by the simple
 * protocol, may hold several statements, and is left as it is.
 *
 * Correct under change: a plan that went stale (`0A000` "cached plan must not
 * change result type" after `ALTER TABLE`, `26000` after a `DEALLOCATE ALL`
 * the cache did not send) is dropped from the cache; outside a transaction
 * the statement did not run, so it is prepared again and run once more;
 * inside one the error is the caller's (its transaction is aborted) and the
 * stale name is deallocated at the next statement outside a transaction.
 *
 * @module
 */
import type * as pg from "./pg_types.ts";

/**
 * The `preparedStatements` option: how many statements each connection keeps, and after how many uses.
 *
 * @example A bigger cache, statements prepared from their first use
 * ```ts
 * import { ConnectionPool, type PreparedStatementsOptions } from "@tidepool/pg";
 * const preparedStatements: PreparedStatementsOptions = { max: 500, after: 0 };
 * const pool = new ConnectionPool({ conninfo: "postgres://localhost/app", preparedStatements });
 * ```
 */
export interface PreparedStatementsOptions {
  /** Statements kept per connection; the least recently used is deallocated past it. @default 100 */
  max?: number;
  /** Uses of the same text that run unprepared before it is prepared (0: at once). @default 1 */
  after?: number;
}

/** The option once checked: `false` when off. */
export type StatementCacheConfig = Required<PreparedStatementsOptions> | false;

/** The defaults (reasoning in docs/statement_cache.md). */
export const DEFAULT_PREPARED_STATEMENTS: Required<PreparedStatementsOptions> = { max: 100, after: 1 };

/**
 * Checks the `preparedStatements` option.
 *
 * @param value The option as given.
 * @param option The option's name in messages.
 * @returns The settings, `false` when off, or undefined when not given.
 * @throws {TypeError} Not an object or `false`, or an unknown field.
 * @throws {RangeError} `max` below 1 or `after` below 0, or not integers.
 */
export function resolvePreparedStatements(
  value: unknown,
  option = "preparedStatements",
): StatementCacheConfig | undefined {
  if (value === undefined) return undefined;
  if (value === false) return false;
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new TypeError(`Invalid option '${option}': expected { max, after } or false, got ${describe(value)}`);
  }
  const o = value as Record<string, unknown>;
  for (const key of Object.keys(o)) {
    if (key !== "max" && key !== "after") throw new TypeError(`Unknown option '${option}.${key}'`);
  }
  const field = (key: "max" | "after", min: number): number => {
    const v = o[key];
    if (v === undefined) return DEFAULT_PREPARED_STATEMENTS[key];
    if (typeof v !== "number") {
      throw new TypeError(`Invalid option '${option}.${key}': expected an integer, got ${typeof v}`);
    }
    if (!Number.isInteger(v) || v < min) {
      throw new RangeError(`Invalid option '${option}.${key}': expected an integer >= ${min}, got ${v}`);
    }
    return v;
  };
  return { max: field("max", 1), after: field("after", 0) };
}

interface PgConnectionInternals {
  parsedStatements?: Record<string, unknown>;
  submittedNamedStatements?: Record<string, unknown>;
}

interface PgClientInternals {
  pipeline?: boolean;
  _activeQuery?: unknown;
  _queryQueue?: unknown[];
  connection?: PgConnectionInternals;
}

type QueryFn = (this: pg.Client, ...args: unknown[]) => unknown;

/** The names one connection has prepared, least recently used first. */
class StatementCache {
  /** text -> statement name; a Map iterates in insertion order, so re-inserting on use keeps it an LRU. */
  readonly #named = new Map<string, string>();
  /** Uses of texts not prepared yet; cleared when it grows past a few times `max` (one-off texts). */
  readonly #seen = new Map<string, number>();
  /** Names still prepared on the server but out of the cache: deallocated at the next autocommit statement. */
  #stale: string[] = [];
  /** A statement in a transaction found the cache full: make room at the next statement outside one. */
  #starved = false;
  #counter = 0;

  constructor(readonly config: Required<PreparedStatementsOptions>) {}

  /** The name to run `text` under, or undefined to run it unnamed; `drop` gets the names to deallocate first. */
  nameFor(text: string, autocommit: boolean, drop: (name: string) => void): string | undefined {
    const hit = this.#named.get(text);
    if (hit !== undefined) {
      this.#named.delete(text);
      this.#named.set(text, hit);
      return hit;
    }
    const uses = (this.#seen.get(text) ?? 0) + 1;
    if (uses <= this.config.after) {
      if (this.#seen.size >= this.config.max * 4) this.#seen.clear();
      this.#seen.set(text, uses);
      return undefined;
    }
    // A DEALLOCATE inside a transaction could fail and abort it: only autocommit statements make room.
    if (autocommit) this.#makeRoom(drop);
    if (this.#named.size + this.#stale.length >= this.config.max) {
      this.#starved = true;
      return undefined;
    }
    this.#seen.delete(text);
    const name = `tidepool_${++this.#counter}`;
    this.#named.set(text, name);
    return name;
  }

  /**
   * Outside a transaction, before any statement (a `BEGIN` too): deallocates the stale names and, when a
   * statement in a transaction found the cache full, the least recently used one, so a connection that only
   * runs transactions keeps its cache fresh as well.
   */
  tidy(drop: (name: string) => void): void {
    if (this.#stale.length === 0 && !this.#starved) return;
    this.flushStale(drop);
    if (this.#starved && this.#named.size >= this.config.max) this.#evict(drop);
    this.#starved = false;
  }

  /** Deallocates the stale names (outside a transaction only). */
  flushStale(drop: (name: string) => void): void {
    if (this.#stale.length === 0) return;
    const names = this.#stale;
    this.#stale = [];
    for (const name of names) drop(name);
  }

  /** `name` failed as stale: out of the cache; still on the server (0A000) means it is deallocated later. */
  forget(text: string, name: string, stillPrepared: boolean): void {
    if (this.#named.get(text) === name) this.#named.delete(text);
    if (stillPrepared) this.#stale.push(name);
  }

  /** The server forgot every statement (DISCARD ALL). */
  clear(): void {
    this.#named.clear();
    this.#seen.clear();
    this.#stale = [];
  }

  #makeRoom(drop: (name: string) => void): void {
    this.flushStale(drop);
    while (this.#named.size >= this.config.max) this.#evict(drop);
  }

  #evict(drop: (name: string) => void): void {
    const [text, name] = this.#named.entries().next().value!;
    this.#named.delete(text);
    drop(name);
  }
}

const caches = new WeakMap<object, StatementCache>();

/**
 * Gives `client` a statement cache: an own `query` that names the statements
 * it prepares, and passes everything else (callbacks, submittables such as
 * cursors, named or parameterless statements) to pg's own.
 *
 * @param client A connected `pg.Client`.
 * @param config The checked option.
 */
export function installStatementCache(client: pg.Client, config: Required<PreparedStatementsOptions>): void {
  const cache = new StatementCache(config);
  caches.set(client, cache);
  const original = (client as unknown as { query: QueryFn }).query;
  Object.defineProperty(client, "query", {
    configurable: true,
    writable: true,
    value: function (this: pg.Client, ...args: unknown[]): unknown {
      const call = cacheable(args);
      if (call === undefined) {
        if (inAutocommit(this)) cache.tidy((name) => deallocate(this, original, name));
        return original.apply(this, args);
      }
      return runCached(this, original, cache, call);
    },
  });
}

/** Forgets every name of `client`'s cache (after `DISCARD ALL`; pg's own record is cleared by the caller). */
export function clearStatementCache(client: object): void {
  caches.get(client)?.clear();
}

interface CacheableCall {
  text: string;
  values: unknown[];
  /** The caller's query config (rowMode, types, ...), when it passed one. */
  config?: Record<string, unknown>;
}

/** What the cache may name: `(text, values)` or a plain `{ text, values }` config, parameters given, no callback. */
function cacheable(args: unknown[]): CacheableCall | undefined {
  const [first, second, third] = args;
  if (third !== undefined || typeof second === "function") return undefined;
  if (typeof first === "string") {
    return Array.isArray(second) && second.length > 0 ? { text: first, values: second } : undefined;
  }
  if (first === null || typeof first !== "object") return undefined;
  const config = first as Record<string, unknown>;
  // A submittable (cursor, stream), a name of the caller's, a portal read in pages or a forced protocol: pg's.
  if (
    typeof config.submit === "function" || typeof config.text !== "string" ||
    (config.name !== undefined && config.name !== null && config.name !== "") || config.rows !== undefined ||
    config.queryMode !== undefined || config.callback !== undefined
  ) return undefined;
  const values = second ?? config.values;
  return Array.isArray(values) && values.length > 0 ? { text: config.text, values, config } : undefined;
}

/**
 * True when the statement is sure to run outside a transaction block: the
 * session is idle and nothing is queued ahead of it, or it is pipelined (the
 * pool pipelines no transaction control).
 */
function inAutocommit(client: pg.Client): boolean {
  const c = client as unknown as PgClientInternals;
  if (client.getTransactionStatus() !== "I") return false;
  return c.pipeline === true || (c._activeQuery == null && !c._queryQueue?.length);
}

function runCached(client: pg.Client, original: QueryFn, cache: StatementCache, call: CacheableCall): Promise<unknown> {
  const autocommit = inAutocommit(client);
  const drop = (name: string) => deallocate(client, original, name);
  if (autocommit) cache.tidy(drop);
  const name = cache.nameFor(call.text, autocommit, drop);
  const run = (n: string | undefined): Promise<unknown> =>
    original.call(
      client,
      n === undefined && call.config === undefined
        ? call.text
        : { ...call.config, text: call.text, values: call.values, name: n },
      call.config === undefined && n === undefined ? call.values : undefined,
    ) as Promise<unknown>;
  if (name === undefined) return run(undefined);
  return run(name).catch((error: unknown) => {
    const code = staleCode(error);
    if (code === undefined) {
      if (!staleParameterTypes(error)) throw error;
      // Prepared with parameter types from before an ALTER ... TYPE: the name goes (deallocated later), and in
      // autocommit the text runs once more unprepared, analysed with today's types (a real error comes back).
      cache.forget(call.text, name, true);
      if (!autocommit) throw error;
      cache.flushStale(drop);
      return run(undefined);
    }
    // 26000: the server no longer knows the name; pg must send the Parse again if the name came back.
    if (code === "26000") forgetParsed(client, name);
    cache.forget(call.text, name, code === "0A000");
    // In a transaction the error aborted it: the caller's to handle. In autocommit the statement did not run.
    if (!autocommit) throw error;
    cache.flushStale(drop);
    return run(cache.nameFor(call.text, true, drop));
  });
}

/**
 * `0A000` or `26000` when `error` says the cached statement is stale, else undefined. `0A000` (feature not
 * supported) has other causes, some raised while the statement runs: only the plan cache's own refusal counts,
 * known by the server function that raised it (not localized, unlike the message) or the English message.
 *
 * @param error What a statement rejected with.
 * @returns The SQLSTATE of a stale statement, or undefined.
 */
export function staleCode(error: unknown): "0A000" | "26000" | undefined {
  const { code, routine, message } = (error ?? {}) as { code?: unknown; routine?: unknown; message?: unknown };
  if (code === "26000") return code;
  if (code !== "0A000") return undefined;
  return routine === "RevalidateCachedQuery" || /cached plan must not change result type/.test(String(message))
    ? code
    : undefined;
}

/**
 * Errors a named statement raises when PostgreSQL re-analyses it with the parameter types fixed when it was
 * prepared, after a column or type changed: no operator for the old type (`42883`), a value of the old type where
 * the new one is wanted (`42804`), a parameter that no longer parses as the old type (`22P02`, `22003`), or a type
 * dropped and re-created (`XX000` "cache lookup failed for type"). Unprepared, the same text may well succeed; the
 * same error from a wrong statement costs one more round trip. In autocommit a failed statement left nothing behind.
 *
 * @param error What a statement rejected with.
 * @returns Whether re-running it unprepared may give another answer.
 */
export function staleParameterTypes(error: unknown): boolean {
  const { code, message } = (error ?? {}) as { code?: unknown; message?: unknown };
  if (code === "42883" || code === "42804" || code === "22P02" || code === "22003") return true;
  return code === "XX000" && /cache lookup failed for type/.test(String(message));
}

/** Queued ahead of the caller's statement on the same client, so the two are in order and nothing is left active. */
function deallocate(client: pg.Client, original: QueryFn, name: string): void {
  (original.call(client, `DEALLOCATE ${name}`) as Promise<unknown>).then(
    () => forgetParsed(client, name),
    () => forgetParsed(client, name), // lost connection: the cache goes with the client
  );
}

function forgetParsed(client: pg.Client, name: string): void {
  const connection = (client as unknown as PgClientInternals).connection;
  if (connection?.parsedStatements) delete connection.parsedStatements[name];
  if (connection?.submittedNamedStatements) delete connection.submittedNamedStatements[name];
}

function describe(value: unknown): string {
  return value === null ? "null" : Array.isArray(value) ? "an array" : typeof value;
}
