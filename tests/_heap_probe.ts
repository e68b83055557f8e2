/**
 * Heap measurements for `promises_memory_test.ts`, run in a child process with
 * `--v8-flags=--expose-gc` (the suite's `deno test` has no such flag): each
 * scenario prints `{ before, after, ... }` as JSON, heap in bytes after GC.
 *
 * Usage: `deno run -A --v8-flags=--expose-gc tests/_heap_probe.ts <scenario> <database url>`
 *
 * @module
 */
import { ConnectionPool, NullConnectionPool, PoolError, SimpleConnectionPool } from "../mod.ts";

const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) throw new Error("run with --v8-flags=--expose-gc");

/** Heap used after full GCs, letting finalizers run in between. */
async function heap(): Promise<number> {
  for (let i = 0; i < 4; i++) {
    gc!();
    await new Promise((resolve) => setTimeout(resolve, 0));
  }
  return Deno.memoryUsage().heapUsed;
}

const [scenario, url] = Deno.args;

/** `total` requests, each aborted while it waits on a saturated pool (default 30 s timeout). */
async function abortedWaiters(pool: ConnectionPool, total: number): Promise<Record<string, number>> {
  const held = await pool.getconn();
  const round = async () => {
    const requests: Promise<unknown>[] = [];
    const controllers: AbortController[] = [];
    for (let i = 0; i < 1_000; i++) {
      const controller = new AbortController();
      controllers.push(controller);
      requests.push(pool.getconn({ signal: controller.signal }).catch((e) => e));
    }
    for (const c of controllers) c.abort(new PoolError("gave up"));
    for (const r of await Promise.all(requests)) {
      if (!(r instanceof PoolError)) throw new Error(`expected the abort reason, got ${String(r)}`);
    }
  };
  await round(); // warm up
  const before = await heap();
  for (let done = 0; done < total; done += 1_000) await round();
  const after = await heap();
  const waiting = pool.getStats().requestsWaiting;
  await pool.putconn(held);
  return { before, after, waiting };
}

/** Pools created and closed: each must leave nothing behind. */
async function createdAndClosed(total: number): Promise<Record<string, number>> {
  const cycle = async () => {
    for (let i = 0; i < total; i++) {
      const a = new ConnectionPool({ conninfo: url, minSize: 1 });
      await a.close();
      const b = new NullConnectionPool({ conninfo: url });
      await b.close();
      const c = new SimpleConnectionPool(0, 1, url);
      await c.closeall();
    }
  };
  // One opened for real first, so everything loaded once is in the baseline.
  const opened = new ConnectionPool({ conninfo: url, minSize: 1 });
  await opened.open({ wait: true });
  await opened.close();
  await cycle();
  const before = await heap();
  await cycle();
  const after = await heap();
  return { before, after, pools: 3 * total };
}

let result: Record<string, number>;
switch (scenario) {
  case "abort-pool": {
    const pool = new ConnectionPool({ conninfo: url, minSize: 1, maxSize: 1 });
    result = await abortedWaiters(pool, 100_000);
    await pool.close();
    break;
  }
  case "abort-null": {
    const pool = new NullConnectionPool({ conninfo: url, maxSize: 1 });
    result = await abortedWaiters(pool, 100_000);
    await pool.close();
    break;
  }
  case "pools":
    result = await createdAndClosed(5_000);
    break;
  default:
    throw new Error(`unknown scenario ${scenario}`);
}
console.log(JSON.stringify(result));
