// An experiment (parsed YAML) → its resolved form (every default written out, paths absolute) and
// the orchestrator's RunSpec. Every problem is an ExperimentError naming the file and line.
import { readFileSync, statSync } from "node:fs";
import { resolve } from "node:path";
import { Gsm8kDataError, type Gsm8kExample, parseGsm8k, referenceValue } from "@temper/gsm8k";
import { HubError } from "@temper/hub";
import { learner, type orchestrator, reward, type rollout, scheduler } from "@temper/proto";
import {
  knownComponentNames,
  MAX_WEIGHT,
  MIN_WEIGHT,
  resolveStructure,
  type StructureInput,
} from "@temper/rewards";
import type { z } from "zod";
import { type ExperimentError, type PathSegment, show } from "./errors.ts";
import { dataPath, modelPath } from "./hub.ts";
import { completeRunSpec } from "./run-spec.ts";
import {
  ExperimentSchema,
  isIntAt,
  keysAt,
  LORA_MODULES,
  type ParsedExperiment,
  type ResolvedExperiment,
  type ResolvedReward,
} from "./schema.ts";
import { errorAt, type Origin } from "./source.ts";

export interface LoadOptions {
  /**
   * Check the model directory (it holds config.json) and the data files (GSM8K jsonl, at least
   * one step's prompts in train, one problem in eval). Default true; false where the files live
   * on another machine (the orchestrator checks them again there).
   */
  checkFiles?: boolean;
  /** Overrides checkFiles for the model directory alone. */
  checkModel?: boolean;
  /** Overrides checkFiles for the data files alone. */
  checkData?: boolean;
}

export interface LoadedExperiment {
  /** The orchestrator's RunSpec, complete (run_id left empty). */
  spec: orchestrator.RunSpec;
  /** The experiment with every default written out and absolute paths: spec.yaml's content. */
  resolved: ResolvedExperiment;
}

/** Data files read once per load (a comparison's variants share them). */
export type DataCache = Map<string, Gsm8kExample[]>;

type Fail = (path: PathSegment[], problem: string) => ExperimentError;

const describeType: Record<string, string> = {
  int: "an integer",
  number: "a number",
  string: "a string",
  boolean: "true or false",
  object: "a mapping",
  record: "a mapping",
  array: "a list",
};

/** One zod issue → the path and problem of its message. */
function issueMessage(iss: z.core.$ZodIssue & { input?: unknown; received?: string }): {
  path: PathSegment[];
  problem: string;
} {
  const path = iss.path.map((p) => (typeof p === "symbol" ? String(p) : p));
  const got = iss.received ?? show(iss.input);
  switch (iss.code) {
    case "invalid_type":
      if (iss.input === undefined && iss.received === undefined) return { path, problem: "is required" };
      return {
        path,
        problem: `must be ${describeType[iss.expected === "number" && isIntAt(path) ? "int" : iss.expected] ?? iss.expected}, got ${got}`,
      };
    case "too_small":
      if (iss.origin === "array")
        return { path, problem: `must have at least ${iss.minimum} item${iss.minimum === 1 ? "" : "s"}` };
      if (iss.origin === "string") return { path, problem: "must not be empty" };
      return { path, problem: `must be ${iss.inclusive ? "≥" : ">"} ${iss.minimum}, got ${got}` };
    case "too_big":
      if (iss.origin === "array") return { path, problem: `must have at most ${iss.maximum} items` };
      return { path, problem: `must be ${iss.inclusive ? "≤" : "<"} ${iss.maximum}, got ${got}` };
    case "unrecognized_keys": {
      const keys = keysAt(path);
      return {
        path: [...path, iss.keys[0]],
        problem: `unknown key${keys ? ` (expected one of ${keys.join(", ")})` : ""}`,
      };
    }
    case "invalid_value":
      if (iss.input === undefined)
        return { path, problem: `is required (one of ${iss.values.map(String).join(" | ")})` };
      return { path, problem: `must be one of ${iss.values.map(String).join(" | ")}, got ${got}` };
    case "invalid_format":
      return { path, problem: `${iss.message}, got ${got}` };
    default:
      return { path, problem: iss.message };
  }
}

/** The schema's first problem, by line (then by field order), as an ExperimentError. */
function schemaParse(value: unknown, origins: readonly Origin[]): ParsedExperiment {
  const r = ExperimentSchema.safeParse(value, { reportInput: true });
  if (r.success) return r.data;
  const errors = r.error.issues.map((iss) => {
    const { path, problem } = issueMessage(iss as Parameters<typeof issueMessage>[0]);
    return errorAt(origins, path, problem);
  });
  errors.sort((a, b) => a.line - b.line);
  throw errors[0];
}

const enumOf = <T extends Record<string, string | number>>(e: T, prefix: string, name: string): T[keyof T] =>
  e[`${prefix}_${name.toUpperCase()}` as keyof T];

/** Checks that need more than one field, and the defaults that depend on other fields. */
function crossCheck(p: ParsedExperiment, fail: Fail): ResolvedExperiment {
  if (p.enable_thinking && !p.chat)
    throw fail(["enable_thinking"], "needs chat: true (it switches the chat template's thinking mode)");
  const batch = p.prompts_per_step * p.completions_per_prompt;
  if (p.mini_batches > batch)
    throw fail(
      ["mini_batches"],
      `must be ≤ prompts_per_step × completions_per_prompt (${batch}), got ${p.mini_batches}`,
    );
  if (p.samples_per_step > batch)
    throw fail(
      ["samples_per_step"],
      `must be ≤ prompts_per_step × completions_per_prompt (${batch}), got ${p.samples_per_step}`,
    );
  if (p.eval.maj_k === 1) throw fail(["eval", "maj_k"], "must be 0 (off) or ≥ 2, got 1");

  // LoRA targets: `q` or `q_proj`, no duplicates, written out in the learner's order.
  let targets: string[] = [...LORA_MODULES];
  if (p.lora.target_modules) {
    const chosen = new Set<string>();
    p.lora.target_modules.forEach((m, i) => {
      const full = m.endsWith("_proj") ? m : `${m}_proj`;
      if (!(LORA_MODULES as readonly string[]).includes(full))
        throw fail(
          ["lora", "target_modules", i],
          `unknown module ${show(m)} (expected one of ${LORA_MODULES.join(", ")})`,
        );
      if (chosen.has(full)) throw fail(["lora", "target_modules", i], `duplicate module ${full}`);
      chosen.add(full);
    });
    targets = LORA_MODULES.filter((m) => chosen.has(m));
  }

  const o = p.optimizer;
  const updates = p.steps * p.mini_batches * p.iterations;
  const totalSteps = o.total_steps ?? updates;
  if (o.schedule !== "constant" && o.warmup_steps > totalSteps)
    throw fail(
      ["optimizer", "warmup_steps"],
      `must be ≤ optimizer.total_steps (${totalSteps}${o.total_steps === undefined ? " = steps × mini_batches × iterations" : ""}), got ${o.warmup_steps}`,
    );

  const rp = p.reward.params;
  if (rp.max_tokens < rp.min_tokens)
    throw fail(
      ["reward", "params", "max_tokens"],
      `must be ≥ min_tokens (${rp.min_tokens}), got ${rp.max_tokens}`,
    );

  return {
    ...p,
    reward: resolveReward(p, fail),
    lora: {
      rank: p.lora.rank,
      alpha: p.lora.alpha ?? 2 * p.lora.rank,
      target_modules: targets,
      use_rslora: p.lora.use_rslora,
    },
    optimizer: { ...o, total_steps: totalSteps },
    eval: { ...p.eval, max_new_tokens: p.eval.max_new_tokens ?? p.sampling.max_new_tokens },
  };
}

/** The reward section: the chosen structure's settings only, checked, every default written out. */
function resolveReward(p: ParsedExperiment, fail: Fail): ResolvedReward {
  const r = p.reward;
  const { weights: _w, hybrid: _h, adaptive: _a, ...common } = r;
  const out: ResolvedReward = { ...common };
  const kind = r.structure;

  if (kind !== "hard") {
    const known = knownComponentNames();
    const w = r.weights ?? {};
    let sum = 0;
    for (const [name, v] of Object.entries(w)) {
      if (!known.has(name))
        throw fail(
          ["reward", "weights", name],
          "unknown component (expected correctness_soft, reasoning, consistency, perplexity, ... or source.component)",
        );
      if (v < 0) throw fail(["reward", "weights", name], `must be ≥ 0, got ${v}`);
      if (v !== 0 && (v < MIN_WEIGHT || v > MAX_WEIGHT))
        throw fail(["reward", "weights", name], `must be 0 or in [${MIN_WEIGHT}, ${MAX_WEIGHT}], got ${v}`);
      sum += v;
    }
    if (Object.keys(w).length > 0 && !(sum > 0)) throw fail(["reward", "weights"], "weights sum to zero");
  }

  let input: StructureInput;
  if (kind === "hard") input = { kind };
  else if (kind === "continuous") input = { kind, weights: r.weights };
  else if (kind === "hybrid")
    input = { kind, alpha: r.hybrid?.alpha ?? 0.5, continuous: { weights: r.weights } };
  else {
    const a = r.adaptive ?? { fallback: true };
    if (a.time && a.progress)
      throw fail(["reward", "adaptive"], "takes one schedule: time or progress, not both");
    if (a.progress) {
      const s = a.progress;
      if (s.alpha_max < s.alpha_min)
        throw fail(
          ["reward", "adaptive", "progress", "alpha_max"],
          `must be ≥ alpha_min (${s.alpha_min}), got ${s.alpha_max}`,
        );
      input = {
        kind,
        fallback: a.fallback,
        continuous: { weights: r.weights },
        schedule: {
          kind: "progress",
          alphaMin: s.alpha_min,
          alphaMax: s.alpha_max,
          targetAccuracy: s.target_accuracy,
          emaDecay: s.ema_decay,
        },
      };
      out.adaptive = { progress: { ...s }, fallback: a.fallback };
    } else {
      const t = a.time ?? {
        shape: "linear" as const,
        alpha_start: 0.2,
        alpha_end: 0.9,
        milestones: [],
        sigmoid_k: 10,
      };
      const time = { ...t, total_steps: t.total_steps ?? p.steps };
      if (time.shape === "step" && time.milestones.length === 0)
        throw fail(
          ["reward", "adaptive", "time", "milestones"],
          "the step shape needs at least one milestone",
        );
      time.milestones.forEach((m, i) => {
        if (m >= p.steps)
          throw fail(
            ["reward", "adaptive", "time", "milestones", i],
            `is never reached: steps are numbered 0 to ${p.steps - 1}, got ${m}`,
          );
      });
      input = {
        kind,
        fallback: a.fallback,
        continuous: { weights: r.weights },
        schedule: {
          kind: "time",
          shape: time.shape,
          alphaStart: time.alpha_start,
          alphaEnd: time.alpha_end,
          totalSteps: time.total_steps,
          milestones: time.milestones,
          sigmoidK: time.sigmoid_k,
        },
      };
      out.adaptive = { time: { ...time, milestones: [...time.milestones] }, fallback: a.fallback };
    }
  }

  // The reward library's own validation (what the scheduler runs at Configure), as a last net.
  const checked = resolveStructure(input, { field: "reward" });
  if (!checked.ok) {
    const field = checked.error.field
      .replace(/^reward\.(?:continuous|hybrid\.continuous|adaptive\.continuous)\.weights/, "reward.weights")
      .replace(/^reward\.kind$/, "reward.structure");
    throw fail(parsePath(field), checked.error.message);
  }
  const s = checked.value;
  if (s.kind !== "hard") out.weights = { ...s.weights };
  if (s.kind === "hybrid") out.hybrid = { alpha: s.alpha };
  return out;
}

/** `reward.weights["a.b"]` → ["reward", "weights", "a.b"]. */
function parsePath(field: string): PathSegment[] {
  const out: PathSegment[] = [];
  for (const m of field.matchAll(/([A-Za-z_][A-Za-z0-9_]*)|\["([^"]*)"\]|\[(\d+)\]/g))
    out.push(m[3] !== undefined ? Number(m[3]) : (m[1] ?? m[2]));
  return out;
}

/** Examples of a GSM8K jsonl file, or the problem (`file:line: ...`) that stops it being one. */
function readData(abs: string, shown: string, cache: DataCache): Gsm8kExample[] | string {
  const hit = cache.get(abs);
  if (hit) return hit;
  let text: string;
  try {
    if (!statSync(abs).isFile()) return `${shown}: not a file`;
    text = readFileSync(abs, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return code === "ENOENT" ? `${shown}: file not found (${abs})` : `${shown}: cannot read (${code})`;
  }
  let examples: Gsm8kExample[];
  try {
    examples = parseGsm8k(text, shown);
  } catch (err) {
    if (err instanceof Gsm8kDataError) return err.message;
    throw err;
  }
  // Every reference must carry a numeric answer ("#### N"), or correctness cannot be scored.
  const lines = text.split("\n");
  let k = 0;
  for (let i = 0; i < lines.length; i++) {
    if (lines[i].trim() === "") continue;
    if (referenceValue(examples[k].answer) === null)
      return `${shown}:${i + 1}: "answer" has no numeric final answer ("#### N")`;
    k++;
  }
  cache.set(abs, examples);
  return examples;
}

function checkModel(r: ResolvedExperiment, raw: ParsedExperiment, fail: Fail): void {
  let st: ReturnType<typeof statSync> | undefined;
  try {
    st = statSync(r.model);
  } catch {
    throw fail(["model"], `directory ${show(raw.model)} does not exist (${r.model})`);
  }
  if (!st.isDirectory()) throw fail(["model"], `${show(raw.model)} is not a directory (${r.model})`);
  try {
    if (!statSync(resolve(r.model, "config.json")).isFile()) throw new Error();
  } catch {
    throw fail(["model"], `${show(raw.model)} has no config.json (not a Hugging Face model directory)`);
  }
}

function checkData(r: ResolvedExperiment, raw: ParsedExperiment, fail: Fail, cache: DataCache): void {
  for (const split of ["train", "eval"] as const) {
    const got = readData(r.data[split], raw.data[split], cache);
    if (typeof got === "string") throw fail(["data", split], got);
    if (split === "train" && got.length < r.prompts_per_step)
      throw fail(
        ["data", "train"],
        `${raw.data.train} holds ${got.length} problems, fewer than one step's prompts_per_step (${r.prompts_per_step})`,
      );
    if (split === "eval" && got.length < 1)
      throw fail(["data", "eval"], `${raw.data.eval} holds no problems`);
  }
}

/** The resolved experiment as the orchestrator's RunSpec. */
export function toRunSpec(r: ResolvedExperiment): orchestrator.RunSpec {
  const rw = r.reward;
  const continuous = { weights: { ...(rw.weights ?? {}) } };
  let structure: scheduler.Structure;
  if (rw.structure === "hard") structure = { kind: { $case: "hard", value: {} } };
  else if (rw.structure === "continuous") structure = { kind: { $case: "continuous", value: continuous } };
  else if (rw.structure === "hybrid")
    structure = { kind: { $case: "hybrid", value: { alpha: rw.hybrid?.alpha, continuous } } };
  else {
    const a = rw.adaptive;
    const t = a?.time;
    const pr = a?.progress;
    const schedule: scheduler.AdaptiveStructure["schedule"] = t
      ? {
          $case: "time",
          value: {
            shape: enumOf(scheduler.ScheduleShape, "SCHEDULE_SHAPE", t.shape),
            alphaStart: t.alpha_start,
            alphaEnd: t.alpha_end,
            totalSteps: t.total_steps,
            milestones: [...t.milestones],
            sigmoidK: t.sigmoid_k,
          },
        }
      : pr
        ? {
            $case: "progress",
            value: {
              alphaMin: pr.alpha_min,
              alphaMax: pr.alpha_max,
              targetAccuracy: pr.target_accuracy,
              emaDecay: pr.ema_decay,
            },
          }
        : undefined;
    structure = {
      kind: { $case: "adaptive", value: { schedule, fallback: a?.fallback ?? true, continuous } },
    };
  }
  const mode = rw.params.perplexity_mode;
  const spec: orchestrator.RunSpec = {
    runId: "",
    name: r.name,
    model: r.model,
    trainData: r.data.train,
    evalData: r.data.eval,
    steps: r.steps,
    promptsPerStep: r.prompts_per_step,
    completionsPerPrompt: r.completions_per_prompt,
    seed: r.seed,
    sampling: {
      temperature: r.sampling.temperature,
      topK: r.sampling.top_k,
      topP: r.sampling.top_p,
      maxNewTokens: r.sampling.max_new_tokens,
      stop: [...r.sampling.stop],
      seed: r.seed,
    } satisfies rollout.SamplingParams,
    chat: r.chat,
    enableThinking: r.enable_thinking,
    instruction: r.instruction,
    reward: {
      runId: "",
      structure,
      sources: { ...rw.sources } as Record<string, string>,
      advantageScale: enumOf(scheduler.AdvantageScale, "ADVANTAGE_SCALE", rw.advantage_scale),
      failurePolicy: enumOf(scheduler.FailurePolicy, "FAILURE_POLICY", rw.failure_policy),
      control: enumOf(scheduler.RewardControl, "REWARD_CONTROL", rw.control),
      // the run's seed: the control's shuffle reproduces with the run
      controlSeed: rw.control === "permute" ? r.seed : 0,
      sourceTimeoutMs: rw.source_timeout_ms,
      params: {
        perplexityTau: rw.params.perplexity_tau,
        minTokens: rw.params.min_tokens,
        maxTokens: rw.params.max_tokens,
        perplexityMode:
          mode === "service"
            ? reward.PerplexityMode.PERPLEXITY_MODE_UNSPECIFIED
            : enumOf(reward.PerplexityMode, "PERPLEXITY_MODE", mode),
      },
    },
    training: {
      model: r.model,
      lora: {
        rank: r.lora.rank,
        alpha: r.lora.alpha,
        targetModules: [...r.lora.target_modules],
        useRslora: r.lora.use_rslora,
      },
      optimizer: {
        learningRate: r.optimizer.learning_rate,
        beta1: r.optimizer.beta1,
        beta2: r.optimizer.beta2,
        epsilon: r.optimizer.epsilon,
        weightDecay: r.optimizer.weight_decay,
        maxGradNorm: r.optimizer.max_grad_norm,
        schedule: enumOf(learner.LrSchedule, "LR_SCHEDULE", r.optimizer.schedule),
        warmupSteps: r.optimizer.warmup_steps,
        totalSteps: r.optimizer.total_steps,
        minLrRatio: r.optimizer.min_lr_ratio,
      },
      loss: {
        type: enumOf(learner.LossType, "LOSS_TYPE", r.loss.type),
        epsLow: r.loss.eps_low,
        epsHigh: r.loss.eps_high,
        beta: r.loss.beta,
        aggregation: enumOf(learner.LossAggregation, "LOSS_AGGREGATION", r.loss.aggregation),
      },
      microBatchSize: r.micro_batch_size,
      miniBatches: r.mini_batches,
      iterations: r.iterations,
      temperature: 0, // completeRunSpec
      seed: 0,
    },
    eval: {
      every: r.eval.every,
      size: r.eval.size,
      baseline: r.eval.baseline,
      maxNewTokens: r.eval.max_new_tokens,
      majK: r.eval.maj_k,
    },
    dropZeroSignalGroups: r.drop_zero_signal_groups,
    samplesPerStep: r.samples_per_step,
  };
  return completeRunSpec(spec, { runId: "" });
}

/**
 * Resolves one experiment's plain data. `origins` say where its values came from (the variant
 * first, then the base, for a comparison); relative paths resolve against `baseDir`.
 */
export function resolveValue(
  value: unknown,
  origins: readonly Origin[],
  baseDir: string,
  opts: LoadOptions = {},
  cache: DataCache = new Map(),
): LoadedExperiment {
  const fail: Fail = (path, problem) => errorAt(origins, path, problem);
  if (typeof value !== "object" || value === null || Array.isArray(value))
    throw fail([], `must be a mapping of experiment settings, got ${show(value)}`);
  const parsed = schemaParse(value, origins);
  const checked = crossCheck(parsed, fail);
  const checkingModel = opts.checkModel ?? opts.checkFiles ?? true;
  const checkingData = opts.checkData ?? opts.checkFiles ?? true;
  const resolved = orderKeys({
    ...checked,
    model: hubOrPath(() => modelPath(baseDir, parsed.model), ["model"], checkingModel, parsed.model, fail),
    data: {
      train: hubOrPath(
        () => dataPath(baseDir, parsed.data.train),
        ["data", "train"],
        checkingData,
        parsed.data.train,
        fail,
      ),
      eval: hubOrPath(
        () => dataPath(baseDir, parsed.data.eval),
        ["data", "eval"],
        checkingData,
        parsed.data.eval,
        fail,
      ),
    },
  });
  if (checkingModel) checkModel(resolved, parsed, fail);
  if (checkingData) checkData(resolved, parsed, fail, cache);
  return { spec: toRunSpec(resolved), resolved };
}

/**
 * A Hub id or hf:// URL answered from the Hub cache (a miss is the field's error where files are
 * checked; elsewhere the value stays as written, for the machine that runs it), or a path.
 */
function hubOrPath(
  find: () => string,
  path: PathSegment[],
  checking: boolean,
  raw: string,
  fail: Fail,
): string {
  try {
    return find();
  } catch (err) {
    if (!(err instanceof HubError)) throw err;
    if (checking) throw fail(path, err.message);
    return raw;
  }
}

/** Mappings with their keys in the schema's (documented) order, for a readable spec.yaml. */
function orderKeys<T>(value: T, path: PathSegment[] = []): T {
  if (Array.isArray(value)) return value.map((v, i) => orderKeys(v, [...path, i])) as T;
  if (typeof value !== "object" || value === null) return value;
  const v = value as Record<string, unknown>;
  const order = keysAt(path)?.filter((k) => k in v) ?? [];
  const keys = [...order, ...Object.keys(v).filter((k) => !order.includes(k))];
  const out: Record<string, unknown> = {};
  for (const k of keys) if (v[k] !== undefined) out[k] = orderKeys(v[k], [...path, k]);
  return out as T;
}
