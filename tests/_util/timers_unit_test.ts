/**
 * Unit tests of src/_util/_timers.ts: the pool's `Timers` (unref'd, tracked,
 * capped at MAX_DELAY), `sleep()` with abort, and `within()`.
 */
import assert from "node:assert/strict";
import { MAX_DELAY, sleep, Timers, within } from "../../src/_util/_timers.ts";
import { assertElapsed, awaitUnref, countedController, runChild, spyTimers } from "../_unit_helpers.ts";

const slow = () => new Error("too slow");

/** Resolves "not yet" after `ms`, to race against something that must not settle that soon. */
function notYet(ms: number): Promise<string> {
  return new Promise((resolve) => setTimeout(() => resolve("not yet"), ms));
}

Deno.test("MAX_DELAY is the longest delay setTimeout honours (2^31-1 ms)", () => {
  assert.equal(MAX_DELAY, 2 ** 31 - 1);
});

Deno.test("Timers: after() runs its function once, after the delay", async () => {
  const timers = new Timers();
  const start = performance.now();
  const ran = Promise.withResolvers<number>();
  let runs = 0;
  timers.after(30, () => {
    runs++;
    ran.resolve(performance.now());
  });
  assertElapsed(Math.round((await awaitUnref(ran.promise)) - start), 30, "after(30)");
  assert.equal(runs, 1);
});

Deno.test("Timers: a delay beyond the timer's range is capped at MAX_DELAY, not fired at once; a negative one runs at once", async () => {
  const timers = new Timers();
  let fired = false;
  timers.after(2 ** 40, () => fired = true);
  timers.after(Number.MAX_SAFE_INTEGER, () => fired = true);
  const negative = Promise.withResolvers<void>();
  timers.after(-5, negative.resolve);
  await awaitUnref(negative.promise);
  assert.equal(await notYet(30), "not yet"); // uncapped, both would have fired within a millisecond
  assert.equal(fired, false);
  timers.cancelAll();
});

Deno.test("Timers: cancel() stops one timer; cancel(undefined) is a no-op", async () => {
  using spy = spyTimers();
  const timers = new Timers();
  let fired = false;
  const id = timers.after(10, () => fired = true);
  timers.cancel(id);
  timers.cancel(undefined);
  timers.cancel(id); // twice is harmless
  assert.equal(spy.live, 0);
  await notYet(30);
  assert.equal(fired, false);
});

Deno.test("Timers: every() runs repeatedly, with the next run armed before the function works", async () => {
  using spy = spyTimers();
  const timers = new Timers();
  const start = performance.now();
  const runs: { at: number; live: number }[] = [];
  const third = Promise.withResolvers<void>();
  const thirdRun = awaitUnref(third.promise); // its deadline timer is live throughout
  const others = spy.live;
  timers.every(15, () => {
    runs.push({ at: performance.now() - start, live: spy.live - others });
    if (runs.length === 3) third.resolve();
  });
  await thirdRun;
  timers.cancelAll();
  assert.equal(spy.live, 0, "cancelAll() stops the chain");
  assert.deepEqual(runs.map((r) => r.live), [1, 1, 1], "the next run is already armed while one works");
  runs.forEach((run, i) => assert.ok(run.at >= 15 * (i + 1) - 2, `run ${i + 1} at ${run.at.toFixed(1)} ms`));
  assertElapsed(Math.round(runs[2].at), 45, "the third run");
});

Deno.test("Timers: cancelAll() clears every pending timer", async () => {
  using spy = spyTimers();
  const timers = new Timers();
  let fired = 0;
  for (let i = 0; i < 10; i++) timers.after(10 + i, () => fired++);
  timers.every(10, () => fired++);
  assert.equal(spy.live, 11);
  timers.cancelAll();
  assert.equal(spy.live, 0);
  await notYet(40);
  assert.equal(fired, 0);
});

Deno.test("Timers: a pending timer does not keep the process alive; a pending sleep() does", async () => {
  const pooled = await runChild(`
    import { Timers } from "$SRC/_util/_timers.ts";
    new Timers().after(60_000, () => console.log("fired"));
    new Timers().every(60_000, () => console.log("fired"));
  `);
  assert.equal(pooled.stdout, "", "the child exited without waiting a minute");
  const slept = await runChild(`
    import { sleep } from "$SRC/_util/_timers.ts";
    sleep(100).then(() => console.log("slept"));
  `);
  assert.equal(slept.stdout, "slept");
});

Deno.test("sleep: resolves after the delay", async () => {
  const start = performance.now();
  await sleep(30);
  assertElapsed(Math.round(performance.now() - start), 30, "sleep(30)");
});

Deno.test("sleep: an abort rejects it with the signal's reason at once and clears its timer", async () => {
  using spy = spyTimers();
  const controller = new AbortController();
  const slept = sleep(60_000, controller.signal);
  assert.equal(spy.live, 1);
  const reason = new Error("cancelled");
  controller.abort(reason);
  await assert.rejects(slept, (error) => error === reason);
  assert.equal(spy.live, 0);
});

Deno.test("sleep: an already aborted signal rejects at once without a timer", async () => {
  using spy = spyTimers();
  const reason = new Error("already");
  await assert.rejects(sleep(60_000, AbortSignal.abort(reason)), (error) => error === reason);
  assert.equal(spy.armed, 0);
});

Deno.test("sleep: once it resolved, its abort listener is gone and a later abort changes nothing", async () => {
  const { controller, signal, listeners } = countedController();
  await sleep(5, signal);
  assert.deepEqual(listeners, { added: 1, removed: 1 });
  controller.abort();
});

Deno.test("within: settles like the promise when it is first, and clears its timer", async () => {
  using spy = spyTimers();
  assert.equal(await within(Promise.resolve("value"), 60_000, slow), "value");
  const failure = new Error("query failed");
  await assert.rejects(within(Promise.reject(failure), 60_000, slow), (error) => error === failure);
  assert.equal(spy.live, 0);
});

Deno.test("within: rejects with onTimeout() after ms when the promise hangs", async () => {
  const start = performance.now();
  const hung = new Promise<never>(() => {});
  await assert.rejects(within(hung, 30, slow), /too slow/);
  assertElapsed(Math.round(performance.now() - start), 30, "within(30)");
});

Deno.test("within: 0, a negative, NaN or Infinity means no limit: the promise itself, without a timer", () => {
  using spy = spyTimers();
  const promise = Promise.resolve(1);
  for (const ms of [0, -1, NaN, Infinity]) assert.equal(within(promise, ms, slow), promise, String(ms));
  assert.equal(spy.armed, 0);
});

Deno.test("within: a limit beyond the timer's range is capped, not fired at once", async () => {
  const gate = Promise.withResolvers<string>();
  const bounded = within(gate.promise, 2 ** 40, slow);
  assert.equal(await Promise.race([bounded, notYet(30)]), "not yet");
  gate.resolve("done");
  assert.equal(await bounded, "done");
});
