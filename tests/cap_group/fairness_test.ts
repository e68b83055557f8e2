/**
 * capGroup shares its budget fairly between busy isolates (Workers, each with
 * its own sockets) and gets back within it as connections come back. Every
 * test samples `pg_stat_activity` by application_name every 2 ms.
 */
import assert from "node:assert/strict";
import { type TestDatabase, waitFor, withTestDatabase } from "../_db.ts";
import { sampleApp, type TestWorker, withinBudget, withWorkers } from "../_shared_helpers.ts";
import { HEARTBEAT_MS, STALE_MS } from "../../src/cap_group/_member.ts";

let groups = 0;
/** A group and application_name no other test (or test file running in parallel) uses. */
function group(db: TestDatabase): { group: string; app: string; url: string } {
  const g = `fair-${Deno.pid}-${++groups}-${Math.random().toString(36).slice(2, 8)}`;
  const url = new URL(db.url);
  url.searchParams.set("application_name", g);
  return { group: g, app: g, url: url.toString() };
}

/** Opens a pool on one new group in each Worker, named a, b, ... (`extra`: more options for every pool). */
async function openGroup(
  db: TestDatabase,
  workers: TestWorker[],
  maxSize: number,
  extra: Record<string, unknown> = {},
): Promise<{ group: string; app: string; url: string }> {
  const made = group(db);
  for (const [i, w] of workers.entries()) {
    await w.call("open", { url: made.url, group: made.group, maxSize, name: String.fromCharCode(97 + i), ...extra });
  }
  return made;
}

/** Closes the pools of the (live) Workers. */
async function closeAll(...workers: TestWorker[]): Promise<void> {
  for (const w of workers) await w.call("close");
}

type Load = { ops: number; timeouts: number };

/** A call awaited later: a failure before then is the test's, not an unhandled rejection. */
function later<T>(p: Promise<T>): Promise<T> {
  p.catch(() => {});
  return p;
}
const STATEMENT = "select pg_sleep(0.005)";

Deno.test("capGroup: two busy isolates on one budget even out (neither starves)", () =>
  withTestDatabase((db) =>
    withWorkers(2, async ([a, b]) => {
      const { app } = await openGroup(db, [a, b], 6);
      try {
        await withinBudget(app, 6, async () => {
          // a takes the whole budget first; b starts the same load while a keeps every connection busy.
          const first = later(a.call<Load>("load", { loops: 12, ms: 4_000, timeout: 10_000, text: STATEMENT }));
          await waitFor(async () => (await a.call<Record<string, number>>("stats")).poolSize === 6, {
            message: "a holds the whole budget",
          });
          const second = later(b.call<Load>("load", { loops: 12, ms: 3_000, timeout: 10_000, text: STATEMENT }));
          // Within one connection open, each pool's size counting at most one attempt waiting for a slot.
          let shares = "";
          await waitFor(async () => {
            const sa = await a.call<Record<string, number>>("stats");
            const sb = await b.call<Record<string, number>>("stats");
            shares = `${sa.poolSize} + ${sb.poolSize}`;
            return sb.poolSize >= 2 && Math.abs(sa.poolSize - sb.poolSize) <= 2;
          }, { timeout: 3_000, message: "b got an even share while a was busy" }).catch((error) => {
            throw new Error(`${error.message} (last shares ${shares})`);
          });
          const [la, lb] = await Promise.all([first, second]);
          assert.equal(lb.timeouts, 0);
          assert.ok(lb.ops > 0, `b did ${lb.ops} operations next to a's ${la.ops}`);
        });
      } finally {
        await closeAll(a, b);
      }
    })
  ));

Deno.test("capGroup: an isolate arriving while another busy one holds the whole budget is served within its timeout", () =>
  withTestDatabase((db) =>
    withWorkers(3, async ([a, b, c]) => {
      const { app } = await openGroup(db, [a, b, c], 3);
      try {
        await withinBudget(app, 3, async () => {
          const busy = later(a.call<Load>("load", { loops: 8, ms: 4_000, timeout: 10_000, text: STATEMENT }));
          await waitFor(async () => (await a.call<Record<string, number>>("stats")).poolSize === 3, {
            message: "a holds the whole budget",
          });
          const late = await Promise.all([
            b.call<Load>("load", { loops: 2, ms: 1_500, timeout: 2_000, text: STATEMENT }),
            c.call<Load>("load", { loops: 2, ms: 1_500, timeout: 2_000, text: STATEMENT }),
          ]);
          for (const l of late) {
            assert.equal(l.timeouts, 0, `a late isolate timed out ${l.timeouts} times`);
            assert.ok(l.ops > 0);
          }
          await busy;
        });
      } finally {
        await closeAll(a, b, c);
      }
    })
  ));

Deno.test("capGroup: a late isolate is served within its timeout while the busy ones pipeline pool.query()", () =>
  withTestDatabase((db) =>
    withWorkers(3, async ([a, b, c]) => {
      const { app } = await openGroup(db, [a, b, c], 2, { timeout: 1_000 });
      try {
        await withinBudget(app, 2, async () => {
          // a and b keep every connection busy with pipelined statements: their lanes never go idle.
          const busy = [a, b].map((w) => later(w.call<Load>("queryLoad", { loops: 32, ms: 4_000, text: STATEMENT })));
          await waitFor(async () => {
            const sizes = await Promise.all([a, b].map((w) => w.call<Record<string, number>>("stats")));
            return sizes[0].poolSize + sizes[1].poolSize >= 2;
          }, { message: "the busy isolates hold the budget" });
          const late = await c.call<Load>("queryLoad", { loops: 2, ms: 1_500, text: STATEMENT });
          assert.equal(late.timeouts, 0, `the late isolate timed out ${late.timeouts} times`);
          assert.ok(late.ops > 0, "the late isolate got nothing done");
          await Promise.all(busy);
        });
      } finally {
        await closeAll(a, b, c);
      }
    })
  ));

Deno.test("capGroup: an idle connection in one isolate is closed for a waiter in another, back and forth", () =>
  withTestDatabase((db) =>
    withWorkers(2, async ([a, b]) => {
      const { app } = await openGroup(db, [a, b], 3, { timeout: 5_000 });
      try {
        await withinBudget(app, 3, async () => {
          assert.equal(await a.call("hold", { n: 3 }), 3);
          await a.call("putAll");
          await b.call("borrow", { timeout: 5_000 }); // a closes one idle for b; b's stays idle in b
          assert.equal((await b.call<Record<string, number>>("stats")).poolSize, 1);
          assert.equal(await a.call("hold", { n: 3 }), 3, "b closed its idle one for a");
          await a.call("putAll");
        });
      } finally {
        await closeAll(a, b);
      }
    })
  ));

for (const minSize of [0, 3]) {
  Deno.test(`capGroup: an isolate woken after its slots were reclaimed closes what it returns until the group is back within budget (minSize ${minSize})`, () =>
    withTestDatabase((db) =>
      withWorkers(2, async ([a, b]) => {
        const { group: g, app, url } = await openGroup(db, [a], 4, { minSize });
        await b.call("open", { url, group: g, maxSize: 4, name: "b" });
        // a holds the budget: with minSize 3 its three warm ones plus one borrowed, all in use.
        assert.equal(await a.call("hold", { n: 4 }), 4);
        const blocked = later(a.call("block", { ms: STALE_MS + 3 * HEARTBEAT_MS }));
        // b takes a for dead (silent past STALE_MS) and fills the budget next to a's backends: over it while a sleeps.
        assert.equal(await b.call("hold", { n: 4 }), 4);
        await blocked;
        await a.call("putAll"); // a wakes and returns what it borrowed
        const back = sampleApp(app);
        try {
          await waitFor(() => back.now() > 0 && back.now() <= 4, {
            timeout: 5_000,
            message: "back within the budget of 4",
          });
          await b.call("putAll");
          // From now on the group stays within budget, both isolates working.
          await withinBudget(app, 4, async () => {
            await Promise.all([
              a.call<Load>("load", { loops: 3, ms: 1_000, timeout: 5_000, text: STATEMENT }),
              b.call<Load>("load", { loops: 3, ms: 1_000, timeout: 5_000, text: STATEMENT }),
            ]);
          });
        } finally {
          await back.stop();
          await closeAll(a, b);
        }
      })
    ));
}

Deno.test("capGroup: a pool joining while the group's only member is blocked waits for it instead of starting a second budget", () =>
  withTestDatabase((db) =>
    withWorkers(2, async ([a, b]) => {
      const { group: g, app, url } = await openGroup(db, [a], 3);
      try {
        await withinBudget(app, 3, async () => {
          assert.equal(await a.call("hold", { n: 3 }), 3);
          await a.call("putAll"); // three idle connections in a: the whole budget
          // a's loop is blocked (under the staleness bound) while b looks for the group's table.
          const blocked = later(a.call("block", { ms: 3_000 }));
          await b.call("open", { url, group: g, maxSize: 3, name: "b" });
          const waited = await b.call<number>("borrow", { timeout: 15_000 });
          await blocked;
          const sa = await a.call<Record<string, number>>("stats");
          const sb = await b.call<Record<string, number>>("stats");
          assert.equal(sa.groupSize, sb.groupSize, "one table");
          assert.ok(waited < 15_000);
        });
      } finally {
        await closeAll(a, b);
      }
    })
  ));

Deno.test("capGroup: a Worker terminated during long statements gives its slots on only after their backends stopped", () =>
  withTestDatabase((db) =>
    withWorkers(2, async ([a, b]) => {
      const { app } = await openGroup(db, [a, b], 2);
      try {
        await withinBudget(app, 2, async (sampler) => {
          assert.equal(await a.call("hold", { n: 2 }), 2);
          await a.call("runOnHeld", { text: "select pg_sleep(30)" });
          await waitFor(() => sampler.now() === 2, { message: "both statements run" });
          a.terminate(); // its sockets close; its row goes stale
          const waited = await b.call<number>("borrow", { timeout: STALE_MS + 5 * HEARTBEAT_MS });
          assert.ok(waited < STALE_MS + 5 * HEARTBEAT_MS);
          await b.call("hold", { n: 2 });
          await b.call("putAll");
        });
      } finally {
        await b.call("close");
      }
    })
  ));
