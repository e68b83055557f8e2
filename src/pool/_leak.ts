import type { Logger } from "@logtape/logtape";
import type { Entry } from "../core/_entry.ts";
import type { Timers } from "../_util/_timers.ts";

/** Watches how long connections stay out. The off state is a no-op object, so the hot path pays nothing. */
export interface LeakDetector {
  /** The caller's stack, for a request that will be lent later (queued); undefined when off. */
  capture(): string | undefined;
  /** `origin`: the stack captured when the request was made, if it waited. */
  lent(entry: Entry<unknown>, origin?: string): void;
  returned(entry: Entry<unknown>): void;
}

const OFF: LeakDetector = { capture: () => undefined, lent() {}, returned() {} };

/** tidepool's own source files: their frames are the least useful part of a borrower's stack. */
const OWN_FILES = new URL("../", import.meta.url).href;
/** Enough frames to get past tidepool's own and show the caller's. */
const STACK_FRAMES = 40;

/**
 * Where a connection was borrowed, as a log value: one frame per line, the
 * caller's frames first and tidepool's after them. Loggers show it as lines
 * (Deno.inspect), not as one quoted string with escaped newlines; `toJSON`
 * gives the same text.
 */
export class BorrowerStack {
  /** The frames, `at ...` each, the caller's first. */
  readonly frames: readonly string[];

  /** @param stack An `Error.stack` captured inside tidepool at checkout. */
  constructor(stack: string) {
    const frames = stack.split("\n").slice(1).map((line) => line.trim()).filter((line) => line.startsWith("at "));
    const own = (frame: string) => frame.includes(OWN_FILES);
    this.frames = [...frames.filter((f) => !own(f)), ...frames.filter(own)];
  }

  /** The frames as indented lines, starting on a new line. */
  toString(): string {
    return this.frames.map((frame) => `\n    ${frame}`).join("");
  }

  /** The same text for JSON sinks. */
  toJSON(): string {
    return this.toString();
  }

  /** What `Deno.inspect` (and so LogTape's text sinks) shows: the lines themselves. */
  [Symbol.for("Deno.customInspect")](): string {
    return this.toString();
  }
}

/** A detector that warns, with the borrower's stack, about a connection out longer than `threshold` ms. */
export function leakDetector(
  threshold: number,
  timers: Timers,
  logger: Logger,
  poolName: string,
): LeakDetector {
  if (threshold <= 0) return OFF;
  const capture = () => {
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = STACK_FRAMES;
    try {
      return new Error("connection borrowed here").stack ?? "";
    } finally {
      Error.stackTraceLimit = limit;
    }
  };
  return {
    capture,
    lent(entry, origin) {
      // The stack of the borrower is what the warning is for: captured at checkout, or when the request queued.
      const borrowedAt = origin ?? capture();
      entry.leakTimer = timers.after(threshold, () => {
        entry.leakTimer = undefined;
        logger.warn(
          "Possible connection leak in pool {pool}: a connection has been out for more than {threshold} ms; borrowed at {stack}",
          { pool: poolName, threshold, stack: new BorrowerStack(borrowedAt) },
        );
      });
    },
    returned(entry) {
      timers.cancel(entry.leakTimer);
      entry.leakTimer = undefined;
    },
  };
}
