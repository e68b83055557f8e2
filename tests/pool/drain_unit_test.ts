/**
 * Unit tests of `Drain` (src/pool/_drain.ts), the bookkeeping of
 * `pool.drain()`: which connections are stale, and the callers waiting until
 * they are replaced (resolved on a change, failed on timeout or close).
 */
import assert from "node:assert/strict";
import { Drain } from "../../src/pool/_drain.ts";
import { assertElapsed, spyTimers } from "../_unit_helpers.ts";

const timeoutError = () => new Error("not drained in time");

/** Settles a drain wait's rejection (so it is never unhandled) and reports it. */
function outcome(wait: Promise<void>): Promise<string> {
  return wait.then(() => "resolved", (error: Error) => `rejected ${error.message}`);
}

Deno.test("Drain: no connection is stale before a drain starts", () => {
  const drain = new Drain<string>();
  assert.equal(drain.isStale("a"), false);
  assert.equal(drain.pending, 0);
  assert.equal(drain.epoch, 0);
});

Deno.test("Drain: start() marks the current connections stale, not later ones, and starts a new epoch", () => {
  const drain = new Drain<string>();
  drain.start(["a", "b"]);
  assert.equal(drain.epoch, 1);
  assert.equal(drain.isStale("a"), true);
  assert.equal(drain.isStale("b"), true);
  assert.equal(drain.isStale("fresh"), false);
  assert.equal(drain.pending, 2);
  drain.start(new Set(["c"]));
  assert.equal(drain.epoch, 2);
  assert.equal(drain.pending, 3, "a second drain adds to what the first left");
});

Deno.test("Drain: markStale() marks one connection opened by an attempt started before the drain", () => {
  const drain = new Drain<string>();
  drain.start([]);
  drain.markStale("late");
  assert.equal(drain.isStale("late"), true);
  assert.equal(drain.pending, 1);
});

Deno.test("Drain: closed() forgets a stale connection, and a fresh one's close changes nothing", () => {
  const drain = new Drain<string>();
  drain.start(["a", "b"]);
  drain.closed("a");
  assert.equal(drain.isStale("a"), false);
  assert.equal(drain.pending, 1);
  drain.closed("fresh");
  assert.equal(drain.pending, 1);
});

Deno.test("Drain: until() resolves at once when already done, without a timer", async () => {
  using timers = spyTimers();
  const drain = new Drain<string>();
  await drain.until(() => true, 1_000, timeoutError);
  assert.equal(timers.armed, 0);
});

Deno.test("Drain: until() resolves on the change after which done() holds, and clears its timer", async () => {
  using timers = spyTimers();
  const drain = new Drain<string>();
  drain.start(["a", "b"]);
  let checks = 0;
  const wait = outcome(drain.until(() => (checks++, drain.pending === 0), 60_000, timeoutError));
  drain.closed("a");
  drain.changed();
  assert.equal(timers.live, 1, "still waiting: one stale connection left");
  drain.closed("b");
  assert.equal(await wait, "resolved");
  assert.equal(timers.live, 0, "the timeout timer is cleared");
  const seen = checks;
  drain.changed();
  assert.equal(checks, seen, "a settled wait is not checked again");
});

Deno.test("Drain: until() rejects with onTimeout() after timeoutMs when done() never holds", async () => {
  const drain = new Drain<string>();
  drain.start(["a"]);
  const start = performance.now();
  assert.equal(await outcome(drain.until(() => false, 40, timeoutError)), "rejected not drained in time");
  assertElapsed(Math.round(performance.now() - start), 40, "the drain timeout");
  drain.changed(); // the timed-out wait is gone: nothing to check or settle
});

Deno.test("Drain: a timeout beyond the timer's range is capped, not fired at once", async () => {
  using timers = spyTimers();
  const drain = new Drain<string>();
  const wait = outcome(drain.until(() => false, 2 ** 40, timeoutError));
  // Uncapped, setTimeout would fire within a millisecond; give it 30 ms to show it does not.
  const settledEarly = await Promise.race([
    wait,
    new Promise((resolve) => setTimeout(() => resolve("still waiting"), 30)),
  ]);
  assert.equal(settledEarly, "still waiting");
  drain.close(() => new Error("closed"));
  assert.equal(await wait, "rejected closed");
  assert.equal(timers.live, 0);
});

Deno.test("Drain: close() fails every waiting drain with a fresh error each and forgets the stale set", async () => {
  using timers = spyTimers();
  const drain = new Drain<string>();
  drain.start(["a", "b"]);
  const waits = [1, 2, 3].map(() => outcome(drain.until(() => false, 60_000, timeoutError)));
  let n = 0;
  drain.close(() => new Error(`closed ${n++}`));
  assert.deepEqual(await Promise.all(waits), ["rejected closed 0", "rejected closed 1", "rejected closed 2"]);
  assert.equal(drain.pending, 0);
  assert.equal(drain.isStale("a"), false);
  assert.equal(timers.live, 0);
});
