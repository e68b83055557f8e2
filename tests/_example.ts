/**
 * Runs an example as a child process for smoke tests: start it, find the URL
 * it prints, stop it with a signal, and collect everything it wrote.
 *
 * @module
 */

/** A running example. */
export interface RunningExample extends AsyncDisposable {
  /** Base URL printed by the example (`http://127.0.0.1:<port>`). */
  readonly url: string;
  /** What it wrote to stdout so far. */
  stdout(): string;
  /** Sends `signal` and waits for exit; resolves with the exit status and all output. */
  stop(signal?: Deno.Signal): Promise<ExampleExit>;
}

/** How an example ended and what it printed. */
export interface ExampleExit {
  /** Exit code (128 + n when killed by signal n). */
  code: number;
  /** Signal that killed it, or null when it exited by itself. */
  signal: Deno.Signal | null;
  /** Everything written to stdout. */
  stdout: string;
  /** Everything written to stderr. */
  stderr: string;
}

/** Options of {@linkcode startExample}. */
export interface StartExampleOptions {
  /** Extra environment variables (`DATABASE_URL` is usually one). */
  env?: Record<string, string>;
  /** Matches the line announcing the server; group 1 is its URL. */
  listening?: RegExp;
  /** Give up waiting for the listening line after this many ms. @default 30000 */
  timeout?: number;
}

/**
 * Starts `deno <args>` and waits until it prints its listening line (on stdout or stderr).
 *
 * @param args Arguments to `deno`, e.g. `["run", "-A", "examples/serve.ts"]`.
 * @param options Environment, the listening pattern and a deadline.
 * @returns The running example; always `stop()` it (or `await using`).
 * @throws {Error} When the example exits or stays silent before listening; the message has its output.
 * @example Smoke-test an example
 * ```ts
 * await using app = await startExample(["run", "-A", "examples/serve.ts"], { env: { PORT: "0" } });
 * await fetch(`${app.url}/healthz`);
 * ```
 */
export async function startExample(args: string[], options: StartExampleOptions = {}): Promise<RunningExample> {
  const listening = options.listening ?? /listening on (http:\/\/\S+?)\/?$/im;
  const child = new Deno.Command(Deno.execPath(), {
    args,
    env: { NO_COLOR: "1", ...options.env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let stdout = "";
  let stderr = "";
  let announced: ((url: string) => void) | undefined;
  const readAll = async (stream: ReadableStream<Uint8Array>, append: (text: string) => void) => {
    for await (const text of stream.pipeThrough(new TextDecoderStream())) append(text);
  };
  // Examples print on stdout; `deno serve` announces itself on stderr.
  const lookForUrl = (text: string) => {
    const m = listening.exec(text);
    if (m) announced?.(m[1]);
  };
  const reading = Promise.all([
    readAll(child.stdout, (t) => lookForUrl(stdout += t)),
    readAll(child.stderr, (t) => lookForUrl(stderr += t)),
  ]);
  const status = child.status;
  let exit: Promise<ExampleExit> | undefined;
  const finish = (): Promise<ExampleExit> =>
    exit ??= Promise.all([status, reading]).then(([s]) => ({
      code: s.code,
      signal: s.signal,
      stdout,
      stderr,
    }));
  const stop = (signal: Deno.Signal = "SIGTERM"): Promise<ExampleExit> => {
    try {
      child.kill(signal);
    } catch {
      // Already exited.
    }
    return finish();
  };

  const timeout = options.timeout ?? 30_000;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const url = await new Promise<string | undefined>((resolve) => {
    announced = resolve;
    const early = listening.exec(stdout) ?? listening.exec(stderr);
    if (early) resolve(early[1]);
    status.then(() => resolve(undefined));
    timer = setTimeout(() => resolve(undefined), timeout);
  }).finally(() => clearTimeout(timer));
  if (url === undefined) {
    const out = await stop("SIGKILL");
    throw new Error(
      `deno ${args.join(" ")} did not announce a listening URL (exit ${out.code})\n` +
        `--- stdout ---\n${out.stdout}\n--- stderr ---\n${out.stderr}`,
    );
  }
  // Deno prints 0.0.0.0 for "all interfaces"; connect over loopback.
  const base = url.replace("://0.0.0.0", "://127.0.0.1").replace("://[::]", "://127.0.0.1").replace(/\/$/, "");
  return {
    url: base,
    stdout: () => stdout,
    stop,
    async [Symbol.asyncDispose]() {
      await stop("SIGKILL");
    },
  };
}
