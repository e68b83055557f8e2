/** The timed closed loop shared by the throughput and Workers benchmarks. @module */

/** Anything that can run the statement once for task number `task`. */
export interface Queryable {
  query(task: number): Promise<unknown>;
}

/** Counts and latencies of one timed run. */
export interface LoadRun {
  ops: number;
  elapsedMs: number;
  /** Per-op latency in ms, sorted ascending. */
  latencies: Float64Array;
}

/**
 * Runs `concurrency` task loops until `ms` have passed: each loop calls `step`
 * while the window is open; a step that ends after the window closes reports
 * `false` from `open()` so its result can be dropped. Returns the window's length.
 */
export async function forDuration(
  concurrency: number,
  ms: number,
  step: (task: number, open: () => boolean) => Promise<void>,
): Promise<number> {
  let stopped = false;
  let tEnd = 0;
  const open = () => !stopped;
  const loop = async (task: number) => {
    while (!stopped) await step(task, open);
  };
  const t0 = performance.now();
  const timer = setTimeout(() => {
    stopped = true;
    tEnd = performance.now();
  }, ms);
  try {
    await Promise.all(Array.from({ length: concurrency }, (_, i) => loop(i)));
  } finally {
    clearTimeout(timer);
  }
  return tEnd - t0;
}

/**
 * Runs `concurrency` loops of `target.query` for `ms` milliseconds. Only ops
 * that finish before the stop time count; in-flight ones are drained untimed,
 * so the next contender starts on a quiet server.
 */
export async function runFor(target: Queryable, concurrency: number, ms: number): Promise<LoadRun> {
  const lat: number[] = [];
  const elapsedMs = await forDuration(concurrency, ms, async (task, open) => {
    const t = performance.now();
    await target.query(task);
    if (open()) lat.push(performance.now() - t);
  });
  return { ops: lat.length, elapsedMs, latencies: Float64Array.from(lat).sort() };
}
