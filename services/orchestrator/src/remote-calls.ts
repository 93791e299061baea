// How a run calls the services it drives: each attempt under a deadline, transient statuses retried
// with backoff for as long as the run is willing to wait (kit's retry policy), and every failure
// turned into what ends the run: RunStopped when asked to stop, RunFailed otherwise.
import { type CallOptions, GrpcError, type Logger, retry, Status } from "@temper/kit";

/** Statuses a later attempt may not see: a server away, busy or slow, or a lost race. */
const TRANSIENT = new Set([
  Status.UNAVAILABLE,
  Status.DEADLINE_EXCEEDED,
  Status.RESOURCE_EXHAUSTED,
  Status.ABORTED,
]);

export class RunStopped extends Error {
  override name = "RunStopped";
}

/** A failure that ends the run (FAILED with this message). */
export class RunFailed extends Error {
  override name = "RunFailed";
}

export interface RemoteCallOptions {
  runId: string;
  /** How long a failing call is retried before the run fails. */
  retryWaitMs: number;
  /** Deadline of one attempt. */
  callTimeoutMs: number;
  /** Aborted when the run is asked to stop. */
  stop: AbortSignal;
  logger: Logger;
}

export class RemoteCalls {
  constructor(private readonly o: RemoteCallOptions) {}

  /** One attempt's call options: its deadline, no retries of its own, the stop signal. */
  options(signal: AbortSignal | undefined): CallOptions {
    return { timeoutMs: this.o.callTimeoutMs, attempts: 1, signal };
  }

  /**
   * `fn` until it succeeds; `attempt` counts from 0 so that a caller can move to another endpoint.
   * Throws RunStopped or RunFailed, naming `what`.
   */
  async retry<T>(what: string, fn: (signal: AbortSignal, attempt: number) => Promise<T>): Promise<T> {
    const { stop, retryWaitMs, logger, runId } = this.o;
    try {
      return await retry(
        {
          retryable: (err) => err instanceof GrpcError && TRANSIENT.has(err.code),
          backoffMs: 200,
          maxBackoffMs: 5000,
          untilMs: Date.now() + retryWaitMs,
          signal: stop,
          onRetry: (err, attempt) =>
            logger.warn({ run_id: runId, what, code: (err as GrpcError).codeName, attempt }, "retrying"),
          giveUp: (err) => {
            const e = err as GrpcError;
            return new RunFailed(
              `${what}: still ${e.codeName} after ${Math.round(retryWaitMs / 1000)} s of retries: ${e.message}`,
            );
          },
        },
        (attempt) => fn(stop, attempt),
      );
    } catch (err) {
      if (stop.aborted) throw new RunStopped("stopped");
      if (err instanceof RunFailed) throw err;
      throw new RunFailed(
        `${what}: ${err instanceof GrpcError ? `${err.codeName}: ${err.message}` : (err as Error).message}`,
      );
    }
  }
}
