/**
 * No input crashes the process: bad ports and hosts on
 * every pool class give a TypeError/RangeError at construction or a typed
 * error per attempt, and the process is still alive well past
 * `connectTimeout`. The scenario runs in a child `deno run`, since an uncaught
 * exception would take the test runner down with it.
 */
import assert from "node:assert/strict";
import { runChild } from "../_child.ts";

Deno.test("bad ports and hosts on every pool class: errors at construction or per attempt, and the process survives past connectTimeout", async () => {
  const { code, stdout, stderr } = await runChild("bad_conninfo.ts");
  assert.equal(code, 0, `the child process died:\n${stderr}\n${stdout}`);
  const results: Record<string, string> = JSON.parse(stdout.trim().split("\n").at(-1)!);

  const classes = [
    "ConnectionPool",
    "NullConnectionPool",
    "SimpleConnectionPool",
    "ThreadedConnectionPool",
    "PersistentConnectionPool",
  ];
  const invalid: [string, RegExp][] = [
    ["port 70000", /^RangeError: Invalid conninfo: 'port' must be an integer from 1 to 65535/],
    ["port -1", /^RangeError: Invalid conninfo: 'port'/],
    ["port 'abc'", /^RangeError: Invalid conninfo: 'port'/],
    ["port 1.5", /^RangeError: Invalid conninfo: 'port'/],
    ["port object", /^TypeError: Invalid conninfo: 'port' must be a number/],
    ["URL ?port=abc", /^RangeError: Invalid conninfo: 'port'/],
    ["URL :70000", /^RangeError: Invalid conninfo: 'port'/],
    ["key=value port=-1", /^RangeError: Invalid conninfo: 'port'/],
    ["host with NUL", /^TypeError: Invalid conninfo: 'host' contains a NUL character/],
    ["host not a string", /^TypeError: Invalid conninfo: 'host' must be a string/],
  ];
  for (const [what, expected] of invalid) {
    for (const name of classes) assert.match(results[`${name} ${what}`], expected, `${name} ${what}`);
  }
  for (
    const what of [
      "empty host, closed port",
      "host with a space",
      "IPv4 out of range",
      "missing socket directory",
      "300-character host",
    ]
  ) {
    // A host that cannot resolve fails fast (PoolConnectError); the others time out: both carry the cause's text.
    assert.match(
      results[`ConnectionPool ${what}`],
      /^(PoolTimeoutError: .*last connection error: |PoolConnectError: .*cannot connect, and waiting will not fix it: )/,
      what,
    );
    assert.match(results[`SimpleConnectionPool ${what}`], /^Error: /, what);
  }
  assert.match(results["connectClient port 70000"], /^RangeError: .*70000/);
  assert.match(results["connectClient NUL host"], /Error: /);
});
