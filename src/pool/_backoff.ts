/** Exponential backoff settings for reconnect attempts. */
export interface BackoffOptions {
  /** Delay before the first retry, in ms. @default 1000 */
  initialDelay?: number;
  /** Each delay is the previous one times this. @default 2 */
  multiplier?: number;
  /** Relative random spread of each delay, 0..1 (0.1 = +/-10%). @default 0.1 */
  jitter?: number;
  /**
   * Longest delay between two attempts, in ms (before jitter): without it the
   * delay doubles without end, and a pool would take as long to notice the
   * fix as the outage lasted. With the defaults an outage of any length heals
   * within about 5 s of the fix. @default 4000
   */
  maxDelay?: number;
}

/**
 * One run of failed attempts (psycopg_pool's `ConnectionAttempt`): hands out
 * growing delays and says when the run has lasted longer than the give-up time.
 */
export class Backoff {
  readonly #start: number;
  #delay: number;
  readonly #multiplier: number;
  readonly #jitter: number;
  readonly #maxDelay: number;
  readonly #giveUpAfter: number;

  constructor(options: Required<BackoffOptions>, giveUpAfter: number) {
    this.#start = performance.now();
    this.#delay = options.initialDelay;
    this.#multiplier = options.multiplier;
    this.#jitter = options.jitter;
    this.#maxDelay = options.maxDelay;
    this.#giveUpAfter = giveUpAfter;
  }

  /** The delay before the next attempt; each call grows the next one. */
  next(): number {
    const base = Math.min(this.#delay, this.#maxDelay);
    this.#delay = Math.min(this.#delay * this.#multiplier, this.#maxDelay);
    const spread = this.#jitter === 0 ? 0 : base * this.#jitter * (Math.random() * 2 - 1);
    return Math.max(0, base + spread);
  }

  /** True once failures have gone on for longer than the give-up time. */
  expired(): boolean {
    return performance.now() - this.#start >= this.#giveUpAfter;
  }
}
