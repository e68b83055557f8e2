import assert from "node:assert/strict";
import { withTestDatabase } from "../_db.ts";

Deno.test("examples/logging.ts shows the pool's debug and warning logs under the tidepool category", () =>
  withTestDatabase(async (db) => {
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "examples/logging.ts"],
      env: { DATABASE_URL: db.url, NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const killer = setTimeout(() => child.kill("SIGKILL"), 30_000);
    const out = await child.output();
    clearTimeout(killer);
    const stdout = new TextDecoder().decode(out.stdout);
    const stderr = new TextDecoder().decode(out.stderr);
    const all = stdout + stderr;
    assert.equal(out.code, 0, all);
    assert.match(stdout, /^PostgreSQL \d+/m);
    // LogTape's console sink: time, level, category, message.
    assert.match(all, /DBG tidepool·logging-demo Pool "logging-demo" opening to "postgres:\/\/[^"]+"/);
    assert.match(all, /WRN tidepool·logging-demo Possible connection leak in pool "logging-demo"/);
    assert.match(all, /examples\/logging\.ts:\d+/, "the leak warning carries the borrower's stack");
    assert.match(all, /WRN tidepool·logging-demo Pool "logging-demo": rolling back a connection returned/);
    assert.match(all, /DBG tidepool·logging-demo Pool "logging-demo" closing/);
    // Debug lines go to stdout and warnings to stderr: order them by their timestamps.
    const at = (text: string) => {
      const m = new RegExp(`^(\\d\\d:\\d\\d:\\d\\d\\.\\d{3}) .*${text}`, "m").exec(all);
      assert.ok(m, `no log line with ${text}`);
      return m[1];
    };
    assert.ok(at("opening to") <= at("rolling back") && at("rolling back") <= at("closing"), all);
    const password = decodeURIComponent(new URL(db.url).password);
    if (password) assert.ok(!all.includes(password), "a log line carries the password");
  }));
