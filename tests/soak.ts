/**
 * The long chaos soak (`deno task soak`), not part of the default test run.
 *
 * ```sh
 * deno task soak [--ops=100000] [--tasks=32] [--duration=300000] [--chaos-every=150]
 * ```
 *
 * Prints the report as JSON and exits 1 if any invariant broke.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { createTestDatabase } from "./_db.ts";
import { runSoak } from "./_soak.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    ops: { type: "string", default: "100000" },
    tasks: { type: "string", default: "32" },
    duration: { type: "string", default: "300000" },
    "chaos-every": { type: "string", default: "150" },
  },
});

await using db = await createTestDatabase();
const report = await runSoak({
  url: db.url,
  dbName: db.name,
  ops: Number(values.ops),
  tasks: Number(values.tasks),
  durationMs: Number(values.duration),
  chaosEveryMs: Number(values["chaos-every"]),
});
console.log(JSON.stringify({ ...report, opsPerSecond: Math.round(report.opsPerSecond) }, null, 2));
if (report.violations.length > 0) Deno.exitCode = 1;
