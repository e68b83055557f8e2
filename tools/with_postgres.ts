/**
 * Run a command with `DATABASE_URL` pointing at a PostgreSQL server.
 *
 * ```sh
 * deno run -A tools/with_postgres.ts [--port=N] <cmd...>
 * ```
 *
 * If `DATABASE_URL` is set, the command runs against that server. Otherwise an
 * embedded PostgreSQL 18 is booted in a fresh temp dir on a free port (or
 * `--port=N`), and always stopped and removed afterwards: on success, failure,
 * and SIGINT/SIGTERM/SIGHUP (forwarded to the command first). Exits with the
 * command's exit code. Set `TIDEPOOL_PG_LOG=1` to see the server's log.
 *
 * Works in a fresh clone (it runs `deno install` when the binaries are not in
 * `node_modules` yet) and as root under a 0700 directory (see `_binaries.ts`).
 *
 * @module
 */

import { EmbeddedStartError, startEmbedded } from "./_embedded.ts";

const SIGNALS: Deno.Signal[] = ["SIGINT", "SIGTERM", "SIGHUP"];

/**
 * Run `cmd` with `DATABASE_URL` set, booting an embedded server if needed.
 *
 * @param args `[--port=N] <cmd...>`
 * @returns The exit code to exit with.
 * @example Run the tests
 * ```ts
 * Deno.exit(await main(["deno", "test", "-A", "tests/"]));
 * ```
 */
export async function main(args: string[]): Promise<number> {
  let port: number | undefined;
  if (args[0]?.startsWith("--port=")) {
    port = Number(args.shift()!.slice("--port=".length));
  }
  if (args[0] === "--") args.shift();
  if (args.length === 0) {
    console.error(
      "usage: deno run -A tools/with_postgres.ts [--port=N] <cmd...>",
    );
    return 2;
  }
  const given = Deno.env.get("DATABASE_URL");
  if (given) return await run(args, given);

  // A signal during boot must not leave a half-started server behind: note it,
  // finish booting, then clean up instead of running the command.
  let early: Deno.Signal | undefined;
  const onEarly = (signal: Deno.Signal) => () => early ??= signal;
  const earlyHandlers = SIGNALS.map((s) => [s, onEarly(s)] as const);
  for (const [s, h] of earlyHandlers) Deno.addSignalListener(s, h);
  let server;
  try {
    server = await startEmbedded({
      port,
      log: Deno.env.get("TIDEPOOL_PG_LOG") ? (line) => console.error(`[postgres] ${line}`) : undefined,
    });
  } catch (error) {
    const message = error instanceof EmbeddedStartError
      ? error.message
      : `embedded PostgreSQL could not start: ${String(error)}`;
    console.error(`with_postgres: ${message.split("\n")[0]}`);
    return 1;
  } finally {
    for (const [s, h] of earlyHandlers) Deno.removeSignalListener(s, h);
  }
  try {
    if (early) return 128 + signalNumber(early);
    return await run(args, server.url);
  } finally {
    await server.close();
  }
}

/** Run the command with stdio inherited, forwarding termination signals. */
async function run(args: string[], url: string): Promise<number> {
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command(args[0], {
      args: args.slice(1),
      env: { DATABASE_URL: url },
      stdin: "inherit",
      stdout: "inherit",
      stderr: "inherit",
    }).spawn();
  } catch (error) {
    console.error(`with_postgres: cannot run ${args[0]}: ${String(error)}`);
    return 127;
  }
  let forwarded = 0;
  const handlers = SIGNALS.map((signal) =>
    [signal, () => {
      // A second signal means "now": do not wait for a stuck command.
      forwarded++;
      try {
        child.kill(forwarded > 1 ? "SIGKILL" : signal);
      } catch {
        // The command already exited.
      }
    }] as const
  );
  for (const [s, h] of handlers) Deno.addSignalListener(s, h);
  try {
    const status = await child.status;
    return status.signal ? 128 + signalNumber(status.signal) : status.code;
  } finally {
    for (const [s, h] of handlers) Deno.removeSignalListener(s, h);
  }
}

function signalNumber(signal: Deno.Signal): number {
  return { SIGHUP: 1, SIGINT: 2, SIGKILL: 9, SIGTERM: 15 }[signal as string] ??
    1;
}

if (import.meta.main) {
  Deno.exit(await main([...Deno.args]));
}
