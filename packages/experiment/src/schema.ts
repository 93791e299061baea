// The experiment file's schema.
//
// Schema library: zod (v4). Why: strict objects reject unknown keys at every level; each issue
// carries the exact path of the offending field, which source.ts maps back to a YAML line; defaults
// live next to the field they belong to (`.default`, `.prefault` for sections), so a successful
// parse *is* the resolved object with every default written out; and the TypeScript type of that
// object is inferred from the schema, so the schema, the types and the defaults cannot drift apart.
// ajv would need the JSON Schema and the TypeScript types written twice; valibot is smaller but
// its issue paths and defaults offer nothing zod lacks here, and zod is what most TypeScript
// users already read.
//
// Cross-field rules (defaults that depend on other fields, the structure's own checks, data and
// model checks) live in resolve.ts. Keys are snake_case; enums are the proto enum names in lower
// case without their prefix.
import { DEFAULT_INSTRUCTION } from "@temper/gsm8k";
import {
  DEFAULT_ALPHA_END,
  DEFAULT_ALPHA_START,
  DEFAULT_EMA_DECAY,
  DEFAULT_HYBRID_ALPHA,
  DEFAULT_MAX_TOKENS,
  DEFAULT_MIN_TOKENS,
  DEFAULT_SIGMOID_K,
  DEFAULT_TARGET_ACCURACY,
  MAX_PERPLEXITY_TAU,
  MAX_SIGMOID_K,
  MIN_PERPLEXITY_TAU,
  MIN_SIGMOID_K,
  SOURCE_COMPONENTS,
} from "@temper/rewards";
import { z } from "zod";

export const U32 = 2 ** 32 - 1;
export const STRUCTURES = ["hard", "continuous", "hybrid", "adaptive"] as const;
export const SCHEDULE_SHAPES = ["constant", "linear", "cosine", "step", "sigmoid"] as const;
export const ADVANTAGE_SCALES = ["group", "batch", "none"] as const;
export const FAILURE_POLICIES = ["skip", "fail"] as const;
/** `permute`: each step's rewards shuffled across the batch (under the run's seed) before advantages. */
export const CONTROLS = ["none", "permute"] as const;
/** `service`: the perplexity service's own default (PERPLEXITY_MODE_UNSPECIFIED). */
export const PERPLEXITY_MODES = ["service", "logprobs", "reference"] as const;
export const LR_SCHEDULES = ["constant", "linear", "cosine"] as const;
/** SFT is the learner's other loss; an RL run trains with GRPO. */
export const LOSS_TYPES = ["grpo"] as const;
export const LOSS_AGGREGATIONS = ["token", "sequence"] as const;
/** Qwen3's LoRA targets (the learner's LORA_MODULES, in its order); `q` stands for `q_proj`. */
export const LORA_MODULES = [
  "q_proj",
  "k_proj",
  "v_proj",
  "o_proj",
  "gate_proj",
  "up_proj",
  "down_proj",
] as const;
export const SOURCE_NAMES = Object.keys(SOURCE_COMPONENTS) as [string, ...string[]];
/** Run names label variants and name run directories. */
export const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
const ENDPOINT_PATTERN = /^(?:[A-Za-z0-9.\-_]+|\[[0-9a-fA-F:]+\]):(\d{1,5})$/;

export const DEFAULTS = {
  promptsPerStep: 8,
  completionsPerPrompt: 8,
  seed: 0,
  maxNewTokens: 256,
  loraRank: 16,
  sourceTimeoutMs: 5000,
  evalSize: 200,
  samplesPerStep: 4,
} as const;

const int = (min: number, max = U32) => z.int().min(min).max(max);
const unit = z.number().min(0).max(1);
const nonEmpty = z.string().min(1);

export const NameSchema = z
  .string()
  .regex(NAME_PATTERN, "must be 1–64 of A-Z a-z 0-9 _ . - starting with a letter or digit");

const TimeScheduleSchema = z.strictObject({
  shape: z.enum(SCHEDULE_SHAPES).default("linear"),
  alpha_start: unit.default(DEFAULT_ALPHA_START),
  alpha_end: unit.default(DEFAULT_ALPHA_END),
  /** Default: the run's steps. */
  total_steps: int(1).optional(),
  milestones: z.array(int(0)).default([]),
  sigmoid_k: z.number().min(MIN_SIGMOID_K).max(MAX_SIGMOID_K).default(DEFAULT_SIGMOID_K),
});

const ProgressScheduleSchema = z.strictObject({
  alpha_min: unit.default(DEFAULT_ALPHA_START),
  alpha_max: unit.default(DEFAULT_ALPHA_END),
  target_accuracy: z.number().gt(0).max(1).default(DEFAULT_TARGET_ACCURACY),
  ema_decay: z.number().min(0).lt(1).default(DEFAULT_EMA_DECAY),
});

export const RewardSchema = z.strictObject({
  structure: z.enum(STRUCTURES),
  /** Continuous weights (continuous, hybrid, adaptive); empty or absent: the default weights. */
  weights: z.record(z.string(), z.number()).optional(),
  hybrid: z.strictObject({ alpha: unit.default(DEFAULT_HYBRID_ALPHA) }).optional(),
  adaptive: z
    .strictObject({
      time: TimeScheduleSchema.optional(),
      progress: ProgressScheduleSchema.optional(),
      fallback: z.boolean().default(true),
    })
    .optional(),
  advantage_scale: z.enum(ADVANTAGE_SCALES).default("group"),
  failure_policy: z.enum(FAILURE_POLICIES).default("skip"),
  /** A control run of the structure: `permute` destroys its learning signal and keeps its rewards. */
  control: z.enum(CONTROLS).default("none"),
  source_timeout_ms: int(1, 600_000).default(DEFAULTS.sourceTimeoutMs),
  /** Source name → host:port, overriding the scheduler's defaults for this run. */
  sources: z
    .partialRecord(z.enum(SOURCE_NAMES), z.string().regex(ENDPOINT_PATTERN, "must be host:port"))
    .default({}),
  params: z
    .strictObject({
      perplexity_tau: z.number().min(MIN_PERPLEXITY_TAU).max(MAX_PERPLEXITY_TAU).default(1),
      min_tokens: int(0).default(DEFAULT_MIN_TOKENS),
      max_tokens: int(1).default(DEFAULT_MAX_TOKENS),
      perplexity_mode: z.enum(PERPLEXITY_MODES).default("service"),
    })
    .prefault({}),
});

export const ExperimentSchema = z.strictObject({
  name: NameSchema,
  model: nonEmpty,
  data: z.strictObject({ train: nonEmpty, eval: nonEmpty }),
  steps: int(1, 1_000_000),
  prompts_per_step: int(1, 65_536).default(DEFAULTS.promptsPerStep),
  completions_per_prompt: int(2, 4096).default(DEFAULTS.completionsPerPrompt),
  seed: int(0, Number.MAX_SAFE_INTEGER).default(DEFAULTS.seed),
  instruction: z.string().default(DEFAULT_INSTRUCTION),
  chat: z.boolean().default(false),
  enable_thinking: z.boolean().default(false),
  sampling: z
    .strictObject({
      temperature: z.number().gt(0).max(100).default(1),
      top_k: int(0).default(0),
      top_p: z.number().gt(0).max(1).default(1),
      max_new_tokens: int(1, 1 << 20).default(DEFAULTS.maxNewTokens),
      stop: z.array(nonEmpty).default([]),
    })
    .prefault({}),
  reward: RewardSchema,
  lora: z
    .strictObject({
      rank: int(1, 4096).default(DEFAULTS.loraRank),
      /** Default 2 × rank. */
      alpha: z.number().gt(0).optional(),
      /** Default all seven. */
      target_modules: z.array(nonEmpty).min(1).optional(),
      use_rslora: z.boolean().default(false),
    })
    .prefault({}),
  optimizer: z.strictObject({
    learning_rate: z.number().gt(0).max(1),
    schedule: z.enum(LR_SCHEDULES).default("constant"),
    warmup_steps: int(0).default(0),
    /** Default steps × mini_batches × iterations (the optimizer updates of the run). */
    total_steps: int(1).optional(),
    min_lr_ratio: unit.default(0),
    weight_decay: z.number().min(0).default(0),
    beta1: z.number().min(0).lt(1).default(0.9),
    beta2: z.number().min(0).lt(1).default(0.999),
    epsilon: z.number().min(0).default(1e-8),
    max_grad_norm: z.number().min(0).default(1),
  }),
  loss: z
    .strictObject({
      type: z.enum(LOSS_TYPES).default("grpo"),
      eps_low: z.number().min(0).lt(1).default(0.2),
      eps_high: z.number().min(0).default(0.2),
      beta: z.number().min(0).default(0),
      aggregation: z.enum(LOSS_AGGREGATIONS).default("token"),
    })
    .prefault({}),
  micro_batch_size: int(0, 1 << 20).default(0),
  mini_batches: int(1, 1024).default(1),
  iterations: int(1, 1024).default(1),
  drop_zero_signal_groups: z.boolean().default(false),
  samples_per_step: int(0).default(DEFAULTS.samplesPerStep),
  eval: z
    .strictObject({
      every: int(0).default(0),
      size: int(1).default(DEFAULTS.evalSize),
      baseline: z.boolean().default(true),
      /** Default sampling.max_new_tokens. */
      max_new_tokens: int(1, 1 << 20).optional(),
      maj_k: int(0, 1024).default(0),
    })
    .prefault({}),
});

/** What the schema yields (defaults that depend on other fields still open). */
export type ParsedExperiment = z.output<typeof ExperimentSchema>;

type Time = z.output<typeof TimeScheduleSchema>;
type Progress = z.output<typeof ProgressScheduleSchema>;

/** The reward section as resolved: only the settings of the chosen structure, all written out. */
export type ResolvedReward = Omit<ParsedExperiment["reward"], "weights" | "hybrid" | "adaptive"> & {
  weights?: Record<string, number>;
  hybrid?: { alpha: number };
  adaptive?: { time?: Required<Time>; progress?: Progress; fallback: boolean };
};

/** The experiment with every default written out and paths absolute (spec.yaml's content). */
export type ResolvedExperiment = Omit<ParsedExperiment, "reward" | "lora" | "optimizer" | "eval"> & {
  reward: ResolvedReward;
  lora: Required<ParsedExperiment["lora"]>;
  optimizer: Required<ParsedExperiment["optimizer"]>;
  eval: Required<ParsedExperiment["eval"]>;
};

/** The schema of the field at `path` (through optionals and defaults), if the path is in it. */
// biome-ignore lint/suspicious/noExplicitAny: walking zod's internal definitions
function schemaAt(path: readonly (string | number)[]): any {
  // biome-ignore lint/suspicious/noExplicitAny: walking zod's internal definitions
  let s: any = ExperimentSchema;
  const unwrap = () => {
    while (s?._zod?.def?.innerType) s = s._zod.def.innerType;
  };
  unwrap();
  for (const seg of path) {
    const def = s?._zod?.def;
    if (def?.type === "object") s = def.shape[seg];
    else if (def?.type === "array") s = def.element;
    else if (def?.type === "record") s = def.valueType;
    else return undefined;
    unwrap();
  }
  return s;
}

/** The allowed keys of the mapping at `path` in the schema (for "unknown key" messages). */
export function keysAt(path: readonly (string | number)[]): string[] | undefined {
  const def = schemaAt(path)?._zod?.def;
  if (def?.type === "object") return Object.keys(def.shape);
  if (def?.type === "record" && Array.isArray(def.keyType?.options)) return def.keyType.options;
  return undefined;
}

/** Whether the field at `path` is an integer field. */
export function isIntAt(path: readonly (string | number)[]): boolean {
  const def = schemaAt(path)?._zod?.def;
  return def?.type === "number" && typeof def.format === "string" && def.format.includes("int");
}
