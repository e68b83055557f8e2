import assert from "node:assert/strict";
import { withTestDatabase } from "../_db.ts";

async function runExample(path: string, url: string): Promise<{ code: number; stdout: string; stderr: string }> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", path],
    env: { DATABASE_URL: url, NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const killer = setTimeout(() => child.kill("SIGKILL"), 60_000);
  try {
    const out = await child.output();
    return {
      code: out.code,
      stdout: new TextDecoder().decode(out.stdout),
      stderr: new TextDecoder().decode(out.stderr),
    };
  } finally {
    clearTimeout(killer);
  }
}

for (const name of ["kysely", "drizzle"]) {
  Deno.test(`examples/${name}.ts commits, rolls back, rolls back a savepoint and returns every connection`, () =>
    withTestDatabase(async (db) => {
      const { code, stdout, stderr } = await runExample(`examples/${name}.ts`, db.url);
      assert.equal(code, 0, `${stdout}\n${stderr}`);
      assert.match(stdout, /^committed: ann -> bob 30$/m);
      assert.match(stdout, /^rolled back: .*check constraint/m);
      assert.match(stdout, /^savepoint rolled back, transaction committed$/m);
      // 30 moved; the failed transfer changed nothing; the savepoint's delete was undone.
      assert.match(stdout, /^balances: ann=71 bob=30$/m);
      assert.match(stdout, /^pool: \d+ open, (\d+) idle, 0 bad returns$/m);
      const [, open, idle] = /^pool: (\d+) open, (\d+) idle/m.exec(stdout)!;
      assert.equal(open, idle, "every connection is back");
    }));
}
