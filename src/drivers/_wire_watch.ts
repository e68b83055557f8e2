/**
 * Watches the PostgreSQL wire protocol on a socket that another client library
 * reads and writes (deno-postgres), to learn what that library does not tell:
 * the transaction status of each ReadyForQuery, whether a statement is still
 * in flight, and whether the server ended the session. It only looks at the
 * bytes the library itself reads and writes; it never reads the socket.
 *
 * @module
 */

const READY_FOR_QUERY = 0x5a; // 'Z'
const ERROR_RESPONSE = 0x45; // 'E'
const QUERY = 0x51; // 'Q': simple query, one ReadyForQuery
const PARSE = 0x50; // 'P': starts an extended-protocol round, one ReadyForQuery at its Sync
const SSL_REQUEST = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f];
/**
 * Session-ending SQLSTATEs (admin/crash shutdown, cannot connect now, idle and idle-in-transaction timeouts), for servers
 * whose severity text is localized. Shared with the pg driver: dependency-free, so deno-postgres never loads pg.
 */
export const SESSION_ENDING: ReadonlySet<string> = new Set(["57P01", "57P02", "57P03", "57P05", "25P03"]);

/** What the watcher saw on one connection (plain socket, then its TLS stream). */
export class WireState {
  /** The status byte of the last ReadyForQuery: `I`, `T` or `E`; undefined before startup finished. */
  status: "I" | "T" | "E" | undefined = undefined;
  /** Rounds sent (Query, or Parse ... Sync) whose ReadyForQuery has not arrived yet. */
  pending = 0;
  /** Query calls made on the client and not settled yet (they write after awaits, so `pending` lags). */
  calls = 0;
  /** The socket was closed or reached end of stream. */
  closed = false;
  /** The server sent a FATAL/PANIC error or a session-ending SQLSTATE: the session is over. */
  doomed = false;
  /** The socket the library uses now, for closing it on abort or a hung `end()`. */
  conn: Deno.Conn | undefined = undefined;
  /** Called once when the session is seen to end (close, end of stream, FATAL). */
  onLost: ((error: Error | undefined) => void) | undefined = undefined;

  #header = new Uint8Array(5);
  #headerLength = 0;
  #bodyLeft = 0;
  #type = 0;
  #error: number[] | undefined = undefined;
  #sslAnswerNext = false;
  #lostFired = false;

  /** Bytes the library wrote: one protocol message per write (deno-postgres writes them so). */
  sent(chunk: Uint8Array): void {
    if (chunk.length === 8 && SSL_REQUEST.every((b, i) => chunk[i] === b)) {
      // The server answers an SSLRequest with one untyped byte.
      this.#sslAnswerNext = true;
      return;
    }
    if (this.status !== undefined && (chunk[0] === QUERY || chunk[0] === PARSE)) this.pending++;
  }

  /** Bytes the library read. */
  received(bytes: Uint8Array): void {
    let i = 0;
    if (this.#sslAnswerNext && bytes.length > 0) {
      this.#sslAnswerNext = false;
      i = 1;
    }
    while (i < bytes.length) {
      if (this.#headerLength < 5) {
        this.#header[this.#headerLength++] = bytes[i++];
        if (this.#headerLength === 5) this.#startBody();
        continue;
      }
      const take = Math.min(this.#bodyLeft, bytes.length - i);
      if (this.#type === READY_FOR_QUERY && take > 0) this.#ready(bytes[i]);
      if (this.#error !== undefined) { for (let k = 0; k < take; k++) this.#error.push(bytes[i + k]); }
      i += take;
      this.#bodyLeft -= take;
      if (this.#bodyLeft === 0) this.#endMessage();
    }
  }

  /** The socket ended (closed by the library, or end of stream). */
  lost(error?: Error): void {
    this.closed = true;
    this.#fireLost(error);
  }

  #startBody(): void {
    this.#type = this.#header[0];
    this.#bodyLeft = new DataView(this.#header.buffer).getUint32(1) - 4;
    // Error bodies are short; other messages are only skipped.
    this.#error = this.#type === ERROR_RESPONSE ? [] : undefined;
    if (this.#bodyLeft <= 0) this.#endMessage();
  }

  #endMessage(): void {
    if (this.#error !== undefined) this.#checkError(this.#error);
    this.#error = undefined;
    this.#headerLength = 0;
    this.#bodyLeft = 0;
  }

  #ready(status: number): void {
    const s = String.fromCharCode(status);
    if (s !== "I" && s !== "T" && s !== "E") return;
    // The first ReadyForQuery ends the startup; later ones end a round each.
    if (this.status !== undefined && this.pending > 0) this.pending--;
    this.status = s;
  }

  #checkError(body: number[]): void {
    let severity = "";
    let code = "";
    let i = 0;
    while (i < body.length && body[i] !== 0) {
      const field = body[i++];
      let end = i;
      while (end < body.length && body[end] !== 0) end++;
      const value = String.fromCharCode(...body.slice(i, end));
      if (field === 0x56 /* V: severity, never localized */ || (field === 0x53 /* S */ && severity === "")) {
        severity = value;
      } else if (field === 0x43 /* C */) code = value;
      i = end + 1;
    }
    if (severity === "FATAL" || severity === "PANIC" || SESSION_ENDING.has(code)) {
      this.doomed = true;
      this.#fireLost(new Error(`The server ended the session (SQLSTATE ${code || "unknown"})`));
    }
  }

  #fireLost(error: Error | undefined): void {
    if (this.#lostFired) return;
    this.#lostFired = true;
    this.onLost?.(error);
  }
}

/**
 * Makes `state` see what the library reads from and writes to `conn`, and
 * when it closes it. Patches the one connection object only.
 */
export function watchConn(conn: Deno.Conn, state: WireState): void {
  state.conn = conn;
  const read = conn.read.bind(conn);
  const close = conn.close.bind(conn);
  const writable = conn.writable;
  Object.defineProperties(conn, {
    read: {
      configurable: true,
      value: async (p: Uint8Array): Promise<number | null> => {
        let n: number | null;
        try {
          n = await read(p);
        } catch (error) {
          state.lost(error instanceof Error ? error : undefined);
          throw error;
        }
        if (n === null) state.lost();
        else state.received(p.subarray(0, n));
        return n;
      },
    },
    close: {
      configurable: true,
      value: (): void => {
        state.lost();
        close();
      },
    },
    // deno-postgres takes one writer and writes one message per write().
    writable: {
      configurable: true,
      value: {
        getWriter(): WritableStreamDefaultWriter<Uint8Array> {
          const writer = writable.getWriter();
          const write = writer.write.bind(writer);
          Object.defineProperty(writer, "write", {
            configurable: true,
            value: (chunk: Uint8Array): Promise<void> => {
              state.sent(chunk);
              return write(chunk);
            },
          });
          return writer;
        },
      },
    },
  });
}
