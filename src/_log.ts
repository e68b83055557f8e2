import { getLogger, type Logger } from "@logtape/logtape";

/**
 * The pool's logger: category `["tidepool", poolName]`. LogTape is silent until
 * the application configures it, so a library never prints on its own.
 */
export function poolLogger(poolName: string): Logger {
  return getLogger(["tidepool", poolName]);
}

/** An error's message for a log line, without its stack. */
export function describeError(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return typeof code === "string" ? `${error.message} (${code})` : error.message;
  }
  return String(error);
}
