// A run's configuration: proto RunConfig → ResolvedRunConfig (every default written out, checked),
// back to proto for responses, and the first differing field of two resolved configs (CreateRun of
// an existing run). Field paths in errors use the proto names: `config.optimizer.learning_rate`.
import { invalidArgument, quote } from "@temper/kit";
import { learner } from "@temper/proto";
import { LORA_MODULES, type LoraModule } from "@temper/qwen3";
import { LR_SCHEDULE_KINDS, type LrScheduleKind } from "@temper/training";

export interface ResolvedRunConfig {
  /** The model directory the learner serves (whatever form the request named it in). */
  model: string;
  lora: { rank: number; alpha: number; targetModules: LoraModule[]; useRslora: boolean };
  optimizer: {
    learningRate: number;
    beta1: number;
    beta2: number;
    epsilon: number;
    weightDecay: number;
    maxGradNorm: number;
    schedule: LrScheduleKind;
    warmupSteps: number;
    totalSteps: number;
    minLrRatio: number;
  };
  loss: {
    type: "grpo" | "sft";
    epsLow: number;
    epsHigh: number;
    beta: number;
    aggregation: "token" | "sequence";
  };
  microBatchSize: number;
  miniBatches: number;
  iterations: number;
  temperature: number;
  seed: number;
}

/** Upper bounds that keep a config sane (the proto allows more). */
const MAX_RANK = 4096;
const MAX_LOOP = 1024;

const SCHEDULES: Record<number, LrScheduleKind> = {
  [learner.LrSchedule.LR_SCHEDULE_UNSPECIFIED]: "constant",
  [learner.LrSchedule.LR_SCHEDULE_CONSTANT]: "constant",
  [learner.LrSchedule.LR_SCHEDULE_LINEAR]: "linear",
  [learner.LrSchedule.LR_SCHEDULE_COSINE]: "cosine",
};

/**
 * Resolves defaults and checks every field. `modelMatches(name)` says whether a non-empty
 * `config.model` names the served model (its path or content hash).
 */
export async function resolveRunConfig(
  config: learner.RunConfig | undefined,
  modelDir: string,
  modelMatches: (name: string) => Promise<boolean>,
): Promise<ResolvedRunConfig> {
  if (!config) throw invalidArgument("config", "is required (at least optimizer.learning_rate)");
  const num = (
    v: number | undefined,
    def: number,
    path: string,
    ok: (x: number) => boolean,
    want: string,
  ) => {
    const x = v ?? def;
    if (!Number.isFinite(x) || !ok(x)) throw invalidArgument(path, `must be ${want}, got ${x}`);
    return x;
  };
  const int = (v: number, path: string, min: number, max: number) => {
    if (!Number.isSafeInteger(v) || v < min || v > max)
      throw invalidArgument(path, `must be an integer in [${min}, ${max}], got ${v}`);
    return v;
  };
  if (config.model !== "" && !(await modelMatches(config.model)))
    throw invalidArgument(
      "config.model",
      `must be empty, the learner's model directory ${JSON.stringify(modelDir)} or its content hash, got ${JSON.stringify(config.model.slice(0, 200))}`,
    );

  const lora = config.lora;
  const rank = lora?.rank ? int(lora.rank, "config.lora.rank", 1, MAX_RANK) : 16;
  const alpha = num(lora?.alpha, 2 * rank, "config.lora.alpha", (x) => x > 0, "a finite number > 0");
  let targetModules: LoraModule[] = [...LORA_MODULES];
  if (lora && lora.targetModules.length > 0) {
    const chosen = new Set<string>();
    lora.targetModules.forEach((m, i) => {
      const full = m.endsWith("_proj") ? m : `${m}_proj`;
      if (!(LORA_MODULES as readonly string[]).includes(full))
        throw invalidArgument(
          `config.lora.target_modules[${i}]`,
          `unknown module ${quote(m)} (expected one of ${LORA_MODULES.join(", ")})`,
        );
      if (chosen.has(full)) throw invalidArgument(`config.lora.target_modules[${i}]`, `duplicate ${full}`);
      chosen.add(full);
    });
    targetModules = LORA_MODULES.filter((m) => chosen.has(m));
  }

  const o = config.optimizer;
  if (!o) throw invalidArgument("config.optimizer", "is required (learning_rate has no default)");
  const unit = (x: number) => x >= 0 && x < 1;
  const learningRate = num(
    o.learningRate,
    0,
    "config.optimizer.learning_rate",
    (x) => x > 0,
    "a finite number > 0",
  );
  const schedule = SCHEDULES[o.schedule];
  if (!schedule || !LR_SCHEDULE_KINDS.includes(schedule))
    throw invalidArgument("config.optimizer.schedule", `unknown schedule ${o.schedule}`);
  const warmupSteps = int(o.warmupSteps, "config.optimizer.warmup_steps", 0, 2 ** 31);
  const totalSteps = int(o.totalSteps, "config.optimizer.total_steps", 0, 2 ** 31);
  if (schedule !== "constant" && totalSteps < 1)
    throw invalidArgument("config.optimizer.total_steps", `is required (≥ 1) for a ${schedule} schedule`);
  if (schedule !== "constant" && totalSteps < warmupSteps)
    throw invalidArgument(
      "config.optimizer.total_steps",
      `(${totalSteps}) must be at least warmup_steps (${warmupSteps})`,
    );
  const optimizer = {
    learningRate,
    beta1: num(o.beta1, 0.9, "config.optimizer.beta1", unit, "in [0, 1)"),
    beta2: num(o.beta2, 0.999, "config.optimizer.beta2", unit, "in [0, 1)"),
    epsilon: num(o.epsilon, 1e-8, "config.optimizer.epsilon", (x) => x >= 0, "a finite number ≥ 0"),
    weightDecay: num(o.weightDecay, 0, "config.optimizer.weight_decay", (x) => x >= 0, "a finite number ≥ 0"),
    maxGradNorm: num(
      o.maxGradNorm,
      1,
      "config.optimizer.max_grad_norm",
      (x) => x >= 0,
      "a finite number ≥ 0 (0 disables clipping)",
    ),
    schedule,
    warmupSteps,
    totalSteps,
    minLrRatio: num(o.minLrRatio, 0, "config.optimizer.min_lr_ratio", (x) => x >= 0 && x <= 1, "in [0, 1]"),
  };

  const l = config.loss;
  const type =
    !l || l.type === learner.LossType.LOSS_TYPE_UNSPECIFIED || l.type === learner.LossType.LOSS_TYPE_GRPO
      ? "grpo"
      : l.type === learner.LossType.LOSS_TYPE_SFT
        ? "sft"
        : undefined;
  if (!type) throw invalidArgument("config.loss.type", `unknown loss type ${l?.type}`);
  const agg = l?.aggregation ?? 0;
  const aggregation =
    agg === learner.LossAggregation.LOSS_AGGREGATION_UNSPECIFIED ||
    agg === learner.LossAggregation.LOSS_AGGREGATION_TOKEN
      ? "token"
      : agg === learner.LossAggregation.LOSS_AGGREGATION_SEQUENCE
        ? "sequence"
        : undefined;
  if (!aggregation) throw invalidArgument("config.loss.aggregation", `unknown aggregation ${agg}`);
  const loss = {
    type,
    epsLow: num(l?.epsLow, 0.2, "config.loss.eps_low", (x) => x >= 0 && x < 1, "in [0, 1)"),
    epsHigh: num(l?.epsHigh, 0.2, "config.loss.eps_high", (x) => x >= 0, "a finite number ≥ 0"),
    beta: num(l?.beta, 0, "config.loss.beta", (x) => x >= 0, "a finite number ≥ 0"),
    aggregation,
  } as const;

  return {
    model: modelDir,
    lora: { rank, alpha, targetModules, useRslora: lora?.useRslora ?? false },
    optimizer,
    loss,
    microBatchSize: int(config.microBatchSize, "config.micro_batch_size", 0, 1 << 20),
    miniBatches: config.miniBatches ? int(config.miniBatches, "config.mini_batches", 1, MAX_LOOP) : 1,
    iterations: config.iterations ? int(config.iterations, "config.iterations", 1, MAX_LOOP) : 1,
    temperature: num(config.temperature, 1, "config.temperature", (x) => x > 0, "a finite number > 0"),
    seed: int(config.seed, "config.seed", 0, Number.MAX_SAFE_INTEGER),
  };
}

const PROTO_SCHEDULE: Record<LrScheduleKind, learner.LrSchedule> = {
  constant: learner.LrSchedule.LR_SCHEDULE_CONSTANT,
  linear: learner.LrSchedule.LR_SCHEDULE_LINEAR,
  cosine: learner.LrSchedule.LR_SCHEDULE_COSINE,
};

/** The resolved config as the proto message (every default explicit). */
export function toProtoConfig(c: ResolvedRunConfig): learner.RunConfig {
  return {
    model: c.model,
    lora: { ...c.lora, targetModules: [...c.lora.targetModules] },
    optimizer: { ...c.optimizer, schedule: PROTO_SCHEDULE[c.optimizer.schedule] },
    loss: {
      type: c.loss.type === "grpo" ? learner.LossType.LOSS_TYPE_GRPO : learner.LossType.LOSS_TYPE_SFT,
      epsLow: c.loss.epsLow,
      epsHigh: c.loss.epsHigh,
      beta: c.loss.beta,
      aggregation:
        c.loss.aggregation === "token"
          ? learner.LossAggregation.LOSS_AGGREGATION_TOKEN
          : learner.LossAggregation.LOSS_AGGREGATION_SEQUENCE,
    },
    microBatchSize: c.microBatchSize,
    miniBatches: c.miniBatches,
    iterations: c.iterations,
    temperature: c.temperature,
    seed: c.seed,
  };
}

const snake = (s: string) => s.replace(/[A-Z]/g, (ch) => `_${ch.toLowerCase()}`);

/** The proto path (`config.optimizer.learning_rate`) of the first field where a and b differ, or null. */
export function firstDifference(a: unknown, b: unknown, path = "config"): string | null {
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return path;
    for (let i = 0; i < a.length; i++) {
      const d = firstDifference(a[i], b[i], `${path}[${i}]`);
      if (d) return path;
    }
    return null;
  }
  if (typeof a === "object" && a !== null && typeof b === "object" && b !== null) {
    const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])];
    for (const k of keys) {
      const d = firstDifference(
        (a as Record<string, unknown>)[k],
        (b as Record<string, unknown>)[k],
        `${path}.${snake(k)}`,
      );
      if (d) return d;
    }
    return null;
  }
  return Object.is(a, b) ? null : path;
}
