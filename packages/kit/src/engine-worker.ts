// Engines off the event loop. onnxruntime-node runs session.run on the calling JavaScript thread, so a
// service that ran its engine in the main thread would stop answering health checks, deadlines and
// cancellation for the length of a prefill or a training step. An EngineWorker owns one
// worker_threads Worker that holds the engine; the service calls it through a small typed protocol:
//
//   main thread                               worker (serveEngineWorker)
//   start(entry, init) ───── workerData ────▶ setup(init) → handlers
//                      ◀──── ready | init-error
//   call(method, args) ───── call {id, flag} ▶ handlers[method](args, ctx)   (one call at a time)
//                      ◀──── result | error
//
// Cancellation crosses threads through a SharedArrayBuffer flag rather than a message: a worker busy
// in a long loop of engine runs never yields to its message queue between them, but it can read the
// flag (ctx.cancelled()) after every step.
import { pathToFileURL } from "node:url";
import { isMainThread, parentPort, type Transferable, Worker, workerData } from "node:worker_threads";

/** What a worker handler receives besides its arguments. */
export interface WorkerCallContext {
  /** True once the caller cancelled; a handler checks it between engine runs. */
  cancelled(): boolean;
  /** Throws WorkerCancelledError when cancelled. */
  throwIfCancelled(): void;
}

// biome-ignore lint/suspicious/noExplicitAny: handler argument types are the protocol's own.
export type WorkerHandlers = Record<string, (args: any, ctx: WorkerCallContext) => unknown>;

/** The call was cancelled before it finished; the engine is free again. */
export class WorkerCancelledError extends Error {
  override name = "WorkerCancelledError";
}

/**
 * An error thrown inside the worker, rethrown in the main thread with the original class name
 * (`name`, e.g. "GenerateError") so the service can map it to a gRPC status.
 */
export class EngineWorkerError extends Error {
  constructor(
    override readonly name: string,
    message: string,
    readonly remoteStack?: string,
  ) {
    super(message);
  }
}

type ToWorker = { type: "call"; id: number; method: string; args: unknown; flag: SharedArrayBuffer };
type FromWorker =
  | { type: "ready" }
  | { type: "init-error"; error: SerializedError }
  | { type: "result"; id: number; value: unknown }
  | { type: "error"; id: number; error: SerializedError };
interface SerializedError {
  name: string;
  message: string;
  stack?: string;
}

function serialize(err: unknown): SerializedError {
  if (err instanceof Error) return { name: err.name, message: err.message, stack: err.stack };
  return { name: "Error", message: String(err) };
}

export interface CallOptions {
  /** Aborting sets the worker's cancel flag; the call then rejects with WorkerCancelledError. */
  signal?: AbortSignal;
  /** Buffers moved (not copied) into the worker. */
  transfer?: readonly Transferable[];
}

export interface StartWorkerOptions {
  /** Thread name in diagnostics. */
  name?: string;
  /** Called once if the worker dies (crash, out of memory); pending calls have been rejected. */
  onExit?: (code: number, error: Error | undefined) => void;
  /** Worker heap limit in MiB (V8 old space); ORT memory is native and not counted. */
  maxOldGenerationSizeMb?: number;
}

interface Pending {
  resolve(value: unknown): void;
  reject(err: Error): void;
  flag: Int32Array;
}

/** Registers tsx inside the worker, then imports a TypeScript entry (see the file's comment). */
const BOOTSTRAP = new URL("./engine-worker-bootstrap.mjs", import.meta.url);

export class EngineWorker<H extends WorkerHandlers> {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private exited: Error | null = null;

  private constructor(private readonly worker: Worker) {}

  /**
   * Starts `entry` (a module that calls serveEngineWorker) with `init` as its setup argument and
   * resolves once setup has finished; a setup error rejects with that error.
   */
  static start<H extends WorkerHandlers>(
    entry: string | URL,
    init: unknown,
    options: StartWorkerOptions = {},
  ): Promise<EngineWorker<H>> {
    const ts = /\.[mc]?ts$/.test(typeof entry === "string" ? entry : entry.pathname);
    const href = typeof entry === "string" ? pathToFileURL(entry).href : entry.href;
    const worker = new Worker(ts ? BOOTSTRAP : entry, {
      workerData: { init, entry: href },
      name: options.name,
      resourceLimits: options.maxOldGenerationSizeMb
        ? { maxOldGenerationSizeMb: options.maxOldGenerationSizeMb }
        : undefined,
    });
    const ew = new EngineWorker<H>(worker);
    return new Promise((resolve, reject) => {
      let ready = false;
      worker.on("message", (msg: FromWorker) => {
        if (msg.type === "ready") {
          ready = true;
          resolve(ew);
        } else if (msg.type === "init-error") {
          reject(new EngineWorkerError(msg.error.name, msg.error.message, msg.error.stack));
          void worker.terminate();
        } else ew.settle(msg);
      });
      let lastError: Error | undefined;
      worker.on("error", (err) => {
        lastError = err;
      });
      worker.on("exit", (code) => {
        const err = new Error(
          `engine worker${options.name ? ` ${options.name}` : ""} exited with code ${code}${lastError ? `: ${lastError.message}` : ""}`,
        );
        ew.exited = err;
        for (const p of ew.pending.values()) p.reject(err);
        ew.pending.clear();
        if (!ready) reject(lastError ?? err);
        else options.onExit?.(code, lastError);
      });
    });
  }

  private settle(msg: Extract<FromWorker, { type: "result" | "error" }>): void {
    const p = this.pending.get(msg.id);
    if (!p) return;
    this.pending.delete(msg.id);
    if (msg.type === "result") p.resolve(msg.value);
    else if (msg.error.name === "WorkerCancelledError") p.reject(new WorkerCancelledError(msg.error.message));
    else p.reject(new EngineWorkerError(msg.error.name, msg.error.message, msg.error.stack));
  }

  /** Calls handler `method` in the worker. Calls run one at a time, in the order made. */
  call<K extends keyof H & string>(
    method: K,
    args: Parameters<H[K]>[0],
    options: CallOptions = {},
  ): Promise<Awaited<ReturnType<H[K]>>> {
    if (this.exited) return Promise.reject(this.exited);
    const id = this.nextId++;
    const flag = new Int32Array(new SharedArrayBuffer(4));
    if (options.signal?.aborted)
      return Promise.reject(new WorkerCancelledError("cancelled before it started"));
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject, flag });
      options.signal?.addEventListener("abort", () => Atomics.store(flag, 0, 1), { once: true });
      const msg: ToWorker = { type: "call", id, method, args, flag: flag.buffer as SharedArrayBuffer };
      this.worker.postMessage(msg, options.transfer as Transferable[] | undefined);
    });
  }

  /** Calls sent and not yet answered (the one running included). */
  get inFlight(): number {
    return this.pending.size;
  }

  /** Whether the worker is still alive. */
  get alive(): boolean {
    return this.exited === null;
  }

  /** Stops the worker; pending calls reject. */
  async terminate(): Promise<void> {
    if (this.exited) return;
    await this.worker.terminate();
  }
}

/**
 * The worker side: runs `setup(init)` once, then answers calls one at a time. Call it at the top
 * level of the worker's entry module.
 */
export function serveEngineWorker<H extends WorkerHandlers>(setup: (init: unknown) => Promise<H> | H): void {
  if (isMainThread || !parentPort) throw new Error("serveEngineWorker must run inside a worker thread");
  const port = parentPort;
  const init = (workerData as { init: unknown }).init;
  let handlers: H;
  const queue: ToWorker[] = [];
  let running = false;

  const runNext = async (): Promise<void> => {
    if (running) return;
    running = true;
    while (queue.length > 0) {
      const msg = queue.shift()!;
      const flag = new Int32Array(msg.flag);
      const ctx: WorkerCallContext = {
        cancelled: () => Atomics.load(flag, 0) === 1,
        throwIfCancelled() {
          if (Atomics.load(flag, 0) === 1) throw new WorkerCancelledError("cancelled");
        },
      };
      try {
        const handler = handlers[msg.method];
        if (!handler) throw new Error(`engine worker has no method "${msg.method}"`);
        ctx.throwIfCancelled();
        const value = await handler(msg.args, ctx);
        port.postMessage({ type: "result", id: msg.id, value } satisfies FromWorker);
      } catch (err) {
        port.postMessage({ type: "error", id: msg.id, error: serialize(err) } satisfies FromWorker);
      }
    }
    running = false;
  };

  Promise.resolve()
    .then(() => setup(init))
    .then(
      (h) => {
        handlers = h;
        port.on("message", (msg: ToWorker) => {
          queue.push(msg);
          void runNext();
        });
        port.postMessage({ type: "ready" } satisfies FromWorker);
      },
      (err) => port.postMessage({ type: "init-error", error: serialize(err) } satisfies FromWorker),
    );
}
