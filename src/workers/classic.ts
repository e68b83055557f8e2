/**
 * How the classic (psycopg2-style) pools lend connections to Workers. Their
 * semantics hold through the channel: a Worker's `getconn()` never waits and
 * throws `PoolExhaustedError` at `maxconn`; a Worker's keys are its own (the
 * owner scopes them by port, so two Workers using key "a" get two
 * connections); a persistent pool binds one connection per attached port,
 * as it binds one per isolate.
 *
 * @module
 */
import type { Driver } from "../driver.ts";
import type { ShareOps } from "./owner.ts";

/** The protected core of a classic pool, handed over by the pool's own `share()`. */
export interface ClassicCore<C> {
  getconn(key: string | number | undefined): Promise<C>;
  putconn(conn: C, key: string | number | undefined, close: boolean): Promise<void>;
  driver: Driver<C>;
}

/** The key a Worker's lease is bound to in the owner's pool. */
export function workerKey(port: number, key?: string | number, epoch = 0): string {
  const base = epoch === 0 ? `tidepool-worker-${port}` : `tidepool-worker-${port}@${epoch}`;
  return key === undefined ? base : `${base}:${typeof key}:${key}`;
}

/**
 * Share ops of `SimpleConnectionPool` / `ThreadedConnectionPool` (`"classic"`)
 * or `PersistentConnectionPool` (`"persistent"`).
 */
export function classicShareOps<C>(flavor: "classic" | "persistent", core: ClassicCore<C>): ShareOps<C> {
  const { driver } = core;
  const query = (conn: C, text: string, params?: unknown[]) => driver.query(conn, text, params);
  const status = (conn: C) => driver.status(conn);
  if (flavor === "persistent") return persistentShareOps(core, query, status);
  // No key: the Worker gets a fresh key of its own. The pool's own fresh keys are
  // 1, 2, ... (psycopg2's), which the owner's code may also pass by hand.
  let unkeyed = 0;
  return {
    flavor,
    acquire: (r) =>
      core.getconn(r.key === undefined ? `${workerKey(r.port)}:auto:${++unkeyed}` : workerKey(r.port, r.key, r.epoch)),
    // putconn looks the key up from the connection.
    release: (conn, r) => core.putconn(conn, undefined, r.close === true),
    query,
    status,
  };
}

/** How one port uses its persistent connection: runs in flight, a lease held or being acquired. */
interface PortUse {
  runs: number;
  acquiring: number;
  leased: boolean;
  /** A lease was put back with `close` while runs still used the connection. */
  closeAfterUse: boolean;
}

/**
 * A persistent pool binds ONE connection to each port, as it binds one per
 * isolate: every `pool.query()` run and the lease of that port share it, and
 * it goes back to the pool only when the last of them is done.
 */
function persistentShareOps<C>(
  core: ClassicCore<C>,
  query: ShareOps<C>["query"],
  status: ShareOps<C>["status"],
): ShareOps<C> {
  const uses = new Map<number, PortUse>();
  const use = (port: number): PortUse => {
    let u = uses.get(port);
    if (u === undefined) uses.set(port, u = { runs: 0, acquiring: 0, leased: false, closeAfterUse: false });
    return u;
  };
  return {
    flavor: "persistent",
    async acquire(r) {
      const u = use(r.port);
      // Until its lease exists, an acquire keeps a run in flight from giving the connection back.
      if (r.run) u.runs++;
      else u.acquiring++;
      try {
        const conn = await core.getconn(workerKey(r.port));
        if (!r.run) u.leased = true;
        return conn;
      } catch (error) {
        if (r.run) u.runs--;
        throw error;
      } finally {
        if (!r.run) u.acquiring--;
        if (u.runs === 0 && u.acquiring === 0 && !u.leased) uses.delete(r.port); // nothing bound to the port
      }
    },
    release(conn, r) {
      const u = use(r.port);
      if (r.run) u.runs--;
      else u.leased = false;
      u.closeAfterUse ||= r.close === true;
      if (u.runs > 0 || u.acquiring > 0 || u.leased) return Promise.resolve(); // the last user gives it back
      uses.delete(r.port);
      return core.putconn(conn, workerKey(r.port), u.closeAfterUse);
    },
    query,
    status,
  };
}
