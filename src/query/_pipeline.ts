/**
 * The pipelining lane of `pool.query()`: it borrows connections from the pool
 * like any borrower, switches them to pipeline mode, keeps up to `depth`
 * statements in flight on each, and gives each back through the pool's normal
 * return path as soon as it has nothing in flight. A connection lent to a
 * borrower is never in the lane, and a lane connection is never lent.
 *
 * Head-of-line blocking (a slow statement delays the ones behind it on the same
 * connection) is limited three ways: an idle connection is always taken before
 * a statement is pipelined behind another; the statement goes to the lane
 * connection with the fewest in flight (on a tie, the one whose oldest
 * statement in flight is youngest), while the pool is asked for one more
 * connection (up to `maxSize`); and nothing is pipelined behind a
 * statement that has been running longer than {@linkcode STALL_MS}: when every
 * connection is held up (a lock, a slow query), statements wait in the lane's
 * queue, visible in `requestsWaiting`, and take the first slot that frees.
 *
 * @module
 */
import { Waiter, WaiterQueue } from "../pool/_waiters.ts";
import { classify } from "./_sql_classifier.ts";
import { endsSession, serverError } from "./_server_error.ts";
import type { Driver, QueryResult, RowShape } from "../driver.ts";
import { ConnectionLostError, PoolClosedError, PoolTimeoutError } from "../errors.ts";

/**
 * Nothing is pipelined behind a statement running longer than this (ms). 10 ms
 * was too tight on a loaded machine: scheduling pauses alone made connections
 * look stalled.
 */
export const STALL_MS = 50;
/**
 * A lane connection stops taking statements this long (ms) after the lane took
 * it, and goes back to the pool when its last one finishes: its `maxLifetime`
 * is checked, a borrower waiting behind a busy lane gets it, and `maxIdle`
 * sees it. Taking it again costs one return and one checkout per second.
 */
export const RECYCLE_MS = 1_000;

/** What the lane needs from its pool. */
export interface LaneHost<C> {
  /** The pool's name, for error messages. */
  readonly name: string;
  /** The pool's `timeout`, in ms: longest wait of a statement for a slot. */
  timeout(): number;
  /** An idle connection lent to the lane at once, or undefined (none idle, not open, or checks to run). */
  takeIdle(): C | undefined;
  /** A connection through the pool's queue (`getconn()`). */
  acquire(): Promise<C>;
  /** Gives a connection back through the normal return path (`putconn()`). */
  release(conn: C): Promise<void>;
  /** Requests waiting in the pool's queue (the lane's own request included). */
  waiting(): number;
  /** The pool is open and below `maxSize`: a new connection would be opened for a request. */
  canGrow(): boolean;
  /** The pool's refusal when `maxWaiting` requests already wait (statements waiting here included), or undefined. */
  tooMany(): Error | undefined;
  /** The pool's own timeout error (counts, last connection error as `cause`), `detail` after the wait. */
  timeoutError?(timeout: number, detail: string): Error;
  /** Whether the lane should give its connections back as they drain, not only every RECYCLE_MS (a capGroup's waiter elsewhere). */
  yieldSoon?(): boolean;
}

/** A connection in the lane. */
class LaneConn<C> {
  /** Statements sent or about to be sent; the connection leaves the lane at 0. */
  inflight = 0;
  /** Date.now() when the statement now at the head of the pipeline started running. */
  since: number;
  /** No more statements: lost, or due to go back to the pool. */
  closing = false;
  /**
   * Send order (the lane's counter) of the statements in flight, oldest first: a connection answers in order, so
   * the first is the one everything behind it waits for.
   */
  readonly sent: number[] = [];

  constructor(readonly conn: C, readonly takenAt: number) {
    this.since = takenAt;
  }
}

/**
 * Whether a statement may share a connection with others: one statement that
 * cannot leave anything behind for the ones pipelined after it, as far as the
 * SQL classifier (./_sql_classifier.ts) can see. `BEGIN` / `START TRANSACTION`
 * would pull them into its transaction, `COPY` waits for data, a statement
 * that leaves session state (`SET`, `LISTEN`, a temp table, an advisory lock,
 * however spelled) would change the session under the statements beside it,
 * and a string of several statements is sent alone too; those run on a
 * connection of their own, as without pipelining.
 */
export function pipelinable(text: string): boolean {
  // JavaScript callers may pass pg's query config objects: those keep their own path.
  if (typeof text !== "string") return false;
  const { statements, first, state } = classify(text);
  if (statements !== 1 || first === undefined) return false;
  if (first === "begin" || first === "start" || first === "copy") return false;
  return state === undefined;
}

/**
 * Dispatches pipelinable `pool.query()` statements over the lane's connections.
 * Created by the pool only when `pipeline > 1` and the driver can pipeline.
 */
export class PipelineLane<C> {
  readonly #driver: Driver<C>;
  readonly #setPipelined: (conn: C, on: boolean) => void;
  readonly #depth: number;
  readonly #host: LaneHost<C>;
  /** Connections in the lane; few (at most maxSize), so a scan beats any index. */
  readonly #conns: LaneConn<C>[] = [];
  /** Statements waiting for a slot, each with the pool's timeout. */
  readonly #waiters = new WaiterQueue<LaneConn<C>>((waiter) => this.#timedOut(waiter));
  /** A connection request of the lane is in the pool's queue. */
  #requesting = false;
  #closed = false;
  /** Statements sent so far: their order, for {@linkcode LaneConn.sent}. */
  #sendCount = 0;

  constructor(driver: Driver<C>, depth: number, host: LaneHost<C>) {
    this.#driver = driver;
    this.#setPipelined = driver.setPipelined!.bind(driver);
    this.#depth = depth;
    this.#host = host;
  }

  /** Runs one statement pipelined; rejects with ConnectionLostError if its connection dies under it. */
  query(text: string, params?: unknown[], shape?: RowShape): Promise<QueryResult> {
    if (this.#closed) return Promise.reject(new PoolClosedError(`Pool '${this.#host.name}' is closed`));
    const lane = this.#pick();
    if (lane !== undefined) {
      // Pipelined behind another statement while the pool could open one more connection: ask for it, so that
      // under load the lane spreads over up to maxSize backends (parallel on the server) instead of queueing
      // everything on the few it holds. The new connection serves waiters or goes back idle for the next pick.
      if (lane.inflight > 0 && !this.#requesting && this.#host.canGrow()) this.#request();
      lane.inflight++;
      return this.#run(lane, text, params, shape);
    }
    const refused = this.#host.tooMany();
    if (refused !== undefined) return Promise.reject(refused);
    const now = Date.now();
    const timeout = this.#host.timeout();
    const waiter = new Waiter<LaneConn<C>>(now);
    waiter.deadline = now + timeout;
    waiter.timeout = timeout;
    this.#waiters.add(waiter);
    this.#fill();
    return waiter.promise.then((slot) => this.#run(slot, text, params, shape));
  }

  /**
   * Statements waiting for a slot, less the lane's own request already in the
   * pool's queue: what `requestsWaiting` adds for the lane.
   */
  waiting(): number {
    return this.#waiters.size - (this.#requesting ? 1 : 0);
  }

  /**
   * Sends nothing more on the connections now in the lane (`pool.drain()`): each goes back through the return
   * path, which replaces it, when its last statement in flight finishes; new statements take fresh connections.
   */
  retire(): void {
    for (const lane of this.#conns) lane.closing = true;
  }

  /** Refuses new statements and fails the waiting ones; those in flight finish and their connections go back. */
  close(): void {
    this.#closed = true;
    this.#waiters.rejectAll(() => new PoolClosedError(`Pool '${this.#host.name}' is closed`));
  }

  /** A slot now, or undefined: an idle connection first, else the least loaded lane connection not stalled. */
  #pick(): LaneConn<C> | undefined {
    // Statements already waiting go first (FIFO).
    if (this.#waiters.size > 0) return undefined;
    const conn = this.#host.takeIdle();
    if (conn !== undefined) return this.#adopt(conn);
    // A borrower waits: let lane connections drain to it rather than load them further.
    if (this.#borrowerWaiting()) return undefined;
    const fresh = Date.now() - STALL_MS;
    let best: LaneConn<C> | undefined;
    for (const lane of this.#conns) {
      if (lane.closing || lane.inflight >= this.#depth || lane.since < fresh) continue;
      // Equal load: the connection whose oldest statement in flight was sent last, the least likely to be held up
      // (taking the first in the list put half of a burst behind a statement waiting on a lock).
      if (
        best === undefined || lane.inflight < best.inflight ||
        (lane.inflight === best.inflight && (lane.sent[0] ?? Infinity) > (best.sent[0] ?? Infinity))
      ) best = lane;
    }
    return best;
  }

  #borrowerWaiting(): boolean {
    return this.#host.waiting() > (this.#requesting ? 1 : 0);
  }

  #adopt(conn: C): LaneConn<C> {
    this.#setPipelined(conn, true);
    const lane = new LaneConn(conn, Date.now());
    this.#conns.push(lane);
    return lane;
  }

  #run(lane: LaneConn<C>, text: string, params: unknown[] | undefined, shape?: RowShape): Promise<QueryResult> {
    if (this.#driver.status(lane.conn) === "broken") {
      // The connection died before this statement was sent (its end is known, the failures of the statements on
      // it not yet delivered): it never ran, so it goes elsewhere instead of failing as lost.
      lane.closing = true;
      this.#finished(lane, false);
      return this.query(text, params, shape);
    }
    let sent: Promise<QueryResult>;
    try {
      sent = this.#driver.query(lane.conn, text, params, shape);
    } catch (error) {
      // Refused before anything was sent (a pooler's check, a bad argument): that caller's error alone.
      this.#finished(lane, false);
      return Promise.reject(error);
    }
    lane.sent.push(++this.#sendCount);
    return sent.then(
      (result) => {
        this.#finished(lane);
        return result;
      },
      (error) => {
        const broken = this.#driver.status(lane.conn) === "broken";
        if (broken) lane.closing = true;
        // The server answered this statement (a read-only server's 25006 during a failover, say): its own error,
        // even when the connection is now marked broken; only a statement left without an answer is "lost".
        if (broken && !answeredByServer(error)) {
          error = new ConnectionLostError(
            `The connection of pool '${this.#host.name}' was lost with this statement in flight: it may or may not have run`,
            { cause: error },
          );
        }
        this.#finished(lane);
        throw error;
      },
    );
  }

  /** A statement settled (`sent`: it had been sent): feed the slot to a waiter, or give the connection back when it has nothing in flight. */
  #finished(lane: LaneConn<C>, sent = true): void {
    lane.inflight--;
    if (sent) lane.sent.shift();
    const now = Date.now();
    lane.since = now;
    if (!lane.closing && (now - lane.takenAt > RECYCLE_MS || this.#host.yieldSoon?.() === true)) lane.closing = true;
    if (!lane.closing && this.#waiters.size > 0 && !this.#borrowerWaiting()) {
      const waiter = this.#waiters.take()!;
      lane.inflight++;
      waiter.resolve(lane);
    }
    if (lane.inflight > 0) return;
    const i = this.#conns.indexOf(lane);
    this.#conns[i] = this.#conns[this.#conns.length - 1];
    this.#conns.pop();
    if (this.#driver.status(lane.conn) !== "broken") this.#setPipelined(lane.conn, false);
    // The return path discards a lost connection (the pool heals) and checks maxLifetime.
    this.#host.release(lane.conn).catch(() => {});
    if (this.#waiters.size > 0) this.#fill();
  }

  /** Serves waiters from idle connections; asks the pool for one when none is idle. */
  #fill(): void {
    while (this.#waiters.size > 0) {
      const conn = this.#host.takeIdle();
      if (conn === undefined) break;
      this.#serve(this.#adopt(conn));
    }
    if (this.#waiters.size > 0 && !this.#requesting) this.#request();
  }

  #serve(lane: LaneConn<C>): void {
    while (lane.inflight < this.#depth && this.#waiters.size > 0) {
      const waiter = this.#waiters.take()!;
      lane.inflight++;
      waiter.resolve(lane);
    }
    // Every waiter timed out meanwhile: nothing will run on it.
    if (lane.inflight === 0) {
      lane.inflight = 1;
      this.#finished(lane, false);
    }
  }

  /** One request at a time in the pool's queue: it takes its FIFO turn with borrowers and makes the pool grow. */
  #request(): void {
    this.#requesting = true;
    this.#host.acquire().then(
      (conn) => {
        this.#requesting = false;
        this.#serve(this.#adopt(conn));
        if (this.#waiters.size > 0) this.#fill();
      },
      (error) => {
        this.#requesting = false;
        if (error instanceof PoolTimeoutError) {
          // Each waiting statement has its own deadline (a growth request may have started long before they
          // queued): none fails early on this request's timeout; ask again for those still waiting.
          if (this.#waiters.size > 0 && !this.#closed) this.#fill();
          return;
        }
        // The pool closed or refuses (fail fast): the statements waiting for a connection fail with its error.
        this.#waiters.rejectAll(() => error);
      },
    );
  }

  #timedOut(waiter: Waiter<LaneConn<C>>): void {
    const detail =
      ` for a pipelined statement (${this.#waiters.size} waiting, ${this.#conns.length} connections pipelining)`;
    waiter.reject(
      this.#host.timeoutError?.(waiter.timeout, detail) ??
        new PoolTimeoutError(
          `Couldn't get a connection from pool '${this.#host.name}' after ${Math.round(waiter.timeout)} ms${detail}`,
        ),
    );
  }
}

/** True for an error the server sent about this statement, as opposed to the end of the session. */
function answeredByServer(error: unknown): boolean {
  const answer = serverError(error);
  return answer !== undefined && !endsSession(answer);
}
