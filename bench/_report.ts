/**
 * The result shape every bench script produces, and how it leaves the script:
 * a Markdown table on stdout when run by hand, or JSON in the file named by
 * `--json=<file>` when `bench/run.ts` runs it as a child process.
 *
 * @module
 */

/** One Markdown table. */
export interface Table {
  title: string;
  columns: string[];
  rows: string[][];
  /** Lines printed under the table (caveats, what a ratio means). */
  notes?: string[];
}

/** What one bench script hands back to the runner. */
export interface BenchResult {
  /** Section name in RESULTS.md. */
  name: string;
  /** Set when the bench did not run (e.g. a feature not implemented yet). */
  skipped?: string;
  /** How it was measured: rounds, durations, alternation. */
  method: string[];
  tables: Table[];
  /** Peer package versions this bench used, e.g. `{ "pg-pool": "3.14.0" }`. */
  versions?: Record<string, string>;
  /** Raw numbers for charts (throughput only). */
  series?: { name: string; points: { x: number; y: number }[] }[];
}

/** `BENCH_QUICK=1`: 1-2 short rounds so a test can smoke the whole harness. */
export const QUICK: boolean = ["1", "true", "yes"].includes(
  (Deno.env.get("BENCH_QUICK") ?? "").toLowerCase(),
);

/** Renders one table as GitHub Markdown. */
export function renderTable(t: Table): string {
  const line = (cells: string[]) => `| ${cells.join(" | ")} |`;
  const out = [`**${t.title}**`, "", line(t.columns)];
  // Right-align every column but the first: they are numbers.
  out.push(line(t.columns.map((_, i) => (i === 0 ? "---" : "---:"))));
  for (const r of t.rows) out.push(line(r));
  if (t.notes?.length) out.push("", ...t.notes.map((n) => `- ${n}`));
  return out.join("\n");
}

/** Renders a whole result (method, tables) as Markdown without a heading. */
export function renderResult(r: BenchResult): string {
  if (r.skipped) return `Skipped: ${r.skipped}`;
  const parts = [r.method.map((m) => `- ${m}`).join("\n")];
  for (const t of r.tables) parts.push(renderTable(t));
  return parts.join("\n\n");
}

/**
 * Ends a bench script: writes JSON for the runner if `--json=<file>` was given,
 * else prints Markdown for a human.
 */
export async function emit(result: BenchResult): Promise<void> {
  const arg = Deno.args.find((a) => a.startsWith("--json="));
  if (arg) {
    await Deno.writeTextFile(arg.slice("--json=".length), JSON.stringify(result));
  } else {
    console.log(`## ${result.name}\n\n${renderResult(result)}\n`);
  }
}

/** Progress goes to stderr so stdout stays clean for the result. */
export function progress(msg: string): void {
  console.error(`[bench] ${msg}`);
}

/** A peer's version from its exact `npm:` pin in deno.json, for the report. */
export async function npmVersion(name: string): Promise<string> {
  try {
    const cfg = JSON.parse(
      await Deno.readTextFile(new URL("../deno.json", import.meta.url)),
    );
    const spec: string = cfg.imports?.[name] ?? "";
    return spec.slice(spec.lastIndexOf("@") + 1) || "?";
  } catch {
    return "?";
  }
}

let outDirPromise: Promise<string> | undefined;

/**
 * Where RESULTS.md and the chart go: `BENCH_OUT` if set, else `bench/` for a
 * full run. A quick run defaults to a fresh temp dir so a smoke test never
 * overwrites the committed results with throwaway numbers.
 */
export function outDir(): Promise<string> {
  outDirPromise ??= (async () => {
    const env = Deno.env.get("BENCH_OUT");
    if (env) {
      await Deno.mkdir(env, { recursive: true });
      return env;
    }
    if (QUICK) return await Deno.makeTempDir({ prefix: "tidepool-bench-" });
    return new URL(".", import.meta.url).pathname.replace(/\/$/, "");
  })();
  return outDirPromise;
}
