import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { EngineWorker, EngineWorkerError, WorkerCancelledError } from "./engine-worker.ts";

const FIXTURE = new URL("./testing/engine-worker-fixture.ts", import.meta.url);
type Fixture = {
  scale(args: { values: Float64Array }): Float64Array;
  steps(args: { steps: number; stepMs: number }): number;
  fail(args: Record<string, never>): never;
  crash(args: Record<string, never>): never;
};

describe("EngineWorker", () => {
  it("runs calls in the worker and returns their results", async () => {
    const w = await EngineWorker.start<Fixture>(FIXTURE, { scale: 3 });
    try {
      assert.deepEqual(await w.call("scale", { values: Float64Array.of(1, 2) }), Float64Array.of(3, 6));
    } finally {
      await w.terminate();
    }
  });

  it("keeps the main thread responsive while the worker blocks", async () => {
    const w = await EngineWorker.start<Fixture>(FIXTURE, { scale: 1 });
    try {
      const started = Date.now();
      const call = w.call("steps", { steps: 10, stepMs: 100 });
      // A timer of the main thread fires on time although the worker is blocked for 1 s.
      const timerAt = await new Promise<number>((done) => setTimeout(() => done(Date.now() - started), 50));
      assert.ok(timerAt < 500, `main-thread timer fired after ${timerAt} ms`);
      assert.equal(await call, 10);
      assert.ok(Date.now() - started >= 1000);
    } finally {
      await w.terminate();
    }
  });

  it("cancels a running call within one step and frees the worker", async () => {
    const w = await EngineWorker.start<Fixture>(FIXTURE, { scale: 1 });
    try {
      const ac = new AbortController();
      const long = w.call("steps", { steps: 1000, stepMs: 20 }, { signal: ac.signal });
      setTimeout(() => ac.abort(), 100);
      const started = Date.now();
      await assert.rejects(long, WorkerCancelledError);
      assert.ok(Date.now() - started < 500, "cancellation took longer than a few steps");
      // The next call starts at once.
      const t0 = Date.now();
      assert.equal(await w.call("steps", { steps: 1, stepMs: 1 }), 1);
      assert.ok(Date.now() - t0 < 200);
    } finally {
      await w.terminate();
    }
  });

  it("rethrows worker errors with their class name", async () => {
    const w = await EngineWorker.start<Fixture>(FIXTURE, { scale: 1 });
    try {
      await assert.rejects(w.call("fail", {}), (err: unknown) => {
        assert.ok(err instanceof EngineWorkerError);
        assert.equal(err.name, "BadShapeError");
        assert.equal(err.message, "logits have 3 dims");
        return true;
      });
      // The worker survives a failed call.
      assert.deepEqual(await w.call("scale", { values: Float64Array.of(2) }), Float64Array.of(2));
    } finally {
      await w.terminate();
    }
  });

  it("fails start when setup throws, naming the error", async () => {
    await assert.rejects(
      EngineWorker.start<Fixture>(FIXTURE, { scale: 1, failSetup: true }),
      (err: unknown) => {
        assert.equal((err as Error).name, "BadShapeError");
        assert.match((err as Error).message, /no config\.json/);
        return true;
      },
    );
  });

  it("rejects pending calls and reports when the worker dies", async () => {
    let exitCode = -1;
    const w = await EngineWorker.start<Fixture>(
      FIXTURE,
      { scale: 1 },
      { onExit: (code) => (exitCode = code) },
    );
    await assert.rejects(w.call("crash", {}), /exited with code 7/);
    assert.equal(exitCode, 7);
    assert.equal(w.alive, false);
    await assert.rejects(w.call("scale", { values: Float64Array.of(1) }), /exited/);
  });
});
