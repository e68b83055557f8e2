/**
 * TLS: `sslmode=verify-full` against a certificate for another host fails
 * with a clear error and never falls back to plaintext. This file boots its
 * own embedded server with a self-signed certificate for `wrong.example`.
 */
import assert from "node:assert/strict";
import pg from "pg";
import { ConnectionPool, PoolConnectError, PoolTimeoutError } from "../../mod.ts";
import { startEmbedded } from "../../tools/_embedded.ts";
import { FAST_BACKOFF } from "../_faults.ts";

async function hasOpenssl(): Promise<boolean> {
  try {
    return (await new Deno.Command("openssl", { args: ["version"], stdout: "null", stderr: "null" }).output()).success;
  } catch {
    return false;
  }
}

/** A self-signed certificate and key for a host name that is not ours. */
async function certificateFor(host: string): Promise<{ cert: string; key: string; certFile: string; dir: string }> {
  const dir = await Deno.makeTempDir({ prefix: "tidepool-tls-" });
  const out = await new Deno.Command("openssl", {
    args: [
      ...["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2"],
      ...["-subj", `/CN=${host}`, "-addext", `subjectAltName=DNS:${host}`],
      ...["-keyout", `${dir}/server.key`, "-out", `${dir}/server.crt`],
    ],
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).output();
  assert.ok(out.success, new TextDecoder().decode(out.stderr));
  return {
    cert: await Deno.readTextFile(`${dir}/server.crt`),
    key: await Deno.readTextFile(`${dir}/server.key`),
    certFile: `${dir}/server.crt`,
    dir,
  };
}

const authorized = (logs: string[]) => logs.filter((l) => l.includes("connection authorized"));

Deno.test({
  name: "sslmode=verify-full against a certificate for another host fails clearly and never falls back to plaintext",
  ignore: !(await hasOpenssl()),
  async fn() {
    const tls = await certificateFor("wrong.example");
    try {
      await using server = await startEmbedded({
        ssl: { cert: tls.cert, key: tls.key },
        settings: { log_connections: "on" },
      });
      for (
        const [what, params, expected] of [
          ["trusted CA, wrong host name", `sslmode=verify-full&sslrootcert=${tls.certFile}`, /altnames|hostname/i],
          ["untrusted self-signed certificate", "sslmode=verify-full", /self[- ]signed/i],
        ] as const
      ) {
        const conninfo = new URL(server.url);
        conninfo.search = params;
        const pool = new ConnectionPool({
          conninfo: conninfo.toString(),
          minSize: 1,
          timeout: 500,
          backoff: FAST_BACKOFF,
        });
        try {
          const error = await pool.open({ wait: true, timeout: 500 }).then(() => undefined, (e) => e);
          assert.ok(error instanceof PoolTimeoutError, `${what}: ${error}`);
          assert.match(String((error.cause as Error)?.message), expected, what);
          // Waiting will not fix a certificate: a request fails fast instead of waiting out its timeout.
          const refused = await pool.getconn({ timeout: 10_000 }).then(() => undefined, (e) => e);
          assert.ok(refused instanceof PoolConnectError, `${what}: ${refused}`);
          assert.match(refused.message, expected, what);
          assert.equal(pool.getStats().connectionsNum, 0, what);
          assert.ok(pool.getStats().connectionsErrors >= 1, what);
        } finally {
          await pool.close();
        }
      }
      assert.deepEqual(authorized(server.logs()), [], "no session, plaintext or TLS, was ever authorized");

      // Control: the same server does accept TLS when the name check is waived,
      // so the absence of "connection authorized" above means something.
      const client = new pg.Client({
        connectionString: server.url,
        ssl: { ca: tls.cert, checkServerIdentity: () => undefined },
      });
      client.on("error", () => {});
      await client.connect();
      await client.end();
      const lines = authorized(server.logs());
      assert.equal(lines.length, 1);
      assert.match(lines[0], /SSL enabled/);
    } finally {
      await Deno.remove(tls.dir, { recursive: true });
    }
  },
});
