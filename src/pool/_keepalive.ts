import type { Timers } from "../_util/_timers.ts";

/**
 * Keepalive (HikariCP's keepaliveTime): every `interval` ms the idle
 * connections are probed one at a time, so a connection a firewall or NAT
 * silently dropped (no FIN ever arrives) is found and replaced before a
 * borrower gets it. `probe` takes the connection out of the idle queue while
 * it works, so a probed connection is never lent; a sweep still running when
 * the next one is due lets it pass.
 */
export function startKeepalive<E>(
  timers: Timers,
  interval: number,
  idle: () => E[],
  probe: (entry: E) => Promise<void>,
): void {
  let running = false;
  timers.every(interval, () => {
    if (running) return;
    running = true;
    void (async () => {
      try {
        for (const entry of idle()) await probe(entry);
      } finally {
        running = false;
      }
    })();
  });
}
