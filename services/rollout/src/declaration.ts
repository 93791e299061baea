// rollout's deployment declaration (ServiceDeclaration): its name, port, API and variables. main.ts
// runs from it and the deployment checks (tests/deploy-config.test.ts) read it.
import { HF_HUB_CACHE_VAR, MODEL_VAR } from "@temper/hub";
import { env, type ServiceDeclaration, type VarSpec } from "@temper/kit";
import { rollout } from "@temper/proto";
import { readConfig } from "@temper/qwen3";

const modelDir: VarSpec<string> = {
  doc: "Hugging Face-layout model directory (config.json, *.safetensors, tokenizer files); MODEL_DIR or MODEL is required",
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
  MODEL_DIR: env.optional(modelDir),
  MODEL: MODEL_VAR,
  HF_HUB_CACHE: HF_HUB_CACHE_VAR,
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
  TEMPER_WEIGHT_CACHE: env.optional(
    env.string({
      doc: "where a model above 256 MiB of float32 weights is converted once into the layout the engine maps (unset: $XDG_CACHE_HOME/temper/weights, else ~/.cache/temper/weights)",
    }),
  ),
  MAX_BATCH_ROWS: limit(64, 65_536, "rows (prompt × completion) per engine batch"),
  KV_CACHE_BYTES: env.optional(
    env.int({
      min: 1024,
      max: Number.MAX_SAFE_INTEGER,
      doc: "bytes the KV cache of one engine batch may take (unset: a quarter of the machine's memory, or of its cgroup limit); a Generate runs in waves of as many rows as fit, up to MAX_BATCH_ROWS, and one whose single row does not fit is RESOURCE_EXHAUSTED",
    }),
  ),
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
  ADAPTER_FETCH_MS: limit(
    60_000,
    3_600_000,
    "longest wait for an adapter from the object store before the call fails UNAVAILABLE (a torn object never arrives)",
  ),
  MAX_CALLS_PER_CALLER: limit(
    1,
    65_536,
    "Generate calls one authenticated identity may have queued or running at once (CALLER_CALL_LIMITS overrides it by name; anonymous plaintext callers are not counted)",
  ),
  CALLER_CALL_LIMITS: {
    doc: "per-identity exceptions to MAX_CALLS_PER_CALLER, e.g. orchestrator=64 (it drives several runs at once)",
    kind: "NAME=N,...",
    default: new Map<string, number>(),
    parse(raw: string): Map<string, number> {
      const out = new Map<string, number>();
      for (const entry of raw
        .split(",")
        .map((e) => e.trim())
        .filter(Boolean)) {
        const m = /^([A-Za-z0-9._-]{1,64})=(\d{1,5})$/.exec(entry);
        if (!m || Number(m[2]) < 1)
          throw new Error(`expected NAME=N with N ≥ 1, got ${JSON.stringify(entry.slice(0, 80))}`);
        out.set(m[1], Number(m[2]));
      }
      return out;
    },
  },
};

export const declaration = {
  name: "rollout",
  defaultPort: 15070,
  api: rollout.RolloutServiceService,
  config,
  nats: true,
} satisfies ServiceDeclaration<typeof config>;
