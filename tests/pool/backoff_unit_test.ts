/**
 * Unit tests of `Backoff` (src/pool/_backoff.ts), one run of failed
 * connection attempts: growing delays, the multiplier, jitter bounds, and when
 * the run has lasted past the give-up time.
 */
import assert from "node:assert/strict";
import { Backoff } from "../../src/pool/_backoff.ts";

Deno.test("Backoff: without jitter the delays start at initialDelay and grow by the multiplier", () => {
  const backoff = new Backoff({ initialDelay: 100, multiplier: 2, jitter: 0, maxDelay: Infinity }, 60_000);
  assert.deepEqual(Array.from({ length: 6 }, () => backoff.next()), [100, 200, 400, 800, 1600, 3200]);
  const slow = new Backoff({ initialDelay: 10, multiplier: 1.5, jitter: 0, maxDelay: Infinity }, 60_000);
  assert.deepEqual(Array.from({ length: 4 }, () => slow.next()), [10, 15, 22.5, 33.75]);
  const flat = new Backoff({ initialDelay: 250, multiplier: 1, jitter: 0, maxDelay: Infinity }, 60_000);
  assert.deepEqual(Array.from({ length: 3 }, () => flat.next()), [250, 250, 250]);
});

Deno.test("Backoff: jitter spreads each delay within +/-jitter of its base, both ways", () => {
  const jitter = 0.25;
  let below = 0;
  let above = 0;
  for (let run = 0; run < 200; run++) {
    const backoff = new Backoff({ initialDelay: 1_000, multiplier: 3, jitter, maxDelay: Infinity }, 60_000);
    for (let i = 0, base = 1_000; i < 5; i++, base *= 3) {
      const delay = backoff.next();
      assert.ok(delay >= base * (1 - jitter) && delay <= base * (1 + jitter), `${delay} vs base ${base}`);
      if (delay < base) below++;
      else if (delay > base) above++;
    }
  }
  // 1,000 draws: a spread that only went one way (or not at all) would leave one count near 0.
  assert.ok(below > 300 && above > 300, `${below} below, ${above} above the base`);
});

Deno.test("Backoff: jitter does not compound: each base is the unjittered previous one times the multiplier", () => {
  const realRandom = Math.random;
  Math.random = () => 1; // the largest spread up: base * (1 + jitter)
  try {
    const backoff = new Backoff({ initialDelay: 100, multiplier: 2, jitter: 0.5, maxDelay: Infinity }, 60_000);
    assert.deepEqual([backoff.next(), backoff.next(), backoff.next()], [150, 300, 600]);
  } finally {
    Math.random = realRandom;
  }
});

Deno.test("Backoff: a delay is never negative, even with jitter 1", () => {
  const realRandom = Math.random;
  Math.random = () => 0; // the largest spread down: base * (1 - jitter)
  try {
    const backoff = new Backoff({ initialDelay: 100, multiplier: 2, jitter: 1, maxDelay: Infinity }, 60_000);
    assert.deepEqual([backoff.next(), backoff.next()], [0, 0]);
  } finally {
    Math.random = realRandom;
  }
});

Deno.test("Backoff: expired() turns true once the run has lasted giveUpAfter ms, not before", async () => {
  const backoff = new Backoff({ initialDelay: 10, multiplier: 2, jitter: 0, maxDelay: Infinity }, 40);
  const start = performance.now();
  assert.equal(backoff.expired(), false);
  const deadline = start + 2_000;
  while (!backoff.expired()) {
    assert.ok(performance.now() < deadline, "expired() never turned true");
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  const ms = performance.now() - start;
  assert.ok(ms >= 40, `expired after ${ms.toFixed(1)} ms, before the 40 ms give-up time`);
  assert.equal(backoff.expired(), true, "and stays expired");
});

Deno.test("Backoff: giveUpAfter 0 is expired at once, Infinity never", () => {
  const options = { initialDelay: 10, multiplier: 2, jitter: 0, maxDelay: Infinity };
  assert.equal(new Backoff(options, 0).expired(), true);
  assert.equal(new Backoff(options, Infinity).expired(), false);
});

Deno.test("Backoff: delays stop growing at maxDelay, and jitter spreads around the capped delay", () => {
  const capped = new Backoff({ initialDelay: 1_000, multiplier: 2, jitter: 0, maxDelay: 4_000 }, 60_000);
  assert.deepEqual(Array.from({ length: 6 }, () => capped.next()), [1_000, 2_000, 4_000, 4_000, 4_000, 4_000]);
  const spread = new Backoff({ initialDelay: 1_000, multiplier: 2, jitter: 0.1, maxDelay: 4_000 }, 60_000);
  const delays = Array.from({ length: 50 }, () => spread.next()).slice(3);
  assert.ok(delays.every((d) => d >= 3_600 && d <= 4_400), `capped delays within +/-10%: ${delays}`);
});
