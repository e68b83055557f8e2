/**
 * Helpers for the `conninfo_*_test.ts` files: a login role with a chosen
 * password on the real server, the same target written in every conninfo
 * form, and every surface a password could leak into.
 *
 * @module
 */
import type pg from "pg";
import { adminQuery, adminUrl } from "./_db.ts";

/** Host and port of the test server. */
export function server(): { host: string; port: number } {
  const url = new URL(adminUrl());
  return { host: url.hostname, port: Number(url.port || 5432) };
}

/**
 * Runs `fn` with a new login role whose password is `password`; drops it after.
 *
 * @param password The role's password, any characters.
 * @param fn Receives the role name.
 * @param name The role name (default a random `tp_role_...`).
 * @example
 * ```ts
 * await withRole("p#ss", async (user) => { ... });
 * ```
 */
export async function withRole(
  password: string,
  fn: (user: string) => Promise<void>,
  name = `tp_role_${crypto.randomUUID().slice(0, 8)}`,
): Promise<void> {
  await adminQuery(`create role ${name} login password '${password.replaceAll("'", "''")}'`);
  try {
    await fn(name);
  } finally {
    await adminQuery(`drop role if exists ${name}`);
  }
}

/** A libpq key=value value in single quotes, `\` and `'` escaped. */
export function quoted(value: string): string {
  return `'${value.replaceAll("\\", "\\\\").replaceAll("'", "\\'")}'`;
}

/**
 * The same target in every conninfo form the pools accept.
 *
 * @param user Role.
 * @param password Its password (any characters; the raw-URL form is skipped when it has a `%`).
 * @param database Database name.
 * @returns `[label, conninfo]` pairs.
 * @example
 * ```ts
 * for (const [form, conninfo] of conninfoForms(user, pw, db.name)) { ... }
 * ```
 */
export function conninfoForms(
  user: string,
  password: string,
  database: string,
): [string, string | pg.ClientConfig][] {
  const { host, port } = server();
  const forms: [string, string | pg.ClientConfig][] = [
    ["URL, password percent-encoded", `postgres://${user}:${encodeURIComponent(password)}@${host}:${port}/${database}`],
    [
      "key=value, password quoted",
      `host=${host} port=${port} dbname=${database} user=${user} password=${quoted(password)}`,
    ],
    [
      "key=value, spaces around '=' and the password last",
      `  host = ${host}\tport= ${port}  dbname =${database} user=${user}   password = ${quoted(password)}  `,
    ],
    ["pg.ClientConfig", { host, port, database, user, password }],
    [
      "pg.ClientConfig with a connectionString",
      { connectionString: `postgresql://${user}:${encodeURIComponent(password)}@${host}:${port}/${database}` },
    ],
  ];
  // libpq reads '%' as an escape, so only a password without one can go in a URL as typed.
  if (!password.includes("%")) {
    forms.unshift(["URL, password as typed", `postgres://${user}:${password}@${host}:${port}/${database}`]);
  }
  return forms;
}

/**
 * Everything a password could leak into, as one string: the pool's inspect,
 * JSON and stats, the error chain's messages, stacks and inspect, and log lines.
 *
 * @param pool A pool (or anything with a summary).
 * @param error The error a call rejected with, if any.
 * @param logs Rendered log lines.
 * @returns The text to search.
 */
export function surfaces(pool: unknown, error: unknown, logs: string[]): string {
  const parts = [Deno.inspect(pool, { depth: 10 }), JSON.stringify(pool), String(pool), ...logs];
  const stats = (pool as { getStats?: () => unknown }).getStats?.();
  if (stats !== undefined) parts.push(JSON.stringify(stats));
  for (let e = error, depth = 0; e !== undefined && depth < 5; e = (e as Error).cause, depth++) {
    parts.push(String(e), (e as Error).message ?? "", (e as Error).stack ?? "", Deno.inspect(e, { depth: 10 }));
  }
  return parts.join("\n");
}

/**
 * Asserts that no form of `secret` (as is, percent-encoded, libpq-quoted) is in `text`.
 *
 * @param text Text to search.
 * @param secret The password.
 * @param where What the text is, for the failure message.
 */
export function assertNoSecret(text: string, secret: string, where: string): void {
  for (const form of new Set([secret, encodeURIComponent(secret), quoted(secret)])) {
    if (text.includes(form)) throw new Error(`${where} shows the password (${JSON.stringify(form)}):\n${text}`);
  }
}
