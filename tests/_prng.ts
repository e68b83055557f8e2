/**
 * A seeded PRNG for property and fuzz tests.
 *
 * @module
 */

/**
 * mulberry32: a seeded PRNG, so a failing case can be replayed from its seed.
 *
 * @param seed Any integer.
 * @returns A function giving numbers in [0, 1).
 * @example
 * ```ts
 * const next = prng(42);
 * next(); // always the same first number for seed 42
 * ```
 */
export function prng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
