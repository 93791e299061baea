// Plain float64 loops for the GRPO and SFT losses, written straight from the blueprint's formulas
// (aggregation done explicitly, not through lossScale): the oracle the loss graphs are tested against.
import { type GrpoOptions, type LossAggregation, LossError } from "../train/loss.ts";

export interface ReferenceLossBatch {
  /** [B][T] per-token arrays in the blueprint's alignment. */
  logprobs: readonly (readonly number[])[];
  oldLogprobs?: readonly (readonly number[])[];
  refLogprobs?: readonly (readonly number[])[];
  completionMask: readonly (readonly number[])[];
  /** [B] */
  advantages?: readonly number[];
}

export interface ReferenceGrpoResult {
  loss: number;
  /** Share of masked tokens where the clipped branch is strictly smaller than the unclipped one. */
  clipFraction: number;
  /** Mean k3 over masked tokens (NaN without refLogprobs). */
  kl: number;
  maskedTokens: number;
}

export function referenceGrpoLoss(
  batch: ReferenceLossBatch,
  options: GrpoOptions & { aggregation?: LossAggregation } = {},
): ReferenceGrpoResult {
  const { logprobs, oldLogprobs, refLogprobs, completionMask, advantages } = batch;
  if (!oldLogprobs || !advantages) throw new LossError("GRPO reference needs oldLogprobs and advantages");
  const epsLow = options.epsLow ?? 0.2;
  const epsHigh = options.epsHigh ?? 0.2;
  const beta = options.beta ?? 0;
  const aggregation = options.aggregation ?? "token";
  let tokenSum = 0;
  let tokens = 0;
  let sequenceMeans = 0;
  let clippedTokens = 0;
  let klSum = 0;
  logprobs.forEach((row, b) => {
    const A = advantages[b];
    let seqSum = 0;
    let seqTokens = 0;
    row.forEach((lp, t) => {
      if (completionMask[b][t] === 0) return;
      const ratio = Math.exp(lp - oldLogprobs[b][t]);
      const clippedRatio = Math.min(Math.max(ratio, 1 - epsLow), 1 + epsHigh);
      const surrogate = Math.min(ratio * A, clippedRatio * A);
      if (clippedRatio * A < ratio * A) clippedTokens += 1;
      let loss = -surrogate;
      if (refLogprobs) {
        const d = refLogprobs[b][t] - lp;
        const k3 = Math.exp(d) - d - 1;
        klSum += k3;
        loss += beta * k3;
      }
      seqSum += loss;
      seqTokens += 1;
    });
    tokenSum += seqSum;
    tokens += seqTokens;
    if (seqTokens > 0) sequenceMeans += seqSum / seqTokens;
  });
  return {
    loss: aggregation === "token" ? tokenSum / tokens : sequenceMeans / logprobs.length,
    clipFraction: tokens ? clippedTokens / tokens : 0,
    kl: refLogprobs ? (tokens ? klSum / tokens : 0) : Number.NaN,
    maskedTokens: tokens,
  };
}

/** −Σ m·lp / Σ m over the batch (token) or the mean over sequences of the per-sequence value. */
export function referenceSftLoss(batch: ReferenceLossBatch, aggregation: LossAggregation = "token"): number {
  let total = 0;
  let tokens = 0;
  let sequenceMeans = 0;
  batch.logprobs.forEach((row, b) => {
    let seq = 0;
    let n = 0;
    row.forEach((lp, t) => {
      if (batch.completionMask[b][t] === 0) return;
      seq -= lp;
      n += 1;
    });
    total += seq;
    tokens += n;
    if (n > 0) sequenceMeans += seq / n;
  });
  return aggregation === "token" ? total / tokens : sequenceMeans / batch.logprobs.length;
}
