/**
 * Where a `pool.query()` statement runs: pipelined beside other statements
 * when it needs no session of its own (`_pipeline.ts`), on a connection of its
 * own otherwise, and always alone under a deadline (its CancelRequest would
 * cancel whatever runs on that backend, maybe another caller's statement).
 *
 * @module
 */
import type { Driver, QueryResult, RowShape } from "../driver.ts";
import { type Deadline, type DeadlineHost, deadlineOf, type DeadlineOptions } from "./deadline.ts";
import { pipelinable, type PipelineLane } from "./_pipeline.ts";

/** What routing needs of its pool. */
export interface RouterHost<C> {
  readonly driver: Driver<C>;
  readonly deadlines: DeadlineHost<C>;
  /** The pipelining lane, when the pool pipelines. */
  readonly lane: PipelineLane<C> | undefined;
  getconn(options?: { timeout?: number; signal?: AbortSignal }): Promise<C>;
  putconn(conn: C): Promise<void>;
  /** A statement the lane serves: counted as a request (the lane's own checkouts are not). */
  counted(): void;
}

/** `pool.query()`'s routing. */
export class QueryRouter<C> {
  readonly #host: RouterHost<C>;

  constructor(host: RouterHost<C>) {
    this.#host = host;
  }

  /** Runs one statement where it belongs; a bad option rejects (never throws). */
  query<R>(text: string, params?: unknown[], options?: DeadlineOptions & RowShape): Promise<QueryResult<R>> {
    // pg's rowMode / types (toPgPool's query configs): passed to the driver only when set.
    const shape = options !== undefined && (options.rowMode !== undefined || options.types !== undefined)
      ? { rowMode: options.rowMode, types: options.types }
      : undefined;
    if (options !== undefined) {
      let deadline: Deadline | undefined;
      try {
        deadline = deadlineOf(options);
      } catch (error) {
        return Promise.reject(error);
      }
      if (deadline !== undefined) return this.#under(text, params, deadline, shape);
    }
    // The hot path: no timeout or signal, so no deadline is allocated.
    const lane = this.#host.lane;
    if (lane !== undefined && pipelinable(text)) {
      this.#host.counted();
      return lane.query(text, params, shape) as Promise<QueryResult<R>>;
    }
    return this.#alone(text, params, shape);
  }

  /** On a connection of its own. */
  async #alone<R>(text: string, params?: unknown[], shape?: RowShape): Promise<QueryResult<R>> {
    const host = this.#host;
    const conn = await host.getconn();
    try {
      return await host.driver.query(conn, text, params, shape) as QueryResult<R>;
    } finally {
      await host.putconn(conn);
    }
  }

  /** With a timeout or signal: one deadline for the wait and the statement. */
  async #under<R>(
    text: string,
    params: unknown[] | undefined,
    deadline: Deadline,
    shape?: RowShape,
  ): Promise<QueryResult<R>> {
    const host = this.#host;
    const conn = await host.getconn(deadline.waitOptions());
    try {
      return (await host.deadlines.run(conn, deadline, () => host.driver.query(conn, text, params, shape)))
        .value as QueryResult<R>;
    } finally {
      await host.putconn(conn);
    }
  }
}
