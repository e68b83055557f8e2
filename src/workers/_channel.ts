/**
 * The Worker side's transport to the owner: request ids and their replies,
 * batching (see `_outbox.ts`), the protocol version check, and the heartbeat
 * that tells the owner this Worker is alive while it holds leases. Knows
 * nothing of pools: `worker.ts` builds the pool API on top.
 *
 * @module
 */
import { PoolClosedError } from "../errors.ts";
import { Outbox } from "./_outbox.ts";
import { fromWireError, isMessage, type ToOwner, type ToWorker, WIRE_VERSION } from "./_wire.ts";

/** A Worker-side request, before the channel gives it an id. */
export type Request = ToOwner extends infer M ? M extends { id: number } ? Omit<M, "id"> : never : never;
/** A successful answer of the owner. */
export type Reply = Extract<ToWorker, { kind: "ok" }>;

/** Where a query error carries the connection's status after it, for the RemoteConnection to pick up. */
export const STATUS_KEY: unique symbol = Symbol("tidepool.status");

interface Pending {
  resolve(reply: Reply): void;
  reject(error: Error): void;
}

/** The message side: ids, replies, batching and the heartbeat. */
export class Channel {
  readonly #port: MessagePort;
  readonly #outbox: Outbox<ToOwner>;
  readonly #pending = new Map<number, Pending>();
  #nextId = 1;
  #heartbeat: number | undefined;
  heartbeatInterval = 1_000;
  /** Why every call now fails with PoolClosedError, once the owner closed or we detached. */
  closedReason: string | undefined;
  onReclaimed: (leases: number[], reason: string) => void = () => {};
  onClosed: () => void = () => {};
  /** Leases held: the heartbeat runs while this or the pending count is above zero. */
  leaseCount = 0;

  constructor(port: MessagePort) {
    this.#port = port;
    this.#outbox = new Outbox<ToOwner>(port, (message, error) => {
      if ("id" in message) {
        this.#settle(message.id, undefined, error instanceof Error ? error : new Error(String(error)));
      }
    });
    port.onmessage = (event) => this.#receive(event.data);
  }

  request(message: Request): Promise<Reply> {
    if (this.closedReason !== undefined) return Promise.reject(new PoolClosedError(this.closedReason));
    const id = this.#nextId++;
    const { promise, resolve, reject } = Promise.withResolvers<Reply>();
    this.#pending.set(id, { resolve, reject });
    this.#outbox.send({ ...message, v: WIRE_VERSION, id } as ToOwner);
    this.touch();
    return promise;
  }

  /** The id the next request will get (to cancel it later). */
  get nextId(): number {
    return this.#nextId;
  }

  send(message: ToOwner): void {
    if (this.closedReason === undefined) this.#outbox.send(message);
  }

  #receive(data: unknown): void {
    if (Array.isArray(data)) {
      for (const message of data) this.#handle(message);
    } else {
      this.#handle(data);
    }
    this.touch();
  }

  #handle(message: unknown): void {
    if (!isMessage(message) || message.v !== WIRE_VERSION) {
      console.warn("tidepool: ignoring a message that is not from the pool's owner on an attached port");
      return;
    }
    const m = message as ToWorker;
    switch (m.kind) {
      case "ok":
      case "welcome":
        return this.#settle(m.id, m as Reply, undefined);
      case "err":
        return this.#settle(m.id, undefined, Object.assign(fromWireError(m.error), { [STATUS_KEY]: m.status }));
      case "reclaimed":
        return this.onReclaimed(m.leases, m.reason);
      case "closed":
        return this.close(m.reason);
    }
  }

  #settle(id: number, reply: Reply | undefined, error: Error | undefined): void {
    const pending = this.#pending.get(id);
    if (pending === undefined) return; // abandoned (aborted) request
    this.#pending.delete(id);
    if (error !== undefined) pending.reject(error);
    else pending.resolve(reply!);
  }

  /**
   * Runs the heartbeat while anything is out: leases held or replies awaited.
   * It stops itself at a beat that finds nothing out, not as soon as the last
   * reply lands: between two bursts of requests that would clear and re-arm a
   * timer each time (a setInterval costs ~5 µs in Deno).
   */
  touch(): void {
    if (this.#heartbeat !== undefined || this.closedReason !== undefined) return;
    if (this.#pending.size === 0 && this.leaseCount === 0) return;
    const timer = setInterval(() => {
      if (this.#pending.size > 0 || this.leaseCount > 0) return this.#outbox.send({ v: 1, kind: "ping" });
      clearInterval(timer);
      this.#heartbeat = undefined;
    }, this.heartbeatInterval);
    // A heartbeat alone must not keep the Worker alive (Deno returns a number; npm types say Timeout).
    Deno.unrefTimer(timer as unknown as number);
    this.#heartbeat = timer as unknown as number;
  }

  /**
   * Sets the beat the owner asked for. The attach request itself started a
   * heartbeat at the default period: restart it, or a Worker could beat
   * slower than its owner's timeout and lose a lease while alive.
   */
  setHeartbeatInterval(ms: number): void {
    this.heartbeatInterval = ms;
    if (this.#heartbeat === undefined) return;
    clearInterval(this.#heartbeat);
    this.#heartbeat = undefined;
    this.touch();
  }

  /** Stops the channel: pending requests fail with PoolClosedError, the port closes. */
  close(reason: string): void {
    if (this.closedReason !== undefined) return;
    this.closedReason = reason;
    this.#outbox.close();
    this.#port.onmessage = null;
    this.#port.close();
    const pending = [...this.#pending.values()];
    this.#pending.clear();
    for (const p of pending) p.reject(new PoolClosedError(reason));
    this.leaseCount = 0;
    if (this.#heartbeat !== undefined) clearInterval(this.#heartbeat);
    this.#heartbeat = undefined;
    this.onClosed();
  }
}
