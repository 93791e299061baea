// The rollout engine, inside a worker thread (EngineWorker from @temper/kit): the base model's
// KV-cached sessions, the decoded adapters and generate(). Calls arrive one at a time, so an engine
// batch only ever holds rows of one Generate call and nothing depends on timing.
//
// Sessions: one per LoRA layout (rank, scale, targets) asked for, built on first use from the
// checkpoint kept open; the base model uses a session without LoRA inputs. Each is opened by
// openDecodeBackend (@temper/qwen3) for the configured dtype and engine, as `temper model generate`
// opens its own. Adapters: an LRU of
// decoded adapters keyed "<run_id>/<version>"; the main thread mirrors its keys (it gets them back
// with every result) and sends an adapter's bytes only when the worker lacks it.
import { machineMemory, serveEngineWorker, type WorkerCallContext } from "@temper/kit";
import {
  type AdapterObject,
  type DecodeEngineKind,
  decodeAdapterObject,
  type EngineDtype,
  type GenerateOptions,
  generate,
  type LoraAdapter,
  type LoraConfig,
  loadTokenizer,
  loraScale,
  type ModelDir,
  type OpenDecodeBackend,
  openDecodeBackend,
  openModelDir,
} from "@temper/qwen3";

export interface WorkerInit {
  modelDir: string;
  dtype: EngineDtype;
  provider: "cpu" | "webgpu" | "cuda";
  threads?: number;
  weightCache?: string;
  adapterCache: number;
  engine: DecodeEngineKind;
}

export interface AdapterRef {
  /** "<run_id>/<version>". */
  key: string;
  /** The object's bytes; absent when the worker holds the key (per the main thread's mirror). */
  object?: AdapterObject;
}

export interface GenerateArgs {
  prompts: number[][];
  /** One seed per prompt. */
  seeds: number[];
  n: number;
  temperature: number;
  topK: number;
  topP: number;
  maxNewTokens: number;
  stop: string[];
  batchSize: number;
  adapter: AdapterRef | null;
}

export interface WorkerCompletion {
  text: string;
  tokenIds: number[];
  logprobs: number[];
  finishReason: "stop" | "length";
}

export interface GenerateResult {
  completions: WorkerCompletion[][];
  engineSeconds: number;
  /** The worker's adapter keys after this call, most recent first. */
  adapters: string[];
}

/** The adapter is not usable with this model or engine (→ FAILED_PRECONDITION). */
export class AdapterError extends Error {
  override name = "AdapterError";
}

/** The main thread referenced an adapter the worker does not hold (mirror out of date). */
export class AdapterMissingError extends Error {
  override name = "AdapterMissingError";
}

export type RolloutWorker = {
  generate(args: GenerateArgs, ctx: WorkerCallContext): Promise<GenerateResult>;
  adapters(args: Record<string, never>): string[];
};

function layoutKey(c: LoraConfig): string {
  return `${c.rank}|${loraScale(c)}|${c.targetModules.join(",")}`;
}

serveEngineWorker<RolloutWorker>(async (raw) => {
  const init = raw as WorkerInit;
  const model: ModelDir = openModelDir(init.modelDir);
  const tokenizer = await loadTokenizer(init.modelDir);
  type Backend = OpenDecodeBackend;
  const makeBackend = (lora?: LoraConfig): Promise<Backend> =>
    openDecodeBackend(model, {
      dtype: init.dtype,
      engine: init.engine,
      provider: init.provider,
      threads: init.threads,
      lora,
      // one machine, one choice of kernels (see decodeWeightPlacement)
      weights: { machineBytes: machineMemory(), cacheRoot: init.weightCache },
    });
  const base = await makeBackend();
  /** LoRA sessions by layout. */
  const loraBackends = new Map<string, Backend>();
  /** Decoded adapters, least recently used first. */
  const cache = new Map<string, LoraAdapter>();

  const keys = () => [...cache.keys()].reverse();

  async function backendFor(ref: AdapterRef | null): Promise<Backend> {
    if (ref === null) return base;
    let adapter = cache.get(ref.key);
    if (adapter) cache.delete(ref.key);
    else {
      if (!ref.object) throw new AdapterMissingError(`adapter ${ref.key} is not cached`);
      try {
        adapter = decodeAdapterObject(ref.object, model.config, init.dtype);
      } catch (err) {
        throw new AdapterError((err as Error).message);
      }
    }
    const layout = layoutKey(adapter.config);
    let backend = loraBackends.get(layout);
    if (!backend) {
      try {
        backend = await makeBackend(adapter.config);
      } catch (err) {
        throw new AdapterError(`cannot build a session for its LoRA layout: ${(err as Error).message}`);
      }
      loraBackends.set(layout, backend);
    }
    try {
      backend.setAdapter(adapter);
    } catch (err) {
      throw new AdapterError((err as Error).message);
    }
    cache.set(ref.key, adapter);
    while (cache.size > init.adapterCache) cache.delete(cache.keys().next().value as string);
    return backend;
  }

  return {
    async generate(args, ctx) {
      const started = performance.now();
      const backend = await backendFor(args.adapter);
      const options: GenerateOptions = {
        temperature: args.temperature,
        topK: args.topK,
        topP: args.topP,
        maxNewTokens: args.maxNewTokens,
        n: args.n,
        eosTokenIds: model.eosTokenIds,
        stop: args.stop,
        seeds: args.seeds,
        batchSize: args.batchSize,
        beforeStep: () => ctx.throwIfCancelled(),
      };
      const out = await generate(backend, tokenizer, args.prompts, options);
      return {
        completions: out.map((group) =>
          group.map((c) => ({
            text: c.text,
            tokenIds: c.tokenIds,
            logprobs: c.logprobs,
            finishReason: c.finishReason,
          })),
        ),
        engineSeconds: (performance.now() - started) / 1000,
        adapters: keys(),
      };
    },
    adapters: () => keys(),
  };
});
