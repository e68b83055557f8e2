/**
 * Unit tests of `Jobs` (src/pool/_jobs.ts), the background job runner: at
 * most `limit` jobs at once, in order, and a throwing job goes to `onError`
 * while the loop goes on.
 */
import assert from "node:assert/strict";
import { Jobs } from "../../src/pool/_jobs.ts";

/** A job that records its start and end and runs until `finish()`. */
interface GatedJob {
  readonly run: () => Promise<void>;
  finish(error?: Error): void;
}

/** Jobs whose running count (now and at most) is watched. */
function watchedJobs(log: string[]) {
  let running = 0;
  let most = 0;
  const job = (name: string): GatedJob => {
    const { promise, resolve, reject } = Promise.withResolvers<void>();
    return {
      run: async () => {
        running++;
        most = Math.max(most, running);
        log.push(`start ${name}`);
        try {
          await promise;
        } finally {
          running--;
          log.push(`end ${name}`);
        }
      },
      finish: (error) => error === undefined ? resolve() : reject(error),
    };
  };
  return {
    job,
    get running() {
      return running;
    },
    get most() {
      return most;
    },
  };
}

/** Lets queued microtasks and the job loops' continuations run. */
const settle = () => new Promise((resolve) => setTimeout(resolve, 0));

Deno.test("Jobs: runs at most `limit` jobs at once and starts the next as one ends", async () => {
  const log: string[] = [];
  const watched = watchedJobs(log);
  const errors: unknown[] = [];
  const jobs = new Jobs(2, (error) => errors.push(error));
  const gated = ["a", "b", "c", "d", "e"].map(watched.job);
  for (const g of gated) jobs.run(g.run);
  await settle();
  assert.deepEqual(log, ["start a", "start b"], "two of five start");
  gated[1].finish();
  await settle();
  assert.deepEqual(log.slice(2), ["end b", "start c"], "the next in order takes the free loop");
  for (const g of gated) g.finish();
  await settle();
  assert.equal(watched.running, 0);
  assert.equal(watched.most, 2);
  assert.deepEqual(log.filter((l) => l.startsWith("start")), ["start a", "start b", "start c", "start d", "start e"]);
  assert.deepEqual(errors, []);
});

Deno.test("Jobs: with limit 1 jobs run one after another in the order queued", async () => {
  const order: number[] = [];
  const jobs = new Jobs(1, () => {});
  const done = Promise.withResolvers<void>();
  for (let i = 0; i < 10; i++) {
    jobs.run(async () => {
      order.push(i);
      await settle();
      order.push(i);
      if (i === 9) done.resolve();
    });
  }
  await done.promise;
  assert.deepEqual(order, [0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9]);
});

Deno.test("Jobs: a job that throws goes to onError and the loop runs the next job", async () => {
  const errors: unknown[] = [];
  const jobs = new Jobs(1, (error) => errors.push(error));
  const ran: string[] = [];
  const boom = new Error("connect failed");
  const done = Promise.withResolvers<void>();
  jobs.run(() => Promise.reject(boom));
  jobs.run(() => { // a job that throws before it returns a promise
    throw new Error("sync throw");
  });
  jobs.run(async () => {
    ran.push("after");
    await Promise.resolve();
    done.resolve();
  });
  await done.promise;
  assert.deepEqual(ran, ["after"]);
  assert.equal(errors.length, 2);
  assert.equal(errors[0], boom);
  assert.equal((errors[1] as Error).message, "sync throw");
});

Deno.test("Jobs: a loop that ran dry frees its slot, so later jobs start again up to the limit", async () => {
  const log: string[] = [];
  const watched = watchedJobs(log);
  const jobs = new Jobs(2, () => {});
  const first = ["a", "b"].map(watched.job);
  for (const g of first) jobs.run(g.run);
  for (const g of first) g.finish(new Error("failed")); // failing ends free the slots too
  await settle();
  assert.equal(watched.running, 0);
  const second = ["c", "d", "e"].map(watched.job);
  for (const g of second) jobs.run(g.run);
  await settle();
  assert.equal(watched.running, 2, "two loops again, not zero (leaked slots) nor three");
  for (const g of second) g.finish();
  await settle();
  assert.equal(watched.running, 0);
  assert.equal(watched.most, 2);
});

Deno.test("Jobs: a job queued by a running job runs on the same loops, within the limit", async () => {
  const jobs = new Jobs(1, () => {});
  const order: string[] = [];
  const done = Promise.withResolvers<void>();
  jobs.run(async () => {
    order.push("retry queued");
    jobs.run(async () => {
      order.push("retry");
      await Promise.resolve();
      done.resolve();
    });
    await settle();
    order.push("first done");
  });
  await done.promise;
  assert.deepEqual(order, ["retry queued", "first done", "retry"]);
});
