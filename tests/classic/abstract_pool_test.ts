import assert from "node:assert/strict";
import type pg from "pg";
import { AbstractConnectionPool, type DiscardReason, type PoolKey } from "../../mod.ts";
import { adminQuery, waitFor, withTestDatabase } from "../_db.ts";

/** The subclass from AbstractConnectionPool's JSDoc, plus a record of discards. */
class TenantPool extends AbstractConnectionPool {
  readonly discarded: DiscardReason[] = [];
  forTenant(tenant: string): Promise<pg.Client> {
    return this._getconn(`tenant:${tenant}`);
  }
  anonymous(): Promise<pg.Client> {
    return this._getconn();
  }
  release(conn: pg.Client, close = false): Promise<void> {
    return this._putconn(conn, undefined, close);
  }
  shutdown(): Promise<void> {
    return this._closeall();
  }
  keyOf(conn: pg.Client): PoolKey | undefined {
    return this._rused.get(conn);
  }
  protected override getKey(): PoolKey {
    return `anon:${++this._keys}`;
  }
  protected override async connect(key?: PoolKey): Promise<pg.Client> {
    const conn = await super.connect(key);
    await conn.query(`set application_name = '${String(key ?? "idle")}'`);
    return conn;
  }
  protected override onConnectionDiscarded(_conn: pg.Client, reason: DiscardReason): void {
    this.discarded.push(reason);
  }
}

async function applicationNames(db: string): Promise<string[]> {
  const rows = await adminQuery<{ name: string }>(
    "select application_name as name from pg_stat_activity where datname = $1 and pid <> pg_backend_pid() order by 1",
    [db],
  );
  return rows.map((r) => r.name);
}

Deno.test("a subclass's connect(key) override prepares each new connection for its key", () =>
  withTestDatabase(async (db) => {
    const pool = new TenantPool(1, 5, db.url);
    try {
      const acme = await pool.forTenant("acme");
      assert.equal(await pool.forTenant("acme"), acme);
      const globex = await pool.forTenant("globex");
      // open() made one idle ("idle"), acme took it; globex is new.
      assert.deepEqual(await applicationNames(db.name), ["idle", "tenant:globex"]);
      assert.equal(pool.keyOf(acme), "tenant:acme");
      await pool.release(acme);
      await pool.release(globex);
    } finally {
      await pool.shutdown();
    }
  }));

Deno.test("a subclass's getKey() override names connections taken without a key", () =>
  withTestDatabase(async (db) => {
    const pool = new TenantPool(0, 3, db.url);
    try {
      const a = await pool.anonymous();
      const b = await pool.anonymous();
      assert.equal(pool.keyOf(a), "anon:1");
      assert.equal(pool.keyOf(b), "anon:2");
      await pool.release(a);
      await pool.release(b);
    } finally {
      await pool.shutdown();
    }
  }));

async function terminate(conn: pg.Client): Promise<void> {
  const { rows } = await conn.query("select pg_backend_pid() as pid");
  await adminQuery("select pg_terminate_backend($1)", [rows[0].pid]);
  await waitFor(async () =>
    (await adminQuery("select 1 from pg_stat_activity where pid = $1", [rows[0].pid])).length === 0
  );
}

Deno.test("onConnectionDiscarded() is told why each connection closes", () =>
  withTestDatabase(async (db) => {
    const pool = new TenantPool(1, 4, db.url);
    try {
      const a = await pool.forTenant("a");
      const b = await pool.forTenant("b");
      const c = await pool.forTenant("c");
      await pool.release(a); // kept: the only idle one (minconn 1)
      await pool.release(b);
      await pool.release(c, true);
      assert.deepEqual(pool.discarded, ["surplus", "requested"]);

      const d = await pool.forTenant("d"); // the kept one
      await terminate(d);
      await assert.rejects(d.query("select 1"));
      await pool.release(d);
      assert.deepEqual(pool.discarded.slice(2), ["broken"]);

      const e = await pool.forTenant("e");
      await pool.release(e); // idle again
      await terminate(e);
      await waitFor(() => pool.discarded.length === 4, { message: "idle connection noticed lost" });
      assert.equal(pool.discarded[3], "lost");

      await pool.forTenant("f"); // still out at closeall
    } finally {
      await pool.shutdown();
    }
    assert.deepEqual(pool.discarded.slice(4), ["closeall"]);
  }));
