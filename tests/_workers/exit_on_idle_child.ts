/**
 * Child script of `prod_exit_test.ts`: uses a pool and never calls close().
 * Args: the conninfo and "true"/"false" for allowExitOnIdle.
 */
import { ConnectionPool } from "../../mod.ts";

const [conninfo, allow] = Deno.args;
const pool = new ConnectionPool({ conninfo, minSize: 2, allowExitOnIdle: allow === "true" });
await pool.open({ wait: true, timeout: 10_000 });
const { rows } = await pool.query<{ x: number }>("select 1 as x");
{
  await using conn = await pool.connection();
  await conn.query("select pg_sleep(0.2)"); // a borrowed socket keeps the process alive while it works
}
console.log(`done ${rows[0].x}`);
