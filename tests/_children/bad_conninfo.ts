/**
 * Run by `conninfo_crash_test.ts` in a child `deno run`: tries every bad port
 * and host on every pool class, waits well past `connectTimeout`, and prints
 * one JSON line of what each call gave. A crash (an uncaught exception from a
 * socket or a timer) shows as a non-zero exit code and no JSON line.
 *
 * @module
 */
import {
  ConnectionPool,
  NullConnectionPool,
  PersistentConnectionPool,
  SimpleConnectionPool,
  ThreadedConnectionPool,
} from "../../mod.ts";
import { connectClient } from "../../src/drivers/pg.ts";

const CONNECT_TIMEOUT = 200;
const results: Record<string, string> = {};

function outcome(error: unknown): string {
  return error instanceof Error ? `${error.constructor.name}: ${error.message}` : `resolved`;
}

// Plainly invalid: refused at construction.
const invalid: [string, unknown][] = [
  ["port 70000", { host: "127.0.0.1", port: 70000 }],
  ["port -1", { host: "127.0.0.1", port: -1 }],
  ["port 'abc'", { host: "127.0.0.1", port: "abc" }],
  ["port 1.5", { host: "127.0.0.1", port: 1.5 }],
  ["port object", { host: "127.0.0.1", port: {} }],
  ["URL ?port=abc", "postgres://127.0.0.1/db?port=abc"],
  ["URL :70000", "postgres://u:pw@127.0.0.1:70000/db"],
  ["key=value port=-1", "host=127.0.0.1 port=-1"],
  ["host with NUL", { host: "a\0b", port: 5432 }],
  ["host not a string", { host: 42, port: 5432 }],
];
const classes = {
  ConnectionPool: (conninfo: unknown) =>
    new ConnectionPool({ conninfo: conninfo as string, connectTimeout: CONNECT_TIMEOUT }),
  NullConnectionPool: (conninfo: unknown) => new NullConnectionPool({ conninfo: conninfo as string }),
  SimpleConnectionPool: (conninfo: unknown) => new SimpleConnectionPool(0, 1, conninfo as string),
  ThreadedConnectionPool: (conninfo: unknown) => new ThreadedConnectionPool(0, 1, conninfo as string),
  PersistentConnectionPool: (conninfo: unknown) => new PersistentConnectionPool(0, 1, conninfo as string),
};
for (const [what, conninfo] of invalid) {
  for (const [name, make] of Object.entries(classes)) {
    try {
      const pool = make(conninfo);
      results[`${name} ${what}`] = "constructed";
      await (pool as { close?: () => Promise<void>; closeall?: () => Promise<void> }).close?.();
    } catch (error) {
      results[`${name} ${what}`] = outcome(error);
    }
  }
}

// Valid syntax, unusable at connect time: each attempt fails, nothing crashes.
const unusable: [string, Record<string, unknown>][] = [
  ["empty host, closed port", { host: "", port: 1 }],
  ["host with a space", { host: "no such host", port: 5432 }],
  ["IPv4 out of range", { host: "999.1.1.1", port: 5432 }],
  ["missing socket directory", { host: "/nonexistent-tidepool-dir", port: 5432 }],
  ["300-character host", { host: "a".repeat(300), port: 5432 }],
];
await Promise.all(unusable.map(async ([what, conninfo]) => {
  const pool = new ConnectionPool({
    conninfo,
    minSize: 1,
    connectTimeout: CONNECT_TIMEOUT,
    backoff: { initialDelay: 50, jitter: 0 },
  });
  results[`ConnectionPool ${what}`] = await pool.getconn({ timeout: 400 }).then(() => "resolved", outcome);
  await pool.close();
  const classic = new SimpleConnectionPool(0, 1, { conninfo, connectTimeout: CONNECT_TIMEOUT });
  results[`SimpleConnectionPool ${what}`] = await classic.getconn().then(() => "resolved", outcome);
  await classic.closeall();
}));

// Straight to the socket with what node throws on at once: the attempt rejects and no timer is left armed.
for (
  const [what, config] of [["port 70000", { host: "127.0.0.1", port: 70000 }], ["NUL host", { host: "a\0b" }]] as const
) {
  results[`connectClient ${what}`] = await connectClient(config, new AbortController().signal, CONNECT_TIMEOUT, what)
    .then(() => "resolved", outcome);
}

// Well past every connectTimeout: pg's timer used to fire here with nobody listening.
await new Promise((resolve) => setTimeout(resolve, CONNECT_TIMEOUT * 5));
console.log(JSON.stringify(results));
