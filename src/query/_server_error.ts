/**
 * Whether an error is the server's answer (an ErrorResponse) or the end of
 * the connection: the one test the pipelining lane and the COMMIT path share.
 *
 * @module
 */

/**
 * The SQLSTATE and severity of an error the server sent, or undefined for anything else: a socket error (`EPIPE`
 * has a five-letter `code` too, but no severity, and a `syscall`), a closed client, a timeout of ours.
 *
 * @param error What a statement rejected with (pg's error, or deno-postgres's with its `fields`).
 * @returns The server's code and severity, or undefined.
 */
export function serverError(error: unknown): { code: string; severity: string } | undefined {
  const e = (error ?? {}) as {
    code?: unknown;
    severity?: unknown;
    syscall?: unknown;
    fields?: Record<string, unknown>;
  };
  const code = e.code ?? e.fields?.code;
  const severity = e.severity ?? e.fields?.severity; // pg; deno-postgres keeps the fields apart
  if (typeof code !== "string" || !/^[0-9A-Z]{5}$/.test(code)) return undefined;
  if (typeof severity !== "string" || e.syscall !== undefined) return undefined;
  return { code, severity };
}

/**
 * Whether the server ended the session with this error (class 08 connection exception, 57 operator intervention:
 * terminated, shutting down; FATAL or PANIC) rather than refusing the statement alone.
 *
 * @param answer What {@linkcode serverError} found.
 * @returns True when the session is over.
 */
export function endsSession(answer: { code: string; severity: string }): boolean {
  return answer.code.startsWith("08") || answer.code.startsWith("57") || answer.severity === "FATAL" ||
    answer.severity === "PANIC";
}
