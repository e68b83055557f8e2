/**
 * The cycle benchmark's contenders: one acquire+release per `op()`, no I/O,
 * fixed pools of {@linkcode POOL_SIZE}. Shared by `cycle_bench.ts` (`deno bench`)
 * and `cycle.ts` (the alternating script the runner uses).
 *
 * Every `op` is an async function of the same shape, so the wrapper's own cost
 * is the same for all and shows up once, in the floor.
 *
 * @module
 */

import PgPool from "pg-pool";
import * as tarn from "tarn";
import * as genericPool from "generic-pool";
import { createFakeDriver, FakeConnection, FakePgClient } from "./_fake_driver.ts";
import { loadTidepool } from "./_tidepool.ts";

/** Connections in every pool. */
export const POOL_SIZE = 8;

/** A ready pool plus the operation under test. */
export interface CycleTarget {
  op: () => Promise<void>;
  close: () => Promise<void>;
}

/** A named way to build a {@linkcode CycleTarget}. */
export interface CycleContender {
  name: string;
  create: () => Promise<CycleTarget>;
}

const RESOLVED = Promise.resolve();

/** The harness alone: the same async wrapper around one bare await. */
export const floor: CycleContender = {
  name: "floor (bare await)",
  create: () =>
    Promise.resolve({
      op: async () => {
        await RESOLVED;
      },
      close: () => Promise.resolve(),
    }),
};

/** tidepool's ConnectionPool over the fake driver; `name` allows an A/A twin. */
export function tidepool(name = "tidepool"): CycleContender {
  return {
    name,
    create: async () => {
      const { ConnectionPool } = await loadTidepool();
      const pool = new ConnectionPool<FakeConnection>({
        driver: createFakeDriver(),
        minSize: POOL_SIZE,
        maxSize: POOL_SIZE,
        name,
      });
      await pool.open({ wait: true });
      return {
        op: async () => {
          const c = await pool.getconn();
          await pool.putconn(c);
        },
        close: () => pool.close(),
      };
    },
  };
}

/** pg-pool (what `pg.Pool` is) with a fake Client; min = max so no idle timers run. */
export const pgPool: CycleContender = {
  name: "pg-pool",
  create: async () => {
    const pool: PgPoolLike = new PgPool({ Client: FakePgClient, min: POOL_SIZE, max: POOL_SIZE });
    await fill((i) => pool.connect().then((c) => i.push(() => c.release())));
    return {
      op: async () => {
        const c = await pool.connect();
        c.release();
      },
      close: () => pool.end(),
    };
  },
};

/** pg-pool ships no types; this is the part we call. */
interface PgPoolLike {
  connect(): Promise<FakePgClient & { release(): void }>;
  end(): Promise<void>;
}

/** tarn (knex's pool). */
export const tarnPool: CycleContender = {
  name: "tarn",
  create: async () => {
    let next = 0;
    const pool = new tarn.Pool<FakeConnection>({
      create: () => Promise.resolve(new FakeConnection(next++)),
      destroy: () => {},
      min: POOL_SIZE,
      max: POOL_SIZE,
    });
    await fill((i) => pool.acquire().promise.then((c) => i.push(() => pool.release(c))));
    return {
      op: async () => {
        const c = await pool.acquire().promise;
        pool.release(c);
      },
      close: async () => {
        await pool.destroy();
      },
    };
  },
};

/** generic-pool. */
export const genericPoolContender: CycleContender = {
  name: "generic-pool",
  create: async () => {
    let next = 0;
    const pool = genericPool.createPool<FakeConnection>(
      {
        create: () => Promise.resolve(new FakeConnection(next++)),
        destroy: () => Promise.resolve(),
      },
      { min: POOL_SIZE, max: POOL_SIZE },
    );
    await fill((i) => pool.acquire().then((c) => i.push(() => pool.release(c))));
    return {
      op: async () => {
        const c = await pool.acquire();
        await pool.release(c);
      },
      close: async () => {
        await pool.drain();
        await pool.clear();
      },
    };
  },
};

/**
 * Checks out POOL_SIZE connections at once, then returns them all, so a peer
 * that creates lazily has its full pool before timing starts (tidepool does
 * the same through `open({ wait: true })`).
 */
async function fill(
  checkout: (releases: (() => unknown)[]) => Promise<unknown>,
): Promise<void> {
  const releases: (() => unknown)[] = [];
  await Promise.all(Array.from({ length: POOL_SIZE }, () => checkout(releases)));
  for (const r of releases) await r();
}

/** Runs `total` ops split over `tasks` concurrent loops; returns ns per op. */
export async function timeOps(target: CycleTarget, tasks: number, total: number): Promise<number> {
  const per = Math.ceil(total / tasks);
  const loop = async () => {
    for (let i = 0; i < per; i++) await target.op();
  };
  const t0 = performance.now();
  await Promise.all(Array.from({ length: tasks }, loop));
  const t1 = performance.now();
  return ((t1 - t0) * 1e6) / (per * tasks);
}
