/**
 * `check` follows the rule of `configure` and `reset`: a
 * check that leaves the connection in a transaction fails, so the connection
 * is discarded and never lent in a transaction (where the borrower's
 * autocommit writes would be rolled back on return). Against the real server,
 * for ConnectionPool, NullConnectionPool and an attached pool in a Worker.
 */
import assert from "node:assert/strict";
import pg from "pg";
import { ConnectionPool, NullConnectionPool } from "../../mod.ts";
import { createTestDatabase } from "../_db.ts";
import { startWorker } from "../_shared_helpers.ts";

const db = await createTestDatabase();
addEventListener("unload", () => void db.drop());
{
  const admin = new pg.Client({ connectionString: db.url });
  await admin.connect();
  await admin.query("create table t (v int)");
  await admin.end();
}

async function count(v: number): Promise<number> {
  const admin = new pg.Client({ connectionString: db.url });
  await admin.connect();
  try {
    const { rows } = await admin.query<{ n: number }>("select count(*)::int as n from t where v = $1", [v]);
    return rows[0].n;
  } finally {
    await admin.end();
  }
}

/** A check that runs BEGIN the first time only: the first candidate is left in a transaction. */
function beginOnce(): { check: (conn: pg.Client) => Promise<void>; calls: () => number } {
  let calls = 0;
  return {
    check: async (conn) => {
      if (calls++ === 0) await conn.query("begin");
      else await conn.query("");
    },
    calls: () => calls,
  };
}

for (
  const [name, make] of [
    [
      "ConnectionPool",
      (check: (conn: pg.Client) => Promise<void>) =>
        new ConnectionPool({ conninfo: db.url, minSize: 1, maxSize: 2, check }),
    ],
    [
      "NullConnectionPool",
      (check: (conn: pg.Client) => Promise<void>) => new NullConnectionPool({ conninfo: db.url, maxSize: 2, check }),
    ],
  ] as const
) {
  Deno.test(`${name}: a check that leaves the connection in a transaction fails it: discarded, counted in connectionsLost, the borrower gets an idle one and its autocommit insert persists`, async () => {
    const { check, calls } = beginOnce();
    await using pool = make(check);
    const conn = await pool.getconn({ timeout: 5_000 });
    assert.equal(calls(), 2, "the first candidate failed, a second was checked");
    assert.equal(conn.getTransactionStatus(), "I", "lent idle, not inside the check's transaction");
    assert.equal(pool.getStats().connectionsLost, 1);
    const v = name === "ConnectionPool" ? 1 : 2;
    await conn.query("insert into t values ($1)", [v]);
    await pool.putconn(conn);
    assert.equal(await count(v), 1, "the autocommit insert was not rolled back on return");
  });
}

Deno.test("attached pool in a Worker: the owner's check that leaves a transaction open never lends it to the Worker; the Worker's insert persists", async () => {
  const { check, calls } = beginOnce();
  const pool = new ConnectionPool({ conninfo: db.url, minSize: 1, maxSize: 2, check });
  const w = startWorker();
  try {
    await w.attach(pool.share());
    const held = await w.call<{ index: number; status: string }>("hold", { timeout: 5_000 });
    assert.equal(held.status, "I");
    assert.equal(calls(), 2);
    await w.call("connQuery", { index: held.index, text: "insert into t values (3)" });
    await w.call("release", { index: held.index });
    assert.equal(await count(3), 1);
  } finally {
    w.terminate();
    await pool.close();
  }
});
