/**
 * The idle connections of a `ConnectionPool`: a doubly linked list threaded
 * through the entries themselves, so taking from either end and removing one
 * anywhere (a lost or expired idle connection, keepalive) are all O(1) and
 * allocate nothing. Being in the list and being `idle` are one fact: entering
 * moves an entry to `idle`, leaving moves it to `reserved`, here and nowhere else.
 *
 * @module
 */
import type { Entry } from "../core/_entry.ts";

/** Idle entries, oldest returned at the front. */
export class IdleList<C> {
  #head: Entry<C> | undefined = undefined;
  #tail: Entry<C> | undefined = undefined;
  #length = 0;

  /** How many connections are idle. */
  get length(): number {
    return this.#length;
  }

  /** Appends `entry` (just returned or opened) at the back and marks it idle. */
  push(entry: Entry<C>): void {
    entry.moveTo("idle");
    entry.idlePrev = this.#tail;
    entry.idleNext = undefined;
    if (this.#tail === undefined) this.#head = entry;
    else this.#tail.idleNext = entry;
    this.#tail = entry;
    this.#length++;
  }

  /** Takes the entry idle longest (the front), reserved for the caller. */
  shift(): Entry<C> | undefined {
    const entry = this.#head;
    if (entry !== undefined) this.remove(entry);
    return entry;
  }

  /** Takes the entry returned last (the back), reserved for the caller. */
  pop(): Entry<C> | undefined {
    const entry = this.#tail;
    if (entry !== undefined) this.remove(entry);
    return entry;
  }

  /**
   * Takes `entry` out wherever it is, reserved for the caller.
   *
   * @returns false (and changes nothing) when it is not idle.
   */
  remove(entry: Entry<C>): boolean {
    if (entry.state !== "idle") return false;
    const { idlePrev: prev, idleNext: next } = entry;
    if (prev === undefined) this.#head = next;
    else prev.idleNext = next;
    if (next === undefined) this.#tail = prev;
    else next.idlePrev = prev;
    entry.idlePrev = entry.idleNext = undefined;
    this.#length--;
    entry.moveTo("reserved");
    return true;
  }

  /** Takes every entry, oldest first, each reserved for the caller. */
  takeAll(): Entry<C>[] {
    const out: Entry<C>[] = [];
    for (let entry = this.shift(); entry !== undefined; entry = this.shift()) out.push(entry);
    return out;
  }

  /** The idle entries, oldest first, left in place. */
  toArray(): Entry<C>[] {
    const out: Entry<C>[] = [];
    for (let entry = this.#head; entry !== undefined; entry = entry.idleNext) out.push(entry);
    return out;
  }
}
