/**
 * src/query/transaction.ts on a host without deadlines (a Worker's attached pool):
 * `transaction()`'s `timeout`/`signal` bound only the waits for a connection,
 * one deadline across retries, and nothing is allocated or cancelled when no
 * deadline is given. A stub host: this is the helpers' own logic, no server.
 */
import assert from "node:assert/strict";
import type { ConnectionStatus } from "../../src/driver.ts";
import { transaction, type TransactionHost } from "../../src/query/transaction.ts";

function stubHost() {
  const waits: unknown[] = [];
  const statements: string[] = [];
  let status: ConnectionStatus = "idle";
  const host: TransactionHost<object> = {
    getconn: (options) => {
      waits.push(options);
      return Promise.resolve({});
    },
    putconn: () => Promise.resolve(),
    status: () => status,
    query: (_conn, text) => {
      statements.push(text);
      status = text === "BEGIN" ? "intrans" : "idle";
      return Promise.resolve({ command: text });
    },
    finishTimeout: 0,
    leaseOf: () => 1,
    holds: () => true,
    leaseEnded: () => new Error("lease ended"),
  };
  return { host, waits, statements };
}

Deno.test("host without deadlines: transaction({ timeout, signal }) passes what is left of the deadline to the wait and commits", async () => {
  const { host, waits, statements } = stubHost();
  const signal = new AbortController().signal;
  const result = await transaction(host, () => "done", { timeout: 5_000, signal });
  assert.equal(result, "done");
  assert.deepEqual(statements, ["BEGIN", "COMMIT"]);
  assert.equal(waits.length, 1);
  const wait = waits[0] as { timeout: number; signal: AbortSignal };
  assert.ok(wait.timeout > 0 && wait.timeout <= 5_000, `wait timeout ${wait.timeout}`);
  assert.equal(wait.signal, signal);
});

Deno.test("host without deadlines: transaction() without timeout or signal waits with no options, as before", async () => {
  const { host, waits } = stubHost();
  await transaction(host, () => 1, { retries: 0 });
  assert.deepEqual(waits, [undefined]);
});

Deno.test("host without deadlines: an invalid timeout is still a RangeError naming it", async () => {
  const { host, waits } = stubHost();
  await assert.rejects(
    transaction(host, () => 1, { timeout: -1 }),
    (e) => e instanceof RangeError && /'timeout'/.test(e.message),
  );
  assert.equal(waits.length, 0, "no connection was asked for");
});
