/**
 * Prometheus text exposition of pool stats.
 *
 * @module
 */
import type { PoolStats } from "../stats.ts";
import { STAT_METRICS } from "./_stat_metrics.ts";

/**
 * What the metrics exporters need from a pool: its name and its stats. Every
 * {@linkcode ConnectionPool} is one.
 *
 * @example A pool is a StatsSource
 * ```ts
 * import { ConnectionPool, type StatsSource } from "@tidepool/pg";
 * const source: StatsSource = new ConnectionPool({ conninfo: "postgres://app@localhost/app" });
 * ```
 */
export interface StatsSource {
  /** The pool's name; becomes the `pool` label (Prometheus) or `pool.name` attribute (OpenTelemetry). */
  readonly name: string;
  /** The pool's current stats. Exporters only read it: it does no I/O and never waits. */
  getStats(): PoolStats;
}

/**
 * Renders the stats of one or more pools in the Prometheus text exposition
 * format (version 0.0.4): a `# HELP` and `# TYPE` line per metric, then one
 * sample per pool labelled `pool="<name>"`. Every `getStats()` key is a metric
 * named `tidepool_<key in snake_case>`; `poolMin`, `poolMax`, `poolSize`,
 * `poolAvailable` and `requestsWaiting` are gauges, the rest are counters
 * ending in `_total` (durations in milliseconds).
 *
 * It only reads `getStats()`, so a scrape never waits for a busy pool. The
 * counters restart from 0 when someone calls `popStats()`: Prometheus treats
 * that as a counter reset (`rate()` and `increase()` stay correct), but do not
 * mix `popStats()` polling and scraping if you want the raw totals to mean
 * "since the pool opened". Give every pool a distinct `name`: two pools with
 * the same name produce duplicate series.
 *
 * @param pools The pools to export (anything with `name` and `getStats()`).
 * @returns The exposition text, ending with a newline; serve it with
 * `content-type: text/plain; version=0.0.4; charset=utf-8`.
 * @example A /metrics endpoint
 * ```ts
 * import { ConnectionPool, toPrometheus } from "@tidepool/pg";
 * const pool = new ConnectionPool({ conninfo: Deno.env.get("DATABASE_URL"), name: "main" });
 * Deno.serve((req) =>
 *   new URL(req.url).pathname === "/metrics"
 *     ? new Response(toPrometheus(pool), { headers: { "content-type": "text/plain; version=0.0.4; charset=utf-8" } })
 *     : new Response("not found", { status: 404 })
 * );
 * ```
 */
export function toPrometheus(...pools: StatsSource[]): string {
  const samples = pools.map((pool) => ({ label: `{pool="${escapeLabelValue(pool.name)}"}`, stats: pool.getStats() }));
  const lines: string[] = [];
  for (const metric of STAT_METRICS) {
    // The group keys exist only with capGroup: a metric no pool reports is left out.
    const reported = samples.filter(({ stats }) => stats[metric.key] !== undefined);
    if (metric.optional && reported.length === 0) continue;
    lines.push(`# HELP ${metric.prometheus} ${escapeHelp(metric.help)}`);
    lines.push(`# TYPE ${metric.prometheus} ${metric.kind}`);
    for (const { label, stats } of reported) {
      lines.push(`${metric.prometheus}${label} ${formatValue(stats[metric.key]!)}`);
    }
  }
  return lines.join("\n") + "\n";
}

/** Label values escape backslash, double quote and newline (the exposition format's rule). */
function escapeLabelValue(value: string): string {
  return value.replaceAll("\\", "\\\\").replaceAll('"', '\\"').replaceAll("\n", "\\n");
}

/** HELP text escapes backslash and newline only. */
function escapeHelp(text: string): string {
  return text.replaceAll("\\", "\\\\").replaceAll("\n", "\\n");
}

function formatValue(value: number): string {
  if (Number.isNaN(value)) return "NaN";
  if (value === Infinity) return "+Inf";
  if (value === -Infinity) return "-Inf";
  // Durations are fractional ms; three decimals (µs) is plenty and keeps the text short.
  return Number.isInteger(value) ? String(value) : String(Math.round(value * 1000) / 1000);
}
