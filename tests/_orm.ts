/**
 * Helpers of the `orm_*_test.ts` files: a pool per test on a fresh database,
 * and the most server sessions seen while some work runs.
 *
 * @module
 */
import { adminQuery } from "./_db.ts";

/**
 * Runs `work` while sampling `pg_stat_activity` for sessions of `appName`, and
 * returns the most seen at once alongside the work's result.
 *
 * @param appName The pool's `application_name`.
 * @param work The load to observe.
 * @returns The work's result and the peak session count.
 * @example
 * ```ts
 * const { peak } = await peakBackends("orm_kysely", () => Promise.all(queries));
 * ```
 */
export async function peakBackends<T>(appName: string, work: () => Promise<T>): Promise<{ result: T; peak: number }> {
  let peak = 0;
  let done = false;
  const sample = async () => {
    const [row] = await adminQuery<{ n: number }>(
      "select count(*)::int as n from pg_stat_activity where application_name = $1",
      [appName],
    );
    peak = Math.max(peak, row.n);
  };
  const sampler = (async () => {
    while (!done) await sample();
  })();
  try {
    const result = await work();
    await sample();
    return { result, peak };
  } finally {
    done = true;
    await sampler;
  }
}

/**
 * `url` with an `application_name`, so the pool's sessions can be told apart.
 *
 * @param url A `postgres://` URL.
 * @param appName The name.
 * @returns The URL.
 * @example
 * ```ts
 * const conninfo = withAppName(db.url, "orm_kysely");
 * ```
 */
export function withAppName(url: string, appName: string): string {
  const u = new URL(url);
  u.searchParams.set("application_name", appName);
  return u.toString();
}
