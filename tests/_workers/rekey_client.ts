/**
 * Worker of the "a reclaimed keyed request never shares its connection" test:
 * asks for key "a", blocks its event loop past the heartbeat bound (the owner
 * reclaims its leases), asks for "a" again and reports the backend it got;
 * then answers whether that lease still works.
 */
/// <reference lib="deno.worker" />
import { attachPool } from "../../mod.ts";

self.onmessage = async (e: MessageEvent<{ pool: MessagePort }>) => {
  const pool = await attachPool(e.data.pool);
  const first = pool.getconn("a").then(() => "ok", (error: Error) => error.name);
  await new Promise((r) => setTimeout(r, 20)); // the acquire is posted
  const until = performance.now() + 500;
  while (performance.now() < until) { /* a blocked event loop: the owner stops hearing the heartbeat */ }
  const conn = await pool.getconn("a");
  const pid = (await conn.query("select pg_backend_pid() as p")).rows[0].p;
  self.postMessage({ first: await first, pid });
  self.onmessage = async () => {
    const still = (await conn.query("select pg_backend_pid() as p")).rows[0].p;
    await pool.putconn(conn);
    self.postMessage({ still });
  };
};
