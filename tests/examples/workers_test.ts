import assert from "node:assert/strict";
import { backendCount, withTestDatabase } from "../_db.ts";

Deno.test("examples/workers.ts: 4 Workers and the main isolate share one ThreadedConnectionPool under its cap", () =>
  withTestDatabase(async (db) => {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "examples/workers.ts"],
      env: { NO_COLOR: "1", DATABASE_URL: db.url },
      stdin: "null",
    }).output();
    const stdout = new TextDecoder().decode(out.stdout);
    const stderr = new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 0, `stdout:\n${stdout}\nstderr:\n${stderr}`);
    assert.match(stdout, /^ThreadedConnectionPool\(1, 4\) shared by the main isolate and 4 Workers$/m);
    for (const who of ["main isolate", "worker 1", "worker 2", "worker 3", "worker 4"]) {
      assert.match(stdout, new RegExp(`^${who}: 25 transactions, \\d+ retries after PoolExhaustedError$`, "m"));
    }
    assert.match(stdout, /^rows inserted: 125$/m);
    const peak = Number(/^peak server connections: (\d+) \(cap 4\)$/m.exec(stdout)?.[1]);
    assert.ok(peak >= 1 && peak <= 4, `peak ${peak}, cap 4`);
    assert.equal(await backendCount(db.name), 0, "every connection closed");
  }));
