// The HTTP examples side by side, as a user tries them: one after another on
// one database, in either order, each stopped with Ctrl-C (SIGINT).
import assert from "node:assert/strict";
import { backendCount, waitFor, withTestDatabase } from "./_db.ts";
import { startExample } from "./_example.ts";

const EXAMPLES = {
  deploy: ["serve", "-A", "--port", "0", "examples/deploy.ts"],
  serve: ["run", "-A", "examples/serve.ts"],
  hono: ["run", "-A", "examples/hono.ts"],
};
type Name = keyof typeof EXAMPLES;

// Far above a prompt exit (a second or two under load), far below the ~60 s
// `deno serve` waited for the pool's idle sockets before SIGINT closed them.
const PROMPT_EXIT_MS = 15_000;

/** Starts one example, writes and reads an item, stops it with SIGINT. */
async function tryExample(name: Name, url: string, dbName: string): Promise<void> {
  const app = await startExample(EXAMPLES[name], { env: { DATABASE_URL: url, PORT: "0" } });
  try {
    let res = await fetch(`${app.url}/items`, { method: "POST", body: JSON.stringify({ name: `from ${name}` }) });
    const created = await res.json();
    assert.equal(res.status, 201, `${name}: POST /items answered ${res.status}: ${JSON.stringify(created)}`);
    assert.equal(typeof created.id, "number", `${name}: id ${JSON.stringify(created.id)} is not a number`);
    res = await fetch(`${app.url}/items`);
    const items = await res.json();
    assert.equal(res.status, 200, `${name}: GET /items answered ${res.status}: ${JSON.stringify(items)}`);
    // Only its own row: no example reads another's table.
    assert.deepEqual(items.map((i: { id: unknown; name: unknown }) => [i.id, i.name]), [[created.id, `from ${name}`]]);

    const started = performance.now();
    const exit = await app.stop("SIGINT");
    const took = performance.now() - started;
    assert.ok(took < PROMPT_EXIT_MS, `${name}: SIGINT took ${Math.round(took)} ms`);
    assert.equal(exit.signal, null, `${name} was killed by ${exit.signal}: ${exit.stderr}`);
    assert.equal(exit.code, 0, `${name}: ${exit.stderr}`);
    await waitFor(async () => (await backendCount(dbName)) === 0, {
      timeout: 10_000,
      message: `${name}: sessions outlived the process`,
    });
  } finally {
    await app.stop("SIGKILL");
  }
}

for (const order of [["deploy", "serve", "hono"], ["hono", "serve", "deploy"]] as Name[][]) {
  Deno.test(`examples ${order.join(", ")} run one after another on one database and stop on SIGINT`, () =>
    withTestDatabase(async (db) => {
      for (const name of order) await tryExample(name, db.url, db.name);
    }));
}
