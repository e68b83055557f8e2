/**
 * Options fuzz: random option objects only ever fail in the constructor, with
 * a RangeError or TypeError; pools that construct open, serve and close.
 * Pure option handling and queueing, so a fake driver stands in for the
 * server, except for the connect timeout, which is the pg driver's.
 */
import assert from "node:assert/strict";
import { ConnectionPool, type Driver, PoolTimeoutError } from "../../mod.ts";
import { createTestDatabase } from "../_db.ts";
import { prng } from "../_prng.ts";
import { OPTION_NAMES } from "../../src/pool/options.ts";

/** A connection that needs no server. */
interface FakeConn {
  id: number;
}

/** A driver with no I/O; `connectDelay` ms per connect. */
function fakeDriver(connectDelay = 0): Driver<FakeConn> {
  let next = 0;
  return {
    description: "fake://",
    async connect(signal) {
      if (connectDelay > 0) {
        await new Promise<void>((resolve, reject) => {
          const id = setTimeout(resolve, connectDelay);
          signal.addEventListener("abort", () => {
            clearTimeout(id);
            reject(signal.reason);
          }, { once: true });
        });
      }
      return { id: ++next };
    },
    close: () => Promise.resolve(),
    status: () => "idle",
    rollback: () => Promise.resolve(),
    ping: () => Promise.resolve(),
    query: () => Promise.resolve({ rows: [], rowCount: 0, fields: [] }),
    watch: () => {},
  };
}

const NUMBERS = [0, 1, 2, 3, 10, 50, 2.5, -1, -0.5, NaN, Infinity, -Infinity, 1e9, 3e9, 1e12, Number.MAX_SAFE_INTEGER];
const OTHERS = [undefined, null, "5", "", true, false, {}, [], () => {}, "fifo", "lifo", 5n, Symbol("x")];
// Every option but the two that pick the target (the fuzz keeps a fake driver): a new option is fuzzed too.
const KEYS = [...OPTION_NAMES].filter((key) => key !== "conninfo" && key !== "driver");
// About 3.4 options per object (0.2 of the 17 options it was tuned with) however many there are: each new option must not make the fuzz more hostile.
const KEY_CHANCE = 3.4 / KEYS.length;

function randomOptions(rand: () => number, driver: Driver<FakeConn>): Record<string, unknown> {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)];
  const value = (): unknown => rand() < 0.7 ? pick(NUMBERS) : pick(OTHERS);
  const options: Record<string, unknown> = {};
  if (rand() < 0.95) options.driver = driver;
  else if (rand() < 0.5) options.driver = value();
  for (const key of KEYS) {
    if (rand() < KEY_CHANCE) {
      options[key] = key === "backoff" && rand() < 0.7
        ? Object.fromEntries(
          ["initialDelay", "multiplier", "jitter", "bogus"].filter(() => rand() < 0.5).map((k) => [k, value()]),
        )
        : value();
    }
  }
  if (rand() < 0.02) options[`unknown${Math.floor(rand() * 10)}`] = value();
  return options;
}

Deno.test("10,000 random option objects fail only in the constructor, only with RangeError or TypeError", async () => {
  const seed = Number(Deno.env.get("FUZZ_SEED") ?? 20261125);
  const rand = prng(seed);
  const driver = fakeDriver();
  let constructed = 0;
  let opened = 0;
  for (let i = 0; i < 10_000; i++) {
    const options = randomOptions(rand, driver);
    const replay = `seed ${seed}, case ${i}: ${Deno.inspect(options)}`;
    let pool: ConnectionPool<FakeConn>;
    try {
      pool = new ConnectionPool<FakeConn>(options);
    } catch (error) {
      assert.ok(error instanceof RangeError || error instanceof TypeError, `${replay} threw ${error}`);
      assert.match((error as Error).message, /option|options/i, replay);
      continue;
    }
    constructed++;
    // Open a sample of them (all would take too long); huge minSize would only cost memory.
    if (constructed % 2 !== 0 || pool.minSize > 50) continue;
    opened++;
    try {
      await pool.open();
      const started = performance.now();
      try {
        const conn = await pool.getconn();
        await pool.putconn(conn);
        await pool.query("select 1");
      } catch (error) {
        assert.ok(error instanceof PoolTimeoutError, `${replay}: getconn threw ${error}`);
        assert.ok(pool.timeout < 20, `${replay}: timed out after ${performance.now() - started} ms`);
      }
    } finally {
      await pool.close({ timeout: 50 });
    }
  }
  assert.ok(constructed > 500, `only ${constructed} constructed: the fuzz is too hostile to test later stages`);
  assert.ok(opened > 50);
});

Deno.test("waits longer than a timer can hold (2^31 ms) do not fire at once", async () => {
  const pool = new ConnectionPool<FakeConn>({ driver: fakeDriver(30), minSize: 1, maxSize: 1, timeout: 3e9 });
  try {
    await pool.open({ wait: true, timeout: 3e9 });
    const held = await pool.getconn();
    const waiting = pool.getconn(); // waits with the pool's 3e9 ms timeout
    const early = await Promise.race([
      waiting.then(() => "served", (e) => `failed: ${e}`),
      new Promise((resolve) => setTimeout(() => resolve("still waiting"), 30)),
    ]);
    assert.equal(early, "still waiting");
    await pool.putconn(held);
    await pool.putconn(await waiting);
    // close() waits for a borrowed connection up to its timeout, not 1 ms.
    const out = await pool.getconn();
    let closed = false;
    const closing = pool.close({ timeout: 3e9 }).then(() => closed = true);
    await new Promise((resolve) => setTimeout(resolve, 30));
    assert.equal(closed, false, "close() gave up on the borrowed connection at once");
    await pool.putconn(out);
    await closing;
  } finally {
    await pool.close();
  }
});

Deno.test("a connectTimeout longer than a timer can hold does not fail connects at once", async () => {
  await using db = await createTestDatabase();
  const pool = new ConnectionPool({ conninfo: db.url, minSize: 1, connectTimeout: 3e9, timeout: 3_000 });
  try {
    await pool.open({ wait: true, timeout: 3_000 });
    assert.equal(pool.getStats().connectionsErrors, 0);
  } finally {
    await pool.close();
  }
});
