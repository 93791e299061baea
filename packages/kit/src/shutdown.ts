// Graceful stop on SIGTERM/SIGINT: run the steps in order (each bounded by a timeout, a failure
// logged and the rest still run), then exit 0, or 1 if a step failed. A second signal exits at once.
import type { Logger } from "pino";

export interface ShutdownStep {
  name: string;
  run(): Promise<void> | void;
}

export interface ShutdownOptions {
  logger: Logger;
  steps: ShutdownStep[];
  /** Upper bound per step. Default 30 s. */
  stepTimeoutMs?: number;
  signals?: NodeJS.Signals[];
  /** Default process.exit; tests pass their own. */
  exit?: (code: number) => void;
}

/** Runs the steps once; resolves to the exit code. */
export async function runShutdown(
  steps: ShutdownStep[],
  logger: Logger,
  stepTimeoutMs = 30_000,
): Promise<number> {
  let code = 0;
  for (const step of steps) {
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        Promise.resolve().then(() => step.run()),
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error(`timed out after ${stepTimeoutMs} ms`)), stepTimeoutMs);
        }),
      ]);
      logger.debug({ step: step.name }, "shutdown step done");
    } catch (err) {
      code = 1;
      logger.error({ err, step: step.name }, "shutdown step failed");
    } finally {
      clearTimeout(timer);
    }
  }
  return code;
}

/** Installs the signal handlers; returns a function that triggers the same shutdown. */
export function onShutdown(options: ShutdownOptions): () => Promise<void> {
  const exit = options.exit ?? ((code: number) => process.exit(code));
  let running: Promise<void> | undefined;
  const trigger = (signal?: string): Promise<void> => {
    if (running) {
      if (signal) {
        options.logger.warn({ signal }, "second signal, exiting now");
        exit(1);
      }
      return running;
    }
    options.logger.info({ signal }, "stopping");
    running = runShutdown(options.steps, options.logger, options.stepTimeoutMs).then((code) => {
      options.logger.info({ code }, "stopped");
      exit(code);
    });
    return running;
  };
  for (const s of options.signals ?? ["SIGTERM", "SIGINT"]) process.on(s, () => void trigger(s));
  return () => trigger();
}
