/**
 * Unit tests of `wrapDriver` (src/core/_wrap_driver.ts), the one way the
 * pooler guard and capGroup wrap a driver.
 */
import assert from "node:assert/strict";
import { wrapDriver } from "../../src/core/_wrap_driver.ts";
import type { Driver } from "../../src/driver.ts";

/** A driver as a class with a private field: its methods only work bound to it. */
class PrivateDriver {
  readonly description = "fake://db";
  #opened = 0;
  connect(): Promise<object> {
    this.#opened++;
    return Promise.resolve({ n: this.#opened });
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
  status(): "idle" {
    return "idle";
  }
  opened(): number {
    return this.#opened;
  }
}

Deno.test("wrapDriver: members are the driver's own, bound to it; overrides replace some; absent optional ones stay absent", async () => {
  const driver = new PrivateDriver();
  let closes = 0;
  const wrapped = wrapDriver(driver as unknown as Driver<object>, {
    close: () => (closes++, Promise.resolve()),
  });
  assert.deepEqual(await wrapped.connect(new AbortController().signal), { n: 1 }, "bound: the private field works");
  await wrapped.close({});
  assert.equal(closes, 1, "the override ran");
  assert.equal(wrapped.status({}), "idle");
  assert.equal(wrapped.description, "fake://db");
  assert.equal((wrapped as unknown as PrivateDriver).opened(), 1, "a member outside Driver is passed through too");
  assert.equal(wrapped.cancel, undefined, "an optional member the driver lacks stays absent");
  // Wrapping a wrapped driver (capGroup over the pooler guard) keeps both layers.
  let connects = 0;
  const twice = wrapDriver(wrapped, { connect: (signal) => (connects++, wrapped.connect(signal)) });
  await twice.connect(new AbortController().signal);
  await twice.close({});
  assert.deepEqual([connects, closes, driver.opened()], [1, 2, 2]);
});
