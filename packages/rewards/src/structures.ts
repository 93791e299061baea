// Reward structures (hard, continuous, hybrid, adaptive), their validation and the α schedules.
// Input types mirror temper.scheduler.v1.Structure (optional fields = proto optionals); resolved
// types carry every default filled in.
import { knownComponentNames } from "./components.ts";
import { fieldError, type Result } from "./errors.ts";

export type ScheduleShape = "constant" | "linear" | "cosine" | "step" | "sigmoid";

export interface TimeScheduleInput {
  kind: "time";
  /** Default "linear". */
  shape?: ScheduleShape;
  /** Defaults 0.2 and 0.9. */
  alphaStart?: number;
  alphaEnd?: number;
  /** T in u = min(t/T, 1); required (> 0) for every shape but constant and step. */
  totalSteps?: number;
  /** Step shape: s rises by 1/len at each milestone step (t ≥ milestone). */
  milestones?: readonly number[];
  /** Sigmoid steepness k. Default 10. */
  sigmoidK?: number;
}

export interface ProgressScheduleInput {
  kind: "progress";
  /** Defaults 0.2 and 0.9. */
  alphaMin?: number;
  alphaMax?: number;
  /** Default 0.8. */
  targetAccuracy?: number;
  /** Default 0.9. */
  emaDecay?: number;
}

export interface ContinuousInput {
  /** Component name ("correctness_soft") or "source.component" → weight; empty or missing → DEFAULT_WEIGHTS. */
  weights?: Readonly<Record<string, number>>;
}

export type StructureInput =
  | { kind: "hard" }
  | ({ kind: "continuous" } & ContinuousInput)
  | { kind: "hybrid"; alpha?: number; continuous?: ContinuousInput }
  | {
      kind: "adaptive";
      schedule?: TimeScheduleInput | ProgressScheduleInput;
      fallback?: boolean;
      continuous?: ContinuousInput;
    };

export interface TimeSchedule {
  kind: "time";
  shape: ScheduleShape;
  alphaStart: number;
  alphaEnd: number;
  totalSteps: number;
  milestones: number[];
  sigmoidK: number;
}

export interface ProgressSchedule {
  kind: "progress";
  alphaMin: number;
  alphaMax: number;
  targetAccuracy: number;
  emaDecay: number;
}

export type Structure =
  | { kind: "hard" }
  | { kind: "continuous"; weights: Record<string, number> }
  | { kind: "hybrid"; alpha: number; weights: Record<string, number> }
  | {
      kind: "adaptive";
      schedule: TimeSchedule | ProgressSchedule;
      fallback: boolean;
      weights: Record<string, number>;
    };

/** The blueprint's continuous weights. */
export const DEFAULT_WEIGHTS: Readonly<Record<string, number>> = {
  correctness_soft: 0.4,
  reasoning: 0.25,
  consistency: 0.2,
  perplexity: 0.15,
};
export const DEFAULT_HYBRID_ALPHA = 0.5;
export const DEFAULT_ALPHA_START = 0.2;
export const DEFAULT_ALPHA_END = 0.9;
export const DEFAULT_SIGMOID_K = 10;
export const DEFAULT_TARGET_ACCURACY = 0.8;
export const DEFAULT_EMA_DECAY = 0.9;
/** A nonzero continuous weight lies in [MIN_WEIGHT, MAX_WEIGHT] (so w·c and Σw stay finite and nonzero). */
export const MIN_WEIGHT = 1e-6;
export const MAX_WEIGHT = 1e6;
/** sigmoid_k's range: smaller divides 0 by 0 when rescaling, larger overflows exp. */
export const MIN_SIGMOID_K = 1e-3;
export const MAX_SIGMOID_K = 1e3;

/** What the adaptive progress mode carries from step to step. */
export interface ScheduleState {
  /** EMA of the batch accuracy (mean correctness_hard); null before the first scored step. */
  accuracyEma: number | null;
}

export const INITIAL_SCHEDULE_STATE: ScheduleState = { accuracyEma: null };

export interface ResolveOptions {
  /** Field path prefix in errors. Default "structure". */
  field?: string;
  /** Accepted weight names; default every plain and "source.component" name of the four default sources. */
  knownComponents?: Iterable<string>;
}

const isUnit = (x: number) => Number.isFinite(x) && x >= 0 && x <= 1;

function resolveWeights(
  input: ContinuousInput | undefined,
  field: string,
  known: Set<string>,
): Result<Record<string, number>> {
  const w = input?.weights;
  if (!w || Object.keys(w).length === 0) return { ok: true, value: { ...DEFAULT_WEIGHTS } };
  let sum = 0;
  for (const [name, v] of Object.entries(w)) {
    // the caller's key, cut: an error message never carries a long input
    const f = `${field}.weights[${JSON.stringify(name.slice(0, 40))}${name.length > 40 ? "…" : ""}]`;
    if (!known.has(name)) return fieldError(f, "unknown component");
    if (typeof v !== "number" || !Number.isFinite(v)) return fieldError(f, "must be a finite number");
    if (v < 0) return fieldError(f, "must be ≥ 0");
    // A weight this small makes w·c underflow to 0 (every reward 0); this large, Σw overflows.
    if (v !== 0 && (v < MIN_WEIGHT || v > MAX_WEIGHT))
      return fieldError(f, `must be 0 or in [${MIN_WEIGHT}, ${MAX_WEIGHT}] (w·c would overflow), got ${v}`);
    sum += v;
  }
  if (!(sum > 0)) return fieldError(`${field}.weights`, "weights sum to zero");
  return { ok: true, value: { ...w } };
}

function resolveTime(s: TimeScheduleInput, field: string): Result<TimeSchedule> {
  const shape = s.shape ?? "linear";
  if (!["constant", "linear", "cosine", "step", "sigmoid"].includes(shape))
    return fieldError(`${field}.shape`, `unknown shape "${shape}"`);
  const alphaStart = s.alphaStart ?? DEFAULT_ALPHA_START;
  const alphaEnd = s.alphaEnd ?? DEFAULT_ALPHA_END;
  if (!isUnit(alphaStart)) return fieldError(`${field}.alpha_start`, "must be in [0, 1]");
  if (!isUnit(alphaEnd)) return fieldError(`${field}.alpha_end`, "must be in [0, 1]");
  const totalSteps = s.totalSteps ?? 0;
  if (!(Number.isInteger(totalSteps) && totalSteps >= 0))
    return fieldError(`${field}.total_steps`, "must be an integer ≥ 0");
  if ((shape === "linear" || shape === "cosine" || shape === "sigmoid") && totalSteps === 0) {
    return fieldError(`${field}.total_steps`, `must be > 0 for the ${shape} shape`);
  }
  const milestones = [...(s.milestones ?? [])];
  if (shape === "step") {
    if (milestones.length === 0)
      return fieldError(`${field}.milestones`, "the step shape needs at least one milestone");
    for (let i = 0; i < milestones.length; i++) {
      if (!(Number.isInteger(milestones[i]) && milestones[i] >= 0))
        return fieldError(`${field}.milestones[${i}]`, "must be an integer ≥ 0");
    }
  }
  const sigmoidK = s.sigmoidK ?? DEFAULT_SIGMOID_K;
  // Below the range the rescaling divides 0 by 0; above it exp(k/2) overflows.
  if (!(sigmoidK >= MIN_SIGMOID_K && sigmoidK <= MAX_SIGMOID_K))
    return fieldError(
      `${field}.sigmoid_k`,
      `must be in [${MIN_SIGMOID_K}, ${MAX_SIGMOID_K}] (the schedule would overflow), got ${sigmoidK}`,
    );
  return { ok: true, value: { kind: "time", shape, alphaStart, alphaEnd, totalSteps, milestones, sigmoidK } };
}

function resolveProgress(s: ProgressScheduleInput, field: string): Result<ProgressSchedule> {
  const alphaMin = s.alphaMin ?? DEFAULT_ALPHA_START;
  const alphaMax = s.alphaMax ?? DEFAULT_ALPHA_END;
  if (!isUnit(alphaMin)) return fieldError(`${field}.alpha_min`, "must be in [0, 1]");
  if (!isUnit(alphaMax)) return fieldError(`${field}.alpha_max`, "must be in [0, 1]");
  if (alphaMax < alphaMin) return fieldError(`${field}.alpha_max`, "must be ≥ alpha_min");
  const targetAccuracy = s.targetAccuracy ?? DEFAULT_TARGET_ACCURACY;
  if (!(targetAccuracy > 0 && targetAccuracy <= 1))
    return fieldError(`${field}.target_accuracy`, "must be in (0, 1]");
  const emaDecay = s.emaDecay ?? DEFAULT_EMA_DECAY;
  if (!(emaDecay >= 0 && emaDecay < 1)) return fieldError(`${field}.ema_decay`, "must be in [0, 1)");
  return { ok: true, value: { kind: "progress", alphaMin, alphaMax, targetAccuracy, emaDecay } };
}

/** Validates a structure and fills its defaults; the first problem names its field. */
export function resolveStructure(input: StructureInput, options: ResolveOptions = {}): Result<Structure> {
  const field = options.field ?? "structure";
  const known = new Set(options.knownComponents ?? knownComponentNames());
  switch (input?.kind) {
    case "hard":
      return { ok: true, value: { kind: "hard" } };
    case "continuous": {
      const w = resolveWeights(input, `${field}.continuous`, known);
      return w.ok ? { ok: true, value: { kind: "continuous", weights: w.value } } : w;
    }
    case "hybrid": {
      const alpha = input.alpha ?? DEFAULT_HYBRID_ALPHA;
      if (!isUnit(alpha)) return fieldError(`${field}.hybrid.alpha`, "must be in [0, 1]");
      const w = resolveWeights(input.continuous, `${field}.hybrid.continuous`, known);
      return w.ok ? { ok: true, value: { kind: "hybrid", alpha, weights: w.value } } : w;
    }
    case "adaptive": {
      const s = input.schedule;
      if (!s) return fieldError(`${field}.adaptive.schedule`, "required: time or progress");
      const sched =
        s.kind === "time"
          ? resolveTime(s, `${field}.adaptive.time`)
          : s.kind === "progress"
            ? resolveProgress(s, `${field}.adaptive.progress`)
            : fieldError(`${field}.adaptive.schedule`, "must be time or progress");
      if (!sched.ok) return sched;
      const w = resolveWeights(input.continuous, `${field}.adaptive.continuous`, known);
      if (!w.ok) return w;
      return {
        ok: true,
        value: {
          kind: "adaptive",
          schedule: sched.value,
          fallback: input.fallback ?? true,
          weights: w.value,
        },
      };
    }
    default:
      return fieldError(`${field}.kind`, `unknown structure "${(input as { kind?: unknown })?.kind}"`);
  }
}

const logistic = (x: number) => 1 / (1 + Math.exp(-x));

/** s(u) of a time schedule, in [0, 1]; the step shape reads the step t itself. */
export function scheduleProgress(s: TimeSchedule, step: number): number {
  const u = s.totalSteps > 0 ? Math.min(step / s.totalSteps, 1) : 1;
  switch (s.shape) {
    case "constant":
      return 0;
    case "linear":
      return u;
    case "cosine":
      return (1 - Math.cos(Math.PI * u)) / 2;
    case "step": {
      let passed = 0;
      for (const m of s.milestones) if (step >= m) passed++;
      return passed / s.milestones.length;
    }
    case "sigmoid": {
      // logistic(k(u − ½)) rescaled so that s(0) = 0 and s(1) = 1.
      const lo = logistic(-s.sigmoidK / 2);
      const hi = logistic(s.sigmoidK / 2);
      return (logistic(s.sigmoidK * (u - 0.5)) - lo) / (hi - lo);
    }
  }
}

/**
 * The α a step is blended with, before any group fallback: hard 1, continuous 0, hybrid its α,
 * adaptive time α₀ + (α₁ − α₀)·s(min(t/T, 1)), adaptive progress
 * clip(α_min + (α_max − α_min)·acc_EMA/target, α_min, α_max) with acc_EMA as it stood BEFORE
 * this step (null, i.e. before the first step, counts as 0 → α_min).
 */
export function scheduledAlpha(
  structure: Structure,
  step: number,
  state: ScheduleState = INITIAL_SCHEDULE_STATE,
): number {
  switch (structure.kind) {
    case "hard":
      return 1;
    case "continuous":
      return 0;
    case "hybrid":
      return structure.alpha;
    case "adaptive": {
      const s = structure.schedule;
      if (s.kind === "time") return s.alphaStart + (s.alphaEnd - s.alphaStart) * scheduleProgress(s, step);
      const acc = state.accuracyEma ?? 0;
      const a = s.alphaMin + ((s.alphaMax - s.alphaMin) * acc) / s.targetAccuracy;
      return Math.min(s.alphaMax, Math.max(s.alphaMin, a));
    }
  }
}

/**
 * The schedule state after a step with the given batch accuracy. The EMA starts AT the first
 * batch's accuracy (no bias towards 0), then acc_EMA ← d·acc_EMA + (1 − d)·accuracy. Only the
 * progress mode reads it, but it is tracked for every structure so GetState can report it.
 */
export function nextScheduleState(
  structure: Structure,
  state: ScheduleState,
  batchAccuracy: number,
): ScheduleState {
  const d =
    structure.kind === "adaptive" && structure.schedule.kind === "progress"
      ? structure.schedule.emaDecay
      : DEFAULT_EMA_DECAY;
  return {
    accuracyEma: state.accuracyEma === null ? batchAccuracy : d * state.accuracyEma + (1 - d) * batchAccuracy,
  };
}

/**
 * Σ wᵢ·cᵢ / Σ wᵢ over the weighted components present (non-null) in `components`. A weight
 * named "reasoning" also matches a qualified key "reasoning.reasoning" (source.component) when
 * the plain key is missing. Null when no weighted component is present.
 */
export function continuousReward(
  components: Readonly<Record<string, number | null | undefined>>,
  weights: Readonly<Record<string, number>>,
): number | null {
  let num = 0;
  let den = 0;
  for (const name in weights) {
    const w = weights[name];
    let v = components[name];
    if (v === undefined && !name.includes(".")) {
      for (const key in components) {
        if (key.endsWith(`.${name}`)) {
          v = components[key];
          break;
        }
      }
    }
    if (v === null || v === undefined || w === 0) continue;
    num += w * v;
    den += w;
  }
  return den > 0 ? num / den : null;
}
