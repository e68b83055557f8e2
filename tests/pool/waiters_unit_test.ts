/**
 * Unit tests of `Waiter` and `WaiterQueue` (src/pool/_waiters.ts): FIFO
 * service, settling exactly once, one timer for every deadline, O(1) removal,
 * and a timer that never keeps an idle process alive.
 */
import assert from "node:assert/strict";
import { Waiter, WaiterQueue } from "../../src/pool/_waiters.ts";
import { offAbort, onAbort } from "../../src/_util/_abort.ts";
import { assertElapsed, countedController, runChild, spyTimers } from "../_unit_helpers.ts";

/** A waiter that times out `timeout` ms after `now`, as the pool queues one (a rejection is never unhandled). */
function waiter(timeout: number, now = Date.now()): Waiter<string> {
  const w = new Waiter<string>(now);
  w.deadline = now + timeout;
  w.timeout = timeout;
  w.promise.catch(() => {});
  return w;
}

/** A queue whose timeout handler records each waiter (with when) and rejects it, as the pool does. */
function timingQueue() {
  const timedOut: { waiter: Waiter<string>; at: number; size: number }[] = [];
  const queue: WaiterQueue<string> = new WaiterQueue<string>((w) => {
    timedOut.push({ waiter: w, at: Date.now(), size: queue.size });
    w.reject(new Error(`timed out after ${w.timeout} ms`));
  });
  return { queue, timedOut };
}

/** Settles the promise's rejection (so it is never unhandled) and reports its message. */
function outcome(w: Waiter<string>): Promise<string> {
  return w.promise.then((value) => `resolved ${value}`, (error: Error) => `rejected ${error.message}`);
}

const closed = () => new Error("closed");

Deno.test("Waiter: settles exactly once; a later resolve or reject returns false and changes nothing", async () => {
  const first = new Waiter<string>();
  assert.equal(first.resolve("a"), true);
  assert.equal(first.resolve("b"), false);
  assert.equal(first.reject(new Error("late")), false);
  assert.equal(first.settled, true);
  assert.equal(await first.promise, "a");

  const second = new Waiter<string>();
  assert.equal(second.reject(new Error("gave up")), true);
  assert.equal(second.resolve("conn"), false, "a connection handed to a waiter that gave up is refused");
  assert.equal(await outcome(second), "rejected gave up");
});

Deno.test("Waiter: the onSettle cleanup runs once, when it settles, however it settles", async () => {
  for (const settle of ["resolve", "reject"] as const) {
    const w = new Waiter<string>();
    const settledPromise = outcome(w);
    let cleanups = 0;
    w.onSettle(() => cleanups++);
    assert.equal(cleanups, 0);
    if (settle === "resolve") w.resolve("x");
    else w.reject(new Error("x"));
    w.resolve("again");
    w.reject(new Error("again"));
    assert.equal(cleanups, 1, settle);
    await settledPromise;
  }
});

Deno.test("Waiter: enqueuedAt is the time passed in, else Date.now()", () => {
  assert.equal(new Waiter<string>(1234).enqueuedAt, 1234);
  const before = Date.now();
  const w = new Waiter<string>();
  assert.ok(w.enqueuedAt >= before && w.enqueuedAt <= Date.now());
  assert.equal(w.deadline, Infinity, "no deadline unless the caller sets one");
});

Deno.test("WaiterQueue: take() serves waiters in FIFO order, and size counts those still queued", () => {
  const { queue } = timingQueue();
  const waiters = Array.from({ length: 50 }, () => waiter(60_000));
  for (const w of waiters) queue.add(w);
  assert.equal(queue.size, 50);
  for (let i = 0; i < 50; i++) {
    assert.equal(queue.take(), waiters[i], `waiter ${i}`);
    assert.equal(queue.size, 49 - i);
  }
  assert.equal(queue.take(), undefined);
  queue.rejectAll(closed); // stops the timer
});

Deno.test("WaiterQueue: FIFO order holds across waiters with different timeouts", () => {
  const { queue } = timingQueue();
  const timeouts = [60_000, 30_000, 90_000, 30_000, 45_000, 60_000];
  const waiters = timeouts.map((t) => waiter(t));
  for (const w of waiters) queue.add(w);
  assert.deepEqual(Array.from(waiters, () => queue.take()), waiters);
  queue.rejectAll(closed);
});

Deno.test("WaiterQueue: a waiter that timed out is never handed a connection", async () => {
  const { queue, timedOut } = timingQueue();
  const start = Date.now();
  const patient = waiter(60_000, start);
  const early = waiter(30, start); // queued second with an earlier deadline: the timer is re-armed for it
  queue.add(patient);
  queue.add(early);
  assert.equal(await outcome(early), "rejected timed out after 30 ms");
  assertElapsed(timedOut[0].at - start, 30, "the timeout");
  assert.equal(early.resolve("conn"), false, "handing it a connection now is refused");
  assert.equal(patient.settled, false);
  assert.equal(queue.size, 1);
  assert.equal(queue.take(), patient, "the next connection goes to the waiter still waiting");
  assert.equal(queue.take(), undefined);
  queue.rejectAll(closed);
});

Deno.test("WaiterQueue: a waiter that gave up is skipped by take(), removed or not", async () => {
  const { queue } = timingQueue();
  const [a, b, c, d] = [waiter(60_000), waiter(60_000), waiter(60_000), waiter(60_000)];
  for (const w of [a, b, c, d]) queue.add(w);
  const outcomes = [a, b].map(outcome);
  a.reject(new Error("aborted")); // the pool's abort path: reject, then remove
  queue.remove(a);
  b.reject(new Error("aborted")); // a caller that forgot remove(): take() still skips it
  assert.equal(queue.take(), c);
  assert.equal(queue.take(), d);
  assert.equal(queue.take(), undefined);
  assert.deepEqual(await Promise.all(outcomes), ["rejected aborted", "rejected aborted"]);
  queue.rejectAll(closed);
});

Deno.test("WaiterQueue: remove() unlinks a waiter so the queue keeps no reference to it, and is a no-op twice", () => {
  const { queue } = timingQueue();
  const waiters = Array.from({ length: 5 }, () => waiter(60_000));
  for (const w of waiters) queue.add(w);
  const middle = waiters[2];
  queue.remove(middle);
  assert.equal(queue.size, 4);
  for (const link of [middle.prev, middle.next, middle.groupPrev, middle.groupNext, middle.group]) {
    assert.equal(link, undefined, "an unlinked waiter holds (and is held by) nothing");
  }
  assert.equal(waiters[1].next, waiters[3], "its neighbours are linked to each other");
  assert.equal(waiters[3].prev, waiters[1]);
  assert.equal(waiters[1].groupNext, waiters[3]);
  queue.remove(middle);
  assert.equal(queue.size, 4, "removing it again changes nothing");
  queue.remove(waiters[0]); // the head
  queue.remove(waiters[4]); // the tail
  assert.equal(queue.take(), waiters[1]);
  assert.equal(queue.take(), waiters[3]);
  assert.equal(queue.take(), undefined);
  queue.rejectAll(closed);
});

Deno.test("WaiterQueue: removing 100,000 waiters in random order is O(1) each", () => {
  const { queue } = timingQueue();
  const n = 100_000;
  const waiters = Array.from({ length: n }, (_, i) => waiter(60_000 + (i % 7) * 1000));
  for (const w of waiters) queue.add(w);
  const order = waiters.slice();
  let seed = 42;
  for (let i = n - 1; i > 0; i--) { // Fisher-Yates with a fixed LCG: the same order every run
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    const j = seed % (i + 1);
    [order[i], order[j]] = [order[j], order[i]];
  }
  const keep = new Set(order.slice(0, 100));
  const start = performance.now();
  for (const w of order) if (!keep.has(w)) queue.remove(w);
  const ms = performance.now() - start;
  // O(1) each takes well under a second even on a loaded machine; a search of the list per removal
  // would walk ~5e9 links (tens of seconds).
  assert.ok(ms < 3_000, `removing ${n - keep.size} waiters took ${ms.toFixed(0)} ms`);
  assert.equal(queue.size, keep.size);
  const served = [];
  for (let w = queue.take(); w !== undefined; w = queue.take()) served.push(w);
  assert.deepEqual(served, waiters.filter((w) => keep.has(w)), "the rest are still served in FIFO order");
  queue.rejectAll(closed);
});

Deno.test("WaiterQueue: many waiters with one timeout arm one setTimeout, not one each", () => {
  using timers = spyTimers();
  const { queue } = timingQueue();
  for (let i = 0; i < 1_000; i++) queue.add(waiter(60_000));
  assert.equal(timers.armed, 1);
  assert.equal(timers.live, 1);
  queue.rejectAll(closed);
  assert.equal(timers.live, 0, "rejectAll() clears the timer");
});

Deno.test("WaiterQueue: one timer times out waiters with different timeouts, each at its own deadline", async () => {
  using timers = spyTimers();
  const { queue, timedOut } = timingQueue();
  const start = Date.now();
  const timeouts = [120, 40, 80];
  const waiters = Array.from({ length: 60 }, (_, i) => waiter(timeouts[i % 3], start));
  for (const w of waiters) queue.add(w);
  const outcomes = await Promise.all(waiters.map(outcome));
  assert.ok(outcomes.every((o) => o.startsWith("rejected timed out")), outcomes.join());
  assert.ok(timers.maxLive <= 1, `${timers.maxLive} timers were live at once`);
  assert.equal(timers.live, 0, "no timer is left once the queue is empty and swept");
  const expected = [40, 80, 120].flatMap((t) => waiters.filter((w) => w.timeout === t));
  assert.deepEqual(timedOut.map((t) => t.waiter), expected, "deadline order, FIFO within a timeout");
  for (const { waiter: w, at } of timedOut) assertElapsed(at - start, w.timeout, `a ${w.timeout} ms wait`);
});

Deno.test("WaiterQueue: size still counts the waiters a sweep is timing out, for their messages", async () => {
  const { queue, timedOut } = timingQueue();
  const start = Date.now();
  const waiters = [waiter(20, start), waiter(20, start), waiter(20, start)];
  for (const w of waiters) queue.add(w);
  await Promise.all(waiters.map(outcome));
  assert.deepEqual(timedOut.map((t) => t.size), [3, 2, 1]);
  assert.equal(queue.size, 0);
});

Deno.test("WaiterQueue: a waiter times out even if the wall clock steps back while it waits", async () => {
  const { queue } = timingQueue();
  const realNow = Date.now;
  const w = waiter(30);
  queue.add(w); // the timer is armed for 30 ms (timers are monotonic)
  Date.now = () => realNow() - 3_600_000; // the wall clock steps back one hour
  try {
    const start = performance.now();
    assert.equal(await outcome(w), "rejected timed out after 30 ms");
    assertElapsed(Math.round(performance.now() - start), 30, "the timeout");
  } finally {
    Date.now = realNow;
  }
  assert.equal(queue.size, 0);
});

Deno.test("WaiterQueue: rejectAll() fails every waiter in FIFO order with a fresh reason each, and stops the timer", async () => {
  using timers = spyTimers();
  const { queue } = timingQueue();
  const waiters = Array.from({ length: 5 }, () => waiter(60_000));
  for (const w of waiters) queue.add(w);
  let n = 0;
  queue.rejectAll(() => new Error(`closed ${n++}`));
  assert.deepEqual(await Promise.all(waiters.map(outcome)), [0, 1, 2, 3, 4].map((i) => `rejected closed ${i}`));
  assert.equal(queue.size, 0);
  assert.equal(timers.live, 0);
});

Deno.test("WaiterQueue: 20,000 waiters sharing one AbortSignal add one listener to it and all fail on abort", async () => {
  const { queue } = timingQueue();
  const { controller, signal, listeners } = countedController();
  const waiters = Array.from({ length: 20_000 }, () => waiter(60_000));
  for (const w of waiters) { // as the pool queues a request with a signal
    queue.add(w);
    const aborted = () => {
      if (w.reject(signal.reason)) queue.remove(w);
    };
    onAbort(signal, aborted);
    w.onSettle(() => offAbort(signal, aborted));
  }
  const outcomes = waiters.map(outcome);
  for (let i = 0; i < 10_000; i++) queue.take()!.resolve("conn"); // half are served: each forgets its callback
  assert.equal(listeners.added, 1, "one listener on the signal, however many waiters share it");
  controller.abort(new Error("request cancelled"));
  assert.equal(queue.size, 0, "every aborted waiter left the queue");
  assert.equal(queue.take(), undefined);
  const results = await Promise.all(outcomes);
  assert.equal(results.filter((r) => r === "resolved conn").length, 10_000);
  assert.equal(results.filter((r) => r === "rejected request cancelled").length, 10_000);
  assert.deepEqual(results.slice(9_999, 10_001), ["resolved conn", "rejected request cancelled"], "FIFO");
  queue.rejectAll(closed);
});

Deno.test("WaiterQueue: an emptied queue does not keep the process alive, a waiting one does", async () => {
  const emptied = await runChild(`
    import { Waiter, WaiterQueue } from "$SRC/pool/_waiters.ts";
    const queue = new WaiterQueue(() => console.log("timed out"));
    const w = new Waiter(); w.deadline = Date.now() + 60_000; w.timeout = 60_000;
    queue.add(w);
    queue.take().resolve("conn");
  `);
  assert.equal(emptied.stdout, "", "the child exited before the 60 s deadline");

  // Refilled after emptying: the still-armed timer is ref'd again, so the process waits for the deadline.
  const refilled = await runChild(`
    import { Waiter, WaiterQueue } from "$SRC/pool/_waiters.ts";
    const queue = new WaiterQueue((w) => console.log("timed out", w.timeout));
    const queued = (timeout) => { const w = new Waiter(); w.deadline = Date.now() + timeout; w.timeout = timeout; return w; };
    queue.add(queued(100));
    queue.take().resolve("conn");
    queue.add(queued(150));
  `);
  assert.equal(refilled.stdout, "timed out 150");
});

Deno.test("Waiter.expireAfter: settles the waiter at the deadline, or clears its timer when it settled first; cleanup runs once", async () => {
  let cleanups = 0;
  const expiring = new Waiter<string>();
  const started = performance.now();
  expiring.expireAfter(40, (w) => w.resolve("expired"), () => cleanups++);
  assert.equal(await expiring.promise, "expired");
  assert.ok(performance.now() - started >= 38, "not before its deadline");
  assert.equal(cleanups, 1);
  // Settled first: the timer is cleared (the sanitizer fails the test on a pending one) and expire never runs.
  const early = new Waiter<string>();
  let expired = false;
  early.expireAfter(60_000, () => (expired = true), () => cleanups++);
  assert.equal(early.resolve("served"), true);
  assert.equal(await early.promise, "served");
  assert.equal(expired, false);
  assert.equal(cleanups, 2);
});
