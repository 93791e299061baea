// A worker for engine-worker.test.ts: stands in for an engine with calls that block the thread.
import { serveEngineWorker, type WorkerCallContext } from "../engine-worker.ts";

class BadShapeError extends Error {
  override name = "BadShapeError";
}

/** Blocks the thread for `ms`, as one session.run does. */
function blockFor(ms: number): void {
  const until = Date.now() + ms;
  while (Date.now() < until) {}
}

serveEngineWorker(async (init) => {
  const { scale, failSetup } = init as { scale: number; failSetup?: boolean };
  if (failSetup) throw new BadShapeError("model directory has no config.json");
  return {
    scale: (args: { values: Float64Array }) => args.values.map((v) => v * scale),
    /** `steps` blocking steps of `stepMs` each, checking for cancellation between them. */
    steps: (args: { steps: number; stepMs: number }, ctx: WorkerCallContext) => {
      for (let i = 0; i < args.steps; i++) {
        ctx.throwIfCancelled();
        blockFor(args.stepMs);
      }
      return args.steps;
    },
    fail: () => {
      throw new BadShapeError("logits have 3 dims");
    },
    crash: () => process.exit(7),
  };
});
