import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { retry } from "./retry.ts";

class Flaky extends Error {}

describe("retry", () => {
  it("retries a retryable error and hands each attempt its number", async () => {
    const seen: number[] = [];
    const out = await retry({ retryable: (e) => e instanceof Flaky, backoffMs: 1 }, async (attempt) => {
      seen.push(attempt);
      if (attempt < 3) throw new Flaky("again");
      return "done";
    });
    assert.equal(out, "done");
    assert.deepEqual(seen, [0, 1, 2, 3]);
  });

  it("throws any other error at once", async () => {
    let calls = 0;
    await assert.rejects(
      retry({ retryable: (e) => e instanceof Flaky, backoffMs: 1 }, async () => {
        calls++;
        throw new TypeError("bad input");
      }),
      TypeError,
    );
    assert.equal(calls, 1);
  });

  it("stops after `attempts`, throwing what giveUp makes of the last error", async () => {
    let calls = 0;
    const retried: number[] = [];
    await assert.rejects(
      retry(
        {
          retryable: () => true,
          attempts: 3,
          backoffMs: 1,
          onRetry: (_e, n) => retried.push(n),
          giveUp: (e, n) => new Error(`gave up after ${n}: ${(e as Error).message}`),
        },
        async () => {
          calls++;
          throw new Flaky(`try ${calls}`);
        },
      ),
      /^Error: gave up after 3: try 3$/,
    );
    assert.equal(calls, 3);
    assert.deepEqual(retried, [0, 1]);
  });

  it("gives up rather than wait past untilMs", async () => {
    let calls = 0;
    const t0 = Date.now();
    await assert.rejects(
      retry({ retryable: () => true, backoffMs: 60_000, untilMs: Date.now() + 1000 }, async () => {
        calls++;
        throw new Flaky("down");
      }),
      Flaky,
    );
    assert.equal(calls, 1);
    assert.ok(Date.now() - t0 < 30_000, "did not sleep the 60 s backoff");
  });

  it("doubles the wait up to maxBackoffMs", async () => {
    const waits: number[] = [];
    let last = Date.now();
    await retry({ retryable: () => true, backoffMs: 20, maxBackoffMs: 80, attempts: 6 }, async (attempt) => {
      const now = Date.now();
      if (attempt > 0) waits.push(now - last);
      last = now;
      if (attempt < 5) throw new Flaky("x");
    }).catch(() => {});
    // 20, 40, 80, 80, 80: each at least its scheduled time (timers never fire early)
    assert.deepEqual(
      waits.map((w, i) => w >= [20, 40, 80, 80, 80][i] - 1),
      [true, true, true, true, true],
    );
  });

  it("an abort ends the wait with the signal's reason", async () => {
    const stop = new AbortController();
    setTimeout(() => stop.abort(new Error("stopped")), 20);
    await assert.rejects(
      retry({ retryable: () => true, backoffMs: 60_000, signal: stop.signal }, async (_a, signal) => {
        assert.equal(signal, stop.signal);
        throw new Flaky("down");
      }),
      /stopped/,
    );
  });
});
