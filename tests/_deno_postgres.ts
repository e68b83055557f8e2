/**
 * Loads deno-postgres for the tests that need it: `jsr:@db/postgres@0.19.5`
 * (what users import) first, then the copy in `../shared/vendor/` (JSR is
 * unreachable on our machines; see its README). Computed specifiers keep
 * `deno check` and `deno publish` from ever resolving them.
 *
 * @module
 */

/** The parts of deno-postgres the tests use. */
export interface DenoPostgres {
  // deno-lint-ignore no-explicit-any
  Client: new (config: any) => any;
  // deno-lint-ignore no-explicit-any
  Pool: new (config: any, size: number, lazy?: boolean) => any;
  /** Where it was loaded from. */
  source: string;
}

const CANDIDATES = [
  ["jsr:", "@db/postgres@0.19.5"].join(""),
  new URL(["../../shared/vendor/", "deno-postgres/mod.ts"].join(""), import.meta.url).href,
];

let loaded: Promise<DenoPostgres | string> | undefined;

/**
 * deno-postgres, or why it could not be loaded (the tests then skip with that message).
 *
 * @returns The module's `Client` and `Pool`, or the reason it is missing.
 * @example
 * ```ts
 * const dp = await loadDenoPostgres();
 * if (typeof dp === "string") console.warn(dp);
 * ```
 */
export function loadDenoPostgres(): Promise<DenoPostgres | string> {
  loaded ??= (async () => {
    const failures: string[] = [];
    for (const specifier of CANDIDATES) {
      try {
        const mod = await import(specifier);
        return { Client: mod.Client, Pool: mod.Pool, source: specifier };
      } catch (error) {
        failures.push(`${specifier}: ${(error as Error).message.split("\n")[0]}`);
      }
    }
    return `deno-postgres not available, skipping (tried ${failures.join("; ")})`;
  })();
  return loaded;
}
