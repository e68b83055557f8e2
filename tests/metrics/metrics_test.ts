import assert from "node:assert/strict";
import type { BatchObservableCallback, BatchObservableResult, Meter, Observable } from "@opentelemetry/api";
import { ConnectionPool, type PoolStats, type StatsSource, toPrometheus } from "../../mod.ts";
import { registerOpenTelemetry } from "../../src/metrics/opentelemetry.ts";

// Pure formatting: these pools are never opened (the constructor does no I/O),
// and the sources below are plain objects, so no PostgreSQL is involved.

const GAUGES = ["poolMin", "poolMax", "poolSize", "poolAvailable", "requestsWaiting"];

function snake(key: string): string {
  return key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

/** Distinct values per key so a swapped mapping shows up. */
function numberedStats(base: number): PoolStats {
  const pool = new ConnectionPool({ conninfo: "postgres://u@localhost/db" });
  const stats = pool.getStats();
  let i = base;
  for (const key of Object.keys(stats) as (keyof PoolStats)[]) stats[key] = i++;
  return stats;
}

function source(name: string, stats: PoolStats): StatsSource {
  return { name, getStats: () => stats };
}

/** Parses `name{pool="x"} value` sample lines into a map keyed by `name|labels`. */
function samples(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const m = /^([a-z_]+)(\{.*\}) (\S+)$/.exec(line);
    assert.ok(m, `malformed sample line: ${line}`);
    out.set(`${m[1]}|${m[2]}`, m[3]);
  }
  return out;
}

Deno.test("toPrometheus() exports every getStats() key with HELP and TYPE lines", () => {
  const pool = new ConnectionPool({ conninfo: "postgres://u:secret@localhost/db", name: "main" });
  const text = toPrometheus(pool);
  assert.ok(text.endsWith("\n"));
  const keys = Object.keys(pool.getStats());
  assert.equal(keys.length, 16);
  for (const key of keys) {
    const gauge = GAUGES.includes(key);
    const name = gauge ? `tidepool_${snake(key)}` : `tidepool_${snake(key).replace(/_num$/, "")}_total`;
    const help = new RegExp(`^# HELP ${name} \\S.*$`, "m");
    assert.match(text, help, `HELP for ${key}`);
    assert.match(text, new RegExp(`^# TYPE ${name} ${gauge ? "gauge" : "counter"}$`, "m"), `TYPE for ${key}`);
    assert.match(text, new RegExp(`^${name}\\{pool="main"\\} \\d`, "m"), `sample for ${key}`);
    // HELP, then TYPE, then the sample, in that order.
    const helpAt = text.search(help);
    const typeAt = text.indexOf(`# TYPE ${name} `);
    const sampleAt = text.indexOf(`${name}{pool="main"}`);
    assert.ok(helpAt < typeAt && typeAt < sampleAt, `order of lines for ${key}`);
  }
  assert.equal(text.split("\n").filter((l) => l.startsWith("# TYPE")).length, 16);
  assert.ok(!text.includes("secret"));
});

Deno.test("toPrometheus() labels each pool's values by pool name", () => {
  const a = numberedStats(1);
  const b = numberedStats(101);
  const parsed = samples(toPrometheus(source("a", a), source("b", b)));
  assert.equal(parsed.size, 32);
  assert.equal(parsed.get('tidepool_pool_min|{pool="a"}'), "1");
  assert.equal(parsed.get('tidepool_requests_waiting|{pool="a"}'), "5");
  assert.equal(parsed.get('tidepool_usage_ms_total|{pool="a"}'), "6");
  assert.equal(parsed.get('tidepool_requests_total|{pool="b"}'), "107");
  assert.equal(parsed.get('tidepool_connections_lost_total|{pool="b"}'), "115");
});

Deno.test("toPrometheus() escapes quotes, backslashes and newlines in pool names", () => {
  const name = 'we"ird\\pool\nname';
  const text = toPrometheus(source(name, numberedStats(1)));
  assert.ok(text.includes('tidepool_pool_min{pool="we\\"ird\\\\pool\\nname"} 1\n'), text.slice(0, 400));
  // No raw newline inside a label: every line is a comment or a well-formed sample.
  assert.equal(samples(text).size, 16);
});

Deno.test("toPrometheus() formats fractional durations and an unbounded maxSize", () => {
  const stats = numberedStats(1);
  stats.requestsWaitMs = 12.3456789;
  stats.poolMax = Infinity;
  const parsed = samples(toPrometheus(source("p", stats)));
  assert.equal(parsed.get('tidepool_requests_wait_ms_total|{pool="p"}'), "12.346");
  assert.equal(parsed.get('tidepool_pool_max|{pool="p"}'), "+Inf");
});

Deno.test("toPrometheus() with no pools gives only the HELP and TYPE lines", () => {
  const text = toPrometheus();
  assert.equal(text.split("\n").filter((l) => l !== "" && !l.startsWith("#")).length, 0);
  assert.equal(text.split("\n").filter((l) => l.startsWith("# HELP")).length, 16);
});

/** A Meter that records instruments and batch callbacks: enough to drive registerOpenTelemetry. */
class FakeMeter {
  readonly instruments = new Map<string, { kind: string; unit?: string; description?: string }>();
  readonly callbacks: { callback: BatchObservableCallback; observables: Observable[] }[] = [];
  readonly #names = new WeakMap<Observable, string>();

  createObservableGauge(name: string, options?: { unit?: string; description?: string }): Observable {
    return this.#create("gauge", name, options);
  }
  createObservableCounter(name: string, options?: { unit?: string; description?: string }): Observable {
    return this.#create("counter", name, options);
  }
  addBatchObservableCallback(callback: BatchObservableCallback, observables: Observable[]): void {
    this.callbacks.push({ callback, observables });
  }
  removeBatchObservableCallback(callback: BatchObservableCallback, observables: Observable[]): void {
    const i = this.callbacks.findIndex((c) => c.callback === callback && c.observables === observables);
    if (i >= 0) this.callbacks.splice(i, 1);
  }
  /** Runs every callback as a collection would: instrument name -> [value, attributes]. */
  async collect(): Promise<Map<string, [number, Record<string, unknown> | undefined]>> {
    const out = new Map<string, [number, Record<string, unknown> | undefined]>();
    for (const { callback, observables } of this.callbacks) {
      const result: BatchObservableResult = {
        observe: (observable, value, attributes) => {
          assert.ok(observables.includes(observable), "observed an instrument not registered with the callback");
          out.set(this.#names.get(observable)!, [value, attributes as Record<string, unknown>]);
        },
      };
      await callback(result);
    }
    return out;
  }
  #create(kind: string, name: string, options?: { unit?: string; description?: string }): Observable {
    const observable: Observable = { addCallback() {}, removeCallback() {} };
    this.instruments.set(name, { kind, ...options });
    this.#names.set(observable, name);
    return observable;
  }
}

Deno.test("registerOpenTelemetry() observes every getStats() key as gauges and counters", async () => {
  const meter = new FakeMeter();
  const stats = numberedStats(1);
  const registration = registerOpenTelemetry(source("main", stats), meter as unknown as Meter);
  assert.equal(meter.instruments.size, 16);
  for (const [i, key] of Object.keys(stats).entries()) {
    const name = `tidepool.${snake(key).replace(/_num$/, "")}`;
    const instrument = meter.instruments.get(name);
    assert.ok(instrument, `instrument for ${key}`);
    assert.equal(instrument.kind, GAUGES.includes(key) ? "gauge" : "counter", name);
    if (key.endsWith("Ms")) assert.equal(instrument.unit, "ms", name);
    else assert.match(instrument.unit ?? "", /^\{[a-z]+\}$/, name);
    assert.ok(instrument.description && instrument.description.length > 0);
    assert.equal(GAUGES.includes(key), i < 5, "the first five keys are the gauges");
  }
  let observed = await meter.collect();
  assert.deepEqual(observed.get("tidepool.pool_min"), [1, { "pool.name": "main" }]);
  assert.deepEqual(observed.get("tidepool.connections_lost"), [15, { "pool.name": "main" }]);
  // Values are read at collection time, not at registration.
  stats.poolSize = 42;
  observed = await meter.collect();
  assert.equal(observed.get("tidepool.pool_size")?.[0], 42);
  registration.unregister();
  registration.unregister();
  assert.equal(meter.callbacks.length, 0);
});

Deno.test("registerOpenTelemetry() stops reporting at the end of a using scope", () => {
  const meter = new FakeMeter();
  {
    using _registration = registerOpenTelemetry(source("p", numberedStats(1)), meter as unknown as Meter);
    assert.equal(meter.callbacks.length, 1);
  }
  assert.equal(meter.callbacks.length, 0);
});

Deno.test("registerOpenTelemetry() works with the global meter when none is given", () => {
  // No SDK registered: the API's no-op meter must accept everything without throwing.
  const registration = registerOpenTelemetry(source("p", numberedStats(1)));
  registration.unregister();
});

interface OtlpMetric {
  name: string;
  gauge?: { dataPoints: OtlpPoint[] };
  sum?: { dataPoints: OtlpPoint[]; isMonotonic?: boolean };
}
interface OtlpPoint {
  asInt?: string | number;
  asDouble?: number;
  attributes?: { key: string; value: { stringValue?: string } }[];
}

Deno.test("registerOpenTelemetry() exports through Deno's built-in OpenTelemetry with OTEL_DENO=true", async () => {
  // A tiny OTLP/HTTP JSON collector; the child process exports to it. The pool is never opened.
  const bodies: string[] = [];
  const collector = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen: () => {} }, async (req) => {
    const text = await req.text();
    if (new URL(req.url).pathname === "/v1/metrics") bodies.push(text);
    return Response.json({});
  });
  try {
    const script = `
      import { ConnectionPool } from "./mod.ts";
      import { registerOpenTelemetry } from "./src/metrics/opentelemetry.ts";
      const pool = new ConnectionPool({ conninfo: "postgres://u@127.0.0.1:1/db", name: "otel-e2e", minSize: 3, maxSize: 7 });
      registerOpenTelemetry(pool);
      setTimeout(() => {}, 60_000); // stay up until the test has seen an export and kills it
    `;
    const child = new Deno.Command(Deno.execPath(), {
      args: ["eval", "--ext=ts", script],
      env: {
        OTEL_DENO: "true",
        OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${collector.addr.port}`,
        OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
        OTEL_METRIC_EXPORT_INTERVAL: "200",
      },
      stdout: "null",
      stderr: "piped",
    }).spawn();
    // Observable instruments are read at each export interval (not at exit): poll until one arrived.
    const deadline = performance.now() + 15_000;
    while (!bodies.some((b) => b.includes("tidepool.pool_size")) && performance.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    child.kill("SIGKILL");
    const out = await child.output();
    assert.ok(bodies.length > 0, `no export received: ${new TextDecoder().decode(out.stderr)}`);
    const metrics = new Map<string, OtlpMetric>();
    for (const body of bodies) {
      for (const rm of JSON.parse(body).resourceMetrics ?? []) {
        for (const sm of rm.scopeMetrics ?? []) {
          for (const m of sm.metrics ?? []) if (m.name.startsWith("tidepool.")) metrics.set(m.name, m);
        }
      }
    }
    assert.equal(metrics.size, 16, [...metrics.keys()].join(", "));
    const point = (name: string) => {
      const m = metrics.get(name)!;
      const p = (m.gauge ?? m.sum)!.dataPoints[0];
      assert.deepEqual(p.attributes, [{ key: "pool.name", value: { stringValue: "otel-e2e" } }]);
      return Number(p.asInt ?? p.asDouble);
    };
    assert.ok(metrics.get("tidepool.pool_max")!.gauge, "poolMax is a gauge");
    assert.equal(point("tidepool.pool_max"), 7);
    assert.equal(point("tidepool.pool_min"), 3);
    assert.equal(metrics.get("tidepool.requests")!.sum?.isMonotonic, true, "requestsNum is a monotonic sum");
    assert.equal(point("tidepool.requests"), 0);
  } finally {
    await collector.shutdown();
  }
});
