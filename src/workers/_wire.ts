/**
 * The messages between a pool's owner isolate and the Workers attached to it.
 * Every message carries the protocol version `v` and a `kind`; requests carry
 * an `id` the reply echoes. Several messages posted in the same tick travel as
 * one array (see `_outbox.ts`), so a receiver accepts one message or an array.
 *
 * Nothing here may hold a function or a class instance: messages cross by
 * structured clone, which drops prototypes (and with them error classes), so
 * errors travel as {@linkcode WireError} and are rebuilt on arrival.
 *
 * @module
 */
import type { ConnectionStatus, QueryResult } from "../driver.ts";
import {
  ConnectionLostError,
  HostsExhaustedError,
  PoolClosedError,
  PoolConnectError,
  PoolError,
  PoolExhaustedError,
  PoolTimeoutError,
  TooManyRequestsError,
} from "../errors.ts";

/** The protocol version; a message with another `v` is refused with a warning. */
export const WIRE_VERSION = 1;

/** What the owner tells a Worker when it attaches. */
export interface PoolInfo {
  name: string;
  /** `"pool"` (ConnectionPool & co), `"classic"` (keyed, throws when exhausted) or `"persistent"` (one connection per Worker). */
  flavor: "pool" | "classic" | "persistent";
  minSize: number;
  maxSize: number;
  /** The Worker pings this often (ms) while it holds leases or waits for replies. */
  heartbeatInterval: number;
  /** The owner reclaims a silent Worker's leases after this many ms. */
  heartbeatTimeout: number;
  /** Bound (ms) of the COMMIT/ROLLBACK the pool runs itself (the owner's connectTimeout); 0 = none. */
  finishTimeout?: number;
}

/** A classic pool's key, as psycopg2 uses them (kept cloneable). */
export type WireKey = string | number;

/** Worker → owner. */
export type ToOwner =
  | { v: 1; kind: "hello"; id: number }
  | { v: 1; kind: "acquire"; id: number; timeout?: number; key?: WireKey; cancellable?: boolean }
  | { v: 1; kind: "query"; id: number; lease: number; text: string; params?: unknown[] }
  | { v: 1; kind: "release"; id: number; lease: number; close?: boolean }
  /** Checkout, one statement, return: one round trip for `pool.query()`. */
  | { v: 1; kind: "run"; id: number; text: string; params?: unknown[] }
  | { v: 1; kind: "cancel"; id: number }
  | { v: 1; kind: "ping" }
  | { v: 1; kind: "detach"; id: number };

/** Owner → Worker. */
export type ToWorker =
  | { v: 1; kind: "welcome"; id: number; info: PoolInfo }
  | { v: 1; kind: "ok"; id: number; lease?: number; result?: QueryResult; status?: ConnectionStatus }
  | { v: 1; kind: "err"; id: number; error: WireError; status?: ConnectionStatus }
  /** Leases taken back from a Worker that went silent (it may still be alive). */
  | { v: 1; kind: "reclaimed"; leases: number[]; reason: string }
  /** The owner's pool closed: every later call fails with PoolClosedError. */
  | { v: 1; kind: "closed"; reason: string };

/** An error flattened for the channel. */
export interface WireError {
  name: string;
  message: string;
  /** Extra string/number fields of a server error (SQLSTATE `code`, `detail`, `hint`, ...). */
  fields?: Record<string, string | number>;
  /** {@linkcode HostsExhaustedError}'s `hosts`. */
  hosts?: string[];
  cause?: WireError;
}

// node-postgres' DatabaseError fields worth keeping; all strings (or numbers) when set.
const ERROR_FIELDS = [
  "code",
  "detail",
  "hint",
  "severity",
  "position",
  "internalPosition",
  "internalQuery",
  "where",
  "schema",
  "table",
  "column",
  "dataType",
  "constraint",
  "file",
  "line",
  "routine",
] as const;

/** True for a value that looks like one of our messages (version checked separately). */
export function isMessage(value: unknown): value is { v: unknown; kind: unknown } {
  return typeof value === "object" && value !== null && "v" in value && "kind" in value &&
    typeof (value as { kind: unknown }).kind === "string";
}

/** Flattens an error for postMessage, keeping its class name and the server's fields. */
export function toWireError(error: unknown, depth = 0): WireError {
  if (!(error instanceof Error)) return { name: "Error", message: String(error) };
  const wire: WireError = { name: error.name, message: error.message };
  const source = error as unknown as Record<string, unknown>;
  for (const key of ERROR_FIELDS) {
    const value = source[key];
    if (typeof value === "string" || typeof value === "number") (wire.fields ??= {})[key] = value;
  }
  if (error instanceof HostsExhaustedError) wire.hosts = [...error.hosts];
  if (error.cause !== undefined && depth < 3) wire.cause = toWireError(error.cause, depth + 1);
  return wire;
}

/** Rebuilds an error of a known class from its wire form; `options` carries the rebuilt cause. */
type Rebuild = (wire: WireError, options?: ErrorOptions) => Error;

/** For a class whose constructor is `(message, options)`. */
const plain = (Class: new (message: string, options?: ErrorOptions) => Error): Rebuild => (wire, options) =>
  new Class(wire.message, options);

const CLASSES: Record<string, Rebuild> = {
  PoolError: plain(PoolError),
  PoolTimeoutError: plain(PoolTimeoutError),
  PoolClosedError: plain(PoolClosedError),
  TooManyRequestsError: plain(TooManyRequestsError),
  PoolExhaustedError: plain(PoolExhaustedError),
  PoolConnectError: plain(PoolConnectError),
  ConnectionLostError: plain(ConnectionLostError),
  HostsExhaustedError: (wire, options) => new HostsExhaustedError(wire.message, wire.hosts ?? [], options),
  TypeError: plain(TypeError),
  RangeError: plain(RangeError),
};

/** Rebuilds an error from the channel: pool errors get their class back, server errors their SQLSTATE fields. */
export function fromWireError(wire: WireError): Error {
  const cause = wire.cause === undefined ? undefined : fromWireError(wire.cause);
  const options = cause === undefined ? undefined : { cause };
  const rebuild = Object.hasOwn(CLASSES, wire.name) ? CLASSES[wire.name] : undefined;
  const error = rebuild === undefined ? new Error(wire.message, options) : rebuild(wire, options);
  if (rebuild === undefined) error.name = wire.name;
  if (wire.fields !== undefined) Object.assign(error, wire.fields);
  return error;
}

/** The cloneable part of a driver's result: node-postgres' carries functions (type parsers). */
export function toWireResult(result: QueryResult): QueryResult {
  const fields = result.fields ?? [];
  const plain = new Array<{ name: string; dataTypeID: number }>(fields.length);
  for (let i = 0; i < fields.length; i++) plain[i] = { name: fields[i].name, dataTypeID: fields[i].dataTypeID };
  // `command` too: a COMMIT answered with a ROLLBACK tag tells the Worker the transaction failed.
  return { rows: result.rows, rowCount: result.rowCount, fields: plain, command: result.command };
}
