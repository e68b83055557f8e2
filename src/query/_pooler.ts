/**
 * `pooler: "transaction"`: running behind PgBouncer, Supavisor or RDS Proxy in
 * transaction mode, where each transaction (each statement outside one) may
 * run on a different server connection, shared with other clients.
 *
 * What a session would keep is then either lost (the next statement runs on
 * another server connection) or, worse, left behind for another client (a
 * `SET search_path` or `SET ROLE` one tenant ran applies to the next one's
 * queries). So the pool refuses, before anything is sent, the statements that
 * leave such state: a `TypeError` naming the option, like any other misuse.
 * Refusing rather than warning because the failure is silent and lands on
 * somebody else; the check is precise enough to refuse (the SQL classifier
 * of ./_sql_classifier.ts, shared with pipelining, reads tokens, not
 * spellings), and each message says what to use instead.
 *
 * The check wraps the connection's `query` method once, when the connection is
 * opened, so it covers `conn.query` on a lent `pg.Client`, `pool.query` and
 * queries sent from Workers alike. It costs one lex of the statement (cached
 * for repeated texts). It cannot see inside functions: one that changes
 * session state when called passes; it catches mistakes, not malice.
 *
 * @module
 */
import { wrapDriver } from "../core/_wrap_driver.ts";
import type { Driver } from "../driver.ts";
import { type SessionStateKind, sessionStateOf } from "./_sql_classifier.ts";

/** Server-side poolers the pool knows how to work behind. */
export type Pooler = "transaction";

/**
 * Validates the `pooler` option.
 *
 * @param value The option as given.
 * @param discardAllReset Whether `reset` is `ConnectionPool.discardAll`.
 * @returns The pooler, or undefined for a direct connection.
 */
export function resolvePooler(value: unknown, discardAllReset = false): Pooler | undefined {
  if (value === undefined) return undefined;
  if (value !== "transaction") {
    throw new TypeError(`Invalid option 'pooler': expected "transaction" or undefined, got ${describe(value)}`);
  }
  if (discardAllReset) {
    throw new TypeError(
      `Invalid option 'reset': ConnectionPool.discardAll cannot be used with pooler "transaction": ` +
        `the pooler shares server connections, so there is no session of ours to discard`,
    );
  }
  return value;
}

const ADVICE: Record<SessionStateKind, string> = {
  set: "SET without LOCAL lasts for the server session, which the pooler shares: " +
    "use SET LOCAL (or set_config(name, value, true)) inside a transaction",
  listen: "LISTEN registers on a server connection the pooler lends to others, so notifications are lost: " +
    "listen on a direct connection to the server",
  prepare: "a prepared statement lives in one server session: send the statement itself",
  discard: "DISCARD would reset a server connection the pooler shares with other clients",
  create: "a temporary table lives in one server session: add ON COMMIT DROP and use it inside one transaction",
  declare: "a WITH HOLD cursor outlives the transaction on a server connection the pooler shares: " +
    "use a cursor without HOLD inside a transaction",
  lock: "a session advisory lock stays held on a server connection the pooler shares: " +
    "use pg_advisory_xact_lock (or pg_try_advisory_xact_lock) inside a transaction",
  dynamic: "it runs SQL built at run time (EXECUTE of a non-literal, a DO body in another language), which may " +
    "leave session state on a server connection the pooler shares: run it on a direct connection to the server",
  load: "LOAD loads a library into one server session the pooler shares: use session_preload_libraries",
};

/**
 * Throws when a statement would rely on, or leave behind, session state that
 * a transaction pooler cannot keep.
 *
 * @param query The first argument of `query`: SQL text or pg's query config.
 * @throws {TypeError} A named prepared statement, or a session-state statement.
 */
export function checkPoolerQuery(query: unknown): void {
  let text: unknown = query;
  if (query !== null && typeof query === "object") {
    const { name, text: sql } = query as { name?: unknown; text?: unknown };
    if (name !== undefined && name !== null && name !== "") {
      throw new TypeError(
        `Named prepared statement '${String(name)}' refused by option 'pooler: "transaction"': ` +
          `it is prepared on one server connection and the pooler runs the next use on any other. ` +
          `Drop 'name' (an unnamed statement is prepared and run in one go)`,
      );
    }
    text = sql;
  }
  if (typeof text !== "string") return;
  const kind = sessionStateOf(text);
  if (kind === undefined) return;
  throw new TypeError(`Statement refused by option 'pooler: "transaction"': ${ADVICE[kind]}`);
}

/**
 * Wraps a driver so every connection it opens refuses what a transaction
 * pooler cannot run (see {@linkcode checkPoolerQuery}).
 *
 * @param driver The driver to wrap.
 * @returns A driver with the same connections, checked.
 */
export function poolerDriver<C>(driver: Driver<C>): Driver<C> {
  // Connections whose own `query` is checked; others are checked in `query`.
  const guarded = new WeakSet<object>();
  const overrides: Partial<Driver<C>> = {
    async connect(signal) {
      const conn = await driver.connect(signal);
      const query = (conn as { query?: unknown }).query;
      if (typeof query === "function" && conn !== null && typeof conn === "object") {
        // An own property shadowing pg.Client.prototype.query, set once per connection.
        Object.defineProperty(conn, "query", {
          configurable: true,
          writable: true,
          value: function (this: unknown, ...args: unknown[]) {
            checkPoolerQuery(args[0]);
            return query.apply(this, args);
          },
        });
        guarded.add(conn);
      }
      return conn;
    },
    query(conn, text, params, shape) {
      if (!guarded.has(conn as object)) checkPoolerQuery(text);
      return driver.query(conn, text, params, shape);
    },
  };
  return wrapDriver(driver, overrides);
}

function describe(value: unknown): string {
  return typeof value === "string" ? JSON.stringify(value) : typeof value;
}
