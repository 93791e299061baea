// rollout: generation with the policy (temper.rollout.v1.RolloutService). One base model, loaded
// once into an engine worker thread; LoRA adapters by version from the JetStream object store.
import { env, runService, service, type VarSpec } from "@temper/kit";
import { descriptorSetPath, rollout } from "@temper/proto";
import { readConfig } from "@temper/qwen3";
import { Rollout } from "./rollout.ts";

const modelDir: VarSpec<string> = {
  doc: "Hugging Face-layout model directory (config.json, *.safetensors, tokenizer files)",
  kind: "model directory",
  parse(raw) {
    try {
      readConfig(raw);
    } catch (err) {
      throw new Error(`expected a model directory: ${(err as Error).message}`);
    }
    return raw;
  },
};

const limit = (def: number, max: number, doc: string) => env.int({ default: def, min: 1, max, doc });

const config = {
  MODEL_DIR: modelDir,
  DTYPE: env.enum(["float32", "float64"] as const, {
    default: "float32",
    doc: "engine precision (float64: exact across batch sizes, slower)",
  }),
  PROVIDER: env.enum(["cpu", "webgpu", "cuda"] as const, {
    default: "cpu",
    doc: "ONNX Runtime execution provider",
  }),
  ENGINE: env.enum(["fast", "kv"] as const, {
    default: "fast",
    doc: "generation engine: fast (float32: KV cache read in place, shared prompts prefilled once) or kv (the previous engine); float64 always runs kv",
  }),
  THREADS: env.optional(
    env.int({ min: 1, max: 1024, doc: "intra-op threads of the engine (unset: ORT's choice)" }),
  ),
  MAX_BATCH_ROWS: limit(64, 65_536, "rows (prompt × completion) per engine batch"),
  MAX_PROMPTS: limit(1024, 65_536, "most prompts in one Generate"),
  MAX_COMPLETIONS: limit(64, 4096, "most completions per prompt (num_completions)"),
  MAX_NEW_TOKENS: limit(1024, 1 << 20, "largest sampling.max_new_tokens"),
  MAX_PROMPT_TOKENS: limit(4096, 1 << 20, "longest prompt in tokens (after the chat template)"),
  QUEUE_DEPTH: env.int({
    default: 8,
    min: 0,
    max: 65_536,
    doc: "Generate calls that may wait behind the running one; more get RESOURCE_EXHAUSTED",
  }),
  ADAPTER_CACHE: limit(4, 1024, "adapter versions kept decoded in the engine (LRU)"),
};

let engine: Rollout | undefined;
await runService({
  name: "rollout",
  version: "0.1.0",
  defaultPort: 50070,
  descriptorSet: descriptorSetPath,
  config,
  nats: true,
  services: async ({ config: c, bus, logger }) => {
    const r = await Rollout.start(
      {
        modelDir: c.MODEL_DIR,
        dtype: c.DTYPE,
        provider: c.PROVIDER,
        engine: c.ENGINE,
        threads: c.THREADS,
        maxBatchRows: c.MAX_BATCH_ROWS,
        queueDepth: c.QUEUE_DEPTH,
        adapterCache: c.ADAPTER_CACHE,
        limits: {
          maxPrompts: c.MAX_PROMPTS,
          maxCompletions: c.MAX_COMPLETIONS,
          maxNewTokens: c.MAX_NEW_TOKENS,
          maxPromptTokens: c.MAX_PROMPT_TOKENS,
        },
      },
      bus,
      logger,
    );
    engine = r;
    // No mutating RPC: Generate is a function of its request (the model, an adapter version, seeds)
    // and changes no state; in a secure deployment mutual TLS still keeps unknown callers out.
    return [
      service(rollout.RolloutServiceService, {
        generate: (req, ctx) => r.generate(req, ctx),
        getModelInfo: () => r.modelInfo(),
      }),
    ];
  },
  onShutdown: [{ name: "engine worker", run: () => engine?.close() }],
});
