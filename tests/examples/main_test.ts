/**
 * The main demo (`deno task example`) runs to completion against the test
 * server and prints what it promises.
 */
import assert from "node:assert/strict";
import { adminUrl } from "../_db.ts";

Deno.test("examples/main.ts exits 0, survives its PoolTimeoutError and prints the stats", async () => {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "examples/main.ts"],
    cwd: new URL("../..", import.meta.url),
    env: { DATABASE_URL: adminUrl(), NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const started = performance.now();
  const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
  const out = await child.output();
  clearTimeout(timer);
  const ms = performance.now() - started;
  const stdout = new TextDecoder().decode(out.stdout);
  const stderr = new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 0, `exit ${out.code}\n${stdout}\n${stderr}`);
  assert.match(stdout, /200 answers in \d+ ms, all correct: true, served by [1-5] server processes/);
  assert.match(stdout, /PoolTimeoutError: Couldn't get a connection from pool 'demo' after 200 ms/);
  assert.match(stdout, /the pool carries on: a transaction returned 42/);
  assert.match(stdout, /Pool stats:/);
  for (const key of ["poolSize", "requestsNum", "requestsErrors", "connectionsNum"]) {
    assert.match(stdout, new RegExp(`│ ${key} +│ +\\d+ │`), key);
  }
  assert.match(stdout, /│ requestsNum +│ +20[0-9] │/);
  assert.match(stdout, /Pool 'demo' closed\./);
  assert.ok(ms < 30_000, `took ${ms} ms`);
});
