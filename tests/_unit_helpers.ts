/**
 * Helpers for the unit tests of the pool's internals (no database): a spy on
 * the global timers, a signal that counts its listeners, a bound on when a
 * timer fired, and a child process that shows whether a unit keeps the event
 * loop alive.
 *
 * @module
 */
import assert from "node:assert/strict";

/** What {@linkcode spyTimers} saw; `using` it restores the real timers. */
export interface TimerSpy extends Disposable {
  /** `setTimeout` calls since the spy was installed. */
  readonly armed: number;
  /** Timers armed and neither fired nor cleared yet. */
  readonly live: number;
  /** The most timers live at one time. */
  readonly maxLive: number;
}

/** Wraps `setTimeout`/`clearTimeout` to count timers; restored on dispose. */
export function spyTimers(): TimerSpy {
  const realSet = globalThis.setTimeout;
  const realClear = globalThis.clearTimeout;
  const live = new Set<number>();
  let armed = 0;
  let maxLive = 0;
  globalThis.setTimeout = ((fn: () => void, delay?: number) => {
    const id = realSet(() => {
      live.delete(id);
      fn();
    }, delay) as unknown as number;
    armed++;
    live.add(id);
    maxLive = Math.max(maxLive, live.size);
    return id;
  }) as unknown as typeof setTimeout;
  globalThis.clearTimeout = ((id?: number) => {
    if (id !== undefined) live.delete(id);
    realClear(id);
  }) as unknown as typeof clearTimeout;
  return {
    get armed() {
      return armed;
    },
    get live() {
      return live.size;
    },
    get maxLive() {
      return maxLive;
    },
    [Symbol.dispose]() {
      globalThis.setTimeout = realSet;
      globalThis.clearTimeout = realClear;
    },
  };
}

/**
 * Asserts that something meant to happen `expected` ms after a start happened
 * `actual` ms after it: not more than 2 ms early (timers may fire up to a
 * millisecond early, and Date.now() reads whole ms), and not later than 20%
 * plus a 40 ms floor (two cores shared with other test runs).
 */
export function assertElapsed(actual: number, expected: number, what: string): void {
  assert.ok(actual >= expected - 2, `${what}: after ${actual} ms, expected ${expected} ms`);
  const late = expected * 1.2 + 40;
  assert.ok(actual <= late, `${what}: after ${actual} ms, expected ${expected} ms (at most ${late})`);
}

/** What a child process printed, and how long it ran. */
export interface ChildRun {
  readonly stdout: string;
  readonly ms: number;
}

/**
 * Runs `code` (a module; `$SRC` stands for the file URL of `src/`) in a child
 * Deno and returns what it printed once it exits by itself. Fails if it
 * exits non-zero or is still running after `killAfterMs`: it kept its event
 * loop alive.
 */
export async function runChild(code: string, killAfterMs = 10_000): Promise<ChildRun> {
  const src = new URL("../src/", import.meta.url).href;
  const child = new Deno.Command(Deno.execPath(), {
    args: ["eval", "--quiet", code.replaceAll("$SRC", src)],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const start = performance.now();
  const killer = setTimeout(() => child.kill("SIGKILL"), killAfterMs);
  try {
    const { code: exitCode, signal, stdout, stderr } = await child.output();
    const text = new TextDecoder();
    assert.equal(signal, null, `the child was still running after ${killAfterMs} ms: it kept the process alive`);
    assert.equal(exitCode, 0, text.decode(stderr));
    return { stdout: text.decode(stdout).trim(), ms: performance.now() - start };
  } finally {
    clearTimeout(killer);
  }
}

/**
 * Awaits `promise` while a ref'd timer keeps the event loop alive (the pool's
 * own timers are unref'd, so a test awaiting only them would end early), and
 * fails if it has not settled after `deadlineMs`.
 */
export async function awaitUnref<T>(promise: Promise<T>, deadlineMs = 5_000): Promise<T> {
  let timer: number | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`not settled after ${deadlineMs} ms`)), deadlineMs) as unknown as number;
  });
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** An AbortController whose signal counts the listeners added to and removed from it. */
export function countedController(): {
  controller: AbortController;
  signal: AbortSignal;
  listeners: { added: number; removed: number };
} {
  const controller = new AbortController();
  const signal = controller.signal;
  const listeners = { added: 0, removed: 0 };
  const add = signal.addEventListener.bind(signal);
  const remove = signal.removeEventListener.bind(signal);
  signal.addEventListener = ((...args: Parameters<typeof add>) => {
    listeners.added++;
    add(...args);
  }) as typeof add;
  signal.removeEventListener = ((...args: Parameters<typeof remove>) => {
    listeners.removed++;
    remove(...args);
  }) as typeof remove;
  return { controller, signal, listeners };
}
