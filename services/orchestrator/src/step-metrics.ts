// What a step leaves behind besides the policy: its line of metrics.jsonl (rewards, completions,
// training, the time of each phase) and its samples.
import type { common, learner, rollout, scheduler } from "@temper/proto";
import { HARD, isSolved, rolloutMetrics, type TrainingBatch, trainMetrics } from "./batch.ts";

/** Wall time of a step's phases, in seconds. */
export class PhaseTimer {
  private readonly started = performance.now();
  readonly seconds: Record<"rollout" | "reward" | "train" | "eval", number> = {
    rollout: 0,
    reward: 0,
    train: 0,
    eval: 0,
  };

  async time<T>(phase: keyof PhaseTimer["seconds"], fn: () => Promise<T>): Promise<T> {
    const t0 = performance.now();
    try {
      return await fn();
    } finally {
      this.seconds[phase] += (performance.now() - t0) / 1000;
    }
  }

  /** Seconds since the step began. */
  total(): number {
    return (performance.now() - this.started) / 1000;
  }
}

export interface StepOutcome {
  rolled: rollout.GenerateResponse;
  scored: scheduler.ScoreResponse;
  batch: TrainingBatch;
  trained: learner.TrainResponse;
  maxNewTokens: number;
}

/** The step's metrics (the names docs/architecture.md lists), `elapsed` the run's wall time. */
export function stepValues(o: StepOutcome, timer: PhaseTimer, elapsed: number): Record<string, number> {
  const t = timer.seconds;
  const values: Record<string, number> = {
    ...rolloutMetrics(o.rolled.groups, o.scored, o.maxNewTokens),
    ...trainMetrics(o.trained),
    "train/dropped_groups": o.batch.droppedGroups,
    "time/rollout": t.rollout,
    "time/reward": t.reward,
    "time/train": t.train,
    "time/eval": t.eval,
    // the services' own engine time: what the step's overhead is measured against
    "time/rollout_engine": o.rolled.engineSeconds,
    "time/train_engine": o.trained.replayed ? 0 : o.trained.engineSeconds,
  };
  const step = timer.total();
  values["time/other"] = Math.max(0, step - t.rollout - t.reward - t.train - t.eval);
  values["time/step"] = step;
  values["time/elapsed"] = elapsed;
  return values;
}

/** samples.jsonl's lines: the first completion of each of the first `k` groups. */
export function stepSamples(
  step: number,
  groups: readonly common.Group[],
  scored: scheduler.ScoreResponse,
  k: number,
): object[] {
  const items = new Map(scored.items.map((it) => [it.completionId, it]));
  const out: object[] = [];
  for (const g of groups.slice(0, k)) {
    const c = g.completions[0];
    if (!c) continue;
    const it = items.get(c.id);
    out.push({
      step,
      prompt_id: g.id,
      prompt: g.prompt,
      reference: g.reference,
      completion: c.text,
      reward: it?.reward ?? null,
      advantage: it?.advantage ?? null,
      correct: isSolved(it?.components[HARD]),
    });
  }
  return out;
}
