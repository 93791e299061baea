// From a scored rollout to what the learner trains on, and the step's reward/completion metrics.
// Alignment (docs/architecture.md, "Logprob alignment"): input_ids = prompt ids ++ completion ids; the
// completion's t-th logprob sits at position len(prompt) + t; prompt positions hold 0 and mask 0.
import { type common, type learner, reward, type scheduler } from "@temper/proto";

/** The correctness source's name of the one component that says whether an answer is right. */
export const HARD_COMPONENT = "correctness_hard";
/** The same component as the scheduler names it (source.component). */
export const HARD = `correctness.${HARD_COMPONENT}`;

/**
 * The one rule for "solved": correctness_hard was scored (OK) and is 1. Unscored (the source
 * failed, no answer) is not solved. Every accuracy, vote and sample flag uses it.
 */
export function isSolved(v: reward.ComponentValue | undefined): boolean {
  return v?.status === reward.ComponentStatus.COMPONENT_STATUS_OK && v.value === 1;
}

export interface TrainingBatch {
  sequences: learner.TrainingSequence[];
  /** Groups left out because their rewards carry no signal (dynamic sampling). */
  droppedGroups: number;
}

/** Sequences of every completion with tokens, each with its own advantage. */
export function trainingBatch(
  groups: readonly common.Group[],
  scored: scheduler.ScoreResponse,
  dropZeroSignal: boolean,
): TrainingBatch {
  const advantage = new Map(scored.items.map((it) => [it.completionId, it.advantage]));
  const zero = new Set(scored.groups.filter((g) => g.zeroSignal).map((g) => g.groupId));
  const sequences: learner.TrainingSequence[] = [];
  let droppedGroups = 0;
  for (const g of groups) {
    if (dropZeroSignal && zero.has(g.id)) {
      droppedGroups++;
      continue;
    }
    const prompt = g.promptTokenIds;
    for (const c of g.completions) {
      if (c.tokenIds.length === 0) continue;
      const a = advantage.get(c.id);
      if (a === undefined) throw new Error(`the scheduler returned no result for completion ${c.id}`);
      sequences.push({
        inputIds: [...prompt, ...c.tokenIds],
        completionMask: [...prompt.map(() => 0), ...c.tokenIds.map(() => 1)],
        advantage: a,
        oldLogprobs: [...prompt.map(() => 0), ...c.logprobs],
        refLogprobs: [],
      });
    }
  }
  return { sequences, droppedGroups };
}

const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : 0);
const std = (xs: number[]) => {
  const m = mean(xs);
  return Math.sqrt(mean(xs.map((x) => (x - m) ** 2)));
};

/** reward/*, accuracy/train, alpha, zero_signal_fraction and completions/* of one step. */
export function rolloutMetrics(
  groups: readonly common.Group[],
  scored: scheduler.ScoreResponse,
  maxNewTokens: number,
): Record<string, number> {
  const m: Record<string, number> = {};
  const rewards = scored.items.map((it) => it.reward);
  m["reward/mean"] = mean(rewards);
  m["reward/std"] = std(rewards);
  const components = new Map<string, number[]>();
  for (const it of scored.items)
    for (const [name, v] of Object.entries(it.components))
      if (v.status === reward.ComponentStatus.COMPONENT_STATUS_OK && v.value !== undefined) {
        const list = components.get(name) ?? [];
        components.set(name, list);
        list.push(v.value);
      }
  for (const [name, values] of [...components].sort(([a], [b]) => a.localeCompare(b)))
    m[`reward/${name}`] = mean(values);
  m["accuracy/train"] = components.has(HARD) ? mean(components.get(HARD)!) : 0;
  m.alpha = scored.alpha;
  m.zero_signal_fraction = scored.groups.length
    ? scored.groups.filter((g) => g.zeroSignal).length / scored.groups.length
    : 0;
  const lengths = groups.flatMap((g) => g.completions.map((c) => c.tokenIds.length));
  m["completions/mean_length"] = mean(lengths);
  m["completions/max_length"] = lengths.length ? Math.max(...lengths) : 0;
  m["completions/clipped_ratio"] = mean(lengths.map((l) => (l >= maxNewTokens ? 1 : 0)));
  m["tokens/generated"] = lengths.reduce((a, b) => a + b, 0);
  return m;
}

/** train/* of the learner's response. */
export function trainMetrics(res: learner.TrainResponse): Record<string, number> {
  const t = res.metrics;
  return {
    "train/loss": t?.loss ?? 0,
    "train/clip_fraction": t?.clipFraction ?? 0,
    "train/kl": t?.kl ?? 0,
    "train/entropy": t?.entropy ?? 0,
    "train/logprob_diff": t?.logprobDiff ?? 0,
    "train/grad_norm": t?.gradNorm ?? 0,
    "train/learning_rate": t?.learningRate ?? 0,
    "train/skipped": res.skipped ? 1 : 0,
  };
}
