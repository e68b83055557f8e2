/**
 * The deno-postgres wire watcher drops NotificationResponse messages from the
 * bytes the library reads, wherever the reads split them (headers included),
 * and passes every other byte through unchanged and in order.
 */
import assert from "node:assert/strict";
import { WireState } from "../../src/drivers/_wire_watch.ts";

function message(type: string, body: number[]): number[] {
  const length = body.length + 4;
  return [type.charCodeAt(0), length >>> 24, (length >>> 16) & 255, (length >>> 8) & 255, length & 255, ...body];
}
const text = (s: string) => [...new TextEncoder().encode(s), 0];
const notification = (channel: string) => message("A", [0, 0, 0, 42, ...text(channel), ...text("payload")]);
const ready = message("Z", ["I".charCodeAt(0)]);
const dataRow = message("D", [0, 1, 0, 0, 0, 1, 49]);
const complete = message("C", text("SELECT 1"));

Deno.test("wire watcher: NotificationResponse messages never reach the library, however the reads split them", () => {
  const stream = [
    ...ready,
    ...notification("a"),
    ...dataRow,
    ...notification("b"),
    ...notification("c"),
    ...complete,
    ...ready,
    ...notification("d"),
  ];
  const expected = [...ready, ...dataRow, ...complete, ...ready];
  for (let first = 1; first < stream.length; first++) {
    for (const size of [1, 2, 3, 7, first]) {
      const state = new WireState();
      const seen: number[] = [];
      const chunks = [stream.slice(0, first)];
      for (let i = first; i < stream.length; i += size) chunks.push(stream.slice(i, i + size));
      for (const chunk of chunks) seen.push(...state.received(new Uint8Array(chunk)));
      assert.deepEqual(seen, expected, `split after ${first}, then every ${size}`);
      assert.equal(state.status, "I");
    }
  }
});

Deno.test("wire watcher: a read without notifications is passed on as the same bytes", () => {
  const state = new WireState();
  const bytes = new Uint8Array([...ready, ...dataRow, ...complete, ...ready]);
  assert.equal(state.received(bytes), bytes);
});
