/**
 * Reads a conninfo (a `postgres://` URL, a libpq `key=value` string or a
 * `pg.ClientConfig`) into one parsed form, the way libpq reads it, so that
 * node-postgres never sees the raw string: pg's own parser takes `key=value`
 * for a URL and echoes unparseable URLs (password included) in its errors.
 *
 * Errors thrown here never contain a value from the conninfo, only keyword
 * names: a misplaced quote or space can turn part of a password into a "key".
 *
 * @module
 */
import { isIP } from "node:net";
import type * as pg from "./pg_types.ts";

/** libpq's `target_session_attrs` values. */
export const TARGET_SESSION_ATTRS = ["any", "read-write", "read-only", "primary", "standby", "prefer-standby"] as const;
/** Which servers a connection may be opened on (libpq's `target_session_attrs`). */
export type TargetSessionAttrs = typeof TARGET_SESSION_ATTRS[number];

/** libpq's `sslmode` values, plus node-postgres' `no-verify` (TLS without any certificate check). */
const SSL_MODES = ["disable", "allow", "prefer", "require", "verify-ca", "verify-full", "no-verify"] as const;
type SslMode = typeof SSL_MODES[number];

/** One server of a host list. `undefined` fields fall back to node-postgres' defaults (PGHOST, PGPORT, localhost:5432). */
export interface ConninfoHost {
  /** Name or unix-socket directory: used for TLS verification and shown in logs. */
  host?: string;
  /** Numeric address to connect to instead of resolving `host` (libpq's `hostaddr`). */
  hostaddr?: string;
  port?: number;
}

/** A conninfo parsed: a host list, the session attributes wanted, and the rest of a `pg.ClientConfig`. */
export interface Conninfo {
  /** At least one; tried in order (or shuffled with `loadBalanceHosts: "random"`). */
  hosts: ConninfoHost[];
  targetSessionAttrs: TargetSessionAttrs;
  loadBalanceHosts: "disable" | "random";
  /** libpq's `connect_timeout`, in ms; overrides the pool's `connectTimeout` per attempt when set. */
  connectTimeout?: number;
  user?: string;
  database?: string;
  /** The password, when it is a string (pg also takes a function, kept in `config`). */
  password?: string;
  /** `sslmode` and its certificate files, resolved into `ssl` at connect time (the constructor does no I/O). */
  tls?: { mode: SslMode; rootcert?: string; cert?: string; key?: string };
  /** Everything else for `pg.Client`: application_name, options, ssl given as an object, ... */
  config: pg.ClientConfig;
}

/** Fields gathered while reading keywords, before the host list is assembled. */
interface Draft {
  host?: string[];
  hostaddr?: string[];
  /** Per-host ports from a URL's netloc (`h1:5432,h2`); `port=` in the query overrides them. */
  port?: string[];
  targetSessionAttrs?: TargetSessionAttrs;
  loadBalanceHosts?: "disable" | "random";
  connectTimeout?: number;
  user?: string;
  database?: string;
  password?: string;
  tls: { mode?: SslMode; rootcert?: string; cert?: string; key?: string };
  config: pg.ClientConfig & Record<string, unknown>;
}

const PREFIX = "Invalid conninfo: ";

/** libpq keywords read as is into `pg.ClientConfig` under the same or another name. */
const PASSED: Record<string, string> = {
  application_name: "application_name",
  fallback_application_name: "fallback_application_name",
  options: "options",
  client_encoding: "client_encoding",
  replication: "replication",
};

/** libpq keywords that tune things node-postgres does not expose and that change no security property: accepted, ignored. */
const IGNORED = new Set([
  "keepalives_interval",
  "keepalives_count",
  "tcp_user_timeout",
  "passfile",
  "sslcompression",
  "sslsni",
]);

/**
 * Parses a conninfo. Throws `TypeError` (unknown keyword, malformed string) or
 * `RangeError` (bad value) naming the parameter and never echoing a value.
 *
 * @param conninfo A `postgres://`/`postgresql://` URL, a libpq `key=value` string, or a `pg.ClientConfig`.
 * @returns The parsed form.
 * @example
 * ```ts
 * const info = parseConninfo("host=h1,h2 port=5432,5433 dbname=app target_session_attrs=read-write");
 * console.log(info.hosts); // [{ host: "h1", port: 5432 }, { host: "h2", port: 5433 }]
 * ```
 */
export function parseConninfo(conninfo: string | pg.ClientConfig): Conninfo {
  const draft: Draft = { tls: {}, config: {} };
  if (typeof conninfo === "string") {
    readString(conninfo, draft);
  } else if (typeof conninfo === "object" && conninfo !== null) {
    readObject(conninfo, draft);
  } else {
    throw new TypeError(`${PREFIX}expected a string or a pg.ClientConfig object`);
  }
  return finish(draft);
}

function readString(text: string, draft: Draft): void {
  if (/^postgres(?:ql)?:\/\//i.test(text)) return readUrl(text, draft);
  if (text.includes("=")) return readKeywords(text, draft);
  if (/^[a-z][a-z0-9+.-]{0,20}:\/\//i.test(text)) {
    throw new TypeError(`${PREFIX}unsupported URL scheme '${text.slice(0, text.indexOf(":"))}' (use postgres://)`);
  }
  throw new TypeError(`${PREFIX}expected a postgres:// URL or libpq key=value pairs`);
}

/** A `pg.ClientConfig`: a `connectionString` in it wins over its other fields, as in node-postgres. */
function readObject(object: pg.ClientConfig, draft: Draft): void {
  const { connectionString, host, port, user, password, database, ...rest } = object as pg.ClientConfig & {
    host?: unknown;
    port?: unknown;
  };
  draft.config = rest as Draft["config"];
  if (host !== undefined && host !== null) {
    if (typeof host !== "string") throw new TypeError(`${PREFIX}'host' must be a string`);
    keyword(draft, "host", host);
  }
  if (port !== undefined && port !== null) {
    if (typeof port !== "number" && typeof port !== "string") {
      throw new TypeError(`${PREFIX}'port' must be a number`);
    }
    keyword(draft, "port", String(port));
  }
  for (const [key, value] of [["user", user], ["database", database]] as const) {
    if (value === undefined || value === null) continue;
    if (typeof value !== "string") throw new TypeError(`${PREFIX}'${key}' must be a string`);
    noNul(key, value);
    draft[key] = value;
  }
  if (typeof password === "string") draft.password = password;
  else if (typeof password === "function") draft.config.password = password;
  else if (password !== undefined && password !== null) {
    throw new TypeError(`${PREFIX}'password' must be a string or a function`);
  }
  if (connectionString !== undefined && connectionString !== null) {
    if (typeof connectionString !== "string") throw new TypeError(`${PREFIX}'connectionString' must be a string`);
    readString(connectionString, draft);
  }
}

// ---- postgres:// URLs ---------------------------------------------------------

/**
 * `postgres://[user[:password]@][netloc][,...][/dbname][?key=value&...]`,
 * percent-decoded like libpq. Unlike libpq (and `new URL`), a password may
 * hold `@ : / ? #` unencoded: the user info ends at the first `@` followed by
 * a plausible host list and database name, so a typed-in password is not
 * read as a host or a database name (which would show it in logs).
 */
function readUrl(text: string, draft: Draft): void {
  const rest = text.slice(text.indexOf("://") + 3);
  const split = splitUserinfo(rest);
  if (split.userinfo !== undefined) {
    const colon = split.userinfo.indexOf(":");
    const user = colon < 0 ? split.userinfo : split.userinfo.slice(0, colon);
    if (user !== "") draft.user = decode(user, "user");
    if (colon >= 0) draft.password = decode(split.userinfo.slice(colon + 1), "password");
  }
  const after = split.rest;
  const q = after.indexOf("?");
  const beforeQuery = q < 0 ? after : after.slice(0, q);
  const slash = beforeQuery.indexOf("/");
  const netloc = slash < 0 ? beforeQuery : beforeQuery.slice(0, slash);
  readNetloc(netloc, draft);
  if (slash >= 0 && slash < beforeQuery.length - 1) draft.database = decode(beforeQuery.slice(slash + 1), "dbname");
  if (q >= 0) {
    let previous = "";
    let at = q + 1;
    for (const pair of after.slice(q + 1).split("&")) {
      const start = at;
      at += pair.length + 1;
      if (pair === "") continue;
      const eq = pair.indexOf("=");
      const key = eq < 0 ? pair : decode(pair.slice(0, eq), "query parameter name");
      // An unencoded '&' in a password value splits it: the rest would be named as a keyword, so name its place.
      if (previous === "password" && !isKeyword(key)) {
        throw afterPassword(text.length - after.length + start, "percent-encode '&' as %26");
      }
      if (eq < 0) throw new TypeError(`${PREFIX}a URL query parameter has no '=' (expected key=value)`);
      keyword(draft, key, decode(pair.slice(eq + 1), "query parameter"));
      previous = key;
    }
  }
}

/** Splits `user:password@` off the part after `://` (see {@linkcode readUrl}). */
function splitUserinfo(rest: string): { userinfo?: string; rest: string } {
  if (!rest.includes("@")) return { rest };
  const firstDelim = rest.search(/[/?]/);
  const head = firstDelim < 0 ? rest : rest.slice(0, firstDelim);
  // No '@' before the first '/' or '?': user info only if a password holds one of them
  // (`u:pa/ss@h`), not when the '@' is in the database name or a query value (`h/db?user=a@b`).
  if (!head.includes("@")) {
    if (!head.includes(":")) return { rest };
    const path = rest.slice(firstDelim).split("?")[0];
    // `h:5432?application_name=me@home` is a query; `u:2024?Secret@h`, `u:?pw@h`, `u:7?x=1@h` are passwords
    // with an unencoded '?', which libpq reads as user info (its scan for '@' stops at '/' only).
    const query = rest[firstDelim] === "?" ? rest.slice(firstDelim + 1, rest.indexOf("@", firstDelim)) : "";
    if (looksLikeHosts(head) && !path.includes("@") && knownQuery(query)) return { rest };
  }
  // The first '@' followed by a plausible `hosts[/db][?query]` (no '@' in the hosts or the
  // database name): '@' in the password (`u:p@ss@h`, `u:a@b/c@h`) and in a query value
  // (`u:p@h/db?application_name=me@home`) both read right.
  for (let i = rest.indexOf("@"); i >= 0; i = rest.indexOf("@", i + 1)) {
    const tail = rest.slice(i + 1);
    const q = tail.indexOf("?");
    const beforeQuery = q < 0 ? tail : tail.slice(0, q);
    const slash = beforeQuery.indexOf("/");
    const hosts = slash < 0 ? beforeQuery : beforeQuery.slice(0, slash);
    if (!beforeQuery.includes("@") && looksLikeHosts(hosts)) return { userinfo: rest.slice(0, i), rest: tail };
  }
  const last = rest.lastIndexOf("@");
  return { userinfo: rest.slice(0, last), rest: rest.slice(last + 1) };
}

/** True when `query` (URL query text) is only `key=value` pairs of known keywords: a real query, not a password. */
function knownQuery(query: string): boolean {
  return query.split("&").every((pair) => {
    const eq = pair.indexOf("=");
    return pair === "" || (eq > 0 && isKeyword(pair.slice(0, eq)));
  });
}

/** `h1:5432,[::1]:5433,h3`: true when every port is digits, i.e. not `user:password`. */
function looksLikeHosts(netloc: string): boolean {
  return netloc.split(",").every((entry) => /^(?:\[[^\]]*\]|[^:[\]]*)(?::\d*)?$/.test(entry));
}

/** A URL's host list: each entry `host`, `host:port`, `[v6]:port` or `:port`. */
function readNetloc(netloc: string, draft: Draft): void {
  if (netloc === "") return;
  const hosts: string[] = [];
  const ports: string[] = [];
  for (const entry of netloc.split(",")) {
    const m = /^(?:\[([^\]]*)\]|([^:[\]]*))(?::(.*))?$/.exec(entry);
    if (m === null) throw new TypeError(`${PREFIX}malformed host list in the URL`);
    hosts.push(decode(m[1] ?? m[2] ?? "", "host"));
    ports.push(m[3] ?? "");
  }
  keyword(draft, "host", hosts.join(","), hosts);
  keyword(draft, "port", ports.join(","), ports);
}

/** Percent-decodes like libpq: a `%` not followed by two hex digits is an error (that does not echo the text). */
function decode(text: string, what: string): string {
  if (!text.includes("%")) return text;
  if (/%(?![0-9a-fA-F]{2})/.test(text)) {
    throw new TypeError(`${PREFIX}invalid percent-encoding in the URL's ${what} (encode '%' as %25)`);
  }
  try {
    return decodeURIComponent(text);
  } catch {
    // Valid %XX escapes that are not UTF-8: keep the bytes' Latin-1 reading rather than fail.
    return text.replace(/%([0-9a-fA-F]{2})/g, (_, hex) => String.fromCharCode(parseInt(hex, 16)));
  }
}

// ---- libpq key=value ----------------------------------------------------------

/**
 * libpq's `key=value` form: spaces around `=` allowed; a value is either
 * unquoted (ends at whitespace, `\` escapes the next character) or in single
 * quotes (`\'` and `\\` escape).
 */
function readKeywords(text: string, draft: Draft): void {
  let i = 0;
  let previous: { key: string; quoted: boolean } | undefined;
  const isSpace = (c: string | undefined) => c !== undefined && /\s/.test(c);
  while (true) {
    while (isSpace(text[i])) i++;
    if (i >= text.length) break;
    const start = i;
    while (i < text.length && text[i] !== "=" && !isSpace(text[i])) i++;
    const key = text.slice(start, i);
    // Right after a password, a word that is no keyword is most likely a piece of it (a space or a quote in
    // an unquoted or badly quoted password): never echo it, in this message or a later one.
    if (previous?.key === "password" && !isKeyword(key)) throw afterPassword(start);
    while (isSpace(text[i])) i++;
    if (text[i] !== "=") throw new TypeError(`${PREFIX}missing '=' after a keyword (expected key=value pairs)`);
    i++;
    while (isSpace(text[i])) i++;
    let value = "";
    const quoted = text[i] === "'";
    if (quoted) {
      i++;
      for (;;) {
        if (i >= text.length) throw new TypeError(`${PREFIX}unterminated quoted value of '${safeKey(key)}'`);
        const c = text[i++];
        if (c === "'") break;
        if (c === "\\" && i < text.length) value += text[i++];
        else value += c;
      }
    } else {
      while (i < text.length && !isSpace(text[i])) {
        const c = text[i++];
        if (c === "\\" && i < text.length) value += text[i++];
        else value += c;
      }
    }
    if (key === "") throw new TypeError(`${PREFIX}a value has no keyword before its '='`);
    keyword(draft, key, value);
    previous = { key, quoted };
  }
}

/** The error for text after a password that is no `key=value` pair: names the position, never the text. */
function afterPassword(
  position: number,
  hint = "quote a password with spaces or quotes: password='...', with \\' for ' and \\\\ for \\",
): TypeError {
  return new TypeError(`${PREFIX}unexpected text after the password value (at character ${position + 1}); ${hint}`);
}

/**
 * A keyword for an error message, as written (`HOST`, `connect-timeout`), when it looks like one: a word of
 * letters, digits, `_`, `-` and `.`. Anything else may be a piece of a value and is not shown. Text after a
 * password never gets here (see {@linkcode afterPassword}).
 */
function safeKey(key: string): string {
  return /^[A-Za-z_][A-Za-z0-9_.-]{0,39}$/.test(key) ? key : "?";
}

/** ` (did you mean 'connect_timeout'?)` for a keyword that differs from one only in case or `-` for `_`. */
function suggestion(key: string): string {
  const near = key.toLowerCase().replaceAll("-", "_");
  return near !== key && isKeyword(near) ? ` (keywords are lower case with '_': did you mean '${near}'?)` : "";
}

// ---- keywords -----------------------------------------------------------------

/**
 * libpq keywords about a security property node-postgres cannot provide: the
 * values that ask for nothing it lacks are accepted (and change nothing),
 * every other value is refused, since going on would open a session weaker
 * than the one asked for.
 */
const REFUSED: Record<string, { accept: readonly string[]; why: string }> = {
  // libpq without GSSAPI credentials reads prefer as disable; node-postgres has no GSSAPI encryption at all.
  gssencmode: {
    accept: ["disable", "prefer"],
    why: "node-postgres has no GSSAPI encryption (use sslmode=verify-full for an encrypted session)",
  },
  // node-postgres can offer SCRAM-SHA-256-PLUS but falls back without it, so it cannot promise `require`.
  channel_binding: {
    accept: ["disable", "prefer"],
    why: "node-postgres cannot insist on channel binding (use sslmode=verify-full to authenticate the server)",
  },
  // libpq's `none` is no restriction; any list of methods is a restriction node-postgres cannot enforce.
  require_auth: {
    accept: [],
    why: "node-postgres cannot restrict the authentication methods the server may ask for",
  },
};

/** A value of a refused keyword for its message: only a plain word (these never hold secrets), else `...`. */
function safeValue(value: string): string {
  return /^[A-Za-z0-9_,!-]{1,40}$/.test(value) ? value : "...";
}

/** Keywords {@linkcode keyword} handles itself. */
const OWN = new Set([
  "host",
  "hostaddr",
  "port",
  "dbname",
  "user",
  "password",
  "sslmode",
  "ssl",
  "sslrootcert",
  "sslcert",
  "sslkey",
  "connect_timeout",
  "keepalives",
  "keepalives_idle",
  "target_session_attrs",
  "load_balance_hosts",
  "sslnegotiation",
]);

function isKeyword(key: string): boolean {
  return OWN.has(key) || Object.hasOwn(PASSED, key) || IGNORED.has(key) || Object.hasOwn(REFUSED, key);
}

/** Applies one libpq keyword (from key=value, a URL's query or its netloc). */
function keyword(draft: Draft, key: string, value: string, list?: string[]): void {
  noNul(key, value);
  switch (key) {
    case "host":
      draft.host = list ?? value.split(",");
      return;
    case "hostaddr":
      draft.hostaddr = value.split(",");
      return;
    case "port":
      draft.port = list ?? value.split(",");
      return;
    case "dbname":
      draft.database = value;
      return;
    case "user":
      draft.user = value;
      return;
    case "password":
      draft.password = value;
      return;
    case "sslmode":
      if (!(SSL_MODES as readonly string[]).includes(value)) {
        throw new RangeError(`${PREFIX}'sslmode' must be one of ${SSL_MODES.join(", ")}`);
      }
      draft.tls.mode = value as SslMode;
      return;
    case "ssl": // node-postgres' URL parameter
      if (/^(?:true|1)$/.test(value)) draft.tls.mode = "verify-full";
      else if (/^(?:false|0)$/.test(value)) draft.tls.mode = "disable";
      else if (value === "no-verify") draft.tls.mode = "no-verify";
      else throw new RangeError(`${PREFIX}'ssl' must be true, false or no-verify`);
      return;
    case "sslrootcert":
      draft.tls.rootcert = value;
      return;
    case "sslcert":
      draft.tls.cert = value;
      return;
    case "sslkey":
      draft.tls.key = value;
      return;
    case "connect_timeout": {
      const seconds = integer(key, value, 0, 2_147_483);
      // libpq: 0 = no limit of its own (the pool's connectTimeout still applies); 1 counts as 2.
      draft.connectTimeout = seconds === 0 ? undefined : Math.max(2, seconds) * 1000;
      return;
    }
    case "keepalives":
      draft.config.keepAlive = integer(key, value, 0, 1) === 1;
      return;
    case "keepalives_idle":
      draft.config.keepAliveInitialDelayMillis = integer(key, value, 0, 2_147_483) * 1000;
      return;
    case "target_session_attrs":
      if (!(TARGET_SESSION_ATTRS as readonly string[]).includes(value)) {
        throw new RangeError(`${PREFIX}'target_session_attrs' must be one of ${TARGET_SESSION_ATTRS.join(", ")}`);
      }
      draft.targetSessionAttrs = value as TargetSessionAttrs;
      return;
    case "sslnegotiation":
      if (value !== "postgres" && value !== "direct") {
        throw new RangeError(`${PREFIX}'sslnegotiation' must be postgres or direct`);
      }
      draft.config.sslnegotiation = value;
      return;
    case "load_balance_hosts":
      if (value !== "disable" && value !== "random") {
        throw new RangeError(`${PREFIX}'load_balance_hosts' must be disable or random`);
      }
      draft.loadBalanceHosts = value;
      return;
  }
  if (Object.hasOwn(PASSED, key)) {
    draft.config[PASSED[key]] = value;
    return;
  }
  if (IGNORED.has(key)) return;
  const refused = Object.hasOwn(REFUSED, key) ? REFUSED[key] : undefined;
  if (refused !== undefined && !refused.accept.includes(value)) {
    throw new TypeError(`${PREFIX}'${key}=${safeValue(value)}' is not supported: ${refused.why}`);
  }
  if (refused !== undefined) return;
  throw new TypeError(`${PREFIX}unknown or unsupported keyword '${safeKey(key)}'${suggestion(key)}`);
}

function integer(key: string, value: string, min: number, max: number): number {
  const n = /^\s*\d+\s*$/.test(value) ? Number(value) : NaN;
  if (!(n >= min && n <= max)) throw new RangeError(`${PREFIX}'${key}' must be an integer from ${min} to ${max}`);
  return n;
}

/** node's socket layer throws (uncaught, from a timer) on a NUL byte in a host; refuse them all here. */
function noNul(key: string, value: string): void {
  if (value.includes("\0")) throw new TypeError(`${PREFIX}'${safeKey(key)}' contains a NUL character`);
}

// ---- assembling the host list -------------------------------------------------

/** Whether the session must be encrypted: an sslmode that never falls back, or `ssl` given as an object or `true`. */
function insistsOnTls(mode: SslMode | undefined, ssl: pg.ClientConfig["ssl"]): boolean {
  if (mode !== undefined) {
    return mode === "require" || mode === "verify-ca" || mode === "verify-full" || mode === "no-verify";
  }
  return ssl !== undefined && ssl !== false;
}

function finish(draft: Draft): Conninfo {
  const names = draft.host ?? [""];
  const addrs = draft.hostaddr;
  const count = Math.max(names.length, addrs?.length ?? 0);
  if (draft.hostaddr !== undefined && draft.host !== undefined && addrs!.length !== names.length) {
    throw new RangeError(`${PREFIX}'hostaddr' lists ${addrs!.length} addresses for ${names.length} hosts`);
  }
  const ports = (draft.port ?? [""]).map(port);
  if (ports.length !== 1 && ports.length !== count) {
    throw new RangeError(`${PREFIX}'port' lists ${ports.length} ports for ${count} hosts`);
  }
  const hosts: ConninfoHost[] = [];
  for (let i = 0; i < count; i++) {
    const host: ConninfoHost = {};
    const name = draft.host === undefined ? "" : names[i];
    if (name !== "") host.host = name;
    const addr = addrs?.[i] ?? "";
    if (addr !== "") {
      if (isIP(addr) === 0) throw new TypeError(`${PREFIX}'hostaddr' must be numeric IP addresses`);
      host.hostaddr = addr;
    }
    const p = ports.length === 1 ? ports[0] : ports[i];
    if (p !== undefined) host.port = p;
    hosts.push(host);
  }
  const info: Conninfo = {
    hosts,
    targetSessionAttrs: draft.targetSessionAttrs ?? "any",
    loadBalanceHosts: draft.loadBalanceHosts ?? "disable",
    config: draft.config,
  };
  if (draft.connectTimeout !== undefined) info.connectTimeout = draft.connectTimeout;
  if (draft.user !== undefined) info.user = draft.user;
  if (draft.database !== undefined) info.database = draft.database;
  if (draft.password !== undefined) info.password = draft.password;
  const { mode, ...files } = draft.tls;
  if (mode !== undefined || Object.keys(files).length > 0) {
    // libpq: certificate files without a mode mean "prefer"; a root certificate alone means verify-ca.
    info.tls = { mode: mode ?? (files.rootcert !== undefined ? "verify-ca" : "prefer"), ...files };
  }
  if (draft.config.sslnegotiation === "direct" && !insistsOnTls(info.tls?.mode, draft.config.ssl)) {
    // libpq refuses this at parse time too: a direct TLS handshake cannot fall back to plaintext.
    throw new RangeError(`${PREFIX}'sslnegotiation=direct' needs sslmode=require, verify-ca or verify-full`);
  }
  return info;
}

/** A port entry: empty = the default; otherwise an integer from 1 to 65535 (node throws, uncaught, on others). */
function port(text: string): number | undefined {
  if (text.trim() === "") return undefined;
  const n = /^\s*\d{1,5}\s*$/.test(text) ? Number(text) : NaN;
  if (!(n >= 1 && n <= 65535)) throw new RangeError(`${PREFIX}'port' must be an integer from 1 to 65535`);
  return n;
}

// ---- showing and connecting ---------------------------------------------------

/** `host:port` of one server, for logs and errors: never a secret. */
export function hostLabel(host: ConninfoHost): string {
  const name = host.host ?? host.hostaddr ?? "localhost";
  const shown = name.includes(":") && !name.startsWith("/") ? `[${name}]` : name;
  return `${shown}:${host.port ?? 5432}`;
}

/**
 * The target as `postgres://user@h1:5432,h2:5433/db`, never with the password.
 *
 * @param info A parsed conninfo.
 * @returns Text for `pool.toJSON().target`, logs and errors.
 */
export function describeConninfo(info: Conninfo): string {
  const user = info.user === undefined ? "" : `${encodeURIComponent(info.user)}@`;
  const hosts = info.hosts.map(hostLabel).join(",");
  const attrs = info.targetSessionAttrs === "any" ? "" : `?target_session_attrs=${info.targetSessionAttrs}`;
  return `postgres://${user}${hosts}/${encodeURIComponent(info.database ?? "")}${attrs}`;
}

/**
 * The `pg.ClientConfig` for one server of the list (certificate files read here, at connect time).
 *
 * @param info A parsed conninfo.
 * @param host One of `info.hosts`.
 * @returns A config with no `connectionString`, for `new pg.Client`.
 */
export async function clientConfig(info: Conninfo, host: ConninfoHost): Promise<pg.ClientConfig> {
  const config: pg.ClientConfig = { ...info.config };
  const target = host.hostaddr ?? host.host;
  if (target !== undefined) config.host = target;
  if (host.port !== undefined) config.port = host.port;
  if (info.user !== undefined) config.user = info.user;
  if (info.database !== undefined) config.database = info.database;
  if (info.password !== undefined) config.password = info.password;
  if (info.tls !== undefined) config.ssl = await tlsOptions(info.tls, host);
  return config;
}

/** The code of a certificate or key file that cannot be read: a setup error, which fail fast treats as permanent. */
export const TLS_FILE_ERROR = "TIDEPOOL_TLS_FILE";

/** Reads a certificate or key file named by `keyword`; the error names the keyword and the path (no secret). */
async function readTlsFile(keyword: string, path: string): Promise<string> {
  try {
    return await Deno.readTextFile(path);
  } catch (error) {
    throw Object.assign(new Error(`cannot read the ${keyword} file ${path}: ${(error as Error).message}`), {
      code: TLS_FILE_ERROR,
      cause: error,
    });
  }
}

/**
 * `sslmode` as node TLS options. node-postgres cannot fall back between TLS and
 * plaintext, so `allow` and `prefer` connect in plaintext (as libpq does against
 * a server without TLS); `require` encrypts without checking the certificate
 * unless a root certificate is given (libpq's rule), `verify-ca` checks the
 * chain only, `verify-full` the chain and the host name.
 */
async function tlsOptions(tls: NonNullable<Conninfo["tls"]>, host: ConninfoHost): Promise<pg.ClientConfig["ssl"]> {
  if (tls.mode === "disable" || tls.mode === "allow" || tls.mode === "prefer") return false;
  if (tls.mode === "no-verify") return { rejectUnauthorized: false };
  const options: Record<string, unknown> = {};
  if (tls.cert !== undefined) options.cert = await readTlsFile("sslcert", tls.cert);
  if (tls.key !== undefined) options.key = await readTlsFile("sslkey", tls.key);
  const rootcert = tls.rootcert === "system" ? undefined : tls.rootcert;
  if (rootcert !== undefined) options.ca = await readTlsFile("sslrootcert", rootcert);
  if (tls.mode === "require" && tls.rootcert === undefined) {
    options.rejectUnauthorized = false;
  } else if (tls.mode === "verify-ca" || tls.mode === "require") {
    options.checkServerIdentity = () => undefined;
  }
  // With hostaddr, the certificate is checked against the host name, as libpq does.
  if (host.hostaddr !== undefined && host.host !== undefined && !host.host.startsWith("/")) {
    options.servername = host.host;
  }
  return options as pg.ClientConfig["ssl"];
}
