/**
 * A TCP proxy for fault injection: listens on 127.0.0.1 (OS-chosen port) and
 * pipes each accepted connection to the target server, with switches to
 * refuse, cut, stall and slow connections.
 *
 * Every socket, timer and read it starts is finished by `close()`, so tests
 * using it pass Deno's op and resource sanitizers.
 *
 * @module
 */

/** Options for {@linkcode startProxy}. */
export interface ProxyOptions {
  /** Host to forward to. @default "127.0.0.1" */
  targetHost?: string;
  /** Port to forward to. */
  targetPort: number;
}

/** A running proxy. */
export interface Proxy extends AsyncDisposable {
  /** Always `127.0.0.1`. */
  readonly hostname: string;
  /** Listening port; kept across `stop()`/`start()`. */
  readonly port: number;
  /** Open connections piped to the target. */
  readonly connections: number;
  /** Accepted connections not piped yet (delayed or blackholed). */
  readonly pending: number;
  /** Rewrite a `postgres://` URL's host and port to this proxy. */
  url(base: string): string;
  /** Refuse new connections (close the listener) and cut every open one. */
  stop(): Promise<void>;
  /** Listen again on the same port and leave blackhole mode. */
  start(): Promise<void>;
  /**
   * Go silent, like a network partition: accept new connections but never
   * answer them, and stop forwarding bytes on open ones (held, not lost).
   * `start()` resumes everything.
   */
  blackhole(): void;
  /** Wait `ms` before connecting each new connection to the target; 0 resets. */
  delay(ms: number): void;
  /** Cut every open connection (both sides) but keep accepting. */
  cutAll(): Promise<void>;
  /** Stop and release everything. Idempotent. */
  close(): Promise<void>;
}

const HOST = "127.0.0.1";

/**
 * Start a fault-injection proxy in front of `targetHost:targetPort`.
 *
 * @param options Where to forward.
 * @returns The proxy, already accepting.
 * @example Cut a pool's connections
 * ```ts
 * await using proxy = await startProxy({ targetPort: 5432 });
 * const url = proxy.url(Deno.env.get("DATABASE_URL")!);
 * // ... pool on url ...
 * await proxy.cutAll();
 * ```
 */
export async function startProxy(options: ProxyOptions): Promise<Proxy> {
  const proxy = new TcpProxy(options.targetHost ?? HOST, options.targetPort);
  await proxy.start();
  return proxy;
}

/** One accepted client connection and, once piped, its server side. */
class Link {
  server: Deno.Conn | undefined;
  closed = false;
  readonly #abort = new AbortController();
  done: Promise<void> = Promise.resolve();

  constructor(readonly client: Deno.Conn) {}

  get signal(): AbortSignal {
    return this.#abort.signal;
  }

  cut(): void {
    if (this.closed) return;
    this.closed = true;
    this.#abort.abort();
    for (const conn of [this.client, this.server]) {
      try {
        conn?.close();
      } catch {
        // Already closed by the other direction.
      }
    }
  }
}

class TcpProxy implements Proxy {
  readonly hostname: string = HOST;
  port = 0;
  #listener: Deno.Listener | undefined;
  #accepting: Promise<void> = Promise.resolve();
  #links = new Set<Link>();
  #piped = 0;
  #delayMs = 0;
  #silence: PromiseWithResolvers<void> | undefined;
  #closed = false;

  constructor(readonly targetHost: string, readonly targetPort: number) {}

  get connections(): number {
    return this.#piped;
  }

  get pending(): number {
    return this.#links.size - this.#piped;
  }

  url(base: string): string {
    const url = new URL(base);
    url.hostname = this.hostname;
    url.port = String(this.port);
    return url.toString();
  }

  start(): Promise<void> {
    if (this.#closed) return Promise.reject(new Error("Proxy is closed"));
    this.#resume();
    if (!this.#listener) {
      const listener = Deno.listen({ hostname: HOST, port: this.port });
      this.port = (listener.addr as Deno.NetAddr).port;
      this.#listener = listener;
      this.#accepting = this.#acceptLoop(listener);
    }
    return Promise.resolve();
  }

  async stop(): Promise<void> {
    const listener = this.#listener;
    this.#listener = undefined;
    if (listener) {
      listener.close();
      await this.#accepting;
    }
    await this.cutAll();
  }

  blackhole(): void {
    this.#silence ??= Promise.withResolvers<void>();
  }

  delay(ms: number): void {
    if (!(ms >= 0)) throw new RangeError(`delay must be >= 0: ${ms}`);
    this.#delayMs = ms;
  }

  async cutAll(): Promise<void> {
    const links = [...this.#links];
    for (const link of links) link.cut();
    await Promise.all(links.map((link) => link.done));
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    await this.stop();
    this.#closed = true;
    this.#resume();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #resume(): void {
    this.#silence?.resolve();
    this.#silence = undefined;
  }

  /** Resolves when not blackholed, or when the link is cut. */
  async #whenAudible(link: Link): Promise<void> {
    while (this.#silence && !link.closed) {
      await Promise.race([this.#silence.promise, aborted(link.signal)]);
    }
  }

  async #acceptLoop(listener: Deno.Listener): Promise<void> {
    while (true) {
      let conn: Deno.Conn;
      try {
        conn = await listener.accept();
      } catch {
        return; // listener closed by stop()
      }
      const link = new Link(conn);
      this.#links.add(link);
      link.done = this.#serve(link);
    }
  }

  async #serve(link: Link): Promise<void> {
    let piped = false;
    try {
      if (this.#delayMs > 0) await sleep(this.#delayMs, link.signal);
      await this.#whenAudible(link);
      if (link.closed) return;
      const server = await Deno.connect({
        hostname: this.targetHost,
        port: this.targetPort,
      });
      link.server = server;
      if (link.closed) {
        server.close(); // cut while connecting
        return;
      }
      this.#piped++;
      piped = true;
      // Either direction ending (EOF or error) ends the pair, like a real
      // connection reset; PostgreSQL does not use half-closed sockets.
      await Promise.all([
        this.#pump(link, link.client, server),
        this.#pump(link, server, link.client),
      ]);
    } catch {
      // Connect refused or socket error: the client just sees a closed socket.
    } finally {
      link.cut();
      if (piped) this.#piped--;
      this.#links.delete(link);
    }
  }

  async #pump(link: Link, from: Deno.Conn, to: Deno.Conn): Promise<void> {
    const buf = new Uint8Array(64 * 1024);
    try {
      while (!link.closed) {
        const n = await from.read(buf);
        if (n === null) return;
        await this.#whenAudible(link);
        let off = 0;
        while (off < n) off += await to.write(buf.subarray(off, n));
      }
    } catch {
      // The socket was cut (by us or the peer).
    } finally {
      // Cutting here also wakes the other direction's pending read, so
      // `#serve` (and close()) never waits on a dangling op.
      link.cut();
    }
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done);
  });
}

function aborted(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    signal.addEventListener("abort", () => resolve(), { once: true });
  });
}
