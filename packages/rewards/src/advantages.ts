// GRPO advantages: A_i = (R_i − mean_g) / (std_g + 1e-4), sample std (n − 1), as TRL and verl.

export type AdvantageScale = "group" | "batch" | "none";

export const ADVANTAGE_EPSILON = 1e-4;

export function mean(xs: readonly number[]): number {
  let s = 0;
  for (const x of xs) s += x;
  return xs.length > 0 ? s / xs.length : 0;
}

/** Sample standard deviation (n − 1); 0 for fewer than two values. */
export function sampleStd(xs: readonly number[]): number {
  if (xs.length < 2) return 0;
  const m = mean(xs);
  let ss = 0;
  for (const x of xs) ss += (x - m) * (x - m);
  return Math.sqrt(ss / (xs.length - 1));
}

/**
 * Advantages per group. "group": (R − mean_g)/(std_g + ε); "batch": (R − mean_g)/(std_batch + ε)
 * with std_batch the sample std of every reward of the batch; "none": R − mean_g. A group of one
 * gets 0 under every scale.
 */
export function grpoAdvantages(
  rewardsByGroup: readonly (readonly number[])[],
  scale: AdvantageScale = "group",
): number[][] {
  const batchStd = scale === "batch" ? sampleStd(rewardsByGroup.flat()) : 0;
  return rewardsByGroup.map((rs) => {
    if (rs.length < 2) return rs.map(() => 0);
    const m = mean(rs);
    const denom =
      scale === "group"
        ? sampleStd(rs) + ADVANTAGE_EPSILON
        : scale === "batch"
          ? batchStd + ADVANTAGE_EPSILON
          : 1;
    return rs.map((r) => (r - m) / denom);
  });
}
