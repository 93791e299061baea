// The main thread's handle on the reference model: an EngineWorker running reference-worker.ts.
// Calls queue in the worker one at a time; a call whose caller went away is cancelled between engine
// runs; a worker that died (crash, out of memory) fails its calls with UNAVAILABLE and is started
// again on the next call.
import {
  EngineWorker,
  EngineWorkerError,
  GrpcError,
  type Logger,
  Status,
  WorkerCancelledError,
} from "@temper/kit";
import type { ReferenceHandlers, ReferenceInit, ReferenceModelInfo, ReferenceSequence } from "./reference.ts";

const ENTRY = new URL("./reference-worker.ts", import.meta.url);

/** What the service needs from a reference model (a real one, or a stand-in). */
export interface ReferenceScorer {
  readonly info: ReferenceModelInfo;
  /** Completion log-probabilities per sequence (see ReferenceHandlers.score); rejects with a GrpcError. */
  score(sequences: ReferenceSequence[], signal?: AbortSignal): Promise<Float64Array[]>;
  close(): Promise<void>;
}

export class ReferenceModel implements ReferenceScorer {
  private closed = false;

  private constructor(
    private readonly init: ReferenceInit,
    private readonly logger: Logger,
    private worker: Promise<EngineWorker<ReferenceHandlers>>,
    readonly info: ReferenceModelInfo,
  ) {}

  /** Starts the worker and loads the model; rejects with the worker's setup error. */
  static async start(init: ReferenceInit, logger: Logger): Promise<ReferenceModel> {
    const worker = await ReferenceModel.spawn(init, logger);
    const info = await worker.call("info", {});
    return new ReferenceModel(init, logger, Promise.resolve(worker), info);
  }

  private static spawn(init: ReferenceInit, logger: Logger): Promise<EngineWorker<ReferenceHandlers>> {
    return EngineWorker.start<ReferenceHandlers>(ENTRY, init, {
      name: "reference-model",
      onExit: (code, err) =>
        logger.error(
          { code, err: err?.message },
          "reference model worker exited; it restarts on the next call",
        ),
    });
  }

  private async current(): Promise<EngineWorker<ReferenceHandlers>> {
    const worker = await this.worker;
    if (worker.alive || this.closed) return worker;
    this.logger.warn("restarting the reference model worker");
    const next = ReferenceModel.spawn(this.init, this.logger);
    this.worker = next;
    // a failed restart is retried by the next call
    next.catch(() => {
      if (this.worker === next) this.worker = Promise.resolve(worker);
    });
    return next;
  }

  async score(sequences: ReferenceSequence[], signal?: AbortSignal): Promise<Float64Array[]> {
    if (this.closed) throw new GrpcError(Status.UNAVAILABLE, "the reference model is shutting down");
    try {
      const worker = await this.current();
      return await worker.call("score", { sequences }, { signal });
    } catch (err) {
      throw toGrpcError(err, signal);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    await (await this.worker.catch(() => undefined))?.terminate();
  }
}

function toGrpcError(err: unknown, signal: AbortSignal | undefined): Error {
  if (err instanceof GrpcError) return err;
  if (err instanceof WorkerCancelledError || signal?.aborted)
    return new GrpcError(Status.CANCELLED, "the call was cancelled while the reference model ran");
  if (err instanceof EngineWorkerError) {
    if (err.name === "EngineInputError") return new GrpcError(Status.INVALID_ARGUMENT, err.message);
    return new GrpcError(Status.INTERNAL, `reference model: ${err.name}: ${err.message}`);
  }
  // the worker died under the call (or could not be restarted): transient, the next call restarts it
  return new GrpcError(Status.UNAVAILABLE, `reference model worker: ${(err as Error)?.message ?? err}`);
}
