/**
 * capGroup and the connection lifecycle: every path that abandons an attempt
 * or replaces connections (close() with attempts in flight, drain()) gives
 * each slot back exactly once, and never lets the group's backends exceed its
 * budget.
 */
import assert from "node:assert/strict";
import { getLogger } from "@logtape/logtape";
import type pg from "pg";
import { ConnectionPool, createPgDriver } from "../../mod.ts";
import type { Driver } from "../../src/driver.ts";
import { CapGroupMember } from "../../src/cap_group/_member.ts";
import { waitFor, withTestDatabase } from "../_db.ts";
import { samplePeak } from "../_shared_helpers.ts";
import { captureLogs } from "../_pool_helpers.ts";

let groups = 0;
/** A group name no other test (or test file running in parallel) uses. */
function group(): string {
  return `lifecycle-${Deno.pid}-${++groups}-${Math.random()}`;
}

Deno.test("capGroup: a pool closed while attempts are in flight (connecting or queued for a slot) gives every slot back", () =>
  withTestDatabase(async (db) => {
    await using logs = await captureLogs();
    const g = group();
    // The observer holds one slot for the whole test and reads the group's count. Every pool
    // here takes a conninfo function: one group caps one target, and that is its description.
    const url = () => db.url;
    await using observer = new ConnectionPool({ conninfo: url, capGroup: g, minSize: 0, maxSize: 3 });
    const held = await observer.getconn();
    // Its attempts hang in connect (the conninfo function never answers) until close() aborts them.
    const gate = Promise.withResolvers<string>();
    const pool = new ConnectionPool({
      conninfo: () => gate.promise,
      capGroup: g,
      minSize: 2,
      maxSize: 3,
      numWorkers: 3,
      connectTimeout: 0,
    });
    const requests = Array.from({ length: 3 }, () => pool.getconn({ timeout: 30_000 }).then(() => "got", (e) => e));
    // The two attempts filling minSize hold the group's two free slots; the one growing for
    // the requests waits for a slot.
    await waitFor(() => observer.getStats().groupSize === 3, { timeout: 10_000, message: "two attempts hold slots" });
    await waitFor(() => pool.getStats().poolSize === 3, { timeout: 10_000, message: "three attempts under way" });
    await pool.close({ timeout: 1_000 });
    // Leaving the group drops a member's row whatever it held: the aborted attempts must have freed theirs first.
    assert.deepEqual(logs.messages().filter((m) => m.includes("slots held")), []);
    for (const outcome of await Promise.all(requests)) {
      assert.equal((outcome as Error).name, "PoolClosedError");
    }
    await waitFor(() => observer.getStats().groupSize === 1, {
      timeout: 5_000,
      message: `only the observer's slot left, got ${observer.getStats().groupSize}`,
    });
    // The slots are usable again: the observer fills the whole budget.
    const more = await Promise.all([observer.getconn({ timeout: 10_000 }), observer.getconn({ timeout: 10_000 })]);
    assert.equal(observer.getStats().groupSize, 3);
    for (const c of [held, ...more]) await observer.putconn(c);
    gate.resolve(db.url);
    await observer.close();
    // The pool of one isolate left: nobody counts any slot (a fresh member reads the table).
    await using probe = new ConnectionPool({ conninfo: url, capGroup: g, minSize: 0, maxSize: 3 });
    await probe.open();
    await waitFor(() => probe.getStats().groupSize === 0, {
      timeout: 5_000,
      message: `group empty after both pools closed, got ${probe.getStats().groupSize}`,
    });
  }));

Deno.test("capGroup: drain() replaces every connection without ever exceeding maxSize backends", () =>
  withTestDatabase(async (db) => {
    const g = group();
    await using pool = new ConnectionPool({ conninfo: db.url, capGroup: g, minSize: 3, maxSize: 3 });
    await pool.open({ wait: true, timeout: 10_000 });
    const borrowed = await pool.getconn();
    const before = new Set(
      (await pool.query<{ pid: number }>(
        "select pid from pg_stat_activity where datname = current_database()",
      )).rows.map((r) => r.pid),
    );
    const peak = samplePeak(db.name);
    let drainedPeak: number;
    try {
      const drained = pool.drain({ timeout: 20_000 });
      await pool.putconn(borrowed); // a borrowed one is replaced on return
      await drained;
    } finally {
      drainedPeak = await peak.stop();
    }
    assert.ok(drainedPeak <= 3, `never more than maxSize backends during drain(), saw ${drainedPeak}`);
    const after = (await pool.query<{ pid: number }>("select pg_backend_pid() as pid")).rows[0].pid;
    assert.ok(!before.has(after), "the connections were replaced");
    const stats = pool.getStats();
    assert.ok(stats.groupSize! <= 3, `group count within the budget, got ${stats.groupSize}`);
    await waitFor(() => pool.getStats().groupSize === pool.getStats().poolSize, {
      message: "one slot per connection of the only pool",
    });
  }));

Deno.test("capGroup: a connect attempt abandoned at connectTimeout frees its slot while the pool stays open", () =>
  withTestDatabase(async (db) => {
    const g = group();
    const url = () => db.url;
    await using observer = new ConnectionPool({ conninfo: url, capGroup: g, minSize: 0, maxSize: 3 });
    const held = await observer.getconn();
    await using pool = new ConnectionPool({
      conninfo: () => new Promise<string>(() => {}), // never answers: every attempt times out
      capGroup: g,
      minSize: 2,
      maxSize: 3,
      connectTimeout: 300,
      backoff: { initialDelay: 60_000 }, // no retry during the test
    });
    await pool.open();
    await waitFor(() => pool.getStats().connectionsErrors === 2, {
      timeout: 10_000,
      message: "both attempts timed out",
    });
    await waitFor(() => observer.getStats().groupSize === 1, {
      timeout: 5_000,
      message: `only the observer's slot left, got ${observer.getStats().groupSize}`,
    });
    await observer.putconn(held);
  }));

Deno.test("capGroup wrapper: a connection closed twice (a close forced past the deadline) frees its slot once, when the first close (and its cancel) finished", async () => {
  const slowCloses: (() => void)[] = [];
  const driver: Driver<{ id: number }> = {
    description: "fake://forced-close",
    connect: () => Promise.resolve({ id: Math.random() }),
    // An ordinary close hangs (a silent link); a forced one (a small limit) finishes at once.
    close: (_conn, timeoutMs) =>
      timeoutMs !== undefined && timeoutMs < 10
        ? Promise.resolve()
        : new Promise<void>((resolve) => slowCloses.push(resolve)),
    status: () => "idle",
    rollback: () => Promise.resolve(),
    ping: () => Promise.resolve(),
    query: () => Promise.resolve({ rows: [], rowCount: 0, fields: [] }),
    watch: () => {},
  };
  const member = new CapGroupMember(group(), 3, 0, {
    shedIdle: () => false,
    clampMinSize: () => {},
    waiting: () => 0,
    log: getLogger(["tidepool", "test"]),
    pool: "forced",
  });
  const wrapped = member.wrap(driver);
  member.start();
  // The group's channel and timers are unref'd (a pool's sockets keep a real program alive): hold the loop open.
  const keepAlive = setInterval(() => {}, 50);
  try {
    const signal = new AbortController().signal;
    const first = await wrapped.connect(signal);
    await wrapped.connect(signal);
    assert.equal(member.stats().groupSize, 2);
    const ordinary = wrapped.close(first);
    assert.equal(member.stats().groupSize, 2, "a close under way still holds its slot");
    // Forced: the socket is destroyed, but the backend is gone only once the first close (which
    // cancelled a running statement) has finished, so the slot stays with that one.
    const forced = wrapped.close(first, 1);
    const timer = Promise.withResolvers<string>();
    const id = setTimeout(() => timer.resolve("still closing"), 50);
    assert.equal(await Promise.race([forced.then(() => "done"), timer.promise]), "still closing");
    clearTimeout(id);
    assert.equal(member.stats().groupSize, 2, "a forced close frees nothing ahead of the first close");
    for (const resolve of slowCloses) resolve();
    await ordinary;
    await forced;
    assert.equal(member.stats().groupSize, 1, "freed once, when the first close finished");
  } finally {
    for (const resolve of slowCloses) resolve();
    await member.close();
    clearInterval(keepAlive);
  }
});

Deno.test("capGroup wrapper: the optional driver members (cancel, setRef, setPipelined, hostOf) reach a driver with private fields", async () => {
  class PrivateDriver implements Driver<{ id: number }> {
    readonly #calls: string[] = [];
    readonly description = "fake://private";
    get calls(): string[] {
      return this.#calls;
    }
    connect = () => Promise.resolve({ id: 1 });
    close(): Promise<void> {
      this.#calls.push("close");
      return Promise.resolve();
    }
    status = () => "idle" as const;
    rollback = () => Promise.resolve();
    ping = () => Promise.resolve();
    query = () => Promise.resolve({ rows: [], rowCount: 0, fields: [] });
    watch = () => {};
    cancel(): Promise<void> {
      this.#calls.push("cancel");
      return Promise.resolve();
    }
    setRef(_conn: { id: number }, ref: boolean): void {
      this.#calls.push(`setRef ${ref}`);
    }
    setPipelined(_conn: { id: number }, on: boolean): void {
      this.#calls.push(`setPipelined ${on}`);
    }
    hostOf(): string {
      this.#calls.push("hostOf");
      return "db1:5432";
    }
  }
  const driver = new PrivateDriver();
  const member = new CapGroupMember(group(), 2, 0, {
    shedIdle: () => false,
    clampMinSize: () => {},
    waiting: () => 0,
    log: getLogger(["tidepool", "test"]),
    pool: "private",
  });
  const wrapped = member.wrap(driver);
  member.start();
  const keepAlive = setInterval(() => {}, 50); // the group's channel and timers are unref'd
  try {
    const conn = await wrapped.connect(new AbortController().signal);
    const { cancel, setRef, setPipelined, hostOf } = wrapped; // called unbound, as the pool's hooks may
    await cancel!(conn);
    setRef!(conn, false);
    setPipelined!(conn, true);
    assert.equal(hostOf!(conn), "db1:5432");
    await wrapped.close(conn);
    assert.deepEqual(driver.calls, ["cancel", "setRef false", "setPipelined true", "hostOf", "close"]);
    assert.equal(member.stats().groupSize, 0);
  } finally {
    await member.close();
    clearInterval(keepAlive);
  }
});

/** The group's slot table, as another isolate's member gets it: ask on the group's channel. */
async function tableOf(g: string): Promise<import("../../src/cap_group/_slot_table.ts").SlotTable> {
  const { SlotTable } = await import("../../src/cap_group/_slot_table.ts");
  const channel = new BroadcastChannel(`tidepool.capGroup:${g}`);
  try {
    return await new Promise((resolve) => {
      channel.onmessage = (e) => {
        if (e.data?.t === "table") resolve(new SlotTable(e.data.buffer));
      };
      channel.postMessage({ t: "hello", id: -1 });
    });
  } finally {
    channel.close();
  }
}

Deno.test("capGroup: after its row was reclaimed (a long-blocked isolate), a live pool's close of one connection leaves the group counting exactly what it still holds", () =>
  withTestDatabase(async (db) => {
    const g = group();
    await using pool = new ConnectionPool({ conninfo: db.url, minSize: 0, maxSize: 3, capGroup: g });
    await pool.open();
    const conns = [await pool.getconn(), await pool.getconn(), await pool.getconn()];
    const table = await tableOf(g);
    assert.equal(table.used, 3);
    // Another member's tick finds this pool's heartbeat stale and reclaims its row.
    table.reclaimStale(Date.now() + 60_000, 5_000);
    assert.equal(table.used, 0);
    // The pool, alive, closes one connection: it joins again, counting the 2 it keeps.
    await pool.putconn(conns[0], { discard: true });
    await waitFor(() => pool.getStats().poolSize === 2);
    await waitFor(() => table.used === 2, { message: `group counts ${table.used}, the pool holds 2` });
    for (const conn of conns.slice(1)) await pool.putconn(conn);
  }));

Deno.test("capGroup: a close made to give room, still running when the pool's row is reclaimed, does not leave the group's count of such closes below zero", () =>
  withTestDatabase(async (db) => {
    const g = group();
    const inner = createPgDriver(db.url);
    const gate = Promise.withResolvers<void>();
    // Closes wait at the gate, so the reclaim lands while the close made for room is still under way.
    const driver: Driver<pg.Client> = {
      ...inner,
      close: async (conn, ms) => (await gate.promise, inner.close(conn, ms)),
    };
    await using pool = new ConnectionPool({ driver, minSize: 0, maxSize: 2, capGroup: g });
    await pool.open();
    const conns = [await pool.getconn(), await pool.getconn()];
    for (const conn of conns) await pool.putconn(conn); // two idle: the group is full
    const table = await tableOf(g);
    const other = table.join(2, table.target, 0, Date.now());
    assert.ok(typeof other !== "string");
    table.setQueue(other.row, 1, table.nextTicket()); // a waiter in another isolate
    const channel = new BroadcastChannel(`tidepool.capGroup:${g}`);
    channel.postMessage({ t: "poke" });
    channel.close();
    await waitFor(() => table.shedding === 1, { message: "the pool started closing an idle connection for room" });
    table.reclaimStale(Date.now() + 60_000, 5_000); // both rows look stale
    table.leave(other.row);
    gate.resolve();
    await waitFor(() => pool.getStats().poolSize === 1);
    await waitFor(() => table.used === 1, { message: `group counts ${table.used}, the pool holds 1` });
    assert.equal(table.shedding, 0);
  }));
