/**
 * Unit tests of src/core/_entry.ts: a connection tied to its entry, leases
 * (holdsLease, leaseOf) and the `await using` return bound to the lease it
 * was read on, so a stale one is refused.
 */
import assert from "node:assert/strict";
import { attachEntry, ENTRY, Entry, entryOf, holdsLease, leaseOf, returnedInScope } from "../../src/core/_entry.ts";
import { PoolError } from "../../src/errors.ts";

/** An entry for a fresh connection, attached, whose owner records what is returned to it. */
function attached(conn: object = { id: 1 }) {
  const returned: object[] = [];
  const entry = new Entry(conn, {
    putconn: (c: object) => {
      returned.push(c);
      return Promise.resolve();
    },
  }, Infinity);
  attachEntry(entry);
  return { entry, conn, returned };
}

/** The disposer `await using` would read from the connection now. */
function disposerOf(conn: object): () => Promise<void> {
  return (conn as { [Symbol.asyncDispose](): Promise<void> })[Symbol.asyncDispose];
}

/** What the pool does when it lends an entry. */
function lend(entry: Entry<object>): void {
  entry.moveTo("in_use");
  entry.lease++;
}

Deno.test("Entry: a new entry is reserved, on lease 0, not lost", () => {
  const entry = new Entry({}, { putconn: () => Promise.resolve() }, 123);
  assert.equal(entry.state, "reserved");
  assert.equal(entry.lease, 0);
  assert.equal(entry.lost, false);
  assert.equal(entry.expiresAt, 123);
});

Deno.test("attachEntry: entryOf() finds the entry on the connection, hidden from its own keys", () => {
  const { entry, conn } = attached({ id: 7 });
  assert.equal(entryOf(conn), entry);
  assert.deepEqual(Object.keys(conn), ["id"]);
  assert.equal(JSON.stringify(conn), '{"id":7}');
  assert.equal(Object.getOwnPropertyDescriptor(conn, ENTRY)?.enumerable, false);
});

Deno.test("entryOf: undefined for a connection no pool made, and for values that cannot hold one", () => {
  for (const value of [{}, null, undefined, 1, "conn", true]) assert.equal(entryOf(value), undefined, String(value));
});

Deno.test("entryOf: a connection that is a function (postgres.js's sql) holds its entry too", () => {
  const sql = Object.assign(() => {}, { tag: "sql" });
  const { entry } = attached(sql);
  assert.equal(entryOf(sql), entry);
});

Deno.test("leaseOf: the current lease of a lent connection, 0 for one no pool made", () => {
  const { entry, conn } = attached();
  assert.equal(leaseOf({}), 0);
  assert.equal(leaseOf(conn), 0);
  lend(entry);
  assert.equal(leaseOf(conn), 1);
  entry.moveTo("reserved"); // returned
  lend(entry);
  assert.equal(leaseOf(conn), 2);
});

Deno.test("holdsLease: true only while the connection is lent on that lease", () => {
  const { entry, conn } = attached();
  lend(entry);
  const lease = leaseOf(conn);
  assert.equal(holdsLease(conn, lease), true);
  assert.equal(holdsLease(conn, lease + 1), false, "another lease");
  entry.moveTo("idle"); // returned
  assert.equal(holdsLease(conn, lease), false, "returned, not lent again yet");
  lend(entry);
  assert.equal(holdsLease(conn, lease), false, "lent again: the lease belongs to the new borrower");
  assert.equal(holdsLease(conn, leaseOf(conn)), true);
  entry.moveTo("closed");
  assert.equal(holdsLease(conn, leaseOf(conn)), false);
  assert.equal(holdsLease({}, 0), false, "a connection no pool made holds no lease");
});

Deno.test("attachEntry: await using returns the connection to its owner, once", async () => {
  const { entry, conn, returned } = attached();
  lend(entry);
  {
    await using _c = conn as object & AsyncDisposable;
  }
  assert.deepEqual(returned, [conn]);
});

Deno.test("attachEntry: a return bound to a lease that ended is refused and returns nothing", async () => {
  const { entry, conn, returned } = attached();
  lend(entry);
  const staleReturn = disposerOf(conn); // read on lease 1, as `await using` does
  entry.moveTo("idle"); // returned some other way, then lent to another borrower
  lend(entry);
  await assert.rejects(
    staleReturn(),
    (error) => error instanceof PoolError && /lease already ended/.test(error.message),
  );
  assert.deepEqual(returned, [], "the new borrower's connection is not taken from it");
  await disposerOf(conn)(); // the current lease's return goes through
  assert.deepEqual(returned, [conn]);
});

Deno.test("attachEntry: the pool's disposer replaces a driver's own (which would close the connection)", async () => {
  let closed = false;
  const driverConn = {
    [Symbol.asyncDispose]: () => {
      closed = true;
      return Promise.resolve();
    },
  };
  const { entry, conn, returned } = attached(driverConn);
  lend(entry);
  await disposerOf(conn)();
  assert.equal(closed, false);
  assert.deepEqual(returned, [conn]);
});

Deno.test("attachEntry: attaching again (a connection adopted anew) moves it to the new entry", () => {
  const { conn } = attached();
  const second = new Entry(conn, { putconn: () => Promise.resolve() }, Infinity);
  attachEntry(second);
  assert.equal(entryOf(conn), second);
});

Deno.test("returnedInScope: a PoolError naming the helper whose callback returned the connection", () => {
  const error = returnedInScope("withConnection");
  assert.ok(error instanceof PoolError);
  assert.match(error.message, /^withConnection: the callback returned the connection itself/);
});
