/**
 * A double-ended queue on a ring buffer: O(1) push/shift/pop at both ends, so
 * the job queue never pays for `Array.prototype.shift` on a long array. Idle
 * connections (`IdleList`) and waiters (`WaiterQueue`) have linked lists of
 * their own, since they also leave from the middle.
 */
export class Deque<T> {
  #buf: (T | undefined)[] = new Array(16);
  #head = 0;
  #length = 0;

  get length(): number {
    return this.#length;
  }

  push(item: T): void {
    if (this.#length === this.#buf.length) this.#grow();
    this.#buf[(this.#head + this.#length) & (this.#buf.length - 1)] = item;
    this.#length++;
  }

  shift(): T | undefined {
    if (this.#length === 0) return undefined;
    const item = this.#buf[this.#head];
    this.#buf[this.#head] = undefined;
    this.#head = (this.#head + 1) & (this.#buf.length - 1);
    this.#length--;
    return item;
  }

  pop(): T | undefined {
    if (this.#length === 0) return undefined;
    this.#length--;
    const i = (this.#head + this.#length) & (this.#buf.length - 1);
    const item = this.#buf[i];
    this.#buf[i] = undefined;
    return item;
  }

  /** Removes and returns every item, oldest first. */
  takeAll(): T[] {
    const items = this.toArray();
    this.clear();
    return items;
  }

  toArray(): T[] {
    const out: T[] = [];
    for (let i = 0; i < this.#length; i++) {
      out.push(this.#buf[(this.#head + i) & (this.#buf.length - 1)] as T);
    }
    return out;
  }

  clear(): void {
    this.#buf = new Array(16);
    this.#head = 0;
    this.#length = 0;
  }

  #grow(): void {
    const items = this.toArray();
    this.#buf = new Array(this.#buf.length * 2);
    for (let i = 0; i < items.length; i++) this.#buf[i] = items[i];
    this.#head = 0;
  }
}
