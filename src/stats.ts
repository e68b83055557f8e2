/**
 * Pool statistics: psycopg_pool's keys in camelCase.
 *
 * @module
 */

/**
 * A pool's statistics. The first five are current values; the rest are
 * counters that `popStats()` returns and resets. Durations are in ms.
 *
 * @example Reading the stats
 * ```ts
 * import type { PoolStats } from "@tidepool/pg";
 * function report(stats: PoolStats): string {
 *   return `${stats.poolSize - stats.poolAvailable} in use of ${stats.poolMax}`;
 * }
 * ```
 */
export interface PoolStats {
  /** Current `minSize`. */
  poolMin: number;
  /** Current `maxSize`. */
  poolMax: number;
  /** Connections open or being opened. */
  poolSize: number;
  /** Idle connections ready to lend. */
  poolAvailable: number;
  /** Requests waiting for a connection now. */
  requestsWaiting: number;
  /** Total time connections were out with borrowers. */
  usageMs: number;
  /** Requests for a connection. */
  requestsNum: number;
  /** Requests that had to wait. */
  requestsQueued: number;
  /** Total time requests waited. */
  requestsWaitMs: number;
  /** Requests that failed: timed out, refused (too many waiting), aborted. */
  requestsErrors: number;
  /** Connections returned in a bad state (broken, running a query, reset failed). */
  returnsBad: number;
  /** Connection attempts that succeeded. */
  connectionsNum: number;
  /** Total time spent connecting. */
  connectionsMs: number;
  /** Connection attempts that failed. */
  connectionsErrors: number;
  /** Connections found dead while idle or by a checkout `check`. */
  connectionsLost: number;
  /** Attempts of `transaction()` re-run after a serialization failure or deadlock (SQLSTATE 40001, 40P01). */
  transactionRetries: number;
  /** With `capGroup`: server connections held by every pool of the group (open, opening or closing). */
  groupSize?: number;
  /** With `capGroup`: the group's budget (every member's `maxSize`). */
  groupMax?: number;
  /** With `capGroup`: requests waiting in the group's pools in other isolates (published each second). */
  groupWaiting?: number;
}

/** The counter part of {@linkcode PoolStats}, kept by the pool. */
export type PoolCounters = Omit<
  PoolStats,
  "poolMin" | "poolMax" | "poolSize" | "poolAvailable" | "requestsWaiting" | "groupSize" | "groupMax" | "groupWaiting"
>;

/** Fresh zeroed counters. */
export function zeroCounters(): PoolCounters {
  return {
    usageMs: 0,
    requestsNum: 0,
    requestsQueued: 0,
    requestsWaitMs: 0,
    requestsErrors: 0,
    returnsBad: 0,
    connectionsNum: 0,
    connectionsMs: 0,
    connectionsErrors: 0,
    connectionsLost: 0,
    transactionRetries: 0,
  };
}
