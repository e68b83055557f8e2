import { getLogger, type Logger } from "@logtape/logtape";

/** LogTape's logger tree: each logger keeps `children[name]` (a WeakRef to the child) for good. */
interface LoggerNode {
  children?: Record<string, WeakRef<object> | object | undefined>;
}

/**
 * Prunes the `["tidepool", name]` entry of a pool's logger once the logger is
 * gone. LogTape holds child loggers through WeakRefs, but never deletes the
 * entry itself: every `pool-N` name would leave ~650 bytes behind for good.
 * Only an entry whose logger was collected is deleted, so a logger someone
 * still holds, or one `configure()` set sinks on (LogTape holds those), stays.
 */
const prune = new FinalizationRegistry<string>((name) => {
  const parent = getLogger(["tidepool"]) as unknown as LoggerNode;
  const children = parent.children;
  if (children === undefined || !Object.hasOwn(children, name)) return;
  const ref = children[name];
  // A pool of the same name made since has its own live logger there: keep it.
  if (ref instanceof WeakRef && ref.deref() === undefined) delete children[name];
});

/**
 * The pool's logger: category `["tidepool", poolName]`. LogTape is silent until
 * the application configures it, so a library never prints on its own.
 */
export function poolLogger(poolName: string): Logger {
  const logger = getLogger(["tidepool", poolName]);
  prune.register(logger, poolName);
  return logger;
}

/** An error's message for a log line, without its stack. */
export function describeError(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return typeof code === "string" ? `${error.message} (${code})` : error.message;
  }
  return String(error);
}
