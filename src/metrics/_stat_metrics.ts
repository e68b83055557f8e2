/**
 * One description of every `getStats()` key, shared by the Prometheus and the
 * OpenTelemetry exporters so both name and explain the same numbers.
 *
 * @module
 */
import type { PoolStats } from "../stats.ts";

/** How a stat behaves over time. */
export type StatKind = "gauge" | "counter";

/** How one `getStats()` key is exported. */
export interface StatMetric {
  /** The `getStats()` key. */
  key: keyof PoolStats;
  /** A current value (gauge) or a running total since the last `popStats()` (counter). */
  kind: StatKind;
  /** Prometheus metric name; counters end in `_total` as Prometheus expects. */
  prometheus: string;
  /** OpenTelemetry instrument name. */
  otel: string;
  /** OpenTelemetry unit (UCUM): `ms`, or a `{annotation}` for counts. */
  unit: string;
  /** One line of help text. */
  help: string;
  /** Reported only by some pools (the capGroup keys): left out where no pool has it. */
  optional?: boolean;
}

/** Every key of `PoolStats`, in `getStats()` order: the first five are gauges. */
export const STAT_METRICS: readonly StatMetric[] = [
  gauge("poolMin", "pool_min", "{connection}", "Connections the pool keeps open (minSize)"),
  gauge("poolMax", "pool_max", "{connection}", "Most connections the pool opens at once (maxSize)"),
  gauge("poolSize", "pool_size", "{connection}", "Connections open or being opened"),
  gauge("poolAvailable", "pool_available", "{connection}", "Idle connections ready to lend"),
  gauge("requestsWaiting", "requests_waiting", "{request}", "Requests waiting for a connection now"),
  counter("usageMs", "usage_ms", "ms", "Total time connections were out with borrowers, in milliseconds"),
  counter("requestsNum", "requests", "{request}", "Requests for a connection"),
  counter("requestsQueued", "requests_queued", "{request}", "Requests that had to wait for a connection"),
  counter("requestsWaitMs", "requests_wait_ms", "ms", "Total time requests waited for a connection, in milliseconds"),
  counter("requestsErrors", "requests_errors", "{request}", "Requests that failed: timed out, refused or aborted"),
  counter("returnsBad", "returns_bad", "{connection}", "Connections returned in a bad state and discarded"),
  counter("connectionsNum", "connections", "{connection}", "Connection attempts that succeeded"),
  counter("connectionsMs", "connections_ms", "ms", "Total time spent opening connections, in milliseconds"),
  counter("connectionsErrors", "connections_errors", "{connection}", "Connection attempts that failed"),
  counter("connectionsLost", "connections_lost", "{connection}", "Connections found dead while idle or on checkout"),
  counter(
    "transactionRetries",
    "transaction_retries",
    "{attempt}",
    "Transaction attempts re-run after a serialization failure or deadlock",
  ),
  // Only pools with a capGroup report these.
  {
    ...gauge("groupSize", "group_size", "{connection}", "Server connections held by every pool of the capGroup"),
    optional: true,
  },
  { ...gauge("groupMax", "group_max", "{connection}", "The capGroup's budget of server connections"), optional: true },
  {
    ...gauge(
      "groupWaiting",
      "group_waiting",
      "{request}",
      "Requests waiting in the capGroup's pools in other isolates",
    ),
    optional: true,
  },
];

function gauge(key: keyof PoolStats, name: string, unit: string, help: string): StatMetric {
  return { key, kind: "gauge", prometheus: `tidepool_${name}`, otel: `tidepool.${name}`, unit, help };
}

function counter(key: keyof PoolStats, name: string, unit: string, help: string): StatMetric {
  return { key, kind: "counter", prometheus: `tidepool_${name}_total`, otel: `tidepool.${name}`, unit, help };
}
