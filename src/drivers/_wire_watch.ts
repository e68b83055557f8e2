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
const NOTIFICATION = 0x41; // 'A': NotificationResponse, which deno-postgres cannot read
/** Bytes asked of the socket per read (deno-postgres's own reader asks for 4 KiB at most). */
const READ_SIZE = 16_384;
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
  /** The message being read is a NotificationResponse: its bytes are not passed on. */
  #dropping = false;
  /** Starts reading ahead on the socket the library uses now (set by {@linkcode watchConn}). */
  readAhead: (() => void) | undefined = undefined;

  /** Bytes the library wrote: one protocol message per write (deno-postgres writes them so). */
  sent(chunk: Uint8Array): void {
    if (chunk.length === 8 && SSL_REQUEST.every((b, i) => chunk[i] === b)) {
      // The server answers an SSLRequest with one untyped byte.
      this.#sslAnswerNext = true;
      return;
    }
    if (this.status !== undefined && (chunk[0] === QUERY || chunk[0] === PARSE)) this.pending++;
  }

  /**
   * Bytes read from the server. Returns what the library may see: the same
   * bytes without NotificationResponse messages. deno-postgres fails a query
   * that meets one ("Unexpected simple query message: A") and then the next
   * borrower of a session that ran LISTEN, so they are dropped here (pg would
   * emit them as events nobody in a pool listens to). A message header split
   * across reads is held back until its type is known.
   */
  received(bytes: Uint8Array): Uint8Array {
    let i = 0;
    if (this.#sslAnswerNext && bytes.length > 0) {
      this.#sslAnswerNext = false;
      i = 1;
    }
    // Pieces to pass on, and `from`: where the run of bytes kept since the last piece starts.
    let parts: Uint8Array[] | undefined;
    let from = 0;
    // Where the header being read began: in this read, or "carried" over from the previous one (held back).
    let headerAt: number | "carried" | undefined = this.#headerLength > 0 && this.#headerLength < 5
      ? "carried"
      : undefined;
    while (i < bytes.length) {
      if (this.#headerLength < 5) {
        if (this.#headerLength === 0) headerAt = i;
        this.#header[this.#headerLength++] = bytes[i++];
        if (this.#headerLength < 5) continue;
        this.#startBody();
        if (this.#type === NOTIFICATION) {
          if (headerAt !== "carried" && headerAt! > from) (parts ??= []).push(bytes.subarray(from, headerAt));
          parts ??= [];
          this.#dropping = this.#bodyLeft > 0;
          from = i;
        } else if (headerAt === "carried") {
          (parts ??= []).push(this.#header.slice(0, 5));
          from = i;
        }
        headerAt = undefined;
        continue;
      }
      const take = Math.min(this.#bodyLeft, bytes.length - i);
      if (this.#type === READY_FOR_QUERY && take > 0) this.#ready(bytes[i]);
      if (this.#error !== undefined) { for (let k = 0; k < take; k++) this.#error.push(bytes[i + k]); }
      i += take;
      this.#bodyLeft -= take;
      if (this.#dropping) from = i;
      if (this.#bodyLeft === 0) this.#endMessage();
    }
    // A header still incomplete is held back (its bytes are kept in #header) until its type is known.
    const end = headerAt === undefined ? bytes.length : headerAt === "carried" ? from : headerAt;
    if (parts === undefined && from === 0 && end === bytes.length) return bytes;
    if (end > from) (parts ??= []).push(bytes.subarray(from, end));
    return concat(parts ?? []);
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
    this.#dropping = false;
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
  // One socket read at a time, into the watcher's own buffer: the library's reads take from `ready`.
  // With read-ahead on, a read stays pending while the library reads nothing (the session is idle), so
  // the server ending an idle session is seen at once, as pg's always-on reader sees it.
  let ready: Uint8Array | undefined;
  let ended: { error?: unknown } | undefined;
  let pulling: Promise<void> | undefined;
  let ahead = false;
  // Reused: a read starts only once the library has taken every byte of the previous one.
  let buffer: Uint8Array | undefined;
  const pull = (): Promise<void> =>
    pulling ??= (async () => {
      buffer ??= new Uint8Array(READ_SIZE);
      try {
        const n = await read(buffer);
        if (n === null) {
          ended = {};
          state.lost();
        } else {
          const bytes = state.received(buffer.subarray(0, n));
          if (bytes.length > 0) ready = bytes;
        }
      } catch (error) {
        ended = { error };
        state.lost(error instanceof Error ? error : undefined);
      } finally {
        pulling = undefined;
      }
      if (ahead && ready === undefined && ended === undefined) void pull();
    })();
  state.readAhead = () => {
    if (state.conn !== conn || ahead) return;
    ahead = true;
    if (ready === undefined && ended === undefined) void pull();
  };
  Object.defineProperties(conn, {
    read: {
      configurable: true,
      value: async (p: Uint8Array): Promise<number | null> => {
        while (ready === undefined) {
          if (ended !== undefined) {
            if ("error" in ended) throw ended.error;
            return null;
          }
          await pull();
        }
        const n = Math.min(p.length, ready.length);
        p.set(ready.subarray(0, n));
        ready = n < ready.length ? ready.subarray(n) : undefined;
        if (ready === undefined && ahead && ended === undefined) void pull();
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

function concat(parts: Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
