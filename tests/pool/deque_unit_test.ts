/**
 * Unit tests of `Deque` (src/pool/_deque.ts), the ring buffer behind the job
 * queue: both ends, growth across the wrap, takeAll, clear, checked step by step
 * against an array.
 */
import assert from "node:assert/strict";
import { Deque } from "../../src/pool/_deque.ts";

/** A deque holding `items`, pushed in order. */
function dequeOf<T>(...items: T[]): Deque<T> {
  const deque = new Deque<T>();
  for (const item of items) deque.push(item);
  return deque;
}

Deno.test("Deque: shift() takes from the front (FIFO), pop() from the back (LIFO)", () => {
  const deque = dequeOf(1, 2, 3, 4);
  assert.equal(deque.length, 4);
  assert.equal(deque.shift(), 1);
  assert.equal(deque.pop(), 4);
  assert.equal(deque.shift(), 2);
  assert.equal(deque.pop(), 3);
  assert.equal(deque.length, 0);
});

Deno.test("Deque: shift() and pop() on an empty deque return undefined and leave it usable", () => {
  const deque = new Deque<string>();
  assert.equal(deque.shift(), undefined);
  assert.equal(deque.pop(), undefined);
  assert.equal(deque.length, 0);
  deque.push("a");
  assert.deepEqual(deque.toArray(), ["a"]);
});

Deno.test("Deque: grows while its items wrap around the end of the ring, keeping their order", () => {
  const deque = new Deque<number>();
  for (let i = 0; i < 12; i++) deque.push(i);
  for (let i = 0; i < 10; i++) assert.equal(deque.shift(), i); // the head is now near the end of the 16 slots
  for (let i = 12; i < 100; i++) deque.push(i); // wraps, then grows twice
  assert.equal(deque.length, 90);
  assert.deepEqual(deque.toArray(), Array.from({ length: 90 }, (_, i) => i + 10));
  assert.equal(deque.pop(), 99);
  assert.equal(deque.shift(), 10);
});

Deno.test("Deque: a long random mix of push, shift and pop matches an array", () => {
  const deque = new Deque<number>();
  const model: number[] = [];
  let seed = 7;
  const random = (n: number) => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31; // a fixed LCG: the same sequence every run
    return seed % n;
  };
  let longest = 0;
  for (let step = 0; step < 20_000; step++) {
    const op = random(10);
    if (op < 6) { // pushes outweigh takes, so the deque grows through several sizes and wraps
      deque.push(step);
      model.push(step);
    } else if (op < 8) assert.equal(deque.shift(), model.shift(), `shift at step ${step}`);
    else assert.equal(deque.pop(), model.pop(), `pop at step ${step}`);
    assert.equal(deque.length, model.length, `length at step ${step}`);
    longest = Math.max(longest, model.length);
    if (step % 500 === 0) assert.deepEqual(deque.toArray(), model, `items at step ${step}`);
  }
  assert.deepEqual(deque.toArray(), model);
  assert.ok(longest > 1_000, `the ring grew to ${longest} items`);
});

Deno.test("Deque: takeAll() returns every item oldest first and leaves it empty and reusable", () => {
  const deque = new Deque<number>();
  for (let i = 0; i < 20; i++) deque.push(i);
  deque.shift();
  deque.pop();
  assert.deepEqual(deque.takeAll(), Array.from({ length: 18 }, (_, i) => i + 1));
  assert.equal(deque.length, 0);
  assert.deepEqual(deque.takeAll(), []);
  deque.push(100);
  assert.equal(deque.shift(), 100);
});

Deno.test("Deque: clear() empties it; toArray() is a copy the deque does not share", () => {
  const deque = dequeOf(1, 2, 3);
  const copy = deque.toArray();
  copy.push(4);
  assert.equal(deque.length, 3);
  deque.clear();
  assert.equal(deque.length, 0);
  assert.equal(deque.shift(), undefined);
  assert.deepEqual(copy, [1, 2, 3, 4]);
  deque.push(5);
  assert.deepEqual(deque.toArray(), [5]);
});

Deno.test("Deque: falsy items (0, an empty string, null) come back as they went in", () => {
  const deque = dequeOf<number | string | null>(0, "", null);
  assert.equal(deque.length, 3);
  assert.equal(deque.shift(), 0);
  assert.equal(deque.shift(), "");
  assert.equal(deque.pop(), null);
});
