/**
 * capGroup benchmark: what one connection budget across isolates costs and buys.
 *
 * - (b) Checkout cost, no I/O (fake driver): a `ConnectionPool` cycle
 *   (getconn+putconn of a warm connection) and a `NullConnectionPool` cycle
 *   (each checkout opens and closes a connection, so it reserves and releases a
 *   group slot), with capGroup against without.
 * - (a) Skewed load: 2 Workers, one busy (16 tasks) and one nearly idle (1 task),
 *   `select pg_sleep(0.005)`: one capGroup of 8 against a static maxSize of 4 each.
 *   The busy isolate's throughput is what the group buys.
 * - (c) `select 1` throughput with 8 connections in all: 2 Workers on a capGroup
 *   (each its own sockets), 1 Worker alone, and 2 Workers on `share()` of the
 *   owner's pool (every query crosses to the owner thread).
 *
 * - (d) Fairness: 2 Workers, each 12 tasks of `select pg_sleep(0.005)`, one
 *   capGroup of 6; the second starts while the first keeps the whole budget
 *   busy. Its first statement's wait (the late-isolate wait) and the busy
 *   isolates' max/min q/s ratio.
 *
 * Run: `deno run -A tools/with_postgres.ts deno run -A bench/cap_group.ts`
 *
 * @module
 */

import { ConnectionPool, NullConnectionPool } from "../mod.ts";
import { createFakeDriver, type FakeConnection } from "./_fake_driver.ts";
import { databaseUrl } from "./_db_contenders.ts";
import { type BenchResult, emit, progress, QUICK, type Table } from "./_report.ts";
import { fmtMs, fmtNum, fmtRatioRange, median, roundOrder } from "./_stats.ts";
import { ask } from "./_ask.ts";

const ROUNDS = QUICK ? 2 : 7;
const CYCLE_OPS = QUICK ? 20_000 : 200_000;
const RUN_MS = QUICK ? 300 : 2_000;
const CONNECTIONS = 8;
let groups = 0;

// ---- (b) checkout cost ------------------------------------------------------

type Cycler = { name: string; pool: ConnectionPool<FakeConnection> };

async function cycleNs(pool: ConnectionPool<FakeConnection>, ops: number): Promise<number> {
  const t0 = performance.now();
  for (let i = 0; i < ops; i++) await pool.putconn(await pool.getconn());
  return ((performance.now() - t0) * 1e6) / ops;
}

async function checkoutCost(): Promise<Table> {
  const group = `bench-cycle-${Deno.pid}`;
  const make = (name: string, kind: "pool" | "null", capGroup?: string): Cycler => {
    const options = { driver: createFakeDriver(), maxSize: CONNECTIONS, capGroup, name };
    return {
      name,
      pool: kind === "pool"
        ? new ConnectionPool({ ...options, minSize: CONNECTIONS - 1 })
        : new NullConnectionPool(options),
    };
  };
  const pairs: [Cycler, Cycler][] = [
    [make("ConnectionPool", "pool"), make("ConnectionPool + capGroup", "pool", `${group}-a`)],
    [make("NullConnectionPool", "null"), make("NullConnectionPool + capGroup", "null", `${group}-b`)],
  ];
  const rows: string[][] = [];
  try {
    for (const pair of pairs) {
      for (const c of pair) {
        await c.pool.open({ wait: true });
        await cycleNs(c.pool, CYCLE_OPS / 4); // warm-up (and the group joined)
      }
      const ns = new Map<string, number[]>(pair.map((c) => [c.name, []]));
      const ratios: number[] = [];
      for (let r = 0; r < ROUNDS; r++) {
        const round = new Map<string, number>();
        for (const c of roundOrder(pair, r)) round.set(c.name, await cycleNs(c.pool, CYCLE_OPS));
        for (const [k, v] of round) ns.get(k)!.push(v);
        ratios.push(round.get(pair[1].name)! / round.get(pair[0].name)!);
        progress(`cap_group cycle ${pair[0].name} round ${r + 1}/${ROUNDS}`);
      }
      rows.push([pair[0].name, fmtNum(median(ns.get(pair[0].name)!)), "1.00"]);
      rows.push([pair[1].name, fmtNum(median(ns.get(pair[1].name)!)), fmtRatioRange(ratios)]);
    }
  } finally {
    for (const pair of pairs) for (const c of pair) await c.pool.close();
  }
  return {
    title: `(b) Checkout cost without I/O, one task, ${CONNECTIONS} connections`,
    columns: ["pool", "ns/op (median)", "ratio to the same pool without capGroup (min-max)"],
    rows,
    notes: [
      "ConnectionPool: a warm connection is lent and returned; the group is not touched (no slot changes hands).",
      "NullConnectionPool: every checkout opens and closes a (fake) connection, so each one reserves and releases a slot (a few Atomics operations).",
    ],
  };
}

// ---- Workers ----------------------------------------------------------------

function startWorkers(n: number): Worker[] {
  return Array.from(
    { length: n },
    () => new Worker(new URL("./_cap_group_worker.ts", import.meta.url), { type: "module" }),
  );
}

interface Setup {
  name: string;
  /** Opens the pools, runs `load` (concurrency per Worker) and returns each Worker's run. */
  run(load: number[], text: string): Promise<{ ops: number; elapsedMs: number; p99: number; connections: number }[]>;
}

/** Each setup gets fresh Workers and pools, so no setup warms the next one's connections. */
function workerSetup(
  name: string,
  n: number,
  open: (w: Worker, i: number) => Promise<void>,
  owner?: () => Promise<ConnectionPool>,
): Setup {
  return {
    name,
    async run(load, text) {
      const workers = startWorkers(n);
      const pool = owner ? await owner() : undefined;
      try {
        for (const [i, w] of workers.entries()) {
          if (pool) {
            const port = pool.share({ worker: w });
            await ask(w, { cmd: "attach", port }, [port]);
          } else await open(w, i);
        }
        // A short warm-up opens the connections before the timed window.
        await Promise.all(workers.map((w, i) => ask(w, { cmd: "run", concurrency: load[i], ms: 200, text })));
        return await Promise.all(workers.map((w, i) => ask(w, { cmd: "run", concurrency: load[i], ms: RUN_MS, text })));
      } finally {
        await Promise.all(workers.map((w) => ask(w, { cmd: "close" }).catch(() => {})));
        for (const w of workers) w.terminate();
        await pool?.close();
      }
    },
  };
}

const qps = (r: { ops: number; elapsedMs: number }) => (r.ops * 1000) / r.elapsedMs;

async function skewed(url: string): Promise<Table> {
  const load = [16, 1];
  const text = "select pg_sleep(0.005)"; // waits on the server, so connections, not CPU, bound the rate
  // pipeline: 1: pipelining would stack the busy isolate's sleeps on one connection (each is under the lane's
  // 50 ms stall bound), and this part measures how connections are shared, not how statements are packed.
  const setups = [
    workerSetup(
      "one capGroup of 8",
      2,
      (w) => ask(w, { cmd: "open", url, maxSize: CONNECTIONS, group: `bench-a-${Deno.pid}-${++groups}`, pipeline: 1 }),
    ),
    workerSetup("static maxSize 4 each", 2, (w) => ask(w, { cmd: "open", url, maxSize: CONNECTIONS / 2, pipeline: 1 })),
  ];
  const busy = new Map<string, number[]>(setups.map((s) => [s.name, []]));
  const quiet = new Map<string, number[]>(setups.map((s) => [s.name, []]));
  const conns = new Map<string, number[]>(setups.map((s) => [s.name, []]));
  const ratios: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const round = new Map<string, number>();
    for (const s of roundOrder(setups, r)) {
      // Each capGroup run needs its own group name: fresh pools, fresh table.
      const runs = await s.run(load, text);
      round.set(s.name, qps(runs[0]));
      busy.get(s.name)!.push(qps(runs[0]));
      quiet.get(s.name)!.push(qps(runs[1]));
      conns.get(s.name)!.push(runs[0].connections);
    }
    ratios.push(round.get(setups[0].name)! / round.get(setups[1].name)!);
    progress(`cap_group skewed round ${r + 1}/${ROUNDS}`);
  }
  return {
    title:
      `(a) Skewed load over 2 isolates, ${CONNECTIONS} connections in all: 16 tasks in one, 1 in the other, ${text}`,
    columns: ["setup", "busy isolate q/s", "its connections", "quiet isolate q/s", "busy isolate vs static (min-max)"],
    rows: setups.map((s, i) => [
      s.name,
      fmtNum(median(busy.get(s.name)!)),
      fmtNum(median(conns.get(s.name)!)),
      fmtNum(median(quiet.get(s.name)!)),
      i === 0 ? fmtRatioRange(ratios) : "1.00",
    ]),
    notes: [
      "With a static split the busy isolate can never use more than 4 connections; on a capGroup it takes up to 7 while the quiet one needs 1.",
    ],
  };
}

async function designs(url: string): Promise<Table> {
  const text = "select 1";
  const setups = [
    workerSetup(
      "2 isolates, one capGroup of 8",
      2,
      (w) => ask(w, { cmd: "open", url, maxSize: CONNECTIONS, group: `bench-c-${Deno.pid}-${++groups}` }),
    ),
    workerSetup("1 isolate, pool of 8", 1, (w) => ask(w, { cmd: "open", url, maxSize: CONNECTIONS })),
    workerSetup(
      "2 isolates on share() of an owner pool of 8",
      2,
      () => Promise.resolve(),
      async () => {
        const pool = new ConnectionPool({ conninfo: url, maxSize: CONNECTIONS, minSize: 0, name: "bench-share" });
        await pool.open();
        return pool;
      },
    ),
  ];
  const loads: Record<string, number[]> = {
    [setups[0].name]: [8, 8],
    [setups[1].name]: [16],
    [setups[2].name]: [8, 8],
  };
  const total = new Map<string, number[]>(setups.map((s) => [s.name, []]));
  const p99 = new Map<string, number[]>(setups.map((s) => [s.name, []]));
  const ratios = new Map<string, number[]>(setups.map((s) => [s.name, []]));
  for (let r = 0; r < ROUNDS; r++) {
    const round = new Map<string, number>();
    for (const s of roundOrder(setups, r)) {
      const runs = await s.run(loads[s.name], text);
      const q = runs.reduce((a, run) => a + qps(run), 0);
      round.set(s.name, q);
      total.get(s.name)!.push(q);
      p99.get(s.name)!.push(Math.max(...runs.map((run) => run.p99)));
    }
    for (const s of setups) ratios.get(s.name)!.push(round.get(s.name)! / round.get(setups[0].name)!);
    progress(`cap_group designs round ${r + 1}/${ROUNDS}`);
  }
  return {
    title: `(c) ${text} throughput, 16 tasks and ${CONNECTIONS} connections in all`,
    columns: ["setup", "q/s (median)", "p99", "vs capGroup (min-max)"],
    rows: setups.map((s) => [
      s.name,
      fmtNum(median(total.get(s.name)!)),
      fmtMs(median(p99.get(s.name)!)),
      fmtRatioRange(ratios.get(s.name)!),
    ]),
    notes: [
      "Client, Workers and PostgreSQL share this machine's cores: the server is the bottleneck here, so the designs look closer than they would with the server elsewhere. See README, 'Several isolates: capGroup or share()?', for how each scales with cores.",
    ],
  };
}

async function fairness(url: string): Promise<Table> {
  const text = "select pg_sleep(0.005)";
  const budget = 6;
  const waits: number[] = [];
  const ratios: number[] = [];
  const shares: number[][] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const [a, b] = startWorkers(2);
    const group = `bench-d-${Deno.pid}-${++groups}`;
    try {
      for (const w of [a, b]) await ask(w, { cmd: "open", url, maxSize: budget, group, pipeline: 1 });
      await ask(a, { cmd: "run", concurrency: 12, ms: 200, text }); // a holds the whole budget
      const first = ask(a, { cmd: "run", concurrency: 12, ms: RUN_MS + 500, text });
      waits.push((await ask(b, { cmd: "first", text })).ms);
      const second = await ask(b, { cmd: "run", concurrency: 12, ms: RUN_MS, text });
      const runs = [await first, second];
      const q = runs.map(qps);
      ratios.push(Math.max(...q) / Math.max(1e-9, Math.min(...q)));
      shares.push(runs.map((run) => run.connections));
    } finally {
      await Promise.all([a, b].map((w) => ask(w, { cmd: "close" }).catch(() => {})));
      a.terminate();
      b.terminate();
    }
    progress(`cap_group fairness round ${r + 1}/${ROUNDS}`);
  }
  return {
    title: `(d) Two busy isolates on one capGroup of ${budget}: 12 tasks each, ${text}, the second arriving late`,
    columns: [
      "late isolate's first statement (median)",
      "busy isolates' max/min q/s (median, min-max)",
      "poolSize a+b at the end (an attempt waiting for a slot included)",
    ],
    rows: [[
      fmtMs(median(waits)),
      `${fmtNum(median(ratios), 2)} (${fmtNum(Math.min(...ratios), 2)}-${fmtNum(Math.max(...ratios), 2)})`,
      shares.map((s) => s.join("+")).join(", "),
    ]],
    notes: [
      "A returned connection is closed for another isolate that waits and holds two fewer, so busy isolates even out to within one connection; the first isolate's run overlaps the second's whole window.",
    ],
  };
}

/** Runs the four parts and returns their tables. */
export async function runCapGroup(): Promise<BenchResult> {
  const url = databaseUrl();
  const tables = [await checkoutCost(), await skewed(url), await designs(url), await fairness(url)];
  return {
    name: "capGroup: one budget across isolates",
    method: [
      `${ROUNDS} rounds; setups alternate in rotating order each round; a ratio is the median of per-round ratios (min-max).`,
      `(b) ${
        fmtNum(CYCLE_OPS)
      } sequential cycles per round and pool. (a), (c): fresh Workers and pools per run, a 200 ms warm-up, then a ${RUN_MS} ms window.`,
    ],
    tables,
  };
}

if (import.meta.main) await emit(await runCapGroup());
