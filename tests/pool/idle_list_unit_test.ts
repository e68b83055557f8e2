/**
 * The idle list and the one method that moves a connection's state: O(1)
 * removal anywhere, both ends, and every illegal move refused.
 */
import assert from "node:assert/strict";
import { Entry, type EntryState } from "../../src/core/_entry.ts";
import { IdleList } from "../../src/pool/_idle.ts";
import { PoolError } from "../../src/errors.ts";

const owner = { putconn: () => Promise.resolve() };
const entry = (name: string) => new Entry({ name }, owner, Infinity);
const names = (list: IdleList<{ name: string }>) => list.toArray().map((e) => e.conn.name);

Deno.test("IdleList: push marks idle, shift takes the oldest, pop the newest, each reserved for the caller", () => {
  const list = new IdleList<{ name: string }>();
  const [a, b, c] = [entry("a"), entry("b"), entry("c")];
  for (const e of [a, b, c]) list.push(e);
  assert.deepEqual([a.state, b.state, c.state], ["idle", "idle", "idle"]);
  assert.equal(list.length, 3);
  assert.equal(list.shift(), a);
  assert.equal(list.pop(), c);
  assert.deepEqual([a.state, c.state, b.state], ["reserved", "reserved", "idle"]);
  assert.deepEqual(names(list), ["b"]);
  assert.equal(list.shift(), b);
  assert.equal(list.shift(), undefined);
  assert.equal(list.pop(), undefined);
  assert.equal(list.length, 0);
});

Deno.test("IdleList: remove takes an entry out of the middle, the ends or a list of one, and refuses one not idle", () => {
  const list = new IdleList<{ name: string }>();
  const all = ["a", "b", "c", "d", "e"].map(entry);
  for (const e of all) list.push(e);
  assert.equal(list.remove(all[2]), true);
  assert.deepEqual(names(list), ["a", "b", "d", "e"]);
  assert.equal(list.remove(all[0]), true);
  assert.equal(list.remove(all[4]), true);
  assert.deepEqual(names(list), ["b", "d"]);
  assert.equal(list.remove(all[2]), false, "a second remove changes nothing");
  assert.deepEqual(names(list), ["b", "d"]);
  assert.equal(list.remove(all[1]), true);
  assert.equal(list.remove(all[3]), true);
  assert.equal(list.length, 0);
  assert.deepEqual(names(list), []);
  list.push(all[3]); // a removed entry can come back, at the back
  list.push(all[1]);
  assert.deepEqual(names(list), ["d", "b"]);
});

Deno.test("IdleList: removal costs the same with 100,000 idle entries as with 10 (no scan)", () => {
  const list = new IdleList<{ name: string }>();
  const all = Array.from({ length: 100_000 }, (_, i) => entry(String(i)));
  for (const e of all) list.push(e);
  // Removing every other entry from the middle out would take ~2.5e9 steps with a scan.
  for (let i = 1; i < all.length; i += 2) assert.equal(list.remove(all[i]), true);
  assert.equal(list.length, 50_000);
  assert.deepEqual(list.takeAll().map((e) => e.conn.name).slice(0, 3), ["0", "2", "4"]);
  assert.equal(list.length, 0);
  assert.ok(all.every((e) => e.state === "reserved"));
});

Deno.test("Entry.moveTo: closed is final, no state moves to itself, and the refused move changes nothing", () => {
  const states: EntryState[] = ["idle", "in_use", "reserved", "closed"];
  for (const from of states) {
    for (const to of states) {
      const e = entry("x");
      if (from !== "reserved") e.moveTo(from);
      const legal = from !== to && from !== "closed";
      if (legal) {
        e.moveTo(to);
        assert.equal(e.state, to);
      } else {
        assert.throws(
          () => e.moveTo(to),
          (err: unknown) => err instanceof PoolError && /cannot move/.test(String(err)),
        );
        assert.equal(e.state, from);
      }
    }
  }
});
