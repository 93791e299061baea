// One step's blend: rewards under a structure, α per item (with the group fallback), GRPO
// advantages, group statistics, the next schedule state and per-component batch statistics.
// This is the whole of the scheduler's arithmetic; the service adds I/O, state and idempotency.
import { type AdvantageScale, grpoAdvantages, mean, sampleStd } from "./advantages.ts";
import {
  continuousReward,
  nextScheduleState,
  type ScheduleState,
  type Structure,
  scheduledAlpha,
} from "./structures.ts";

export interface BlendItem {
  groupId: string;
  completionId?: string;
  /** Raw correctness_hard (0 or 1): R_hard, and the input of zero-signal detection. */
  correctnessHard: number;
  /** Component name (plain or "source.component") → value; null or missing = absent. */
  components: Readonly<Record<string, number | null>>;
}

export interface BlendInput {
  /** Items in any order; a group is every item with the same groupId. */
  items: readonly BlendItem[];
  structure: Structure;
  step: number;
  /** The state BEFORE this step. */
  state: ScheduleState;
  /** Default "group". */
  advantageScale?: AdvantageScale;
  /** A control run: "permute" shuffles the step's rewards across the batch before advantages. */
  control?: { kind: "permute"; seed: number };
}

export interface BlendedItem {
  reward: number;
  /** The α applied to this item: the step's α, or 0 where the group fallback applied. */
  alphaUsed: number;
  advantage: number;
  /** R_continuous (null when no weighted component was present, blended as 0). */
  continuous: number | null;
}

export interface BlendedGroup {
  groupId: string;
  size: number;
  /** All correctness_hard values equal, or a group of one: no GRPO signal. */
  zeroSignal: boolean;
  /** The adaptive fallback blended this group with α = 0. */
  fallbackApplied: boolean;
  meanReward: number;
  /** Sample std (n − 1) of the group's rewards; 0 for a group of one. */
  stdReward: number;
}

export interface ComponentStat {
  mean: number;
  /** Sample std (n − 1) over present values; 0 when fewer than two. */
  std: number;
  present: number;
  absent: number;
}

export interface BlendResult {
  /** In input order. */
  items: BlendedItem[];
  /** In order of first appearance. */
  groups: BlendedGroup[];
  /** The step's scheduled α before any fallback. */
  alpha: number;
  /** Mean correctness_hard of the batch. */
  batchAccuracy: number;
  /** The state AFTER this step: progress mode's EMA updated with batchAccuracy, after α was computed. */
  state: ScheduleState;
  /** Fraction of groups with zeroSignal. */
  zeroSignalFraction: number;
  componentStats: Record<string, ComponentStat>;
}

/**
 * Blends one batch. R = correctness_hard (hard), R_continuous (continuous),
 * α·R_hard + (1 − α)·R_continuous (hybrid, adaptive); a weighted set with nothing present gives
 * R_continuous = 0. With the adaptive fallback on, a zero-signal group (detected on raw
 * correctness_hard, never the blend) is blended with α = 0.
 */
export function blendBatch(input: BlendInput): BlendResult {
  const { items, structure } = input;
  const alpha = scheduledAlpha(structure, input.step, input.state);
  const order: string[] = [];
  const members = new Map<string, number[]>();
  for (let i = 0; i < items.length; i++) {
    const g = items[i].groupId;
    let list = members.get(g);
    if (!list) {
      list = [];
      members.set(g, list);
      order.push(g);
    }
    list.push(i);
  }
  const weights = structure.kind === "hard" ? null : structure.weights;
  const fallbackOn = structure.kind === "adaptive" && structure.fallback;
  const out: BlendedItem[] = new Array(items.length);
  const groups: BlendedGroup[] = [];
  const rewardsByGroup: number[][] = [];
  for (const g of order) {
    const idx = members.get(g)!;
    const first = items[idx[0]].correctnessHard;
    let zeroSignal = true;
    for (const i of idx) if (items[i].correctnessHard !== first) zeroSignal = false;
    const fallback = fallbackOn && zeroSignal;
    const a = fallback ? 0 : alpha;
    const rewards: number[] = [];
    for (const i of idx) {
      const item = items[i];
      const cont = weights ? continuousReward(item.components, weights) : null;
      const reward =
        structure.kind === "hard" ? item.correctnessHard : a * item.correctnessHard + (1 - a) * (cont ?? 0);
      // For hard and continuous, α is fixed by the structure (1 and 0); only hybrid/adaptive blend.
      const alphaUsed = structure.kind === "hard" || structure.kind === "continuous" ? alpha : a;
      out[i] = { reward, alphaUsed, advantage: 0, continuous: cont };
      rewards.push(reward);
    }
    rewardsByGroup.push(rewards);
    groups.push({
      groupId: g,
      size: idx.length,
      zeroSignal,
      fallbackApplied: fallback,
      meanReward: mean(rewards),
      stdReward: sampleStd(rewards),
    });
  }
  if (input.control?.kind === "permute") {
    // every reward of the step to a random other item: the distribution stays, the link to the
    // completion goes; groups' stats follow the rewards they now hold
    const shuffled = permutation(items.length, input.control.seed, input.step).map((j) => out[j].reward);
    out.forEach((it, i) => {
      it.reward = shuffled[i];
    });
    order.forEach((g, k) => {
      rewardsByGroup[k] = members.get(g)!.map((i) => out[i].reward);
      groups[k].meanReward = mean(rewardsByGroup[k]);
      groups[k].stdReward = sampleStd(rewardsByGroup[k]);
    });
  }
  const advantages = grpoAdvantages(rewardsByGroup, input.advantageScale ?? "group");
  order.forEach((g, k) => {
    members.get(g)!.forEach((i, j) => {
      out[i].advantage = advantages[k][j];
    });
  });
  let correct = 0;
  for (const item of items) correct += item.correctnessHard;
  const batchAccuracy = items.length > 0 ? correct / items.length : 0;
  return {
    items: out,
    groups,
    alpha,
    batchAccuracy,
    state: nextScheduleState(structure, input.state, batchAccuracy),
    zeroSignalFraction: groups.length > 0 ? groups.filter((g) => g.zeroSignal).length / groups.length : 0,
    componentStats: componentStats(items.map((i) => i.components)),
  };
}

/**
 * A permutation of 0..n−1 (Fisher–Yates) from a 32-bit generator seeded by (seed, step): the same
 * seed and step give the same permutation on every machine.
 */
export function permutation(n: number, seed: number, step: number): number[] {
  // splitmix32 over the seed's low and high words and the step
  let x =
    (Math.imul(seed >>> 0, 0x9e3779b9) ^ Math.floor(seed / 2 ** 32) ^ Math.imul(step + 1, 0x85ebca6b)) >>> 0;
  const next = () => {
    x = (x + 0x9e3779b9) >>> 0;
    let z = x;
    z = Math.imul(z ^ (z >>> 16), 0x21f0aaad);
    z = Math.imul(z ^ (z >>> 15), 0x735a2d97);
    return ((z ^ (z >>> 15)) >>> 0) / 2 ** 32;
  };
  const p = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(next() * (i + 1));
    [p[i], p[j]] = [p[j], p[i]];
  }
  return p;
}

/** Mean, sample std and counts of every component over a batch (for the reward.blended event). */
export function componentStats(
  rows: readonly Readonly<Record<string, number | null>>[],
): Record<string, ComponentStat> {
  const values = new Map<string, number[]>();
  const absentCount = new Map<string, number>();
  for (const row of rows) {
    for (const name in row) {
      const v = row[name];
      if (!values.has(name)) {
        values.set(name, []);
        absentCount.set(name, 0);
      }
      if (v === null || v === undefined) absentCount.set(name, absentCount.get(name)! + 1);
      else values.get(name)!.push(v);
    }
  }
  const out: Record<string, ComponentStat> = {};
  for (const [name, vs] of values) {
    out[name] = { mean: mean(vs), std: sampleStd(vs), present: vs.length, absent: absentCount.get(name)! };
  }
  return out;
}
