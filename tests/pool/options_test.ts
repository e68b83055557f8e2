/**
 * The constructor validates its options and does no I/O.
 */
import assert from "node:assert/strict";
import { ConnectionPool, NullConnectionPool } from "../../mod.ts";
import { closedPort } from "../_pool_helpers.ts";

const conninfo = `postgres://tp@127.0.0.1:${closedPort()}/tp`;

function assertRejectsOption(
  options: Record<string, unknown>,
  errorClass: typeof RangeError | typeof TypeError,
  option: string,
): void {
  assert.throws(
    () => new ConnectionPool({ conninfo, ...options } as never),
    (error: unknown) => {
      assert.ok(error instanceof errorClass, `expected ${errorClass.name}, got ${String(error)}`);
      assert.match((error as Error).message, new RegExp(`'${option.replace(".", "\\.")}'`));
      return true;
    },
  );
}

Deno.test("constructor does no I/O: a pool on a closed port is created without error or connection", async () => {
  // The pool is never closed on purpose: a connection attempt would leave an
  // op or resource behind, and Deno's sanitizers would fail this test.
  const pool = new ConnectionPool({ conninfo, minSize: 2 });
  await new Promise((resolve) => setTimeout(resolve, 20)); // lets any wrongly started work surface
  const stats = pool.getStats();
  assert.equal(stats.poolSize, 0);
  assert.equal(stats.connectionsNum, 0);
  assert.equal(stats.connectionsErrors, 0);
  assert.equal(pool.closed, false);
});

Deno.test("constructor rejects minSize < 0 with RangeError naming minSize", () => {
  assertRejectsOption({ minSize: -1 }, RangeError, "minSize");
});

Deno.test("constructor rejects maxSize < minSize with RangeError naming maxSize", () => {
  assertRejectsOption({ minSize: 4, maxSize: 2 }, RangeError, "maxSize");
});

Deno.test("constructor rejects maxSize === 0 with RangeError naming maxSize", () => {
  assertRejectsOption({ minSize: 0, maxSize: 0 }, RangeError, "maxSize");
});

Deno.test("constructor rejects non-integer sizes with RangeError", () => {
  assertRejectsOption({ minSize: 1.5 }, RangeError, "minSize");
  assertRejectsOption({ maxWaiting: -1 }, RangeError, "maxWaiting");
  assertRejectsOption({ numWorkers: 0 }, RangeError, "numWorkers");
});

Deno.test("constructor rejects NaN and negative durations with RangeError naming the option", () => {
  for (
    const option of [
      "timeout",
      "maxLifetime",
      "maxIdle",
      "reconnectTimeout",
      "leakDetectionThreshold",
      "connectTimeout",
    ]
  ) {
    assertRejectsOption({ [option]: NaN }, RangeError, option);
    assertRejectsOption({ [option]: -1 }, RangeError, option);
  }
  assertRejectsOption({ backoff: { initialDelay: -5 } }, RangeError, "backoff.initialDelay");
  assertRejectsOption({ backoff: { multiplier: NaN } }, RangeError, "backoff.multiplier");
  assertRejectsOption({ backoff: { jitter: 2 } }, RangeError, "backoff.jitter");
});

Deno.test("constructor rejects Infinity for waits and thresholds with RangeError", () => {
  for (
    const option of [
      "timeout",
      "leakDetectionThreshold",
      "connectTimeout",
      "maxLifetime",
      "maxIdle",
      "reconnectTimeout",
    ]
  ) {
    assertRejectsOption({ [option]: Infinity }, RangeError, option);
  }
  assertRejectsOption({ backoff: { initialDelay: Infinity } }, RangeError, "backoff.initialDelay");
});

Deno.test("constructor accepts durations longer than a timer can hold (maxLifetime of a year)", () => {
  const year = 365 * 24 * 3_600_000;
  const pool = new ConnectionPool({ conninfo, maxLifetime: year, maxIdle: year, reconnectTimeout: year });
  assert.equal(pool.closed, false);
});

Deno.test("constructor rejects options of the wrong type with TypeError naming the option", () => {
  assertRejectsOption({ minSize: "4" }, TypeError, "minSize");
  assertRejectsOption({ maxSize: "10" }, TypeError, "maxSize");
  assertRejectsOption({ timeout: "1000" }, TypeError, "timeout");
  assertRejectsOption({ maxLifetime: null }, TypeError, "maxLifetime");
  assertRejectsOption({ name: 7 }, TypeError, "name");
  assertRejectsOption({ configure: "SET x" }, TypeError, "configure");
  assertRejectsOption({ reset: 1 }, TypeError, "reset");
  assertRejectsOption({ check: true }, TypeError, "check");
  assertRejectsOption({ reconnectFailed: {} }, TypeError, "reconnectFailed");
  assertRejectsOption({ order: "random" }, TypeError, "order");
  assertRejectsOption({ backoff: 5 }, TypeError, "backoff");
  assertRejectsOption({ conninfo: 42 }, TypeError, "conninfo");
});

Deno.test("constructor rejects a missing conninfo with TypeError naming conninfo", () => {
  assert.throws(() => new ConnectionPool({}), (e: unknown) => e instanceof TypeError && /'conninfo'/.test(e.message));
});

Deno.test("constructor rejects unknown option names with TypeError naming them", () => {
  assertRejectsOption({ maxsize: 3 }, TypeError, "maxsize");
  assertRejectsOption({ min_size: 3 }, TypeError, "min_size");
  assertRejectsOption({ backoff: { initial: 5 } }, TypeError, "backoff.initial");
});

Deno.test("maxSize defaults to minSize and minSize to 4 (minSize 0 alone: maxSize 10, see promises_options_test.ts)", () => {
  const byDefault = new ConnectionPool({ conninfo });
  assert.equal(byDefault.minSize, 4);
  assert.equal(byDefault.maxSize, 4);
  const sized = new ConnectionPool({ conninfo, minSize: 2 });
  assert.equal(sized.maxSize, 2);
  const zero = new ConnectionPool({ conninfo, minSize: 0 });
  assert.equal(zero.maxSize, 10);
});

Deno.test("pools are named pool-N by default, in creation order, and name/minSize/maxSize/closed read back", () => {
  const a = new ConnectionPool({ conninfo, minSize: 1 });
  const b = new ConnectionPool({ conninfo, minSize: 1 });
  const na = Number(/^pool-(\d+)$/.exec(a.name)?.[1]);
  const nb = Number(/^pool-(\d+)$/.exec(b.name)?.[1]);
  assert.ok(na >= 1, a.name);
  assert.equal(nb, na + 1);
  const named = new ConnectionPool({ conninfo, name: "main", minSize: 2, maxSize: 5 });
  assert.equal(named.name, "main");
  assert.equal(named.minSize, 2);
  assert.equal(named.maxSize, 5);
  assert.equal(named.closed, false);
});

Deno.test("NullConnectionPool rejects minSize != 0 with RangeError naming minSize", () => {
  assert.throws(
    () => new NullConnectionPool({ conninfo, minSize: 1 }),
    (e: unknown) => e instanceof RangeError && /'minSize'/.test(e.message),
  );
  const pool = new NullConnectionPool({ conninfo });
  assert.equal(pool.minSize, 0);
  assert.equal(pool.maxSize, Infinity);
});
