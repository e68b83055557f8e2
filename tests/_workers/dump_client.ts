/**
 * A Worker for the secret tests: attaches to the owner's pool and answers
 * `getconn`/`query` with everything a user could print of the error it got
 * there (message, stack, causes, inspect), so the test can search it.
 *
 * @module
 */
/// <reference lib="deno.worker" />
import { type AttachedPool, attachPool } from "../../mod.ts";
import { type Command, serveCommands } from "./_commands.ts";

let pool: AttachedPool | undefined;

/** An error and its causes, as text. */
function dump(error: unknown): { name: string; message: string; causeMessage?: string; text: string } {
  const parts: string[] = [];
  for (let e = error, depth = 0; e !== undefined && depth < 5; e = (e as Error).cause, depth++) {
    parts.push(String(e), (e as Error).message ?? "", (e as Error).stack ?? "", Deno.inspect(e, { depth: 10 }));
  }
  const e = error as Error;
  return {
    name: e?.name,
    message: e?.message,
    causeMessage: (e?.cause as Error | undefined)?.message,
    text: parts.join("\n"),
  };
}

serveCommands({
  async attach(m: Command) {
    pool = await attachPool(m.port as MessagePort);
    return { name: pool.name };
  },
  async getconn(m: Command) {
    try {
      const conn = await pool!.getconn({ timeout: m.timeout as number });
      await pool!.putconn(conn);
      return { ok: true };
    } catch (error) {
      return dump(error);
    }
  },
  async query(m: Command) {
    try {
      await pool!.query(m.text as string);
      return { ok: true };
    } catch (error) {
      return dump(error);
    }
  },
});
