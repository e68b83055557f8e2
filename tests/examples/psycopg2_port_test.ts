import assert from "node:assert/strict";
import { backendCount, withTestDatabase } from "../_db.ts";

async function runExample(env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "examples/psycopg2_port.ts"],
    env: { NO_COLOR: "1", ...env },
    stdin: "null",
  }).output();
  const decode = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: out.code, stdout: decode(out.stdout), stderr: decode(out.stderr) };
}

Deno.test("examples/psycopg2_port.ts runs the tutorial flow and closes every connection", () =>
  withTestDatabase(async (db) => {
    const { code, stdout, stderr } = await runExample({ DATABASE_URL: db.url });
    assert.equal(code, 0, `stdout:\n${stdout}\nstderr:\n${stderr}`);
    assert.deepEqual(stdout.trim().split("\n"), [
      "Connection pool created successfully",
      "successfully received connection from connection pool",
      "Displaying rows from mobile table",
      "1 IPhone 12 1100",
      "2 Google Pixel 2 700",
      "Put away a PostgreSQL connection",
      "PostgreSQL connection pool is closed",
    ]);
    assert.equal(await backendCount(db.name), 0);
  }));

Deno.test("examples/psycopg2_port.ts reports a connection error and exits non-zero", async () => {
  // Port 1 on loopback refuses connections at once.
  const { code, stdout, stderr } = await runExample({ DATABASE_URL: "postgres://nobody@127.0.0.1:1/none" });
  assert.equal(code, 1);
  assert.match(stderr, /Error while connecting to PostgreSQL/);
  assert.match(stdout, /PostgreSQL connection pool is closed/);
});
