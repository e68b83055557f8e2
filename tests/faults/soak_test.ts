/**
 * A short chaos soak in the default run: 2,000 checkouts from 32 tasks while
 * backends are killed, the network is cut and stalled, and borrowers throw.
 * The long one is `deno task soak` (tests/soak.ts).
 */
import assert from "node:assert/strict";
import { withTestDatabase } from "../_db.ts";
import { runSoak } from "../_soak.ts";

Deno.test("chaos soak: 2,000 checkouts under kills, cuts and throwing borrowers keep every invariant", async () => {
  await withTestDatabase(async (db) => {
    const report = await runSoak({
      url: db.url,
      dbName: db.name,
      ops: 2_000,
      tasks: 32,
      durationMs: 15_000,
      chaosEveryMs: 100,
    });
    assert.deepEqual(report.violations, [], JSON.stringify(report, null, 2));
    assert.equal(report.ops, 2_000, "all ops ran within the time limit");
    assert.ok(report.outcomes.ok > report.ops / 2, `mostly served: ${JSON.stringify(report.outcomes)}`);
    assert.ok(report.chaos.kill + report.chaos.cut + report.chaos.outage + report.chaos.stall > 0, "chaos happened");
  });
});
