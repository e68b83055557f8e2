/**
 * allowExitOnIdle: a script that forgets close() still exits once nothing is
 * borrowed or waiting; without the option its open sockets keep it alive.
 */
import assert from "node:assert/strict";
import { ConnectionPool } from "../../mod.ts";
import { createTestDatabase, type TestDatabase } from "../_db.ts";

let db: TestDatabase;
Deno.test.beforeAll(async () => {
  db = await createTestDatabase();
});
Deno.test.afterAll(async () => {
  await db.drop();
});

const CHILD = new URL("../_workers/exit_on_idle_child.ts", import.meta.url).pathname;

/** Starts the child; resolves with its exit status, or undefined if still running after `ms` (then kills it). */
async function runChild(allow: boolean, ms: number): Promise<{ status?: Deno.CommandStatus; stdout: string }> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", CHILD, db.url, String(allow)],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const output = (async () => {
    let text = "";
    for await (const chunk of child.stdout.pipeThrough(new TextDecoderStream())) text += chunk;
    return text;
  })();
  let timer: number | undefined;
  const timedOut = new Promise<undefined>((resolve) =>
    timer = setTimeout(() => resolve(undefined), ms) as unknown as number
  );
  const status = await Promise.race([child.status, timedOut]);
  clearTimeout(timer);
  if (status === undefined) {
    child.kill("SIGKILL");
    await child.status;
  }
  return { status, stdout: await output };
}

Deno.test("a script with allowExitOnIdle that never calls close() exits by itself", async () => {
  const { status, stdout } = await runChild(true, 30_000);
  assert.ok(status !== undefined, "the child still ran after 30 s");
  assert.equal(status.code, 0);
  assert.match(stdout, /done 1/, "it did its work first");
});

Deno.test("without allowExitOnIdle the same script is kept alive by its idle sockets (the default, as in Node)", async () => {
  // The negative case cannot be polled: the child must still run well after its work is done.
  const { status, stdout } = await runChild(false, 6_000);
  assert.match(stdout, /done 1/, "it did its work");
  assert.equal(status, undefined, "it exited although idle sockets were open");
});

Deno.test("allowExitOnIdle must be a boolean", () => {
  assert.throws(
    () => new ConnectionPool({ conninfo: db.url, allowExitOnIdle: "yes" as never }),
    (e) => e instanceof TypeError && /'allowExitOnIdle'/.test(e.message),
  );
});
