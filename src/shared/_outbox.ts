/**
 * Coalesces the messages one side posts in the same tick into one
 * `postMessage` of an array. A postMessage costs a structured clone, an op
 * and a wake-up of the other isolate; at thousands of `select 1` a second,
 * sending one array per tick instead of one message per request is most of
 * the difference between a Worker and the owner.
 */
export class Outbox<M> {
  #queue: M[] = [];
  #scheduled = false;
  #closed = false;

  /**
   * @param port Where messages go.
   * @param onUnsendable Called for a message that cannot be cloned (a function in the
   *   params, ...), so its sender can fail that one request instead of the whole batch.
   */
  constructor(readonly port: MessagePort, readonly onUnsendable: (message: M, error: unknown) => void) {}

  /** Queues a message; it leaves at the end of the current tick. */
  send(message: M): void {
    if (this.#closed) return;
    this.#queue.push(message);
    if (!this.#scheduled) {
      this.#scheduled = true;
      // Two microtask hops: the continuations of an async caller (await -> resume -> next call)
      // usually land before the second one, so a burst of callers shares one post.
      queueMicrotask(() => queueMicrotask(() => this.flush()));
    }
  }

  /** Posts what is queued now. */
  flush(): void {
    this.#scheduled = false;
    const queue = this.#queue;
    if (queue.length === 0 || this.#closed) return;
    this.#queue = [];
    try {
      this.port.postMessage(queue.length === 1 ? queue[0] : queue);
    } catch (error) {
      // Post each alone so only the message that cannot be cloned fails.
      if (queue.length === 1) return this.onUnsendable(queue[0], error);
      for (const message of queue) {
        try {
          this.port.postMessage(message);
        } catch (error) {
          this.onUnsendable(message, error);
        }
      }
    }
  }

  /** Flushes and stops sending; later messages are dropped. */
  close(): void {
    this.flush();
    this.#closed = true;
  }
}
