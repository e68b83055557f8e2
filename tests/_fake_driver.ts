/**
 * A controllable fake driver for testing the pool core's queueing and
 * connection lifecycle without a database. It builds on the benchmark's
 * no-I/O driver (`bench/_fake_driver.ts`) and adds what a test steers:
 * connect gates and failures, each connection's status, losing a connection,
 * and a count of the connections still open.
 *
 * @module
 */
import type { ConnectionStatus, Driver } from "../src/driver.ts";
import { createFakeDriver, FakeConnection } from "../bench/_fake_driver.ts";

export { FakeConnection };

/** A fake driver and its controls. */
export interface ControlledDriver extends Driver<FakeConnection> {
  /** Connections opened and not closed yet. */
  readonly open: ReadonlySet<FakeConnection>;
  /** Connection attempts started. */
  readonly attempts: number;
  /** The next `n` attempts reject with `error`. */
  failNext(n: number, error?: Error): void;
  /** Until `release()`, attempts wait (or reject when aborted). */
  hold(): { release(): void };
  /** Sets what `status()` reports for a connection. */
  setStatus(conn: FakeConnection, status: ConnectionStatus): void;
  /** The connection's socket "dies": its watcher fires and its status becomes broken. */
  lose(conn: FakeConnection): void;
}

/**
 * Creates a {@linkcode ControlledDriver}.
 *
 * @returns The driver; pass it as the pool's `driver` option.
 * @example
 * ```ts
 * const driver = controlledDriver();
 * const pool = new ConnectionPool({ driver, minSize: 1 });
 * ```
 */
export function controlledDriver(): ControlledDriver {
  const base = createFakeDriver();
  const open = new Set<FakeConnection>();
  const status = new Map<FakeConnection, ConnectionStatus>();
  const watchers = new Map<FakeConnection, (error: Error | undefined) => void>();
  let failures: { n: number; error: Error } = { n: 0, error: new Error("connect failed") };
  let gate: Promise<void> | undefined;
  let attempts = 0;
  return {
    ...base,
    description: "controlled fake (no I/O)",
    get open() {
      return open;
    },
    get attempts() {
      return attempts;
    },
    async connect(signal: AbortSignal): Promise<FakeConnection> {
      attempts++;
      signal.throwIfAborted();
      if (gate !== undefined) {
        const { promise, reject } = Promise.withResolvers<never>();
        const onAbort = () => reject(signal.reason);
        signal.addEventListener("abort", onAbort, { once: true });
        try {
          await Promise.race([gate, promise]);
        } finally {
          signal.removeEventListener("abort", onAbort);
        }
      }
      if (failures.n > 0) {
        failures.n--;
        throw failures.error;
      }
      const conn = await base.connect(signal);
      open.add(conn);
      return conn;
    },
    close(conn: FakeConnection): Promise<void> {
      open.delete(conn);
      status.set(conn, "broken");
      return Promise.resolve();
    },
    status: (conn) => status.get(conn) ?? (open.has(conn) ? "idle" : "broken"),
    watch(conn, onLost) {
      watchers.set(conn, onLost);
    },
    failNext(n, error = new Error("connect failed")) {
      failures = { n, error };
    },
    hold() {
      const { promise, resolve } = Promise.withResolvers<void>();
      gate = promise;
      return {
        release() {
          gate = undefined;
          resolve();
        },
      };
    },
    setStatus(conn, s) {
      status.set(conn, s);
    },
    lose(conn) {
      status.set(conn, "broken");
      watchers.get(conn)?.(new Error("connection lost"));
    },
  };
}
