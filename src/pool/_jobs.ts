/**
 * The pool's background job runner: connection attempts and their retries
 * run on at most `limit` loops (psycopg_pool's `num_workers`), so an outage
 * never opens more sockets at once than that.
 *
 * @module
 */
import { Deque } from "./_deque.ts";

/** Jobs run in order, at most `limit` at a time; a job's throw goes to `onError` and the loop goes on. */
export class Jobs {
  readonly #queue = new Deque<() => Promise<void>>();
  #running = 0;

  /**
   * @param limit Most jobs running at once (>= 1).
   * @param onError Told about a job that threw (the pool logs it).
   */
  constructor(readonly limit: number, readonly onError: (error: unknown) => void) {}

  /** Queues a job; starts a loop for it if fewer than `limit` run. */
  run(job: () => Promise<void>): void {
    this.#queue.push(job);
    if (this.#running < this.limit) {
      this.#running++;
      void this.#loop();
    }
  }

  async #loop(): Promise<void> {
    try {
      for (let job = this.#queue.shift(); job !== undefined; job = this.#queue.shift()) {
        try {
          await job();
        } catch (error) {
          this.onError(error);
        }
      }
    } finally {
      this.#running--;
    }
  }
}
