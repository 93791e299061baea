// The rollout service's logic in the main thread: request checks, the bounded call queue in front of
// the engine worker (one call at a time, so engine batches never mix calls), adapter fetches from
// the JetStream object store, the response and the rollout.completed event.
import {
  type Bus,
  type CallContext,
  EngineWorker,
  EngineWorkerError,
  EVENT_WAIT_MS,
  failedPrecondition,
  formatBytes,
  GrpcError,
  invalidArgument,
  type Logger,
  quote,
  resourceExhausted,
  retryNatsOutage,
  Status,
  serviceMeter,
  WorkerCancelledError,
} from "@temper/kit";
import { machineInfo } from "@temper/onnx";
import { common, events, type rollout } from "@temper/proto";
import {
  ADAPTER_BUCKET,
  ADAPTER_CONFIG_METADATA,
  type AdapterObject,
  adapterObjectName,
  type DecodeEngineKind,
  type EngineDtype,
  loadTokenizer,
  modelContentHash,
  openModelDir,
  type Qwen3Config,
  resolveDecodeEngine,
  type Tokenizer,
} from "@temper/qwen3";
import type { AdapterRef, GenerateArgs, GenerateResult, RolloutWorker, WorkerInit } from "./engine-worker.ts";
import { type PreparedCall, prepareGenerate, type RolloutLimits } from "./request.ts";

export interface RolloutOptions {
  modelDir: string;
  dtype: EngineDtype;
  provider: "cpu" | "webgpu" | "cuda";
  /** "fast" or "kv" (openDecodeBackend; float64 always runs "kv"). */
  engine: DecodeEngineKind;
  threads?: number;
  /** Root of the weight cache a model above 256 MiB is mapped from (default weightCacheRoot()). */
  weightCache?: string;
  /** Rows (prompt × completion) per engine batch. */
  maxBatchRows: number;
  /** Bytes the KV cache of one engine batch may take: a call runs in waves of the rows that fit. */
  kvCacheBytes: number;
  /** Calls that may wait behind the running one. */
  queueDepth: number;
  /** Calls one authenticated identity may have queued or running (by name, else the default). */
  callsPerCaller?: { default: number; byName: ReadonlyMap<string, number> };
  adapterCache: number;
  /** The longest an adapter fetch may take (ADAPTER_FETCH_MS). */
  adapterFetchMs: number;
  limits: RolloutLimits;
}

const WORKER_ENTRY = new URL("./engine-worker.ts", import.meta.url);

interface Job {
  call: PreparedCall;
  /** "<run_id>/<version>", or null for the base model. */
  key: string | null;
  /** Fetched at enqueue when the worker lacked the adapter then. */
  object: AdapterObject | undefined;
  signal: AbortSignal;
  resolve(r: GenerateResult): void;
  reject(e: unknown): void;
}

/** The caller's cancellation and deadline as one signal. */
function callSignal(ctx: CallContext): AbortSignal {
  const left = ctx.remainingMs();
  if (!Number.isFinite(left)) return ctx.signal;
  return AbortSignal.any([ctx.signal, AbortSignal.timeout(Math.max(0, left))]);
}

function cancelledError(ctx: CallContext): GrpcError {
  return ctx.remainingMs() <= 0
    ? new GrpcError(Status.DEADLINE_EXCEEDED, "deadline exceeded before generation finished")
    : new GrpcError(Status.CANCELLED, "call cancelled");
}

export class Rollout {
  private worker: EngineWorker<RolloutWorker> | null = null;
  private starting: Promise<EngineWorker<RolloutWorker>> | null = null;
  /** The worker's adapter keys, most recent first (exact: calls reach the worker one at a time). */
  private workerAdapters: string[] = [];
  /** KV-cache bytes of the running call's largest engine batch; 0 while the engine is idle. */
  private kvBytesInUse = 0;
  private readonly queue: Job[] = [];
  private running = false;
  private readonly fetches = new Map<string, Promise<AdapterObject>>();
  private store: ReturnType<Bus["objectStore"]> | null = null;

  private constructor(
    private readonly options: RolloutOptions,
    readonly config: Qwen3Config,
    readonly eosTokenIds: number[],
    readonly contentHash: string,
    private readonly tokenizer: Tokenizer,
    private readonly bus: Bus | undefined,
    private readonly logger: Logger,
  ) {
    this.meter
      .createObservableGauge("temper.rollout.queue.depth", {
        description: "Generate calls waiting for the engine",
      })
      .addCallback((r) => r.observe(this.queue.length));
    this.meter
      .createObservableGauge("temper.rollout.adapters.fetching", { description: "adapter fetches in flight" })
      .addCallback((r) => r.observe(this.fetches.size));
    this.meter
      .createObservableGauge("temper.rollout.adapters.active", {
        description: "adapter versions the engine holds decoded",
      })
      .addCallback((r) => r.observe(this.workerAdapters.length));
    this.meter
      .createObservableGauge("temper.rollout.kv_cache.usage", {
        unit: "By",
        description:
          "KV cache the running Generate's largest engine batch holds (from its shape; 0 between calls)",
      })
      .addCallback((r) => r.observe(this.kvBytesInUse));
  }

  private readonly meter = serviceMeter("temper-rollout");
  /** Tokens generated; its rate is the engine's tokens/s. */
  private readonly tokens = this.meter.createCounter("temper.rollout.tokens", {
    description: "completion tokens generated",
  });
  private readonly engineTime = this.meter.createHistogram("temper.rollout.engine.duration", {
    unit: "s",
    description: "engine seconds of one Generate (measured in the worker, recorded here)",
  });

  /** Loads the tokenizer, starts the engine worker and hashes the model (in parallel). */
  static async start(options: RolloutOptions, bus: Bus | undefined, logger: Logger): Promise<Rollout> {
    const model = openModelDir(options.modelDir);
    model.checkpoint.close();
    const [tokenizer, contentHash] = await Promise.all([
      loadTokenizer(options.modelDir),
      modelContentHash(options.modelDir),
    ]);
    const r = new Rollout(options, model.config, model.eosTokenIds, contentHash, tokenizer, bus, logger);
    const started = Date.now();
    await r.ensureWorker();
    logger.info(
      {
        model: options.modelDir,
        content_hash: contentHash,
        dtype: options.dtype,
        provider: options.provider,
        engine: resolveDecodeEngine(options.dtype, options.engine),
        load_ms: Date.now() - started,
      },
      "engine ready",
    );
    return r;
  }

  private ensureWorker(): Promise<EngineWorker<RolloutWorker>> {
    if (this.worker?.alive) return Promise.resolve(this.worker);
    this.starting ??= (async () => {
      const init: WorkerInit = {
        modelDir: this.options.modelDir,
        dtype: this.options.dtype,
        provider: this.options.provider,
        threads: this.options.threads,
        weightCache: this.options.weightCache,
        adapterCache: this.options.adapterCache,
        engine: this.options.engine,
      };
      try {
        const w = await EngineWorker.start<RolloutWorker>(WORKER_ENTRY, init, {
          name: "rollout-engine",
          onExit: (code, error) => {
            this.logger.error({ code, err: error }, "engine worker exited; the next call starts a new one");
            this.worker = null;
            this.workerAdapters = [];
          },
        });
        this.worker = w;
        this.workerAdapters = [];
        return w;
      } finally {
        this.starting = null;
      }
    })();
    return this.starting;
  }

  /** Adapter versions the worker holds, most recent first. */
  get adapterVersions(): string[] {
    return [...this.workerAdapters];
  }

  modelInfo(): rollout.GetModelInfoResponse {
    const o = this.options;
    return {
      model: o.modelDir,
      vocabSize: this.config.vocabSize,
      numHiddenLayers: this.config.numHiddenLayers,
      eosTokenIds: this.eosTokenIds,
      adapterVersions: this.adapterVersions,
      executionProvider: o.provider,
      contentHash: this.contentHash,
      dtype: o.dtype,
      maxPrompts: o.limits.maxPrompts,
      maxCompletions: o.limits.maxCompletions,
      maxNewTokens: o.limits.maxNewTokens,
      maxPromptTokens: o.limits.maxPromptTokens,
      machine: machineInfo(o.threads),
    };
  }

  async generate(req: rollout.GenerateRequest, ctx: CallContext): Promise<rollout.GenerateResponse> {
    const started = performance.now();
    const call = prepareGenerate(
      req,
      this.options.limits,
      { maxPositions: this.config.maxPositionEmbeddings },
      this.tokenizer,
    );
    this.wave(call); // one that cannot fit a row is refused before it waits in the queue
    const result = await this.enqueue(call, ctx);
    const groups: common.Group[] = call.prompts.map((p, i) => ({
      id: p.id,
      prompt: p.prompt,
      reference: p.reference,
      promptTokenIds: call.promptIds[i],
      completions: result.completions[i].map((c, j) => ({
        id: `${p.id}-${j}`,
        text: c.text,
        tokenIds: c.tokenIds,
        logprobs: c.logprobs,
        finishReason:
          c.finishReason === "stop"
            ? common.FinishReason.FINISH_REASON_STOP
            : common.FinishReason.FINISH_REASON_LENGTH,
      })),
    }));
    let generatedTokens = 0;
    for (const g of result.completions) for (const c of g) generatedTokens += c.tokenIds.length;
    this.tokens.add(generatedTokens);
    this.engineTime.record(result.engineSeconds);
    const response: rollout.GenerateResponse = {
      groups,
      adapterVersion: call.adapterVersion,
      engineSeconds: result.engineSeconds,
      generatedTokens,
    };
    if (call.runId !== "")
      await this.publishCompleted(call, response, (performance.now() - started) / 1000, ctx);
    return response;
  }

  private async publishCompleted(
    call: PreparedCall,
    res: rollout.GenerateResponse,
    seconds: number,
    ctx: CallContext,
  ): Promise<void> {
    if (!this.bus) return;
    const event: events.RolloutCompleted = {
      runId: call.runId,
      step: call.step,
      adapterVersion: call.adapterVersion,
      groups: res.groups.length,
      completions: res.groups.reduce((a, g) => a + g.completions.length, 0),
      generatedTokens: res.generatedTokens,
      seconds,
      callTag: call.callTag,
      engineSeconds: res.engineSeconds,
    };
    const msgId = `${call.runId}.${call.step}.rollout.completed${call.callTag ? `.${call.callTag}` : ""}`;
    // The event is part of the call: if NATS stays away past the caller's deadline the call fails
    // UNAVAILABLE, and its retry publishes under the same msgId.
    const bus = this.bus;
    await retryNatsOutage(
      "rollout.completed",
      () =>
        bus.publish(
          `temper.${call.runId}.rollout.completed`,
          events.RolloutCompleted.encode(event).finish(),
          { msgId },
        ),
      {
        untilMs: Date.now() + Math.min(ctx.remainingMs(), EVENT_WAIT_MS),
        signal: ctx.signal,
        onRetry: (err) =>
          ctx.logger.warn(
            { err: (err as Error).message, run_id: call.runId },
            "NATS away; retrying rollout.completed",
          ),
      },
    );
  }

  private checkQueue(): void {
    if (this.queue.length >= this.options.queueDepth)
      throw resourceExhausted(
        `queue full: ${this.queue.length} calls wait for the engine (QUEUE_DEPTH ${this.options.queueDepth})`,
      );
  }

  /** Generate calls queued or running, per authenticated identity. */
  private readonly callsBy = new Map<string, number>();

  /** Counts the call against its caller's limit for as long as `work` runs. */
  private async perCaller<T>(ctx: CallContext, work: () => Promise<T>): Promise<T> {
    const who = ctx.principal?.name;
    const limits = this.options.callsPerCaller;
    if (who === undefined || !limits) return work();
    const max = limits.byName.get(who) ?? limits.default;
    const n = this.callsBy.get(who) ?? 0;
    if (n >= max)
      throw resourceExhausted(
        `${quote(who)} has ${n} Generate call${n === 1 ? "" : "s"} queued or running, at most ${max} (MAX_CALLS_PER_CALLER, CALLER_CALL_LIMITS)`,
      );
    this.callsBy.set(who, n + 1);
    try {
      return await work();
    } finally {
      const left = (this.callsBy.get(who) ?? 1) - 1;
      if (left > 0) this.callsBy.set(who, left);
      else this.callsBy.delete(who);
    }
  }

  private async enqueue(call: PreparedCall, ctx: CallContext): Promise<GenerateResult> {
    return this.perCaller(ctx, () => this.enqueueCounted(call, ctx));
  }

  private async enqueueCounted(call: PreparedCall, ctx: CallContext): Promise<GenerateResult> {
    this.checkQueue();
    const key = call.adapterVersion === "" ? null : adapterObjectName(call.runId, call.adapterVersion);
    // An adapter the worker lacks is fetched before the call takes a queue slot: an unknown
    // version is answered at once, and the engine never waits on the object store.
    const object =
      key !== null && !this.workerAdapters.includes(key) ? await this.fetchAdapter(key) : undefined;
    this.checkQueue();
    const signal = callSignal(ctx);
    if (signal.aborted) throw cancelledError(ctx);
    return new Promise<GenerateResult>((resolve, reject) => {
      const job: Job = { call, key, object, signal, resolve, reject };
      const onAbort = () => {
        const at = this.queue.indexOf(job);
        if (at >= 0) {
          this.queue.splice(at, 1);
          reject(cancelledError(ctx));
        }
      };
      signal.addEventListener("abort", onAbort, { once: true });
      job.resolve = (r) => {
        signal.removeEventListener("abort", onAbort);
        resolve(r);
      };
      job.reject = (err) => {
        signal.removeEventListener("abort", onAbort);
        reject(err instanceof WorkerCancelledError ? cancelledError(ctx) : err);
      };
      this.queue.push(job);
      void this.pump();
    });
  }

  private async pump(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      while (this.queue.length > 0) {
        const job = this.queue.shift()!;
        if (job.signal.aborted) {
          job.reject(new WorkerCancelledError("cancelled while queued"));
          continue;
        }
        try {
          job.resolve(await this.run(job));
        } catch (err) {
          job.reject(err);
        }
      }
    } finally {
      this.running = false;
    }
  }

  private async run(job: Job): Promise<GenerateResult> {
    let worker: EngineWorker<RolloutWorker>;
    try {
      worker = await this.ensureWorker();
    } catch (err) {
      throw new GrpcError(Status.UNAVAILABLE, `engine worker cannot start: ${(err as Error).message}`);
    }
    const c = job.call;
    const args = (adapter: AdapterRef | null): GenerateArgs => ({
      prompts: c.promptIds,
      seeds: c.seeds,
      n: c.n,
      temperature: c.temperature,
      topK: c.topK,
      topP: c.topP,
      maxNewTokens: c.maxNewTokens,
      stop: c.stop,
      batchSize: this.wave(c).rows,
      adapter,
    });
    const withObject = async (key: string): Promise<AdapterRef> => ({
      key,
      object: job.object ?? (await this.fetchAdapter(key)),
    });
    let adapter: AdapterRef | null = null;
    if (job.key !== null)
      adapter = this.workerAdapters.includes(job.key) ? { key: job.key } : await withObject(job.key);
    const { rows, perRow } = this.wave(c);
    this.kvBytesInUse = rows * perRow;
    const total = c.promptIds.length * c.n;
    this.logger.debug(
      { rows: total, rows_per_wave: rows, waves: Math.ceil(total / rows), kv_bytes_per_row: perRow },
      "engine batches",
    );
    try {
      let result: GenerateResult;
      try {
        result = await worker.call("generate", args(adapter), { signal: job.signal });
      } catch (err) {
        // The mirror was stale (e.g. the worker restarted): send the bytes and run once more.
        if (!(err instanceof EngineWorkerError && err.name === "AdapterMissingError") || job.key === null)
          throw err;
        result = await worker.call("generate", args(await withObject(job.key)), { signal: job.signal });
      }
      this.workerAdapters = result.adapters;
      return result;
    } catch (err) {
      if (worker.alive) this.workerAdapters = await worker.call("adapters", {}).catch(() => []);
      throw this.mapWorkerError(err, job);
    } finally {
      this.kvBytesInUse = 0;
    }
  }

  /**
   * A call's engine batches: as many rows as KV_CACHE_BYTES holds, at most MAX_BATCH_ROWS (a row's
   * tokens do not depend on its batch). RESOURCE_EXHAUSTED when not even one row fits.
   */
  private wave(c: Job["call"]): { rows: number; perRow: number } {
    // positions × layers × (K and V) × key/value heads × head width × bytes per value
    const positions = Math.max(0, ...c.promptIds.map((p) => p.length)) + c.maxNewTokens;
    const m = this.config;
    const perRow =
      positions *
      m.numHiddenLayers *
      2 *
      m.numKeyValueHeads *
      m.headDim *
      (this.options.dtype === "float64" ? 8 : 4);
    const fit = Math.floor(this.options.kvCacheBytes / perRow);
    if (fit < 1)
      throw resourceExhausted(
        `sampling.max_new_tokens: one row of ${positions} positions (the longest prompt + max_new_tokens) needs ${formatBytes(perRow)} of KV cache, over KV_CACHE_BYTES ${formatBytes(this.options.kvCacheBytes)}: ask for fewer new tokens or a shorter prompt, or raise KV_CACHE_BYTES`,
      );
    return { rows: Math.min(this.options.maxBatchRows, fit, c.promptIds.length * c.n), perRow };
  }

  private mapWorkerError(err: unknown, job: Job): unknown {
    if (err instanceof WorkerCancelledError || err instanceof GrpcError) return err;
    if (err instanceof EngineWorkerError) {
      switch (err.name) {
        case "AdapterError":
          return failedPrecondition(`adapter_version: ${job.key} cannot be served: ${err.message}`);
        case "GenerateError":
        case "SamplingError":
        case "EngineInputError":
          return invalidArgument("", err.message);
        default:
          return err;
      }
    }
    if (err instanceof Error && /exited with code/.test(err.message))
      return new GrpcError(Status.UNAVAILABLE, `${err.message}; retry (a new engine worker starts)`);
    return err;
  }

  private objectStore(): ReturnType<Bus["objectStore"]> {
    if (!this.bus) throw failedPrecondition("adapter_version: this rollout has no NATS connection");
    if (!this.store) {
      this.store = this.bus.objectStore(ADAPTER_BUCKET);
      this.store.catch(() => {
        this.store = null;
      });
    }
    return this.store;
  }

  /**
   * Fetches "<run_id>/<version>" once however many calls ask for it meanwhile, within
   * options.adapterFetchMs: an object whose chunks never come (torn by a NATS fault) fails UNAVAILABLE
   * instead of holding every caller, and the next call fetches afresh.
   */
  private fetchAdapter(key: string): Promise<AdapterObject> {
    let p = this.fetches.get(key);
    if (!p) {
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () =>
            reject(
              new GrpcError(
                Status.UNAVAILABLE,
                `adapter_version: ${key} not read from the object store within ${this.options.adapterFetchMs} ms (ADAPTER_FETCH_MS); retry`,
              ),
            ),
          this.options.adapterFetchMs,
        );
      });
      const fetch = (async () => {
        let info: Awaited<ReturnType<Awaited<ReturnType<Bus["objectStore"]>>["info"]>>;
        let weights: Uint8Array | null = null;
        try {
          const store = await this.objectStore();
          info = await store.info(key);
          if (info && !info.deleted) weights = await store.getBlob(key);
        } catch (err) {
          if (err instanceof GrpcError) throw err;
          throw new GrpcError(
            Status.UNAVAILABLE,
            `adapter_version: cannot read ${key} from the object store: ${(err as Error).message}`,
          );
        }
        if (!info || info.deleted || !weights)
          throw new GrpcError(
            Status.NOT_FOUND,
            `adapter_version: no adapter ${key} in bucket ${ADAPTER_BUCKET}`,
          );
        const config = info.metadata?.[ADAPTER_CONFIG_METADATA];
        if (config === undefined)
          throw failedPrecondition(
            `adapter_version: object ${key} has no ${ADAPTER_CONFIG_METADATA} metadata (adapter_config.json)`,
          );
        this.logger.info({ adapter: key, bytes: weights.length }, "adapter fetched");
        return { weights, config };
      })();
      fetch.catch(() => {}); // a fetch that lost the race to its deadline settles unobserved
      p = Promise.race([fetch, deadline]).finally(() => {
        clearTimeout(timer);
        if (this.fetches.get(key) === p) this.fetches.delete(key);
      });
      this.fetches.set(key, p);
    }
    return p;
  }

  /** Calls waiting behind the running one. */
  get queued(): number {
    return this.queue.length;
  }

  async close(): Promise<void> {
    for (const job of this.queue.splice(0)) job.reject(new GrpcError(Status.UNAVAILABLE, "shutting down"));
    await this.worker?.terminate();
  }
}
