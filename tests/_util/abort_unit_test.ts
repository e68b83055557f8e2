/**
 * Unit tests of src/_util/_abort.ts: `onAbort`/`offAbort` put ONE listener on
 * a signal however many callbacks share it (O(1) each), and `untilAborted`.
 */
import assert from "node:assert/strict";
import { offAbort, onAbort, untilAborted } from "../../src/_util/_abort.ts";
import { countedController } from "../_unit_helpers.ts";

Deno.test("onAbort: every callback runs once when the signal aborts, in the order given", () => {
  const { controller, signal } = countedController();
  const calls: number[] = [];
  for (let i = 0; i < 5; i++) onAbort(signal, () => calls.push(i));
  controller.abort();
  assert.deepEqual(calls, [0, 1, 2, 3, 4]);
  signal.dispatchEvent(new Event("abort")); // the listener was once-only
  assert.deepEqual(calls, [0, 1, 2, 3, 4]);
});

Deno.test("onAbort: 100,000 callbacks on one signal add one listener; offAbort of all of them removes it once", () => {
  const { controller, signal, listeners } = countedController();
  const callbacks = Array.from({ length: 100_000 }, () => () => called++);
  let called = 0;
  for (const cb of callbacks) onAbort(signal, cb);
  assert.equal(listeners.added, 1);
  const start = performance.now();
  for (let i = callbacks.length - 1; i >= 0; i--) offAbort(signal, callbacks[i]);
  const ms = performance.now() - start;
  // A listener per callback would cost O(n) per removal: ~5e9 steps for 100,000.
  assert.ok(ms < 2_000, `forgetting 100,000 callbacks took ${ms.toFixed(0)} ms`);
  assert.equal(listeners.removed, 1, "the signal's listener goes with its last callback");
  controller.abort();
  assert.equal(called, 0, "forgotten callbacks do not run");
});

Deno.test("offAbort: only the forgotten callback is skipped; the listener stays for the others", () => {
  const { controller, signal, listeners } = countedController();
  const calls: string[] = [];
  const a = () => calls.push("a");
  const b = () => calls.push("b");
  onAbort(signal, a);
  onAbort(signal, b);
  offAbort(signal, a);
  assert.equal(listeners.removed, 0);
  controller.abort();
  assert.deepEqual(calls, ["b"]);
});

Deno.test("offAbort: a signal or callback never given to onAbort is a no-op", () => {
  const { controller, signal, listeners } = countedController();
  offAbort(signal, () => {});
  const calls: string[] = [];
  onAbort(signal, () => calls.push("kept"));
  offAbort(signal, () => {}); // another function
  assert.equal(listeners.removed, 0);
  controller.abort();
  assert.deepEqual(calls, ["kept"]);
});

Deno.test("onAbort: a callback may forget another during the abort, and that one does not run", () => {
  const { controller, signal } = countedController();
  const calls: string[] = [];
  const second = () => calls.push("second");
  onAbort(signal, () => {
    calls.push("first");
    offAbort(signal, second);
  });
  onAbort(signal, second);
  onAbort(signal, () => calls.push("third"));
  controller.abort();
  assert.deepEqual(calls, ["first", "third"]);
});

Deno.test("onAbort: after a signal emptied by offAbort, a new callback gets a listener again", () => {
  const { controller, signal, listeners } = countedController();
  const first = () => {};
  onAbort(signal, first);
  offAbort(signal, first);
  let called = false;
  onAbort(signal, () => called = true);
  assert.deepEqual(listeners, { added: 2, removed: 1 });
  controller.abort();
  assert.equal(called, true);
});

Deno.test("untilAborted: settles like the promise when it is first, and forgets its callback", async () => {
  const { signal, listeners } = countedController();
  assert.equal(await untilAborted(Promise.resolve("value"), signal), "value");
  const failure = new Error("failed");
  await assert.rejects(untilAborted(Promise.reject(failure), signal), (error) => error === failure);
  assert.deepEqual(listeners, { added: 2, removed: 2 }, "nothing is left on the signal");
});

Deno.test("untilAborted: rejects with the signal's reason when it aborts first", async () => {
  const { controller, signal } = countedController();
  const hung = new Promise<never>(() => {});
  const waits = [untilAborted(hung, signal), untilAborted(hung, signal)];
  const reason = new Error("request cancelled");
  controller.abort(reason);
  for (const wait of waits) await assert.rejects(wait, (error) => error === reason);
});

Deno.test("untilAborted: an already aborted signal rejects at once with its reason, adding no listener", async () => {
  const { controller, signal, listeners } = countedController();
  const reason = new Error("already");
  controller.abort(reason);
  await assert.rejects(untilAborted(new Promise<never>(() => {}), signal), (error) => error === reason);
  assert.equal(listeners.added, 0);
});
