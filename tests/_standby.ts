/**
 * A real primary and a streaming standby of it (PostgreSQL 15 binaries from
 * the Debian packages, `pg_basebackup -R`), for failover tests that need the
 * server's own state to change: `in_hot_standby` on a standby, off after
 * `pg_promote()`. Runs the servers as `postgres` when we are root.
 *
 * @module
 */
import { freePort } from "../tools/_embedded.ts";
import { queryOnce, waitFor } from "./_db.ts";

const BIN = "/usr/lib/postgresql/15/bin";

/** A primary and its standby. */
export interface StandbyPair extends AsyncDisposable {
  /** The primary's port (127.0.0.1). */
  readonly primary: number;
  /** The standby's port (127.0.0.1). */
  readonly standby: number;
  /** Runs `sql` as the superuser on the server at `port`; returns its rows. */
  query(port: number, sql: string): Promise<Record<string, unknown>[]>;
  /** Stops both servers and removes their data. */
  close(): Promise<void>;
}

/** True when the PostgreSQL 15 binaries are installed. */
export function haveStandbyBinaries(): boolean {
  try {
    Deno.statSync(`${BIN}/pg_basebackup`);
    return true;
  } catch {
    return false;
  }
}

async function owner(): Promise<{ uid?: number; gid?: number }> {
  if (Deno.uid() !== 0) return {};
  const passwd = await Deno.readTextFile("/etc/passwd");
  for (const line of passwd.split("\n")) {
    const [user, , uid, gid] = line.split(":");
    if (user === "postgres") return { uid: Number(uid), gid: Number(gid) };
  }
  throw new Error("running as root and there is no postgres user (startEmbedded creates it)");
}

/**
 * Starts a primary and a streaming standby of it (trust authentication on 127.0.0.1).
 *
 * @returns The pair; `close()` (or `await using`) when done.
 * @example
 * ```ts
 * await using pair = await startStandbyPair();
 * await pair.query(pair.standby, "select pg_promote()");
 * ```
 */
export async function startStandbyPair(): Promise<StandbyPair> {
  const ids = await owner();
  const dir = await Deno.makeTempDir({ prefix: "tidepool-standby-" });
  await Deno.chmod(dir, 0o755);
  if (ids.uid !== undefined) await Deno.chown(dir, ids.uid, ids.gid ?? null);
  const children: Deno.ChildProcess[] = [];
  const run = async (cmd: string, args: string[]) => {
    const out = await new Deno.Command(`${BIN}/${cmd}`, { args, ...ids, cwd: dir, stdout: "piped", stderr: "piped" })
      .output();
    if (!out.success) throw new Error(`${cmd} failed: ${new TextDecoder().decode(out.stderr)}`);
  };
  const start = (data: string, port: number) => {
    const settings = {
      listen_addresses: "127.0.0.1",
      unix_socket_directories: dir,
      wal_level: "replica",
      max_wal_senders: 4,
      hot_standby: "on",
      fsync: "off",
      max_connections: 40,
      shared_buffers: "16MB",
    };
    const args = ["-D", data, "-p", String(port)];
    for (const [k, v] of Object.entries(settings)) args.push("-c", `${k}=${v}`);
    children.push(
      new Deno.Command(`${BIN}/postgres`, { args, ...ids, cwd: dir, stdout: "null", stderr: "null" }).spawn(),
    );
  };
  const query = (port: number, sql: string) =>
    queryOnce({ host: "127.0.0.1", port, user: "postgres", database: "postgres" }, sql);
  const ready = (port: number) =>
    waitFor(() => query(port, "select 1").then(() => true, () => false), { timeout: 30_000, interval: 100 });
  const close = async () => {
    for (const child of children) {
      try {
        child.kill("SIGINT"); // fast shutdown
      } catch { /* already gone */ }
    }
    await Promise.all(children.map((c) => c.status));
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  };
  try {
    const primary = await freePort();
    await run("initdb", ["-D", `${dir}/primary`, "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8"]);
    start(`${dir}/primary`, primary);
    await ready(primary);
    await run("pg_basebackup", [
      "-h",
      "127.0.0.1",
      "-p",
      String(primary),
      "-U",
      "postgres",
      "-D",
      `${dir}/standby`,
      "-R",
      "-X",
      "stream",
    ]);
    const standby = await freePort();
    start(`${dir}/standby`, standby);
    await ready(standby);
    return { primary, standby, query, close, [Symbol.asyncDispose]: close };
  } catch (error) {
    await close();
    throw error;
  }
}
