// Learning-rate schedules with linear warm-up, as transformers' get_*_schedule_with_warmup (the
// cosine one with a floor, like cosine_with_min_lr). `position` is the number of optimizer updates
// applied before the one whose rate is asked for (0 for the first update), so with warm-up the
// first update runs at rate 0, exactly as a HF LambdaLR schedule stepped after each update.
//
//   warm-up   position < W:  lr · position / W
//   constant              :  lr
//   linear                :  lr · (f + (1 − f) · max(0, 1 − u))
//   cosine                :  lr · (f + (1 − f) · ½(1 + cos(π · min(u, 1))))
//   u = (position − W) / max(1, T − W),  f = min_lr_ratio (the floor)

export type LrScheduleKind = "constant" | "linear" | "cosine";
export const LR_SCHEDULE_KINDS: readonly LrScheduleKind[] = ["constant", "linear", "cosine"];

export interface LrScheduleConfig {
  kind: LrScheduleKind;
  /** Peak learning rate (> 0). */
  learningRate: number;
  /** Updates of linear warm-up from 0 (default 0). */
  warmupSteps?: number;
  /** Updates over which linear and cosine decay to the floor (warm-up included); required for them. */
  totalSteps?: number;
  /** The floor as a fraction of learningRate, in [0, 1] (default 0); constant ignores it. */
  minLrRatio?: number;
}

export class ScheduleError extends Error {
  override name = "ScheduleError";
}

/** Checks a schedule; throws ScheduleError naming the field (learningRate, totalSteps, …). */
export function checkSchedule(s: LrScheduleConfig): void {
  if (!LR_SCHEDULE_KINDS.includes(s.kind))
    throw new ScheduleError(`kind must be one of ${LR_SCHEDULE_KINDS.join(", ")}, got "${s.kind}"`);
  if (!Number.isFinite(s.learningRate) || s.learningRate <= 0)
    throw new ScheduleError(`learningRate must be a finite number > 0, got ${s.learningRate}`);
  const w = s.warmupSteps ?? 0;
  if (!Number.isSafeInteger(w) || w < 0)
    throw new ScheduleError(`warmupSteps must be an integer ≥ 0, got ${w}`);
  const f = s.minLrRatio ?? 0;
  if (!Number.isFinite(f) || f < 0 || f > 1)
    throw new ScheduleError(`minLrRatio must be in [0, 1], got ${f}`);
  if (s.kind !== "constant") {
    const t = s.totalSteps ?? 0;
    if (!Number.isSafeInteger(t) || t < 1)
      throw new ScheduleError(`totalSteps must be an integer ≥ 1 for a ${s.kind} schedule, got ${t}`);
    if (t < w) throw new ScheduleError(`totalSteps (${t}) must be at least warmupSteps (${w})`);
  }
}

/** The learning rate of the update that follows `position` applied updates. */
export function learningRateAt(s: LrScheduleConfig, position: number): number {
  if (!Number.isSafeInteger(position) || position < 0)
    throw new ScheduleError(`position must be an integer ≥ 0, got ${position}`);
  const w = s.warmupSteps ?? 0;
  if (position < w) return (s.learningRate * position) / w;
  if (s.kind === "constant") return s.learningRate;
  const f = s.minLrRatio ?? 0;
  const total = s.totalSteps ?? 0;
  const u = (position - w) / Math.max(1, total - w);
  const decay = s.kind === "linear" ? Math.max(0, 1 - u) : 0.5 * (1 + Math.cos(Math.PI * Math.min(u, 1)));
  return s.learningRate * (f + (1 - f) * decay);
}
