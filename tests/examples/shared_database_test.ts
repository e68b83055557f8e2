// The HTTP examples side by side, as a user tries them: one after another on
// one database, in either order, each stopped with Ctrl-C (SIGINT).
import assert from "node:assert/strict";
import pg from "pg";
import { adminQuery, backendCount, waitFor, withTestDatabase } from "../_db.ts";
import { startExample } from "../_example.ts";

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

// The ORM examples are scripts, not servers: each owns one table
// (kysely_accounts, drizzle_accounts), and Ctrl-C ends it at once the way it
// ends any script (no handler: it is killed by SIGINT, exit status 130, and
// the server ends its sessions as the sockets close).
const SCRIPTS = { kysely: "examples/kysely.ts", drizzle: "examples/drizzle.ts" };
type Script = keyof typeof SCRIPTS;
/** Tables the other examples own, or a careless example might use. */
const OTHERS = ["serve_items", "hono_items", "deploy_items", "items", "accounts"];

function runScript(name: Script, url: string): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", SCRIPTS[name]],
    env: { DATABASE_URL: url, NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

/** The output of a script that must end by itself well within a minute. */
async function outputOf(child: Deno.ChildProcess): Promise<{ code: number; signal: Deno.Signal | null; out: string }> {
  const killer = setTimeout(() => child.kill("SIGKILL"), 60_000);
  try {
    const o = await child.output();
    const out = new TextDecoder().decode(o.stdout) + new TextDecoder().decode(o.stderr);
    return { code: o.code, signal: o.signal, out };
  } finally {
    clearTimeout(killer);
  }
}

for (const order of [["kysely", "drizzle"], ["drizzle", "kysely"]] as Script[][]) {
  Deno.test(`examples ${order.join(", ")} run one after another on one database and touch only their own tables`, () =>
    withTestDatabase(async (db) => {
      const client = new pg.Client({ connectionString: db.url });
      await client.connect();
      try {
        // Also the table of the example that runs later: the earlier one must leave it alone.
        const untouched = (ran: number) => [...OTHERS, ...order.slice(ran + 1).map((n) => `${n}_accounts`)];
        for (const t of untouched(0)) {
          await client.query(`create table ${t} (id integer primary key, owner text not null)`);
          await client.query(`insert into ${t} values (1, 'untouched')`);
        }
        for (const [i, name] of order.entries()) {
          const { code, out } = await outputOf(runScript(name, db.url));
          assert.equal(code, 0, `${name}: ${out}`);
          assert.match(out, /^balances: ann=71 bob=30$/m, `${name} ran on its own table`);
          for (const t of untouched(i)) {
            const { rows } = await client.query(`select id, owner from ${t}`);
            assert.deepEqual(rows, [{ id: 1, owner: "untouched" }], `${name} changed table ${t}`);
          }
        }
      } finally {
        await client.end();
      }
    }));
}

for (const name of Object.keys(SCRIPTS) as Script[]) {
  Deno.test(`examples/${name}.ts stops at once on Ctrl-C (SIGINT) while a query waits, and leaves no session`, () =>
    withTestDatabase(async (db) => {
      // The example starts by dropping its table: a lock held here parks it there, mid-run.
      const locker = new pg.Client({ connectionString: db.url });
      locker.on("error", () => {});
      await locker.connect();
      try {
        await locker.query(`create table ${name}_accounts (id integer)`);
        await locker.query(`begin; lock table ${name}_accounts in access exclusive mode`);
        const child = runScript(name, db.url);
        const exit = outputOf(child);
        await waitFor(async () => {
          const [row] = await adminQuery<{ n: number }>(
            "select count(*)::int as n from pg_stat_activity where datname = $1 and wait_event_type = 'Lock'",
            [db.name],
          );
          return row.n === 1;
        }, { timeout: 30_000, message: `${name} never reached its first statement` });

        const started = performance.now();
        child.kill("SIGINT");
        const { code, signal, out } = await exit;
        const took = performance.now() - started;
        assert.ok(took < PROMPT_EXIT_MS, `${name}: SIGINT took ${Math.round(took)} ms`);
        assert.equal(signal, "SIGINT", `${name} did not end on SIGINT (exit ${code}): ${out}`);
        assert.doesNotMatch(out, /committed/, `${name} ran past the locked statement`);

        // The parked backend notices its client is gone once it can run again.
        await locker.query("rollback");
        await locker.end();
        await waitFor(async () => (await backendCount(db.name)) === 0, {
          timeout: 10_000,
          message: `${name}: sessions outlived the process`,
        });
      } finally {
        await locker.end().catch(() => {});
      }
    }));
}
