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
 * somebody else; the check is precise enough to refuse (a regex on the
 * statement's first words, plus one for the session advisory-lock functions),
 * and each message says what to use instead.
 *
 * The check wraps the connection's `query` method once, when the connection is
 * opened, so it covers `conn.query` on a lent `pg.Client`, `pool.query` and
 * queries sent from Workers alike. It costs one regex test per statement.
 * Like any check that does not parse SQL it can be bypassed (a second
 * statement in one string, dynamic SQL in a function); it catches mistakes,
 * not malice.
 *
 * @module
 */
import type { Driver } from "../driver.ts";

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

// The statement's first words, matched where leading whitespace and comments
// end (found by a loop: a regex for them could backtrack exponentially).
const SESSION_STATEMENT = new RegExp(
  // (?=\S) stops \s+ from backtracking past the lookahead ("SET  LOCAL").
  String.raw`(?:(set)\s+(?=\S)(?!local\b|transaction\b|constraints\b)|(listen)\b|` +
    String.raw`(prepare)\s+(?=\S)(?!transaction\b)|(discard)\b|` +
    String.raw`(create)\s+(?:(?:global|local)\s+)?temp(?:orary)?\s|(declare)\s[^;]*?\bwith\s+hold\b)`,
  "iy",
);
// Anywhere in the text: session advisory locks, and set_config(..., false),
// the function form of a session SET.
// The bounded argument span keeps a text full of "set_config(" linear.
const SESSION_CALL = /\bpg_(?:try_)?advisory_lock(?:_shared)?\s*\(|\b(set_config)\s*\([^()]{0,256},\s*false\s*\)/i;
const ON_COMMIT_DROP = /\bon\s+commit\s+drop\b/i;

const ADVICE: Record<string, string> = {
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
  const kind = sessionStateKind(text);
  if (kind === undefined) return;
  throw new TypeError(`Statement refused by option 'pooler: "transaction"': ${ADVICE[kind]}`);
}

/**
 * What session state a statement leaves on its server session (`set`,
 * `listen`, `prepare`, `discard`, `create` a temp table, `declare` a WITH HOLD
 * cursor, a session advisory `lock`), or undefined. Cheap: two anchored or
 * bounded regexes, no parse. Used by the pooler check and by pipelining, which
 * must not run such a statement beside other callers' statements.
 *
 * @param text SQL text.
 * @returns The kind of session state, or undefined.
 */
export function sessionStateKind(text: string): string | undefined {
  SESSION_STATEMENT.lastIndex = statementStart(text);
  const m = SESSION_STATEMENT.exec(text);
  let kind = m?.slice(1).find((g) => g !== undefined)?.toLowerCase();
  if (kind === "create" && ON_COMMIT_DROP.test(text)) kind = undefined;
  if (kind === undefined) {
    const call = SESSION_CALL.exec(text);
    if (call) kind = call[1] === undefined ? "lock" : "set";
  }
  return kind;
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
  // Everything else goes to the driver itself (bound once: drivers may be
  // class instances with private fields), including members added later.
  const bound = new Map<PropertyKey, unknown>();
  return new Proxy(driver, {
    get(target, key) {
      if (key in overrides) return overrides[key as keyof Driver<C>];
      const value = Reflect.get(target, key);
      if (typeof value !== "function") return value;
      let fn = bound.get(key);
      if (fn === undefined) bound.set(key, fn = value.bind(target));
      return fn;
    },
  });
}

/** Index of the first character after leading whitespace and comments. */
function statementStart(text: string): number {
  let i = 0;
  while (i < text.length) {
    const c = text.charCodeAt(i);
    if (c === 32 || (c >= 9 && c <= 13)) {
      i++;
    } else if (text.startsWith("--", i)) {
      const end = text.indexOf("\n", i);
      i = end < 0 ? text.length : end + 1;
    } else if (text.startsWith("/*", i)) {
      const end = text.indexOf("*/", i + 2);
      i = end < 0 ? text.length : end + 2;
    } else {
      break;
    }
  }
  return i;
}

function describe(value: unknown): string {
  return typeof value === "string" ? JSON.stringify(value) : typeof value;
}
