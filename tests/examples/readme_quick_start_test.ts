/**
 * The README's first TypeScript block is the quick start a new user pastes:
 * it must run as it is against a real server.
 */
import assert from "node:assert/strict";
import { createTestDatabase } from "../_db.ts";

const ROOT = new URL("../..", import.meta.url);

/** The first ```ts block of the README, verbatim. */
async function quickStart(): Promise<string> {
  const readme = await Deno.readTextFile(new URL("README.md", ROOT));
  const block = readme.match(/```ts\n([\s\S]*?)```/);
  assert.ok(block, "README.md has a TypeScript block");
  return block[1];
}

Deno.test("the README's quick start runs as it is: exits 0, prints the typed balance and the moved money", async () => {
  await using db = await createTestDatabase();
  const dir = new URL(".scratch/", ROOT);
  await Deno.mkdir(dir, { recursive: true });
  const file = new URL(`readme_quick_start_${crypto.randomUUID()}.ts`, dir);
  await Deno.writeTextFile(file, await quickStart());
  try {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", file.pathname],
      cwd: ROOT,
      env: { DATABASE_URL: db.url, NO_COLOR: "1" },
      stdin: "null",
    }).output();
    const stdout = new TextDecoder().decode(out.stdout);
    const stderr = new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 0, `exit ${out.code}\n${stdout}\n${stderr}`);
    assert.match(stdout, /^100$/m);
    assert.match(stdout, /id: 1, balance: 90/);
    assert.match(stdout, /id: 2, balance: 10/);
  } finally {
    await Deno.remove(file);
  }
});
