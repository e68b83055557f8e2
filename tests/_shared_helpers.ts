/**
 * Helpers for the `shared_*_test.ts` files: a real Worker running
 * `tests/_workers/shared_client.ts`, driven by `call(cmd, args)`, and a
 * sampler of the peak number of server sessions.
 *
 * @module
 */
import { adminQuery, backendCount } from "./_db.ts";

/** What a Worker reports about an error it caught (see `_workers/shared_client.ts`). */
export interface WorkerError {
  name: string;
  message: string;
  code?: string;
  detail?: string;
  hint?: string;
  isPoolError: boolean;
  isPoolTimeoutError: boolean;
  isPoolClosedError: boolean;
  isPoolConnectError?: boolean;
  isPoolExhaustedError: boolean;
  isTooManyRequestsError: boolean;
  isHostsExhaustedError: boolean;
  /** A HostsExhaustedError's `hosts`. */
  hosts?: string[];
  /** The error's `cause`, described the same way. */
  cause?: WorkerError;
}

/** Thrown by {@linkcode TestWorker.call} when the command failed inside the Worker. */
export class WorkerCallError extends Error {
  /** @param info The error as the Worker saw it. */
  constructor(readonly info: WorkerError) {
    super(`${info.name}: ${info.message}`);
  }
}

/** A Worker attached (or to be attached) to a shared pool. */
export interface TestWorker {
  readonly worker: Worker;
  /** Runs a command in the Worker; rejects with {@linkcode WorkerCallError} if it failed there. */
  call<T = unknown>(cmd: string, args?: Record<string, unknown>, transfer?: Transferable[]): Promise<T>;
  /** Runs a command expected to fail and returns the error as the Worker saw it. */
  fail(cmd: string, args?: Record<string, unknown>): Promise<WorkerError>;
  /** Sends the port and attaches. */
  attach(port: MessagePort): Promise<{ name: string; maxSize: number; flavor: string }>;
  /** Terminates the Worker (idempotent); calls still out never settle. */
  terminate(): void;
}

/**
 * Starts a Worker running a command script from `_workers/` (by default
 * `shared_client.ts`): `{ id, cmd, ...args }` in, `{ id, value | error }` out.
 *
 * @param script The file under `tests/_workers/`.
 * @returns A handle; terminate it before the test ends.
 * @example
 * ```ts
 * const w = startWorker();
 * await w.attach(pool.share());
 * await w.call("query", { text: "select 1" });
 * w.terminate();
 * ```
 */
export function startWorker(script = "shared_client.ts"): TestWorker {
  const worker = new Worker(new URL(`./_workers/${script}`, import.meta.url), { type: "module" });
  const pending = new Map<number, { resolve(v: unknown): void; reject(e: unknown): void }>();
  let nextId = 1;
  let terminated = false;
  worker.onmessage = (e: MessageEvent<{ id: number; value?: unknown; error?: WorkerError }>) => {
    const p = pending.get(e.data.id);
    if (p === undefined) return;
    pending.delete(e.data.id);
    if (e.data.error) p.reject(new WorkerCallError(e.data.error));
    else p.resolve(e.data.value);
  };
  const call = <T>(cmd: string, args: Record<string, unknown> = {}, transfer: Transferable[] = []): Promise<T> => {
    const id = nextId++;
    const { promise, resolve, reject } = Promise.withResolvers<T>();
    pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
    worker.postMessage({ id, cmd, ...args }, transfer);
    return promise;
  };
  return {
    worker,
    call,
    async fail(cmd, args) {
      try {
        await call(cmd, args);
      } catch (error) {
        if (error instanceof WorkerCallError) return error.info;
        throw error;
      }
      throw new Error(`Expected '${cmd}' to fail in the Worker`);
    },
    attach: (port) => call("attach", { port }, [port]),
    terminate() {
      if (terminated) return;
      terminated = true;
      worker.terminate();
      // Calls still out never settle; rejecting them would be unhandled rejections in the test.
      pending.clear();
    },
  };
}

/**
 * Samples the number of server sessions on a database until stopped.
 *
 * @param dbName Database to watch.
 * @returns `stop()` resolves with the peak seen.
 * @example
 * ```ts
 * const peak = samplePeak(db.name);
 * // ... load ...
 * assert((await peak.stop()) <= 4);
 * ```
 */
export function samplePeak(dbName: string): { stop(): Promise<number> } {
  return sampleMax(() => backendCount(dbName), 5);
}

/** Polls `count` every `everyMs` until stopped, keeping the peak and the last value. */
function sampleMax(count: () => Promise<number>, everyMs: number): { stop(): Promise<number>; now(): number } {
  let peak = 0;
  let last = 0;
  let running = true;
  const loop = (async () => {
    while (running) {
      last = await count();
      peak = Math.max(peak, last);
      await new Promise((r) => setTimeout(r, everyMs));
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return peak;
    },
    now: () => last,
  };
}

/**
 * Samples, every 2 ms, the server sessions of one `application_name` (the
 * server's own count of a group's backends, whatever the pools believe).
 *
 * @param app The application_name the pools connect with.
 * @returns `stop()` resolves with the peak seen; `now()` the last count.
 * @example
 * ```ts
 * const peak = sampleApp("tp-group-1");
 * // ... load ...
 * assert((await peak.stop()) <= 4);
 * ```
 */
export function sampleApp(app: string): { stop(): Promise<number>; now(): number } {
  return sampleMax(async () => {
    const [row] = await adminQuery<{ n: number }>(
      "select count(*)::int as n from pg_stat_activity where application_name = $1",
      [app],
    );
    return row.n;
  }, 2);
}

/**
 * Runs `fn` with `n` fresh Workers of `script`, terminated afterwards.
 *
 * @example
 * ```ts
 * await withWorkers(2, async ([a, b]) => { await a.call("stats"); });
 * ```
 */
export async function withWorkers(
  n: number,
  fn: (workers: TestWorker[]) => Promise<void>,
  script = "cap_group_client.ts",
): Promise<void> {
  const workers = Array.from({ length: n }, () => startWorker(script));
  try {
    await fn(workers);
  } finally {
    for (const w of workers) w.terminate();
  }
}

/**
 * Runs `fn` while sampling the backends of one `application_name`, and fails
 * when the server ever showed more than `max` of them.
 *
 * @example
 * ```ts
 * await withinBudget("tp-group-1", 3, async (peak) => { console.log(peak.now()); });
 * ```
 */
export async function withinBudget(
  app: string,
  max: number,
  fn: (sampler: { now(): number }) => Promise<void>,
): Promise<void> {
  const sampler = sampleApp(app);
  const failed = await fn(sampler).then(() => undefined, (error: unknown) => ({ error }));
  const highest = await sampler.stop();
  // Over budget is the finding that matters most: it wins, with fn's own failure as its cause.
  if (highest > max) throw new Error(`peak ${highest} backends for a group of ${max}`, { cause: failed?.error });
  if (failed !== undefined) throw failed.error;
}
