/**
 * A leak warning shows where the connection was borrowed as readable lines,
 * one frame per line, the borrower's own frames before tidepool's, both in a
 * text sink (LogTape's formatter) and in a JSON one.
 */
import assert from "node:assert/strict";
import { getTextFormatter, type LogRecord } from "@logtape/logtape";
import type pg from "pg";
import { ConnectionPool, type PooledConnection } from "../../mod.ts";

type Conn = PooledConnection<pg.Client>;
import { createTestDatabase, waitFor } from "../_db.ts";
import { captureLogs } from "../_pool_helpers.ts";

const db = await createTestDatabase();

function borrowedByTheApp(pool: ConnectionPool): Promise<Conn> {
  return pool.getconn();
}

async function leakWarning(queued: boolean): Promise<{ text: string; json: string }> {
  await using logs = await captureLogs();
  await using pool = new ConnectionPool({
    conninfo: db.url,
    name: "leaky",
    minSize: 1,
    maxSize: 1,
    leakDetectionThreshold: 100,
  });
  let blocker: Conn | undefined;
  if (queued) blocker = await pool.getconn(); // the borrower below waits: its stack is captured when it asks
  const borrowing = borrowedByTheApp(pool);
  if (blocker !== undefined) await pool.putconn(blocker);
  const conn = await borrowing;
  let record: LogRecord | undefined;
  await waitFor(() => {
    record = logs.records.find((r) =>
      r.level === "warning" && r.message.join("").includes("leak") &&
      String(r.properties.stack).includes("borrowedByTheApp")
    );
    return record !== undefined;
  }, { timeout: 3_000 });
  await pool.putconn(conn);
  return { text: getTextFormatter()(record!), json: JSON.stringify(record!.properties) };
}

for (const queued of [false, true]) {
  Deno.test(`a leak warning prints the borrower's stack as lines, the caller's frames first${queued ? " (a request that waited)" : ""}`, async () => {
    const { text, json } = await leakWarning(queued);
    assert.doesNotMatch(text, /\\n/, "no escaped newlines");
    const frames = text.split("\n").map((line) => line.trim()).filter((line) => line.startsWith("at "));
    assert.ok(frames.length >= 2, text);
    assert.match(frames[0], /borrowedByTheApp/, `the first frame is the caller's:\n${text}`);
    const src = new URL("../../src/", import.meta.url).href;
    const firstOwn = frames.findIndex((f) => f.includes(src));
    const lastCaller = frames.findLastIndex((f) => !f.includes(src));
    assert.ok(firstOwn === -1 || firstOwn > lastCaller, `tidepool's frames come after the caller's:\n${text}`);
    assert.match(JSON.parse(json).stack, /\n {4}at borrowedByTheApp/, "JSON sinks get the same lines");
  });
}
