// The in-process reward plane: every source, then the blend — what the scheduler does over gRPC,
// as one pure call (used by `temper score` and the benchmarks).
import type { AdvantageScale } from "./advantages.ts";
import { type BlendedGroup, type BlendResult, blendBatch } from "./blend.ts";
import type { ComponentValue } from "./components.ts";
import { scoreAllSources } from "./sources.ts";
import type { ScheduleState, Structure } from "./structures.ts";
import type { CompletionScore, GroupInput, ScoreDetails, ScoreParams } from "./types.ts";

/** ComponentValue map → name → value (null unless ok), the form the blend reads. */
export function componentValues(
  components: Readonly<Record<string, ComponentValue>>,
): Record<string, number | null> {
  const out: Record<string, number | null> = {};
  for (const name in components) out[name] = components[name].status === "ok" ? components[name].value : null;
  return out;
}

export interface PipelineInput {
  groups: readonly GroupInput[];
  structure: Structure;
  /** Default 0. */
  step?: number;
  /** Default: before the first step. */
  state?: ScheduleState;
  params?: ScoreParams;
  advantageScale?: AdvantageScale;
}

export interface PipelineItem {
  completionId: string;
  groupId: string;
  reward: number;
  alphaUsed: number;
  advantage: number;
  components: Record<string, ComponentValue>;
  details: ScoreDetails;
}

export interface PipelineResult {
  items: PipelineItem[];
  groups: BlendedGroup[];
  alpha: number;
  state: ScheduleState;
  batchAccuracy: number;
  zeroSignalFraction: number;
  componentStats: BlendResult["componentStats"];
}

/** Scores a batch with all four sources and blends it. Expects input that passed validateScoreRequest. */
export function scoreAndBlend(input: PipelineInput): PipelineResult {
  const scores: CompletionScore[] = scoreAllSources(input.groups, input.params);
  const groupIndex = input.groups.flatMap((g, k) => g.completions.map(() => k));
  const blend = blendBatch({
    // Groups are keyed by position so that repeated or empty ids never merge two groups.
    items: scores.map((s, i) => ({
      groupId: String(groupIndex[i]),
      completionId: s.completionId,
      correctnessHard: s.components.correctness_hard.value ?? 0,
      components: componentValues(s.components),
    })),
    structure: input.structure,
    step: input.step ?? 0,
    state: input.state ?? { accuracyEma: null },
    advantageScale: input.advantageScale,
  });
  return {
    items: scores.map((s, i) => ({
      completionId: s.completionId,
      groupId: s.groupId,
      reward: blend.items[i].reward,
      alphaUsed: blend.items[i].alphaUsed,
      advantage: blend.items[i].advantage,
      components: s.components,
      details: s.details,
    })),
    groups: blend.groups.map((g) => ({ ...g, groupId: input.groups[Number(g.groupId)].id })),
    alpha: blend.alpha,
    state: blend.state,
    batchAccuracy: blend.batchAccuracy,
    zeroSignalFraction: blend.zeroSignalFraction,
    componentStats: blend.componentStats,
  };
}
