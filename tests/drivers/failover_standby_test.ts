/**
 * Failover only on the server's own state, against a real primary and a
 * streaming standby of it (PostgreSQL 15): one session's
 * `SET [LOCAL] default_transaction_read_only` closes nothing, while a
 * standby's promotion (its `in_hot_standby` report turning off) drops the
 * connections opened for `target_session_attrs=standby` at once.
 */
import assert from "node:assert/strict";
import { ConnectionPool } from "../../mod.ts";
import { waitFor } from "../_db.ts";
import { captureLogs } from "../_pool_helpers.ts";
import { haveStandbyBinaries, startStandbyPair } from "../_standby.ts";

const pair = haveStandbyBinaries() ? await startStandbyPair() : undefined;
Deno.test.afterAll(() => pair?.close());

const url = (ports: number[], query: string) =>
  `postgres://postgres@${ports.map((p) => `127.0.0.1:${p}`).join(",")}/postgres${query}`;

/** Backend pids of the sessions named `app` on the server at `port`, from pg_stat_activity. */
async function sessions(port: number, app: string): Promise<number[]> {
  const rows = await pair!.query(
    port,
    `select pid from pg_stat_activity where application_name = '${app}' order by pid`,
  );
  return rows.map((r) => r.pid as number);
}

Deno.test({
  name:
    "a borrower's SET LOCAL or SET default_transaction_read_only = on is no failover: every connection to the unchanged primary stays",
  ignore: pair === undefined,
  async fn() {
    const { primary, standby } = pair!;
    await pair!.query(primary, "create table if not exists t (v int)");
    await using logs = await captureLogs();
    await using pool = new ConnectionPool({
      conninfo: url([primary, standby], "?target_session_attrs=read-write&application_name=tp-own-setting"),
      minSize: 4,
      timeout: 5_000,
      backoff: { initialDelay: 50, jitter: 0 },
    });
    await pool.open({ wait: true, timeout: 10_000 });
    const before = await sessions(primary, "tp-own-setting");
    assert.equal(before.length, 4);
    const stillFits = () => logs.messages().filter((m) => m.includes("still fits")).length;

    // SET LOCAL inside a transaction: the server reports default_transaction_read_only = on to this session,
    // and a write in a read-only transaction is refused (25006) by this session's own setting.
    const a = await pool.getconn();
    await a.query("begin");
    await a.query("set local default_transaction_read_only = on");
    await a.query("set local transaction_read_only = on");
    const refused = await a.query("insert into t values (1)").catch((e: { code?: string }) => e.code);
    assert.equal(refused, "25006");
    await a.query("rollback");
    await pool.putconn(a);
    await waitFor(() => stillFits() >= 1, { timeout: 10_000, message: "a fresh session was asked" });

    // A plain SET on its own connection: the server reports default_transaction_read_only = on to that session only.
    const b = await pool.getconn();
    await b.query("set default_transaction_read_only = on");
    assert.equal(await b.query("insert into t values (2)").catch((e: { code?: string }) => e.code), "25006");
    await b.query("reset default_transaction_read_only");
    await pool.putconn(b);
    await waitFor(() => stillFits() >= 2, { timeout: 10_000, message: "a fresh session was asked again" });

    assert.equal(pool.getStats().connectionsLost, 0, "no connection was closed as lost");
    assert.deepEqual(await sessions(primary, "tp-own-setting"), before, "the same 4 backends, none replaced");
    assert.deepEqual(pool.toJSON().hosts, { [`127.0.0.1:${primary}`]: 4 });
    assert.ok(!logs.messages().some((m) => m.includes("is now read-only")), "no failover was logged");
    await pool.query("insert into t values (3)"); // writes go on
  },
});

Deno.test({
  name:
    "a standby promoted: its in_hot_standby report drops every connection opened for target_session_attrs=standby, and prefer-standby reconnects",
  ignore: pair === undefined,
  async fn() {
    const { primary, standby } = pair!;
    await using logs = await captureLogs();
    await using pool = new ConnectionPool({
      conninfo: url([standby, primary], "?target_session_attrs=prefer-standby&application_name=tp-promote"),
      minSize: 3,
      timeout: 5_000,
      backoff: { initialDelay: 50, jitter: 0 },
    });
    await pool.open({ wait: true, timeout: 10_000 });
    const before = await sessions(standby, "tp-promote");
    assert.equal(before.length, 3);
    await pair!.query(standby, "select pg_promote(true, 30)");
    // The report reaches a session with its next statement; one is enough for all three.
    const dropped = () => logs.messages().find((m) => m.startsWith(`Server 127.0.0.1:${standby} is now not a standby`));
    await waitFor(async () => {
      await pool.query("select 1").catch(() => {});
      return dropped() !== undefined;
    }, { timeout: 10_000, interval: 50, message: "the connections opened for a standby were dropped" });
    assert.match(dropped()!, /dropping its 3 connections/);
    assert.ok(
      !logs.messages().some((m) => m.includes("still fits")),
      "the server's own report decides, no second opinion",
    );
    // prefer-standby: no standby left, so the first host, now a primary, serves, on new backends.
    await waitFor(async () => {
      const now = await sessions(standby, "tp-promote");
      return now.length === 3 && now.every((pid) => !before.includes(pid));
    }, { timeout: 10_000, message: "replaced on the promoted server" });
  },
});
