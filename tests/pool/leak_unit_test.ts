/**
 * Unit tests of the leak detector (src/pool/_leak.ts): a shared no-op object
 * when off, and when on a warning with the borrower's stack once a connection
 * has been out longer than the threshold, cancelled by its return.
 */
import assert from "node:assert/strict";
import type { Logger } from "@logtape/logtape";
import { BorrowerStack, leakDetector } from "../../src/pool/_leak.ts";
import { Entry } from "../../src/core/_entry.ts";
import { Timers } from "../../src/_util/_timers.ts";
import { assertElapsed, awaitUnref, spyTimers } from "../_unit_helpers.ts";

interface Warning {
  readonly message: string;
  readonly properties: { pool: string; threshold: number; stack: BorrowerStack };
  readonly at: number;
}

/** A logger that records its warnings, and resolves `next` on each. */
function recordingLogger() {
  const warnings: Warning[] = [];
  let next = Promise.withResolvers<Warning>();
  const logger = {
    warn(message: string, properties: Warning["properties"]) {
      const warning = { message, properties, at: performance.now() };
      warnings.push(warning);
      next.resolve(warning);
      next = Promise.withResolvers<Warning>();
    },
  } as unknown as Logger;
  return {
    logger,
    warnings,
    nextWarning: () => awaitUnref(next.promise),
  };
}

function entry(): Entry<object> {
  return new Entry({}, { putconn: () => Promise.resolve() }, Infinity);
}

Deno.test("leakDetector: off (threshold 0 or less) is one shared no-op object that arms no timer", () => {
  using spy = spyTimers();
  const timers = new Timers();
  const { logger, warnings } = recordingLogger();
  const off = leakDetector(0, timers, logger, "p");
  assert.equal(leakDetector(-1, timers, logger, "p"), off, "the same object, so the hot path pays nothing");
  assert.equal(off.capture(), undefined);
  const e = entry();
  off.lent(e, "origin");
  off.returned(e);
  assert.equal(e.leakTimer, undefined);
  assert.equal(spy.armed, 0);
  assert.deepEqual(warnings, []);
});

Deno.test("leakDetector: a connection out longer than the threshold is warned about once, with the borrower's stack", async () => {
  const timers = new Timers();
  const { logger, warnings, nextWarning } = recordingLogger();
  const leaks = leakDetector(40, timers, logger, "orders");
  const e = entry();
  const start = performance.now();
  (function borrowingFunction() {
    leaks.lent(e);
  })();
  assert.notEqual(e.leakTimer, undefined);
  const warning = await nextWarning();
  assertElapsed(Math.round(warning.at - start), 40, "the leak warning");
  assert.match(warning.message, /Possible connection leak/);
  assert.equal(warning.properties.pool, "orders");
  assert.equal(warning.properties.threshold, 40);
  assert.ok(warning.properties.stack instanceof BorrowerStack, "a log value that prints as lines");
  assert.match(warning.properties.stack.frames[0], /^at borrowingFunction /, "the borrower's frame first");
  assert.match(String(warning.properties.stack), /^\n {4}at borrowingFunction /, "one frame per line");
  assert.equal(e.leakTimer, undefined, "the fired timer is forgotten");
  leaks.returned(e); // a return after the warning is harmless
  assert.equal(warnings.length, 1);
  timers.cancelAll();
});

Deno.test("leakDetector: a queued request's stack, captured when it queued, is the one warned about", async () => {
  const timers = new Timers();
  const { logger, nextWarning } = recordingLogger();
  const leaks = leakDetector(20, timers, logger, "p");
  const origin = (function queuedRequest() {
    return leaks.capture();
  })();
  assert.ok(origin !== undefined && /queuedRequest/.test(origin), String(origin));
  leaks.lent(entry(), origin);
  const { stack } = (await nextWarning()).properties;
  assert.equal(String(stack), String(new BorrowerStack(origin)), "the stack captured when it queued");
  assert.match(stack.frames[0], /^at queuedRequest /);
  timers.cancelAll();
});

Deno.test("leakDetector: a connection returned before the threshold is never warned about, and its timer is cleared", async () => {
  using spy = spyTimers();
  const timers = new Timers();
  const { logger, warnings } = recordingLogger();
  const leaks = leakDetector(20, timers, logger, "p");
  const e = entry();
  leaks.lent(e);
  assert.equal(spy.live, 1);
  leaks.returned(e);
  assert.equal(e.leakTimer, undefined);
  assert.equal(spy.live, 0, "the warning's timer is cleared at once");
  await new Promise((resolve) => setTimeout(resolve, 50)); // past the threshold: still no warning
  assert.deepEqual(warnings, []);
});
