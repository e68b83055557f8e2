/**
 * The cap group's shared-memory slot table, without PostgreSQL: two views over
 * one buffer stand for two isolates (Atomics behave the same on one thread).
 */
import assert from "node:assert/strict";
import { startWorker } from "../_shared_helpers.ts";
import { waitFor } from "../_db.ts";
import { GroupChannel } from "../../src/cap_group/_discovery.ts";
import { hash32, MAX_ROWS, type Row, SlotTable } from "../../src/cap_group/_slot_table.ts";

const T = hash32("localhost:5432/app");

function joined(table: SlotTable, minSize = 0, now = 0): Row {
  const j = table.join(table.max, T, minSize, now);
  assert.ok(typeof j !== "string", `join refused: ${j}`);
  return j.row;
}

Deno.test("slot table: reservations across members never exceed the cap", () => {
  const a = SlotTable.create(3, T);
  const b = new SlotTable(a.buffer); // another isolate's view of the same memory
  const ra = joined(a);
  const rb = joined(b);
  assert.ok(a.tryReserve(ra));
  assert.ok(b.tryReserve(rb));
  assert.ok(a.tryReserve(ra));
  assert.equal(b.tryReserve(rb), false, "the fourth slot is refused");
  assert.equal(a.used, 3);
  assert.equal(b.held(rb), 1);
  b.release(rb);
  assert.equal(a.used, 2);
  assert.ok(a.tryReserve(ra));
});

Deno.test("slot table: a waiting member is served before a newcomer (FIFO by ticket)", () => {
  const a = SlotTable.create(1, T);
  const b = new SlotTable(a.buffer);
  const ra = joined(a);
  const rb = joined(b);
  assert.ok(a.tryReserve(ra));
  const ticket = b.nextTicket();
  b.setQueue(rb, 1, ticket);
  a.release(ra);
  assert.equal(a.tryReserve(ra), false, "a newcomer does not jump the queue");
  assert.ok(b.tryReserve(rb), "the oldest ticket gets the free slot");
  b.setQueue(rb, -1, 0);
  assert.equal(a.queued, 0);
});

Deno.test("slot table: the older of two waiting members goes first", () => {
  const a = SlotTable.create(1, T);
  const b = new SlotTable(a.buffer);
  const ra = joined(a);
  const rb = joined(b);
  a.setQueue(ra, 1, a.nextTicket());
  b.setQueue(rb, 1, b.nextTicket());
  assert.equal(b.tryReserve(rb), false);
  assert.ok(a.tryReserve(ra));
});

Deno.test("slot table: room is claimed once per waiting attempt, not by every member", () => {
  const a = SlotTable.create(2, T);
  const b = new SlotTable(a.buffer);
  const c = new SlotTable(a.buffer);
  const ra = joined(a);
  const rb = joined(b);
  const rc = joined(c);
  assert.ok(a.tryReserve(ra));
  assert.ok(b.tryReserve(rb));
  c.setQueue(rc, 1, c.nextTicket());
  assert.equal(a.roomNeeded(ra), 1);
  assert.ok(a.claimShed(ra));
  assert.equal(b.claimShed(rb), false, "one close is under way for the one waiter");
  a.release(ra, true); // the shed connection finished closing
  assert.equal(a.roomNeeded(ra), 0, "the free slot covers the waiter");
  assert.ok(c.tryReserve(rc));
});

Deno.test("slot table: a returned connection makes room toward even shares, not for a member that already holds as much", () => {
  const a = SlotTable.create(8, T);
  const busy = new SlotTable(a.buffer);
  const ra = joined(a);
  const rb = joined(busy);
  assert.ok(a.tryReserve(ra));
  for (let n = 0; n < 7; n++) assert.ok(busy.tryReserve(rb));
  busy.setQueue(rb, 1, busy.nextTicket()); // the busy member wants an eighth
  assert.equal(a.roomNeeded(ra, true), 0, "1 connection is not closed for a member holding 7");
  assert.equal(a.claimShed(ra, true), false);
  assert.equal(a.roomNeeded(ra), 1, "an idle one is owed to any waiter, however much it holds");
  // Shares 6 and 2 with the 2-holder waiting: the 6-holder gives up to two.
  busy.setQueue(rb, -1, 0);
  busy.release(rb);
  a.tryReserve(ra);
  a.setQueue(ra, 1, a.nextTicket());
  assert.equal(busy.roomNeeded(rb, true), 1);
  assert.ok(busy.claimShed(rb, true));
  assert.equal(busy.claimShed(rb, true), false, "one waiting attempt, one close");
  busy.release(rb, true);
  assert.ok(a.tryReserve(ra));
  a.setQueue(ra, -1, 0);
  a.setQueue(ra, 1, a.nextTicket()); // 3 vs 5: a 4th for a is owed
  assert.equal(busy.roomNeeded(rb, true), 1);
  busy.release(rb);
  assert.ok(a.tryReserve(ra));
  a.setQueue(ra, -1, 0);
  a.setQueue(ra, 1, a.nextTicket()); // 4 vs 4: even, nothing owed
  assert.equal(busy.roomNeeded(rb, true), 0);
});

Deno.test("slot table: minSize counts against the budget and leaves one slot for growth", () => {
  const a = SlotTable.create(5, T);
  const first = a.join(5, T, 3, 0);
  assert.ok(typeof first !== "string");
  assert.equal(first.minSize, 3);
  const second = a.join(5, T, 3, 0);
  assert.ok(typeof second !== "string");
  assert.equal(second.minSize, 1, "lowered to maxSize - 1 - 3");
  assert.equal(a.minSum, 4);
  a.leave(first.row);
  assert.equal(a.minSum, 1, "a member that leaves gives its minSize back");
});

Deno.test("slot table: a different maxSize or target is refused", () => {
  const a = SlotTable.create(5, T);
  assert.equal(a.join(6, T, 0, 0), "maxSize");
  assert.equal(a.join(5, hash32("otherhost:5432/app"), 0, 0), "target");
});

Deno.test("slot table: a full table refuses a member", () => {
  const a = SlotTable.create(5, T);
  for (let i = 0; i < MAX_ROWS; i++) joined(a);
  assert.equal(a.join(5, T, 0, 0), "full");
});

Deno.test("slot table: a member silent past the staleness bound gives back its slots, waits and minSize", () => {
  const a = SlotTable.create(4, T);
  const dead = new SlotTable(a.buffer);
  const ra = joined(a, 0, 1_000);
  const rd = joined(dead, 2, 1_000);
  assert.ok(dead.tryReserve(rd));
  assert.ok(dead.tryReserve(rd));
  dead.setQueue(rd, 1, dead.nextTicket());
  a.beat(ra, 6_500);
  assert.equal(a.reclaimStale(6_000, 5_000), 0, "not stale yet at 5 s");
  assert.equal(a.reclaimStale(6_001, 5_000), 1);
  assert.equal(a.used, 0);
  assert.equal(a.queued, 0);
  assert.equal(a.minSum, 0);
  assert.equal(dead.owns(rd), false, "the silent member sees it lost its row");
  assert.ok(a.owns(ra));
  assert.equal(a.reclaimStale(20_000, 5_000), 1, "a silent live member is reclaimed too");
});

Deno.test("slot table: a reclaimed member that comes back can be counted over the cap", () => {
  const a = SlotTable.create(1, T);
  const r = joined(a);
  assert.ok(a.tryReserve(r));
  assert.equal(a.forceReserve(r, false), false);
  assert.ok(a.forceReserve(r, true));
  assert.equal(a.used, 2);
});

Deno.test("slot table: tickets compare across the 32-bit wrap", () => {
  const a = SlotTable.create(1, T);
  const b = new SlotTable(a.buffer);
  const ra = joined(a);
  const rb = joined(b);
  a.setQueue(ra, 1, 0x7fff_ffff); // issued just before the wrap
  b.setQueue(rb, 1, -0x7fff_ffff); // just after
  assert.equal(b.tryReserve(rb), false);
  assert.ok(a.tryReserve(ra));
});

Deno.test("slot table: a buffer that is not a table is refused", () => {
  assert.throws(() => new SlotTable(new SharedArrayBuffer(16)), TypeError);
  assert.throws(() => SlotTable.create(0, T), RangeError);
});

Deno.test("slot table: four Workers hammering one table in parallel never see more than the cap", async () => {
  const table = SlotTable.create(2, T);
  const workers = Array.from({ length: 4 }, () => startWorker("cap_group_client.ts"));
  try {
    const results = await Promise.all(
      workers.map((w) =>
        w.call<{ violations: number; reserved: number }>("hammer", { buffer: table.buffer, rounds: 20_000 })
      ),
    );
    for (const r of results) {
      assert.equal(r.violations, 0);
      assert.ok(r.reserved > 0, "every Worker got slots");
    }
    assert.equal(table.used, 0, "every reservation was released");
  } finally {
    for (const w of workers) w.terminate();
  }
});

Deno.test("discovery: joiners that start together end on one table", async () => {
  const group = `disc-${Math.random()}`;
  const created: number[] = [];
  const channels = [0, 1, 2].map(() => new GroupChannel(group, () => {}, () => {}));
  // The channels and their timers are unref'd (a pool never holds a process open): hold the test open.
  const keepAlive = setTimeout(() => {}, 60_000);
  try {
    const tables = await Promise.all(channels.map((c) =>
      c.find(() => {
        const t = SlotTable.create(4, T);
        created.push(t.id);
        return t;
      })
    ));
    assert.equal(created.length, 1, "one election winner created the table");
    for (const t of tables) assert.equal(t.id, created[0]);
  } finally {
    for (const c of channels) await c.close(new Error("closed"));
    clearTimeout(keepAlive);
  }
});

Deno.test("discovery: a member that hears of a table with a lower id is told to move to it", async () => {
  const group = `split-${Math.random()}`;
  const split: SlotTable[] = [];
  const member = new GroupChannel(group, () => {}, (other) => split.push(other));
  const outsider = new BroadcastChannel(`tidepool.capGroup:${group}`);
  const keepAlive = setTimeout(() => {}, 60_000);
  try {
    const mine = await member.find(() => SlotTable.create(4, T));
    let lower = SlotTable.create(4, T);
    while (lower.id >= mine.id) lower = SlotTable.create(4, T);
    outsider.postMessage({ t: "table", buffer: lower.buffer });
    await waitFor(() => split.length === 1);
    assert.equal(split[0].id, lower.id);
    outsider.postMessage({ t: "table", buffer: mine.buffer }); // its own table: no split
    outsider.postMessage({ t: "table", buffer: new SharedArrayBuffer(8) }); // not a table: ignored
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(split.length, 1);
  } finally {
    outsider.close();
    await member.close(new Error("closed"));
    clearTimeout(keepAlive);
  }
});
