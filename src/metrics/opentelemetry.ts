/**
 * OpenTelemetry metrics for tidepool pools: `@tidepool/pg/opentelemetry`.
 *
 * A separate entry point so `npm:@opentelemetry/api` is only loaded by
 * applications that import it. With Deno's built-in OpenTelemetry
 * (`OTEL_DENO=true deno run ...`), the default global meter exports these
 * metrics over OTLP with no SDK to set up.
 *
 * @example Export a pool's metrics
 * ```ts
 * import { ConnectionPool } from "@tidepool/pg";
 * import { registerOpenTelemetry } from "@tidepool/pg/opentelemetry";
 *
 * const pool = new ConnectionPool({ conninfo: Deno.env.get("DATABASE_URL"), name: "main" });
 * using _metrics = registerOpenTelemetry(pool);
 * ```
 *
 * @module
 */
import {
  type Attributes,
  type BatchObservableCallback,
  type Meter,
  metrics,
  type Observable,
} from "@opentelemetry/api";
import { STAT_METRICS } from "./_stat_metrics.ts";
import type { StatsSource } from "./prometheus.ts";

// Types in this entry's signatures, so its docs are complete without mod.ts. (`Meter` is
// @opentelemetry/api's own; re-exporting it would drag that package's whole type tree in.)
export type { StatsSource } from "./prometheus.ts";
export type { PoolStats } from "../stats.ts";

/**
 * The handle {@linkcode registerOpenTelemetry} returns: stop reporting a
 * pool with `unregister()` or at the end of a `using` scope.
 *
 * @example Stop reporting
 * ```ts
 * import { ConnectionPool } from "@tidepool/pg";
 * import { registerOpenTelemetry } from "@tidepool/pg/opentelemetry";
 * const pool = new ConnectionPool({ conninfo: "postgres://app@localhost/app" });
 * const registration = registerOpenTelemetry(pool);
 * registration.unregister();
 * ```
 */
export interface OpenTelemetryRegistration extends Disposable {
  /** Removes the pool's callback from the meter; idempotent. */
  unregister(): void;
}

/**
 * Reports a pool's `getStats()` through OpenTelemetry observable instruments,
 * read once per collection by one batch callback (no timer of its own, no I/O,
 * never waits for a busy pool). Every key is an instrument named
 * `tidepool.<key in snake_case>` with the attribute `pool.name`: `poolMin`,
 * `poolMax`, `poolSize`, `poolAvailable` and `requestsWaiting` are observable
 * gauges; the rest are observable (cumulative) counters, durations in `ms`.
 * `popStats()` resets those counters: a cumulative backend sees that as a
 * counter reset, so do not call `popStats()` on a pool you export this way.
 *
 * @param pool The pool to report (anything with `name` and `getStats()`).
 * @param meter The meter to create instruments on. @default `metrics.getMeter("@tidepool/pg")`
 * (Deno's built-in exporter with `OTEL_DENO=true`, else whatever SDK the app registered).
 * @returns A handle whose `unregister()` (or `using`) stops reporting.
 * @example With Deno's built-in OpenTelemetry (`OTEL_DENO=true deno run -A app.ts`)
 * ```ts
 * import { ConnectionPool } from "@tidepool/pg";
 * import { registerOpenTelemetry } from "@tidepool/pg/opentelemetry";
 *
 * const pool = new ConnectionPool({ conninfo: Deno.env.get("DATABASE_URL"), name: "main" });
 * const registration = registerOpenTelemetry(pool);
 * // ... serve requests ...
 * registration.unregister();
 * await pool.close();
 * ```
 */
export function registerOpenTelemetry(pool: StatsSource, meter?: Meter): OpenTelemetryRegistration {
  const m = meter ?? metrics.getMeter("@tidepool/pg");
  const keys = pool.getStats(); // the capGroup keys only for a pool that has them
  const instruments = STAT_METRICS.filter((metric) => !metric.optional || keys[metric.key] !== undefined).map(
    (metric) => {
      const options = { description: metric.help, unit: metric.unit };
      const instrument: Observable = metric.kind === "gauge"
        ? m.createObservableGauge(metric.otel, options)
        : m.createObservableCounter(metric.otel, options);
      return { key: metric.key, instrument };
    },
  );
  const attributes: Attributes = { "pool.name": pool.name };
  const callback: BatchObservableCallback = (result) => {
    const stats = pool.getStats();
    for (const { key, instrument } of instruments) {
      const value = stats[key];
      if (value !== undefined) result.observe(instrument, value, attributes); // group keys: only with capGroup
    }
  };
  const observables = instruments.map((i) => i.instrument);
  m.addBatchObservableCallback(callback, observables);
  let registered = true;
  const unregister = (): void => {
    if (!registered) return;
    registered = false;
    m.removeBatchObservableCallback(callback, observables);
  };
  return { unregister, [Symbol.dispose]: unregister };
}
