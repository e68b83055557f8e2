/** Small statistics helpers shared by the benchmarks. @module */

/** Median of a list (mean of the middle two for even lengths); NaN when empty. */
export function median(values: readonly number[]): number {
  if (values.length === 0) return NaN;
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

/**
 * Nearest-rank percentile (`p` in 0..100) of an already sorted array. Nearest
 * rank, not interpolation: a p99 is then a latency some query really had.
 */
export function percentileSorted(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))];
}

/** Sorts a copy numerically; Float64Array sorts numbers without a comparator. */
export function sorted(values: readonly number[]): Float64Array {
  return Float64Array.from(values).sort();
}

/** Population standard deviation. */
export function stddev(values: readonly number[]): number {
  if (values.length === 0) return NaN;
  const mean = values.reduce((a, b) => a + b, 0) / values.length;
  const v = values.reduce((a, b) => a + (b - mean) ** 2, 0) / values.length;
  return Math.sqrt(v);
}

/**
 * The order contenders run in during round `round`: rotated by one each round
 * and reversed every other round, so no contender always runs first (cold) or
 * right after the same neighbour (whose garbage it would collect).
 */
export function roundOrder<T>(items: readonly T[], round: number): T[] {
  const k = round % items.length;
  const rotated = [...items.slice(k), ...items.slice(0, k)];
  return round % 2 ? rotated.reverse() : rotated;
}

/** `[min, max]` of a list, for showing the spread of per-round ratios. */
export function range(values: readonly number[]): [number, number] {
  return [Math.min(...values), Math.max(...values)];
}

/** Formats a ratio like `1.03x`; ratios are the noisiest numbers, two decimals is plenty. */
export function fmtRatio(r: number): string {
  return Number.isFinite(r) ? `${r.toFixed(2)}x` : "n/a";
}

/** Formats a ratio with the spread of per-round ratios: `1.03x (0.98-1.07)`. */
export function fmtRatioRange(ratios: readonly number[]): string {
  if (ratios.length === 0) return "n/a";
  const [lo, hi] = range(ratios);
  return `${fmtRatio(median(ratios))} (${lo.toFixed(2)}-${hi.toFixed(2)})`;
}

/** Formats a number with thousands separators and `digits` decimals. */
export function fmtNum(n: number, digits = 0): string {
  if (!Number.isFinite(n)) return "n/a";
  return n.toLocaleString("en-US", {
    minimumFractionDigits: digits,
    maximumFractionDigits: digits,
  });
}

/** Formats milliseconds, switching to µs below 1 ms so small latencies stay readable. */
export function fmtMs(ms: number): string {
  if (!Number.isFinite(ms)) return "n/a";
  return ms < 1 ? `${(ms * 1000).toFixed(0)} µs` : `${ms.toFixed(2)} ms`;
}
