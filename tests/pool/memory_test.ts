/**
 * Memory a pool must not keep. Measured as heap
 * after GC in a child process started with `--v8-flags=--expose-gc` (see
 * `_heap_probe.ts`), against the real server; bounds are generous, the
 * defects they catch are 20x larger.
 */
import assert from "node:assert/strict";
import { createTestDatabase } from "../_db.ts";

const db = await createTestDatabase();
addEventListener("unload", () => void db.drop());

async function probe(scenario: string): Promise<Record<string, number>> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--v8-flags=--expose-gc",
      new URL("../_heap_probe.ts", import.meta.url).pathname,
      scenario,
      db.url,
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stderr = new TextDecoder().decode(out.stderr);
  assert.ok(out.success, `probe ${scenario} failed: ${stderr}`);
  const lines = new TextDecoder().decode(out.stdout).trim().split("\n");
  return JSON.parse(lines[lines.length - 1]);
}

const MB = 1024 * 1024;

for (const [name, scenario] of [["ConnectionPool", "abort-pool"], ["NullConnectionPool", "abort-null"]]) {
  Deno.test(`${name}: 100k requests aborted while waiting free their memory at once (heap after GC grows < 10 MB; was ~130 MB)`, async () => {
    const r = await probe(scenario);
    assert.equal(r.waiting, 0);
    const growth = r.after - r.before;
    assert.ok(growth < 10 * MB, `heap grew ${(growth / MB).toFixed(1)} MB`);
  });
}

Deno.test("ConnectionPool, NullConnectionPool, SimpleConnectionPool: pools created and closed leave nothing behind (15k pools, heap after GC grows < 30 bytes a pool)", async () => {
  const r = await probe("pools");
  const perPool = (r.after - r.before) / r.pools;
  assert.ok(perPool < 30, `${perPool.toFixed(0)} bytes retained per pool`);
});
