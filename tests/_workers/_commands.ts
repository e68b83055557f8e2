/**
 * The command loop shared by the test Workers: `{ id, cmd, ...args }` in,
 * `{ id, value }` or `{ id, error }` out, errors described as the Worker sees
 * them (class checks and the server's fields).
 *
 * @module
 */
/// <reference lib="deno.worker" />
import {
  HostsExhaustedError,
  PoolClosedError,
  PoolConnectError,
  PoolError,
  PoolExhaustedError,
  PoolTimeoutError,
  TooManyRequestsError,
} from "../../mod.ts";

/** One command sent to a test Worker. */
export type Command = { id: number; cmd: string; [k: string]: unknown };

/** What crosses back for a failed command: the class as seen in the Worker, and the server's fields. */
export function describe(error: unknown): Record<string, unknown> {
  const e = error as Error & Record<string, unknown>;
  return {
    name: e?.name,
    message: e?.message,
    code: e?.code,
    detail: e?.detail,
    hint: e?.hint,
    isPoolError: e instanceof PoolError,
    isPoolTimeoutError: e instanceof PoolTimeoutError,
    isPoolClosedError: e instanceof PoolClosedError,
    isPoolExhaustedError: e instanceof PoolExhaustedError,
    isTooManyRequestsError: e instanceof TooManyRequestsError,
    isHostsExhaustedError: e instanceof HostsExhaustedError,
    isPoolConnectError: e instanceof PoolConnectError,
    hosts: e instanceof HostsExhaustedError ? e.hosts : undefined,
    cause: e?.cause instanceof Error ? describe(e.cause) : undefined,
  };
}

/** Answers each incoming command with its handler's result or error. */
export function serveCommands(commands: Record<string, (m: Command) => Promise<unknown> | unknown>): void {
  self.onmessage = async (e: MessageEvent<Command>) => {
    const m = e.data;
    try {
      const value = await commands[m.cmd](m);
      self.postMessage({ id: m.id, value });
    } catch (error) {
      self.postMessage({ id: m.id, error: describe(error) });
    }
  };
}
