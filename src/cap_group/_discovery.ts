/**
 * Finding a cap group's slot table over a `BroadcastChannel`: the one
 * message-based part of a cap group. It runs once per pool (when the pool
 * first connects) and to wake waiters; reserving a slot never posts anything.
 *
 * Every isolate of a process (`deno serve --parallel` isolates, Workers) sees
 * the same `BroadcastChannel` names, and a `SharedArrayBuffer` posted on one
 * arrives as shared memory. A joiner posts `hello`; a member that has the
 * table answers with it. When nobody has it, the joiners that heard each
 * other within the discovery window elect the lowest id, which creates the
 * table and posts it. When a message came too late (a busy isolate) and two
 * tables exist, every member that hears of both moves to the one with the
 * lower id, so the group ends on one table.
 *
 * @module
 */
import { SlotTable } from "./_slot_table.ts";
import { sleep, Timers } from "../_util/_timers.ts";
import { noteTable, tableNoted } from "./_process_marker.ts";

/** How long a joiner listens before the election. */
export const DISCOVERY_MS = 250;
/**
 * How long a joiner keeps asking, instead of creating a table, when the
 * process notes that one exists (its members may be blocked): the staleness
 * bound plus a heartbeat, after which silent members count as dead anyway.
 */
export const NOTED_WAIT_MS = 6_000;

type Message =
  | { t: "hello"; id: number }
  | { t: "candidate"; id: number }
  | { t: "table"; buffer: SharedArrayBuffer }
  | { t: "poke" };

/** The channel of one member of a group. */
export class GroupChannel {
  readonly #name: string;
  readonly #group: string;
  #bc: BroadcastChannel;
  /** When find() started (performance.now()). */
  #started = 0;
  readonly #id = Math.random();
  readonly #timers = new Timers();
  readonly #seen = new Set<number>();
  readonly #onPoke: () => void;
  readonly #onSplit: (other: SlotTable) => void;
  #table: SlotTable | undefined;
  #found: PromiseWithResolvers<SlotTable> | undefined;
  #closed = false;

  /**
   * @param group The capGroup name.
   * @param onPoke Another member released a slot or needs room.
   * @param onSplit Another table for this group showed up (an election lost its messages).
   */
  constructor(group: string, onPoke: () => void, onSplit: (other: SlotTable) => void) {
    this.#name = `tidepool.capGroup:${group}`;
    this.#group = group;
    this.#onPoke = onPoke;
    this.#onSplit = onSplit;
    this.#bc = this.#open();
  }

  #open(): BroadcastChannel {
    const bc = new BroadcastChannel(this.#name);
    bc.onmessage = (e: MessageEvent<Message>) => this.#receive(e.data);
    unref(bc);
    return bc;
  }

  /** Finds the group's table, or creates it with `create` when this member wins the election. */
  find(create: () => SlotTable): Promise<SlotTable> {
    if (this.#found !== undefined) return this.#found.promise;
    this.#found = Promise.withResolvers<SlotTable>();
    this.#found.promise.catch(() => {}); // close() rejects it; the caller may be gone
    this.#started = performance.now();
    this.#round(create, 0);
    return this.#found.promise;
  }

  #round(create: () => SlotTable, round: number): void {
    if (round % 5 === 0) { // a winner that went silent: start the election over
      this.#seen.clear();
      this.#seen.add(this.#id);
      this.#post({ t: "hello", id: this.#id });
    }
    this.#timers.after(DISCOVERY_MS, () => {
      if (this.#table !== undefined || this.#closed) return;
      // A table noted in this process whose members did not answer: their loops may be blocked. A second
      // table would be a second budget, so keep asking until they wake or count as dead.
      const noted = tableNoted(this.#group) && performance.now() - this.#started < NOTED_WAIT_MS;
      if (Math.min(...this.#seen) === this.#id && !noted) {
        this.#adopt(create());
        noteTable(this.#group, this.#table!.id);
        this.#post({ t: "table", buffer: this.#table!.buffer });
      } else this.#round(create, round + 1);
    });
  }

  #adopt(table: SlotTable): void {
    this.#table = table;
    this.#timers.cancelAll();
    this.#found?.resolve(table);
  }

  #receive(m: Message): void {
    if (this.#closed) return;
    switch (m.t) {
      case "hello":
        if (this.#table !== undefined) this.#post({ t: "table", buffer: this.#table.buffer });
        else if (this.#found !== undefined) {
          this.#seen.add(m.id);
          this.#post({ t: "candidate", id: this.#id });
        }
        return;
      case "candidate":
        this.#seen.add(m.id);
        return;
      case "table": {
        let table: SlotTable;
        try {
          table = new SlotTable(m.buffer);
        } catch {
          return; // not ours (another version of the library): ignore
        }
        if (this.#table === undefined) {
          if (this.#found !== undefined) this.#adopt(table);
        } else if (table.id < this.#table.id) this.#onSplit(table);
        else if (table.id > this.#table.id) this.#post({ t: "table", buffer: this.#table.buffer }); // tell them
        return;
      }
      case "poke":
        this.#onPoke();
    }
  }

  /** Moves to `table` (the one with the lower id, after a split). */
  switchTo(table: SlotTable): void {
    this.#table = table;
    this.#post({ t: "table", buffer: table.buffer }); // members still on the other table move too
  }

  /** Wakes the other members: a slot came free, or this member waits for room. */
  poke(): void {
    this.#post({ t: "poke" });
  }

  #post(m: Message): void {
    if (this.#closed) return;
    try {
      this.#bc.postMessage(m);
    } catch {
      // Deno 2.9 drops an isolate's channel subscription when its last channel closes, and a
      // channel opened in that window can neither send ("expected i32") nor receive. A new
      // channel subscribes again.
      this.#bc.close();
      this.#bc = this.#open();
      try {
        this.#bc.postMessage(m);
      } catch {
        // Lost: waiters still poll the table, and the next message tries again.
      }
    }
  }

  /** Stops listening; a `find()` still running rejects with `reason`. */
  async close(reason: Error): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#timers.cancelAll();
    this.#found?.reject(reason);
    this.#bc.close();
    // Let Deno's receive loop see the close before a new channel opens (see #post).
    await sleep(0);
  }
}

/**
 * Like the pool's timers, the channel must not keep an isolate alive: a
 * listening BroadcastChannel would hold a script's process open and make
 * `deno serve` wait forever on SIGTERM. Deno has no public unref for it yet;
 * its channels carry an internal `refBroadcastChannel` method, used when present.
 */
function unref(bc: BroadcastChannel): void {
  const proto = Object.getPrototypeOf(bc);
  const key = Object.getOwnPropertySymbols(proto).find((s) => s.description === "refBroadcastChannel");
  const method = key === undefined ? undefined : proto[key];
  if (typeof method === "function") method.call(bc, false);
}
