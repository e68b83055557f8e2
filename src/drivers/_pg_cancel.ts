/**
 * PostgreSQL's CancelRequest for a node-postgres client: a fresh socket (TLS
 * when the client uses TLS) to the same server carrying the backend's pid and
 * secret key. No authentication, so it costs one TCP (+TLS) handshake.
 *
 * @module
 */
// @ts-types="@types/pg"
import pg from "pg";

interface CancelTarget {
  processID: number | null;
  secretKey: number | null;
  host: string;
  port: number;
  ssl: unknown;
  sslNegotiation?: string;
}

/**
 * Sends a CancelRequest for the statement running on `client` and resolves
 * once the server has taken it (it closes the socket after signalling the
 * backend). Rejects when the request could not be delivered within `timeoutMs`.
 */
export function sendCancelRequest(client: pg.Client, timeoutMs: number): Promise<void> {
  const target = client as unknown as CancelTarget;
  if (target.processID === null || target.secretKey === null) {
    return Promise.reject(new Error("Cannot cancel: the connection has no backend key"));
  }
  const con = new pg.Connection({ ssl: target.ssl as pg.ClientConfig["ssl"] }) as unknown as {
    connect(port: number | string, host?: string): void;
    requestSsl(): void;
    cancel(pid: number, key: number): void;
    on(event: string, listener: (arg?: unknown) => void): void;
    once(event: string, listener: (arg?: unknown) => void): void;
    stream: { destroy(): void };
  };
  return new Promise<void>((resolve, reject) => {
    let sent = false;
    const timer = setTimeout(() => {
      con.stream.destroy();
      reject(new Error(`Cannot cancel: no answer from the server in ${timeoutMs} ms`));
    }, Math.max(1, timeoutMs));
    const send = () => {
      sent = true;
      con.cancel(target.processID!, target.secretKey!);
    };
    con.on("error", (error) => {
      clearTimeout(timer);
      con.stream.destroy();
      reject(error instanceof Error ? error : new Error(String(error)));
    });
    con.on("end", () => {
      clearTimeout(timer);
      if (sent) resolve();
      else reject(new Error("Cannot cancel: the server closed the connection first"));
    });
    if (target.ssl) {
      if (target.sslNegotiation !== "direct") con.once("connect", () => con.requestSsl());
      con.once("sslconnect", send);
    } else {
      con.once("connect", send);
    }
    if (target.host?.startsWith("/")) con.connect(`${target.host}/.s.PGSQL.${target.port}`);
    else con.connect(target.port, target.host);
  });
}
