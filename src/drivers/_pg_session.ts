/**
 * The JS side of a node-postgres session: what `ConnectionPool.discardAll`
 * resets besides the server's `DISCARD ALL`. A borrower can change a
 * `pg.Client` in ways the server never sees (`setTypeParser`, event
 * listeners); a clean session means those go too. The baseline is the
 * client's state when the pool adopted it, after `configure`, so what
 * `configure` sets up stays.
 *
 * @module
 */
import type * as pg from "./pg_types.ts";

type Listener = (...args: unknown[]) => void;

interface Emitter {
  eventNames(): (string | symbol)[];
  rawListeners(event: string | symbol): Listener[];
  removeListener(event: string | symbol, listener: Listener): unknown;
}

interface TypeOverrides {
  _types?: unknown;
  text?: Record<string, unknown>;
  binary?: Record<string, unknown>;
}

interface PgClientInternals {
  _types?: TypeOverrides;
  connection?: Emitter & { parsedStatements?: Record<string, unknown> };
}

interface Baseline {
  types: TypeOverrides | undefined;
  userTypes: unknown;
  text: Record<string, unknown>;
  binary: Record<string, unknown>;
  client: Map<string | symbol, Listener[]>;
  connection: Map<string | symbol, Listener[]> | undefined;
}

const baselines = new WeakMap<object, Baseline>();

function listenersOf(emitter: Emitter): Map<string | symbol, Listener[]> {
  const map = new Map<string | symbol, Listener[]>();
  for (const event of emitter.eventNames()) map.set(event, [...emitter.rawListeners(event)]);
  return map;
}

function restoreListeners(emitter: Emitter, baseline: Map<string | symbol, Listener[]>): void {
  for (const event of emitter.eventNames()) {
    const kept = baseline.get(event) ?? [];
    for (const listener of emitter.rawListeners(event)) {
      if (!kept.includes(listener)) emitter.removeListener(event, listener);
    }
  }
}

/**
 * Records a client's JS-side state as the one to come back to. Called by the
 * pg driver's `watch`, when the pool adopts the connection.
 *
 * @param client A connected `pg.Client`.
 */
export function markBaseline(client: pg.Client): void {
  const c = client as unknown as PgClientInternals & Emitter;
  const types = c._types;
  baselines.set(client, {
    types,
    userTypes: types?._types,
    text: { ...types?.text },
    binary: { ...types?.binary },
    client: listenersOf(c),
    connection: c.connection === undefined ? undefined : listenersOf(c.connection),
  });
}

/**
 * Brings a `pg.Client` back to its baseline: type parsers and event listeners
 * added since are dropped, and pg forgets the statements it prepared (the
 * server's `DISCARD ALL` deallocated them; pg would skip the Parse next time:
 * "prepared statement ... does not exist"). Anything else is left alone, so
 * it is safe to call on any driver's connection. The pg driver puts it on
 * each client under `FORGET_SESSION`, which `discardAll` calls.
 *
 * @param conn A connection, usually a `pg.Client`.
 */
export function restoreBaseline(conn: unknown): void {
  if (conn === null || (typeof conn !== "object" && typeof conn !== "function")) return;
  const c = conn as PgClientInternals & Partial<Emitter>;
  const statements = c.connection?.parsedStatements;
  if (statements !== undefined) {
    for (const name of Object.keys(statements)) delete statements[name];
  }
  const baseline = baselines.get(conn);
  if (baseline === undefined) return;
  if (baseline.types !== undefined) {
    c._types = baseline.types;
    baseline.types._types = baseline.userTypes;
    baseline.types.text = { ...baseline.text };
    baseline.types.binary = { ...baseline.binary };
  }
  if (typeof c.eventNames === "function") restoreListeners(c as Emitter, baseline.client);
  if (c.connection !== undefined && baseline.connection !== undefined) {
    restoreListeners(c.connection, baseline.connection);
  }
}
