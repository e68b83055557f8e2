/**
 * Fail fast: which connection errors waiting will not fix, and the pool's
 * memory of the last one (HikariCP #2254, PgBouncer #585). While the last
 * attempt failed that way and the pool holds no connection at all (none idle,
 * none lent out that could come back), a request is refused at once with
 * {@linkcode PoolConnectError} instead of waiting out its timeout; the
 * pool keeps retrying in the background, and the first connection that opens
 * clears the state.
 *
 * @module
 */
import { HostsExhaustedError, PoolConnectError } from "../errors.ts";
import { TLS_FILE_ERROR } from "../drivers/_conninfo.ts";

/** SQLSTATEs of a server that refused us for a reason a retry in a second will not change. */
const PERMANENT_SQLSTATES = new Set([
  "28P01", // invalid_password
  "28000", // invalid_authorization_specification (no pg_hba entry, role cannot log in)
  "3D000", // invalid_catalog_name: the database does not exist
]);

/**
 * Node-style codes of a host name that does not resolve. Not EAI_AGAIN
 * ("temporary failure in name resolution"): a resolver that is down or slow
 * comes back, so requests wait as for a refused connection.
 */
const DNS_CODES = new Set(["ENOTFOUND", "EAI_NONAME", "EAI_FAIL"]);

/** Node's codes for a TLS certificate that fails verification. */
const TLS_CODES = new Set([
  "ERR_TLS_CERT_ALTNAME_INVALID",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_GET_ISSUER_CERT",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "CERT_HAS_EXPIRED",
  "CERT_NOT_YET_VALID",
  "CERT_UNTRUSTED",
  "CERT_REJECTED",
  "HOSTNAME_MISMATCH",
  TLS_FILE_ERROR, // sslrootcert/sslcert/sslkey names a file that cannot be read
]);

/**
 * Deno reports some verification failures with a message and no Node code
 * (rustls: "invalid peer certificate: UnknownIssuer"); pg reports a server
 * without TLS in plain text. Only errors without a SQLSTATE are matched.
 */
const TLS_MESSAGE = /invalid peer certificate|self[- ]signed certificate|altnames|does not support SSL/i;

/**
 * True when `error` (a driver's connection error) will not go away by waiting:
 * wrong password or role, missing database, unknown host, TLS verification or a certificate file that cannot be read.
 * Refused, reset, timeouts, "starting up" (57P03) and "too many connections"
 * (53300) are transient: false.
 */
export function isPermanentConnectError(error: unknown): boolean {
  if (error === null || typeof error !== "object") return false;
  // A host list: one host down now, or one that does not fit, may be the primary in a moment (failover), so that is
  // worth waiting for; but every host refusing the password (or not resolving) is no failover.
  if (error instanceof HostsExhaustedError) {
    return error.reasons.length > 0 && error.reasons.every(isPermanentConnectError);
  }
  const code = (error as { code?: unknown }).code;
  if (typeof code === "string") {
    if (PERMANENT_SQLSTATES.has(code) || DNS_CODES.has(code) || TLS_CODES.has(code)) return true;
    if (/^[0-9A-Z]{5}$/.test(code)) return false; // another SQLSTATE: the server's word is final
  }
  const message = (error as { message?: unknown }).message;
  return typeof message === "string" && TLS_MESSAGE.test(message);
}

/** The pool's fail-fast state: the permanent error of the last attempt, until a connection opens. */
export class FailFast {
  #error: Error | undefined = undefined;

  /** Records a failed attempt; returns true when it is one waiting will not fix. */
  failed(error: unknown): boolean {
    if (!isPermanentConnectError(error)) {
      this.#error = undefined; // the cause changed (the server went down, say): back to waiting
      return false;
    }
    this.#error = error as Error;
    return true;
  }

  /** A connection opened: the cause is fixed. */
  succeeded(): void {
    this.#error = undefined;
  }

  /** The error to refuse a request with, or undefined while requests should wait. */
  refusal(poolName: string): PoolConnectError | undefined {
    const cause = this.#error;
    if (cause === undefined) return undefined;
    const code = (cause as { code?: unknown }).code;
    // The driver scrubbed the password from the cause's message already.
    return new PoolConnectError(
      `Pool '${poolName}' cannot connect, and waiting will not fix it: ${cause.message}${
        typeof code === "string" ? ` (${code})` : ""
      }`,
      { cause },
    );
  }
}
