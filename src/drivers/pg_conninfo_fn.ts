/**
 * `conninfo` as a function (rotating passwords, cloud IAM tokens): called for
 * every new connection, its result used for that connection only and never
 * logged. Its failures are connection errors, bounded by `connectTimeout`.
 *
 * @module
 */
import type * as pg from "./pg_types.ts";
import type { Driver } from "../driver.ts";
import { PoolError } from "../errors.ts";
import { within } from "../_util/_timers.ts";

/**
 * A `conninfo` computed for each new connection: a string or a `pg.ClientConfig`, sync or async.
 *
 * @example A password read fresh for every connection
 * ```ts
 * import { ConnectionPool, type ConninfoFunction } from "@tidepool/pg";
 * const conninfo: ConninfoFunction = async () => ({
 *   host: "db.internal",
 *   user: "app",
 *   password: await Deno.readTextFile("/run/secrets/db-password"),
 * });
 * const pool = new ConnectionPool({ conninfo });
 * ```
 */
export type ConninfoFunction = () => string | pg.ClientConfig | Promise<string | pg.ClientConfig>;

/**
 * A driver that asks `source` for the conninfo of each connection and opens
 * it with a driver made by `make` for that result (which scrubs that result's
 * password from its errors). The function and the connection attempt share
 * one `connectTimeout`. `make` is expected to share one failover state across
 * its drivers, so a host that stops fitting drops every connection to it.
 */
export function conninfoFunctionDriver(
  source: ConninfoFunction,
  options: { connectTimeout?: number },
  make: (conninfo: string | pg.ClientConfig, options: { connectTimeout?: number }) => Driver<pg.Client>,
): Driver<pg.Client> {
  const connectTimeout = options.connectTimeout ?? 10_000;
  // What does not depend on the target (status, close, query, cancel...) is the same for every result.
  const base = make({}, options);
  const drivers = new WeakMap<pg.Client, Driver<pg.Client>>();
  return {
    ...base,
    description: "postgres:// (conninfo function)",

    async connect(signal: AbortSignal): Promise<pg.Client> {
      signal.throwIfAborted();
      const started = performance.now();
      const conninfo = await callSource(source, connectTimeout, signal);
      const left = connectTimeout > 0 ? Math.max(1, connectTimeout - (performance.now() - started)) : 0;
      const driver = make(conninfo, { ...options, connectTimeout: left });
      const client = await driver.connect(signal);
      drivers.set(client, driver);
      return client;
    },

    watch(client: pg.Client, onLost: (error: Error | undefined) => void): void {
      (drivers.get(client) ?? base).watch(client, onLost);
    },

    // The host list is the result's: `base` has none.
    hostOf(client: pg.Client): string | undefined {
      return (drivers.get(client) ?? base).hostOf?.(client);
    },
  };
}

/** Calls the function within `timeoutMs` (0 = no limit) or until `signal` aborts, and checks what it returned. */
async function callSource(
  source: ConninfoFunction,
  timeoutMs: number,
  signal: AbortSignal,
): Promise<string | pg.ClientConfig> {
  let onAbort!: () => void;
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
  });
  let result: unknown;
  try {
    result = await within(
      Promise.race([Promise.resolve().then(source), aborted]),
      timeoutMs,
      () => new PoolError(`The conninfo function did not settle in ${timeoutMs} ms (connectTimeout)`),
    );
  } catch (error) {
    if (error instanceof PoolError || error === signal.reason) throw error;
    throw withheld(error);
  } finally {
    signal.removeEventListener("abort", onAbort);
  }
  if (typeof result === "string" && result !== "") return result;
  if (result !== null && typeof result === "object" && !Array.isArray(result)) return result as pg.ClientConfig;
  // Never the value itself: it may be a secret.
  throw new PoolError(
    `The conninfo function returned ${
      result === null ? "null" : Array.isArray(result) ? "an array" : result === "" ? "an empty string" : typeof result
    }, expected a connection string or a pg.ClientConfig`,
  );
}

/**
 * The error of a conninfo function that threw. Its message, stack and causes
 * may quote a token or a password, and pool errors print their causes' messages
 * (`lastErrorSuffix`) and `Deno.inspect` prints whole cause chains: so neither
 * our message nor the `cause` carries them, only the error's name and `code`.
 */
function withheld(error: unknown): PoolError {
  const name = error instanceof Error ? error.name : typeof error;
  const code = (error as { code?: unknown } | null)?.code;
  const kind = `${name}${typeof code === "string" ? ` (${code})` : ""}`;
  const cause = Object.assign(new Error("message withheld: it may hold a secret"), {
    name,
    ...(typeof code === "string" ? { code } : {}),
  });
  cause.stack = `${name}: message withheld`; // ours would point here, theirs may quote the secret
  return new PoolError(`The conninfo function threw ${kind}`, { cause });
}
