/**
 * The channel batches: requests issued in the same tick travel as one post,
 * and `query()` is one round trip (checkout + statement + return).
 */
import assert from "node:assert/strict";
import { attachPool, ConnectionPool } from "../../mod.ts";
import { createTestDatabase } from "../_db.ts";

const db = await createTestDatabase();

/**
 * Counts postMessage calls and the messages in them. Installed before the
 * ports are made (patched later, the posts of existing ports went uncounted in Deno 2.9.6); dispose to restore.
 */
function postCounter(): { posts: number; messages: number; reset(): void } & Disposable {
  const original = MessagePort.prototype.postMessage;
  const counter = {
    posts: 0,
    messages: 0,
    reset() {
      counter.posts = 0;
      counter.messages = 0;
    },
    [Symbol.dispose]() {
      MessagePort.prototype.postMessage = original;
    },
  };
  MessagePort.prototype.postMessage = function (this: MessagePort, message: unknown, ...rest: unknown[]) {
    counter.posts++;
    counter.messages += Array.isArray(message) ? message.length : 1;
    return (original as (...args: unknown[]) => void).call(this, message, ...rest);
  } as typeof original;
  return counter;
}

Deno.test("32 concurrent query() calls on an attached pool cost 32 requests + 32 replies in far fewer posts", async () => {
  using counter = postCounter();
  await using pool = new ConnectionPool({ conninfo: db.url, minSize: 4, maxSize: 4 });
  await pool.open({ wait: true });
  await using attached = await attachPool(pool.share());
  counter.reset();
  await Promise.all(Array.from({ length: 32 }, (_, i) => attached.query("select $1::int as i", [i])));
  assert.equal(counter.messages, 64, "one request and one reply per query(): one round trip each");
  assert.ok(counter.posts <= 16, `${counter.posts} posts for 64 messages`);
});

Deno.test("a lone query() on an attached pool is one request and one reply, posted at once", async () => {
  using counter = postCounter();
  await using pool = new ConnectionPool({ conninfo: db.url, minSize: 1, maxSize: 1 });
  await pool.open({ wait: true });
  await using attached = await attachPool(pool.share());
  counter.reset();
  const started = performance.now();
  await attached.query("select 1");
  const elapsed = performance.now() - started;
  assert.deepEqual({ posts: counter.posts, messages: counter.messages }, { posts: 2, messages: 2 });
  assert.ok(elapsed < 100, `took ${elapsed.toFixed(1)} ms`);
});

Deno.test({ name: "drop the test database", fn: () => db.drop() });
