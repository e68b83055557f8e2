/**
 * The contenders of the app-shaped bench (bench/app.ts): each runs the three
 * workloads (point select by primary key, 3-table join with a parameter,
 * pgbench-like transaction) on CONNECTIONS server connections, through its
 * own client: tidepool, pg.Pool, postgres.js, and Kysely / Drizzle over them.
 *
 * @module
 */

import pg from "pg";
import postgres from "postgres";
import { Kysely, PostgresDialect, sql as ksql } from "kysely";
import { PostgresJSDialect } from "kysely-postgres-js";
import { drizzle } from "drizzle-orm/node-postgres";
import { eq, sql as dsql } from "drizzle-orm";
import { integer, pgTable, text } from "drizzle-orm/pg-core";
import { ConnectionPool, toPgPool } from "../mod.ts";
import { TidepoolDialect } from "../src/compat/kysely.ts";
import { CONNECTIONS, openPgPool } from "./_db_contenders.ts";

/** Rows in bench_accounts; branches and tellers as in pgbench (1 branch, 10 tellers per 100k accounts, scaled). */
export const ACCOUNTS = 10_000;
export const BRANCHES = 10;
export const TELLERS = 100;

/** One random argument set for a call. */
export interface Args {
  aid: number;
  tid: number;
  bid: number;
  delta: number;
}

/** A ready contender: one call of each workload. */
export interface AppTarget {
  point(a: Args): Promise<unknown>;
  join(a: Args): Promise<unknown>;
  transaction(a: Args): Promise<unknown>;
  close(): Promise<void>;
}

/** A named way to build an {@linkcode AppTarget}. */
export interface AppContender {
  name: string;
  create(url: string): Promise<AppTarget>;
}

/** The statements, as every raw client sends them. */
export const SQL = {
  point: "select aid, bid, abalance, filler from bench_accounts where aid = $1",
  join: "select a.aid, a.abalance, t.tid, t.tbalance, b.bid, b.bbalance from bench_accounts a " +
    "join bench_tellers t on t.bid = a.bid join bench_branches b on b.bid = a.bid " +
    "where a.aid = $1 order by t.tid",
  update1: "update bench_accounts set abalance = abalance + $1 where aid = $2",
  select: "select abalance from bench_accounts where aid = $1",
  update2: "update bench_tellers set tbalance = tbalance + $1 where tid = $2",
  insert: "insert into bench_history (tid, bid, aid, delta) values ($1, $2, $3, $4)",
};

/** Creates and fills the tables (idempotent: drops them first). */
export async function setUpSchema(url: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(`
      drop table if exists bench_history, bench_accounts, bench_tellers, bench_branches;
      create table bench_branches (bid int primary key, bbalance int not null, filler char(88));
      create table bench_tellers (tid int primary key, bid int not null, tbalance int not null, filler char(84));
      create table bench_accounts (aid int primary key, bid int not null, abalance int not null, filler char(84));
      create table bench_history (tid int, bid int, aid int, delta int, mtime timestamp default now(), filler char(22));
      insert into bench_branches select g, 0, '' from generate_series(1, ${BRANCHES}) g;
      insert into bench_tellers select g, (g - 1) % ${BRANCHES} + 1, 0, '' from generate_series(1, ${TELLERS}) g;
      insert into bench_accounts select g, (g - 1) % ${BRANCHES} + 1, 0, '' from generate_series(1, ${ACCOUNTS}) g;
      create index on bench_tellers (bid);
    `);
    // VACUUM refuses to run inside the implicit transaction of a multi-statement string.
    await client.query("vacuum analyze bench_branches, bench_tellers, bench_accounts");
  } finally {
    await client.end();
  }
}

/** Empties the history table between runs so inserts cost the same for every contender. */
export async function truncateHistory(url: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query("truncate bench_history");
  } finally {
    await client.end();
  }
}

async function openTidepool(url: string, name: string, preparedStatements?: false): Promise<ConnectionPool> {
  const pool = new ConnectionPool({
    conninfo: url,
    minSize: CONNECTIONS,
    maxSize: CONNECTIONS,
    name,
    ...(preparedStatements === false ? { preparedStatements } : {}),
  });
  await pool.open({ wait: true });
  return pool;
}

function tidepoolContender(name: string, preparedStatements?: false): AppContender {
  return {
    name,
    async create(url) {
      const pool = await openTidepool(url, name, preparedStatements);
      return {
        point: (a) => pool.query(SQL.point, [a.aid]),
        join: (a) => pool.query(SQL.join, [a.aid]),
        transaction: (a) =>
          pool.transaction(async (conn) => {
            await conn.query(SQL.update1, [a.delta, a.aid]);
            await conn.query(SQL.select, [a.aid]);
            await conn.query(SQL.update2, [a.delta, a.tid]);
            await conn.query(SQL.insert, [a.tid, a.bid, a.aid, a.delta]);
          }),
        close: () => pool.close(),
      };
    },
  };
}

/** tidepool `pool.query()` / `pool.transaction()`, defaults (statement cache on). */
export const tidepool: AppContender = tidepoolContender("tidepool");
/** The same with the statement cache off: the A/B that picks its default. */
export const tidepoolUnprepared: AppContender = tidepoolContender("tidepool preparedStatements:false", false);

/** node-postgres' pool, `query()` and a checked-out client for the transaction. */
export const pgPoolApp: AppContender = {
  name: "pg.Pool",
  async create(url) {
    const pool = await openPgPool(url) as unknown as pg.Pool;
    return {
      point: (a) => pool.query(SQL.point, [a.aid]),
      join: (a) => pool.query(SQL.join, [a.aid]),
      async transaction(a) {
        const client = await pool.connect();
        try {
          await client.query("BEGIN");
          await client.query(SQL.update1, [a.delta, a.aid]);
          await client.query(SQL.select, [a.aid]);
          await client.query(SQL.update2, [a.delta, a.tid]);
          await client.query(SQL.insert, [a.tid, a.bid, a.aid, a.delta]);
          await client.query("COMMIT");
        } catch (error) {
          await client.query("ROLLBACK").catch(() => {});
          throw error;
        } finally {
          client.release();
        }
      },
      close: () => pool.end(),
    };
  },
};

async function openPostgresJs(url: string): Promise<postgres.Sql> {
  const sql = postgres(url, { max: CONNECTIONS, onnotice: () => {} });
  await Promise.all(Array.from({ length: CONNECTIONS * 4 }, () => sql`select 1`));
  return sql;
}

/** postgres.js tagged templates (prepared, its default) and `sql.begin()`. */
export const postgresJsApp: AppContender = {
  name: "postgres.js",
  async create(url) {
    const sql = await openPostgresJs(url);
    return {
      point: (a) => sql`select aid, bid, abalance, filler from bench_accounts where aid = ${a.aid}`,
      join: (a) =>
        sql`select a.aid, a.abalance, t.tid, t.tbalance, b.bid, b.bbalance from bench_accounts a
          join bench_tellers t on t.bid = a.bid join bench_branches b on b.bid = a.bid
          where a.aid = ${a.aid} order by t.tid`,
      transaction: (a) =>
        sql.begin(async (tx) => {
          await tx`update bench_accounts set abalance = abalance + ${a.delta} where aid = ${a.aid}`;
          await tx`select abalance from bench_accounts where aid = ${a.aid}`;
          await tx`update bench_tellers set tbalance = tbalance + ${a.delta} where tid = ${a.tid}`;
          await tx`insert into bench_history (tid, bid, aid, delta) values (${a.tid}, ${a.bid}, ${a.aid}, ${a.delta})`;
        }),
      close: () => sql.end({ timeout: 5 }),
    };
  },
};

interface KyselyDb {
  bench_accounts: { aid: number; bid: number; abalance: number; filler: string | null };
  bench_tellers: { tid: number; bid: number; tbalance: number; filler: string | null };
  bench_branches: { bid: number; bbalance: number; filler: string | null };
  bench_history: { tid: number; bid: number; aid: number; delta: number };
}

function kyselyTarget(db: Kysely<KyselyDb>): AppTarget {
  return {
    point: (a) =>
      db.selectFrom("bench_accounts").select(["aid", "bid", "abalance", "filler"]).where("aid", "=", a.aid).execute(),
    join: (a) =>
      db.selectFrom("bench_accounts as a")
        .innerJoin("bench_tellers as t", "t.bid", "a.bid")
        .innerJoin("bench_branches as b", "b.bid", "a.bid")
        .select(["a.aid", "a.abalance", "t.tid", "t.tbalance", "b.bid", "b.bbalance"])
        .where("a.aid", "=", a.aid)
        .orderBy("t.tid")
        .execute(),
    transaction: (a) =>
      db.transaction().execute(async (trx) => {
        await trx.updateTable("bench_accounts").set({ abalance: ksql`abalance + ${a.delta}` }).where("aid", "=", a.aid)
          .execute();
        await trx.selectFrom("bench_accounts").select("abalance").where("aid", "=", a.aid).execute();
        await trx.updateTable("bench_tellers").set({ tbalance: ksql`tbalance + ${a.delta}` }).where("tid", "=", a.tid)
          .execute();
        await trx.insertInto("bench_history").values({ tid: a.tid, bid: a.bid, aid: a.aid, delta: a.delta }).execute();
      }),
    close: () => db.destroy(),
  };
}

/** Kysely over `TidepoolDialect`. */
export const kyselyTidepool: AppContender = {
  name: "Kysely / tidepool",
  async create(url) {
    const pool = await openTidepool(url, "kysely-tidepool");
    return kyselyTarget(new Kysely<KyselyDb>({ dialect: new TidepoolDialect({ pool }) }));
  },
};

/** Kysely's own `PostgresDialect` over pg.Pool. */
export const kyselyPgPool: AppContender = {
  name: "Kysely / pg.Pool",
  async create(url) {
    const pool = await openPgPool(url) as unknown as pg.Pool;
    return kyselyTarget(new Kysely<KyselyDb>({ dialect: new PostgresDialect({ pool }) }));
  },
};

/** Kysely over postgres.js through `kysely-postgres-js`. */
export const kyselyPostgresJs: AppContender = {
  name: "Kysely / postgres.js",
  async create(url) {
    const sql = await openPostgresJs(url);
    return kyselyTarget(new Kysely<KyselyDb>({ dialect: new PostgresJSDialect({ postgres: sql }) }));
  },
};

const accounts = pgTable("bench_accounts", {
  aid: integer("aid").primaryKey(),
  bid: integer("bid").notNull(),
  abalance: integer("abalance").notNull(),
  filler: text("filler"),
});
const tellers = pgTable("bench_tellers", {
  tid: integer("tid").primaryKey(),
  bid: integer("bid").notNull(),
  tbalance: integer("tbalance").notNull(),
  filler: text("filler"),
});
const branches = pgTable("bench_branches", {
  bid: integer("bid").primaryKey(),
  bbalance: integer("bbalance").notNull(),
  filler: text("filler"),
});
const history = pgTable("bench_history", {
  tid: integer("tid"),
  bid: integer("bid"),
  aid: integer("aid"),
  delta: integer("delta"),
});

// deno-lint-ignore no-explicit-any
function drizzleTarget(client: any, close: () => Promise<void>): AppTarget {
  const db = drizzle({ client });
  return {
    point: (a) => db.select().from(accounts).where(eq(accounts.aid, a.aid)),
    join: (a) =>
      db.select({
        aid: accounts.aid,
        abalance: accounts.abalance,
        tid: tellers.tid,
        tbalance: tellers.tbalance,
        bid: branches.bid,
        bbalance: branches.bbalance,
      }).from(accounts)
        .innerJoin(tellers, eq(tellers.bid, accounts.bid))
        .innerJoin(branches, eq(branches.bid, accounts.bid))
        .where(eq(accounts.aid, a.aid))
        .orderBy(tellers.tid),
    transaction: (a) =>
      db.transaction(async (tx) => {
        await tx.update(accounts).set({ abalance: dsql`${accounts.abalance} + ${a.delta}` }).where(
          eq(accounts.aid, a.aid),
        );
        await tx.select({ abalance: accounts.abalance }).from(accounts).where(eq(accounts.aid, a.aid));
        await tx.update(tellers).set({ tbalance: dsql`${tellers.tbalance} + ${a.delta}` }).where(
          eq(tellers.tid, a.tid),
        );
        await tx.insert(history).values({ tid: a.tid, bid: a.bid, aid: a.aid, delta: a.delta });
      }),
    close,
  };
}

/** Drizzle (node-postgres) over `toPgPool(pool)`. */
export const drizzleTidepool: AppContender = {
  name: "Drizzle / toPgPool",
  async create(url) {
    const pool = await openTidepool(url, "drizzle-tidepool");
    const facade = toPgPool(pool);
    return drizzleTarget(facade, () => facade.end());
  },
};

/** Drizzle (node-postgres) over pg.Pool. */
export const drizzlePgPool: AppContender = {
  name: "Drizzle / pg.Pool",
  async create(url) {
    const pool = await openPgPool(url) as unknown as pg.Pool;
    return drizzleTarget(pool, () => pool.end());
  },
};
