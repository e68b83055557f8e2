/**
 * Typed connections out of the box: a consumer project whose import map holds
 * only `@tidepool/pg` (this repository's mod.ts) type-checks with `pg.Client`
 * from every pool and the facade. Each `@ts-expect-error` line fails the check
 * if what it marks (a misspelled method, a wrongly typed row) ever type-checks
 * again, i.e. if connections fall back to `any`.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";

const MOD = fileURLToPath(new URL("../../mod.ts", import.meta.url));

/** What the consumer writes: never run, only checked. */
const CONSUMER = `
import {
  ConnectionPool,
  NullConnectionPool,
  PersistentConnectionPool,
  SimpleConnectionPool,
  ThreadedConnectionPool,
  toPgPool,
} from "@tidepool/pg";

type Row = { x: number };

export async function typed(): Promise<number[]> {
  const pool = new ConnectionPool({ conninfo: "postgres://app@localhost/app" });
  const seen: number[] = [];

  const a = await pool.connection();
  seen.push((await a.query<Row>("select 1 as x")).rows[0].x);
  // @ts-expect-error a misspelled method
  a.qurey("select 1");
  // @ts-expect-error rows are typed by query<R>()
  const wrong: string = (await a.query<Row>("select 1 as x")).rows[0].x;

  const b = await pool.getconn();
  seen.push((await b.query<Row>("select 1 as x")).rows[0].x);
  // @ts-expect-error a misspelled method
  b.relase();
  await pool.putconn(b);

  seen.push(await pool.transaction(async (conn) => {
    // @ts-expect-error a misspelled method
    conn.qurey("select 1");
    return (await conn.query<Row>("select 1 as x")).rows[0].x;
  }));
  seen.push(await pool.withConnection(async (conn) => {
    // @ts-expect-error a misspelled method
    conn.qurey("select 1");
    return (await conn.query<Row>("select 1 as x")).rows[0].x;
  }));

  const nullPool = new NullConnectionPool({ conninfo: "postgres://app@localhost/app" });
  const n = await nullPool.getconn();
  // @ts-expect-error a misspelled method
  n.qurey("select 1");
  seen.push((await n.query<Row>("select 1 as x")).rows[0].x);

  for (const classic of [
    new SimpleConnectionPool(0, 1, "postgres://app@localhost/app"),
    new ThreadedConnectionPool(0, 1, "postgres://app@localhost/app"),
    new PersistentConnectionPool(0, 1, "postgres://app@localhost/app"),
  ]) {
    const c = await classic.getconn();
    // @ts-expect-error a misspelled method
    c.qurey("select 1");
    seen.push((await c.query<Row>("select 1 as x")).rows[0].x);
  }

  const pgPool = toPgPool(pool);
  const client = await pgPool.connect();
  // @ts-expect-error a misspelled method
  client.qurey("select 1");
  seen.push((await client.query<Row>("select 1 as x")).rows[0].x);
  client.release();
  seen.push((await pgPool.query<Row>("select 1 as x")).rows[0].x);
  // @ts-expect-error rows are typed by query<R>()
  const alsoWrong: string = (await pgPool.query<Row>("select 1 as x")).rows[0].x;
  // @ts-expect-error a misspelled method
  pgPool.conect();
  return seen;
}
`;

async function checkConsumer(config: Record<string, unknown>): Promise<{ ok: boolean; output: string }> {
  const dir = await Deno.makeTempDir({ prefix: "tidepool_consumer_" });
  try {
    await Deno.writeTextFile(`${dir}/deno.json`, JSON.stringify(config));
    await Deno.writeTextFile(`${dir}/main.ts`, CONSUMER);
    const { success, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
      args: ["check", "--no-lock", "--quiet", "main.ts"],
      cwd: dir,
      stdout: "piped",
      stderr: "piped",
    }).output();
    const decoder = new TextDecoder();
    return { ok: success, output: decoder.decode(stdout) + decoder.decode(stderr) };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("a consumer mapping only @tidepool/pg gets pg.Client from every pool and the facade", async () => {
  const { ok, output } = await checkConsumer({ imports: { "@tidepool/pg": MOD } });
  assert.ok(ok, `deno check of the consumer failed:\n${output}`);
});

Deno.test("tidepool's source type-checks beside another @types/pg version in the consumer's compilerOptions", async () => {
  const { ok, output } = await checkConsumer({
    imports: { "@tidepool/pg": MOD },
    compilerOptions: { types: ["npm:@types/pg@8.11.10"] },
  });
  assert.ok(ok, `deno check of the consumer failed:\n${output}`);
});
