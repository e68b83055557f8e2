/**
 * A statement left un-awaited inside `transaction()` or `withConnection()`:
 * the call rejects with a clear PoolError, the connection is discarded, and
 * nothing the pool's cleanup starts rejects unhandled, so the process lives
 * on. Runs in a child process, where dying shows as its exit code.
 */
import assert from "node:assert/strict";
import { runChild } from "../_child.ts";
import { createTestDatabase } from "../_db.ts";
import { loadDenoPostgres } from "../_deno_postgres.ts";

Deno.test("an un-awaited query inside transaction(): a PoolError, and no unhandled rejection from the pool's cleanup", async () => {
  const db = await createTestDatabase();
  try {
    const { code, stdout, stderr } = await runChild("unawaited_query.ts", [db.url]);
    assert.equal(code, 0, `the child process died:\n${stderr}\n${stdout}`);
    assert.doesNotMatch(stderr, /Uncaught|unhandled/i);
    const results: Record<string, string> = JSON.parse(stdout.trim().split("\n").at(-1)!);
    assert.ok(Object.keys(results).length >= 3, stdout);
    for (const [name, outcome] of Object.entries(results)) {
      // withConnection() promises no commit: it resolves, and the return path discards the busy connection.
      if (name.includes("withConnection")) assert.equal(outcome, "resolved", name);
      else assert.match(outcome, /^PoolError: The transaction did not commit: .*still running/, `${name}: ${outcome}`);
    }
    // deno-postgres runs too wherever it can be loaded (the vendored copy beside the checkout), as its own tests do.
    const withDenoPostgres = typeof (await loadDenoPostgres()) !== "string";
    assert.equal(Object.keys(results).some((name) => name.startsWith("deno-postgres")), withDenoPostgres);
  } finally {
    await db.drop();
  }
});
