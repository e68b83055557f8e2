/**
 * libpq's `target_session_attrs` checks on a fresh connection, and the test
 * that tells a connection its server no longer fits (failover).
 *
 * @module
 */
import type * as pg from "./pg_types.ts";
import type { TargetSessionAttrs } from "./_conninfo.ts";

/** What one connection pass accepts: `prefer-standby` is a `standby` pass, then an `any` pass. */
export type SessionWant = Exclude<TargetSessionAttrs, "prefer-standby">;

/**
 * The passes libpq makes over the host list for `attrs`.
 *
 * @param attrs The conninfo's `target_session_attrs`.
 * @returns One or two passes, in order.
 */
export function passesFor(attrs: TargetSessionAttrs): SessionWant[] {
  return attrs === "prefer-standby" ? ["standby", "any"] : [attrs];
}

/**
 * What the server reported about itself (ParameterStatus), when it decides
 * `want` without a round trip: PostgreSQL 14+ reports `in_hot_standby` and
 * `default_transaction_read_only`. `undefined` when a query is needed.
 *
 * @param want The pass.
 * @param reported Parameters the server reported, by name.
 * @returns Whether the server fits, or `undefined` if the reports do not tell.
 */
export function fitsReported(want: SessionWant, reported: ReadonlyMap<string, string>): boolean | undefined {
  if (want === "any") return true;
  const standby = reported.get("in_hot_standby");
  if (want === "primary" || want === "standby") {
    if (standby === undefined) return undefined;
    return (standby === "on") === (want === "standby");
  }
  const readOnlyDefault = reported.get("default_transaction_read_only");
  if (standby === undefined || readOnlyDefault === undefined) return undefined;
  const readOnly = standby === "on" || readOnlyDefault === "on";
  return readOnly === (want === "read-only");
}

/**
 * Whether a fresh connection fits `want`, as libpq decides: from the server's
 * reports when it sent them, else `SHOW transaction_read_only` (read-write,
 * read-only) or `SELECT pg_is_in_recovery()` (primary, standby).
 *
 * @param client A connected client, not yet lent.
 * @param want The pass.
 * @param reported Parameters the server reported.
 * @returns `true` when the server fits.
 */
export async function sessionFits(
  client: pg.Client,
  want: SessionWant,
  reported: ReadonlyMap<string, string>,
): Promise<boolean> {
  const known = fitsReported(want, reported);
  if (known !== undefined) return known;
  if (want === "read-write" || want === "read-only") {
    const { rows } = await client.query<{ transaction_read_only: string }>("SHOW transaction_read_only");
    return (rows[0]?.transaction_read_only === "on") === (want === "read-only");
  }
  const { rows } = await client.query<{ r: boolean }>("SELECT pg_catalog.pg_is_in_recovery() AS r");
  return rows[0]?.r === (want === "standby");
}

/** What a server that stopped fitting `want` is now, for logs and errors. */
export function mismatch(want: SessionWant): string {
  switch (want) {
    case "read-write":
      return "read-only";
    case "read-only":
      return "read-write";
    case "primary":
      return "a standby";
    case "standby":
      return "not a standby";
    default:
      return "unsuitable";
  }
}
