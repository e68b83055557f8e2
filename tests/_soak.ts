/**
 * The chaos soak: many tasks borrow connections while a chaos loop kills
 * backends and cuts or stalls the network, and borrowers throw on purpose.
 * Invariants are checked continuously and at the end. Run by `tests/soak.ts`
 * (long, `deno task soak`) and `tests/faults/soak_test.ts` (short, default run).
 *
 * @module
 */
import { ConnectionPool, PoolTimeoutError } from "../mod.ts";
import { adminQuery, backendCount, waitFor } from "./_db.ts";
import { backendPids, FAST_BACKOFF, proxyToServer, sessionsInState } from "./_faults.ts";

/** Options of {@linkcode runSoak}. */
export interface SoakOptions {
  /** The test database's URL (the soak routes it through a proxy). */
  url: string;
  /** The test database's name, for pg_stat_activity. */
  dbName: string;
  /** Checkouts to run. */
  ops: number;
  /** Concurrent borrowing tasks. */
  tasks: number;
  /** Stop early after this many ms even if `ops` are not done. */
  durationMs: number;
  /** Pause between chaos actions, ms. @default 150 */
  chaosEveryMs?: number;
}

/** What a soak run saw. */
export interface SoakReport {
  ops: number;
  elapsedMs: number;
  opsPerSecond: number;
  /** Outcomes by kind: ok, borrowerThrew (on purpose), poolTimeout, queryFailed (connection lost), other. */
  outcomes: Record<string, number>;
  /** Chaos actions taken, by kind. */
  chaos: Record<string, number>;
  /** Broken invariants; empty on success. */
  violations: string[];
  /** Final pool stats. */
  stats: ReturnType<ConnectionPool["getStats"]>;
}

class BorrowerError extends Error {
  override name = "BorrowerError";
}

const MAX_SIZE = 8;
const TIMEOUT = 1_000;

/**
 * Runs the soak and returns its report; `violations` lists every broken invariant.
 *
 * @param options Size and duration.
 * @returns The report.
 * @example
 * ```ts
 * const report = await runSoak({ url: db.url, dbName: db.name, ops: 2_000, tasks: 32, durationMs: 20_000 });
 * ```
 */
export async function runSoak(options: SoakOptions): Promise<SoakReport> {
  const violations: string[] = [];
  const violate = (what: string) => {
    if (violations.length < 20) violations.push(what);
  };
  const outcomes: Record<string, number> = { ok: 0, borrowerThrew: 0, poolTimeout: 0, queryFailed: 0, other: 0 };
  const chaos: Record<string, number> = { kill: 0, cut: 0, outage: 0, stall: 0 };
  const otherErrors = new Set<string>();
  const committed: number[] = [];
  let nextId = 0;
  let inUse = 0;

  await adminQuery("select 1");
  await using proxy = await proxyToServer();
  const pool = new ConnectionPool({
    conninfo: proxy.url(options.url),
    minSize: 4,
    maxSize: MAX_SIZE,
    timeout: TIMEOUT,
    connectTimeout: 500,
    backoff: FAST_BACKOFF,
    name: "soak",
  });
  const started = performance.now();
  const deadline = started + options.durationMs;
  let running = true;
  try {
    await pool.open({ wait: true, timeout: 5_000 });
    await pool.query("create table if not exists soak (id int primary key)");

    const waiting = new Set<{ since: number }>(); // the getconn() calls still waiting, oldest first
    // Invariants, checked continuously.
    const checker = setInterval(() => {
      const s = pool.getStats();
      if (s.poolSize > MAX_SIZE) violate(`size ${s.poolSize} > maxSize ${MAX_SIZE}`);
      if (s.poolAvailable + inUse > s.poolSize) {
        violate(`available ${s.poolAvailable} + in use ${inUse} > size ${s.poolSize}`);
      }
      const now = performance.now();
      for (const request of waiting) {
        const age = now - request.since;
        if (age > TIMEOUT * 1.1) violate(`a getconn() has waited ${age.toFixed(0)} ms (timeout ${TIMEOUT})`);
        break; // the set keeps insertion order: the first is the oldest
      }
    }, 5);

    const chaosLoop = (async () => {
      while (running) {
        await sleep(options.chaosEveryMs ?? 150);
        if (!running) break;
        const r = Math.random();
        if (r < 0.45) {
          const pids = await backendPids(options.dbName).catch(() => []);
          const pid = pids[Math.floor(Math.random() * pids.length)];
          if (pid !== undefined) {
            await adminQuery("select pg_terminate_backend($1)", [pid]).catch(() => {});
            chaos.kill++;
          }
        } else if (r < 0.75) {
          await proxy.cutAll();
          chaos.cut++;
        } else if (r < 0.9) {
          await proxy.stop();
          await sleep(100);
          await proxy.start();
          chaos.outage++;
        } else {
          proxy.blackhole();
          await sleep(150);
          await proxy.start();
          chaos.stall++;
        }
      }
    })();

    let issued = 0;
    const op = async (): Promise<void> => {
      const kind = Math.random();
      if (kind < 0.15) {
        // A transaction that commits (and must never be lost) or throws before COMMIT.
        const id = ++nextId;
        const fail = Math.random() < 0.3;
        await pool.transaction(async (c) => {
          await c.query("insert into soak values ($1)", [id]);
          if (fail) throw new BorrowerError("borrower failed");
        });
        committed.push(id);
        return;
      }
      // Timed from outside: a request still waiting past its timeout is a violation the checker sees.
      const request = { since: performance.now() };
      waiting.add(request);
      const conn = await pool.getconn(kind < 0.2 ? { signal: AbortSignal.timeout(50) } : undefined)
        .finally(() => waiting.delete(request));
      inUse++;
      try {
        if (kind < 0.3) {
          await conn.query("begin");
          await conn.query("select 1");
          throw new BorrowerError("borrower left a transaction open");
        }
        await conn.query("select 1");
      } finally {
        inUse--;
        await pool.putconn(conn);
      }
    };
    await Promise.all(Array.from({ length: options.tasks }, async () => {
      while (issued < options.ops && performance.now() < deadline) {
        issued++;
        try {
          await op();
          outcomes.ok++;
        } catch (error) {
          if (error instanceof BorrowerError) outcomes.borrowerThrew++;
          else if (error instanceof PoolTimeoutError) outcomes.poolTimeout++;
          else if ((error as Error)?.name === "TimeoutError") outcomes.poolTimeout++; // the abort signal's reason
          else if (isConnectionError(error)) outcomes.queryFailed++;
          else {
            outcomes.other++;
            otherErrors.add(String(error));
          }
        }
      }
    }));
    running = false;
    await chaosLoop;
    await proxy.start();
    clearInterval(checker);
    const elapsedMs = performance.now() - started;

    // At the end: nothing checked out, nobody waiting, no session idle in a transaction, no commit lost.
    await waitFor(() => {
      const s = pool.getStats();
      return s.poolAvailable === s.poolSize && s.requestsWaiting === 0;
    }, { timeout: 5_000, message: "pool quiescent" }).catch((e) => violate(String(e)));
    await waitFor(async () => (await sessionsInState(options.dbName, "idle in transaction")) === 0, {
      timeout: 3_000,
    }).catch(() => violate("sessions left idle in transaction"));
    if (inUse !== 0) violate(`${inUse} connections still checked out`);
    const stats = pool.getStats();
    if (stats.poolSize > MAX_SIZE) violate(`final size ${stats.poolSize}`);
    const { rows } = await pool.query<{ id: number }>("select id from soak");
    const present = new Set(rows.map((r) => r.id));
    const lost = committed.filter((id) => !present.has(id));
    if (lost.length > 0) violate(`${lost.length} committed transactions lost`);
    for (const e of otherErrors) violate(`unexpected error: ${e}`);
    return {
      ops: issued,
      elapsedMs,
      opsPerSecond: issued / (elapsedMs / 1000),
      outcomes,
      chaos,
      violations,
      stats,
    };
  } finally {
    running = false;
    await pool.close();
    await waitFor(async () => (await backendCount(options.dbName)) === 0).catch(() => {});
  }
}

/** Errors of a connection that died under a query (server terminated it, socket cut). */
function isConnectionError(error: unknown): boolean {
  const e = error as { code?: string; message?: string };
  if (e?.code === "57P01" || e?.code === "ECONNRESET" || e?.code === "EPIPE") return true;
  return /terminat|Connection terminated|not queryable|ended|closed|ECONNRESET|EPIPE|timeout/i.test(
    String(e?.message),
  );
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
