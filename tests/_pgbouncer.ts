/**
 * A throwaway PgBouncer in transaction mode in front of the test server, for
 * the `pooler: "transaction"` tests: its own temp dir, port and process,
 * removed by `close()`.
 *
 * The test server authenticates with SCRAM, so PgBouncer 1.18 needs the plain
 * password in its userlist to log in to it; the userlist lives in the temp dir
 * (mode 0600) and goes with it.
 *
 * @module
 */
import { freePort } from "../tools/_embedded.ts";

/** A running PgBouncer. */
export interface PgBouncer extends AsyncDisposable {
  /** Port on 127.0.0.1. */
  readonly port: number;
  /** `base` (a URL to the real server) pointed at the bouncer instead, same user, password and database. */
  url(base: string): string;
  /** What PgBouncer logged so far. */
  logs(): string;
  /** Stops the process and removes its dir. Idempotent. */
  close(): Promise<void>;
}

/** Options of {@linkcode startPgBouncer}. */
export interface PgBouncerOptions {
  /** Server connections per user and database (`default_pool_size`). @default 4 */
  poolSize?: number;
}

/**
 * Path of the `pgbouncer` binary (`PGBOUNCER` overrides), or undefined when
 * the machine has none. Debian puts it in /usr/sbin, often not on a user's PATH.
 *
 * @returns The path, or undefined.
 */
export async function findPgBouncer(): Promise<string | undefined> {
  const given = Deno.env.get("PGBOUNCER");
  const dirs = (Deno.env.get("PATH") ?? "").split(":").filter(Boolean);
  const candidates = given ? [given] : [...dirs.map((d) => `${d}/pgbouncer`), "/usr/sbin/pgbouncer"];
  for (const path of candidates) {
    if (await Deno.stat(path).then((s) => s.isFile && ((s.mode ?? 0) & 0o111) !== 0, () => false)) return path;
  }
  return undefined;
}

/**
 * Starts PgBouncer in transaction mode in front of the server of `serverUrl`,
 * authenticating its user with the URL's password.
 *
 * @param binary Path from {@linkcode findPgBouncer}.
 * @param serverUrl `postgres://user:password@host:port/db` of the real server.
 * @param options Pool size.
 * @returns The running bouncer; `close()` it (or `await using`).
 */
export async function startPgBouncer(
  binary: string,
  serverUrl: string,
  options: PgBouncerOptions = {},
): Promise<PgBouncer> {
  const server = new URL(serverUrl);
  const user = decodeURIComponent(server.username);
  const password = decodeURIComponent(server.password);
  const port = await freePort();
  const dir = await Deno.makeTempDir({ prefix: "tidepool-pgbouncer-" });
  // PgBouncer refuses to run as root: then it runs as `postgres` (or nobody).
  const owner: { uid?: number; gid?: number } = Deno.uid() === 0 ? await unprivilegedUser() : {};
  const quote = (s: string) => `"${s.replaceAll('"', '""')}"`;
  const ini = [
    "[databases]",
    `* = host=${server.hostname} port=${server.port || 5432}`,
    "[pgbouncer]",
    "listen_addr = 127.0.0.1",
    `listen_port = ${port}`,
    "unix_socket_dir =",
    "auth_type = scram-sha-256",
    `auth_file = ${dir}/userlist.txt`,
    "pool_mode = transaction",
    `default_pool_size = ${options.poolSize ?? 4}`,
    "max_client_conn = 2000",
    "ignore_startup_parameters = extra_float_digits",
    "server_login_retry = 1",
  ].join("\n") + "\n";
  try {
    await Deno.chmod(dir, 0o755);
    await Deno.writeTextFile(`${dir}/pgbouncer.ini`, ini, { mode: 0o600 });
    await Deno.writeTextFile(`${dir}/userlist.txt`, `${quote(user)} ${quote(password)}\n`, { mode: 0o600 });
    if (owner.uid !== undefined) {
      for (const f of ["pgbouncer.ini", "userlist.txt"]) await Deno.chown(`${dir}/${f}`, owner.uid, owner.gid ?? null);
    }
  } catch (error) {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    throw error;
  }
  const child = new Deno.Command(binary, {
    args: [`${dir}/pgbouncer.ini`],
    ...owner,
    cwd: "/",
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let log = "";
  const drain = (stream: ReadableStream<Uint8Array>) =>
    (async () => {
      for await (const text of stream.pipeThrough(new TextDecoderStream())) log += text;
    })();
  const exited = Promise.all([child.status, drain(child.stdout), drain(child.stderr)]);
  let running = true;
  child.status.then(() => running = false);
  let closed: Promise<void> | undefined;
  const close = () =>
    closed ??= (async () => {
      try {
        child.kill("SIGTERM");
      } catch {
        // Already exited.
      }
      await exited;
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    })();
  const bouncer: PgBouncer = {
    port,
    url(base: string) {
      const url = new URL(base);
      url.hostname = "127.0.0.1";
      url.port = String(port);
      return url.toString();
    },
    logs: () => log,
    close,
    [Symbol.asyncDispose]: close,
  };
  // Ready once it accepts TCP connections.
  const deadline = Date.now() + 15_000;
  while (true) {
    if (!running) {
      await close();
      throw new Error(`pgbouncer exited during startup:\n${log}`);
    }
    try {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port });
      conn.close();
      return bouncer;
    } catch {
      if (Date.now() > deadline) {
        await close();
        throw new Error(`pgbouncer did not listen on ${port} within 15 s:\n${log}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}

async function unprivilegedUser(): Promise<{ uid: number; gid: number }> {
  const passwd = await Deno.readTextFile("/etc/passwd");
  const users = new Map<string, { uid: number; gid: number }>();
  for (const line of passwd.split("\n")) {
    const [name, , uid, gid] = line.split(":");
    if (name) users.set(name, { uid: Number(uid), gid: Number(gid) });
  }
  const found = users.get("postgres") ?? users.get("nobody");
  if (!found) throw new Error("running as root and found neither a postgres nor a nobody user to run pgbouncer as");
  return found;
}
