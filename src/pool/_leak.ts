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

/** A detector that warns, with the borrower's stack, about a connection out longer than `threshold` ms. */
export function leakDetector(
  threshold: number,
  timers: Timers,
  logger: Logger,
  poolName: string,
): LeakDetector {
  if (threshold <= 0) return OFF;
  const capture = () => new Error("connection borrowed here").stack ?? "";
  return {
    capture,
    lent(entry, origin) {
      // The stack of the borrower is what the warning is for: captured at checkout, or when the request queued.
      const borrowedAt = origin ?? capture();
      entry.leakTimer = timers.after(threshold, () => {
        entry.leakTimer = undefined;
        logger.warn(
          "Possible connection leak in pool {pool}: a connection has been out for more than {threshold} ms; borrowed at {stack}",
          { pool: poolName, threshold, stack: borrowedAt },
        );
      });
    },
    returned(entry) {
      timers.cancel(entry.leakTimer);
      entry.leakTimer = undefined;
    },
  };
}
