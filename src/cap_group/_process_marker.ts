/**
 * A process-wide note that a cap group's slot table exists, readable without
 * any other isolate's event loop. Discovery over a `BroadcastChannel` needs a
 * member to answer; a member whose loop is blocked answers only when it
 * wakes, and a joiner that took the silence for "no table yet" would start a
 * second budget. The environment is the one state every isolate of a process
 * reads directly: the note is an environment variable holding this process's
 * id (a child process inherits the variable, not the table) and the table id.
 *
 * Used only where env access is granted already: it never prompts, and
 * without the permission discovery works as before.
 *
 * @module
 */
import { hash32 } from "./_slot_table.ts";

function variable(group: string): string {
  return `TIDEPOOL_CAPGROUP_${(hash32(group) >>> 0).toString(16)}`;
}

function allowed(name: string): boolean {
  try {
    return Deno.permissions.querySync({ name: "env", variable: name }).state === "granted";
  } catch {
    return false; // no Deno.permissions (another runtime): no note
  }
}

/** Notes that this process has a table (id `table`) for `group`. */
export function noteTable(group: string, table: number): void {
  const name = variable(group);
  if (allowed(name)) Deno.env.set(name, `${Deno.pid}:${table}`);
}

/** Whether a table for `group` was noted in this process. */
export function tableNoted(group: string): boolean {
  const name = variable(group);
  if (!allowed(name)) return false;
  return Deno.env.get(name)?.startsWith(`${Deno.pid}:`) ?? false;
}

/** Drops this process's note for `group`: the last member left (after a merge the note may name the other table). */
export function forgetTable(group: string): void {
  const name = variable(group);
  if (allowed(name) && Deno.env.get(name)?.startsWith(`${Deno.pid}:`)) Deno.env.delete(name);
}
