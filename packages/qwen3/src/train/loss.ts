// Training losses as ONNX graph pieces on top of per-token logprobs, independent of the model that
// produced them. Per-token arrays follow the blueprint's "Logprob alignment": [B, T] with entry t
// about token t given tokens < t; entry 0 is unused and completion_mask[0] = 0.
//
// GRPO, per token:  r = exp(lp − old),  ℓ = −min(r·A, clip(r, 1−ε_low, 1+ε_high)·A) + β·k3,
//                   k3 = exp(ref − lp) − (ref − lp) − 1.
// Normalisation is an input, `lossScale` [B]: loss = Σ_b lossScale_b · Σ_t m_bt·ℓ_bt. lossScales()
// computes it over the WHOLE batch (1/Σm for `token`, 1/(N·Σ_t m_b) for `sequence`), so the losses and
// gradients of micro-batches, each fed its slice, sum to exactly the one-batch values.
import type { GraphBuilder, Value } from "@temper/onnx";

export type LossAggregation = "token" | "sequence";
export const LOSS_AGGREGATIONS: readonly LossAggregation[] = ["token", "sequence"];

/** Bad loss inputs or options: the message is one line naming the offending thing. */
export class LossError extends Error {
  override name = "LossError";
}

export interface GrpoOptions {
  /** Lower clip margin: ratios below 1 − ε_low are clipped (default 0.2). */
  epsLow?: number;
  /** Upper clip margin: ratios above 1 + ε_high are clipped (default 0.2). */
  epsHigh?: number;
  /** Weight of the k3 KL penalty to the reference policy (default 0; > 0 needs refLogprobs). */
  beta?: number;
}

export interface GrpoInputs {
  /** [B, T] policy logprobs (float32 or float64): the tensor gradients flow through. */
  logprobs: Value;
  /** [B, T] logprobs of the policy that sampled the batch. */
  oldLogprobs: Value;
  /** [B, T] reference-policy logprobs; required when β > 0. */
  refLogprobs?: Value;
  /** [B, T] 1 on completion tokens, 0 elsewhere (entry 0 always 0); float, int or bool. */
  completionMask: Value;
  /** [B] one advantage per sequence. */
  advantages: Value;
  /** [B] per-sequence normaliser from lossScales() (sliced to this micro-batch). */
  lossScale: Value;
}

export interface GrpoOutputs {
  /** Scalar: this micro-batch's share of the batch loss. */
  loss: Value;
  /** [B, T] ℓ_t, meaningful where the mask is 1 (masked-out positions see r = 1, k3 = 0). */
  tokenLoss: Value;
  /** Scalar: share of this micro-batch's masked tokens where the clipped branch is strictly smaller. */
  clipFraction: Value;
  /** Scalar: mean k3 KL over this micro-batch's masked tokens (only with refLogprobs). */
  kl?: Value;
  /** Scalar: Σ m of this micro-batch (weights for combining the per-micro-batch means above). */
  maskedTokens: Value;
}

export interface SftInputs {
  /** [B, T] policy logprobs. */
  logprobs: Value;
  /** [B, T] tokens that count (entry 0 always 0). */
  completionMask: Value;
  /** [B] per-sequence normaliser from lossScales(); "token" gives −Σ m·lp / Σ m. */
  lossScale: Value;
}

export interface SftOutputs {
  loss: Value;
  maskedTokens: Value;
}

function checkRank(v: Value, rank: number, what: string, shape: string): void {
  if (v.shape === null || v.shape.length !== rank)
    throw new LossError(
      `${what} "${v.name}" must be ${shape}, got shape ${v.shape ? `[${v.shape}]` : "of unknown rank"}`,
    );
}

/** `v` in the dtype of `like` (the non-trainable inputs follow the policy logprobs' precision). */
function asDtypeOf(g: GraphBuilder, v: Value, like: Value): Value {
  return v.dtype === like.dtype ? v : g.cast(v, like.dtype);
}

/** Σ m·x / max(Σ m, 1): a masked mean that is 0 rather than NaN when nothing is masked in. */
function maskedMean(g: GraphBuilder, x: Value, m: Value, count: Value): Value {
  return g.div(g.reduceSum(g.mul(x, m), undefined, false), g.max(count, 1));
}

/** Σ_b scale_b Σ_t m_bt·x_bt: the accumulable batch sum. */
function scaledSum(g: GraphBuilder, x: Value, m: Value, scale: Value): Value {
  const perSequence = g.reduceSum(g.mul(x, m), [1], false); // [B]
  return g.reduceSum(g.mul(perSequence, scale), undefined, false);
}

function numberOption(value: number | undefined, fallback: number, name: string, max = Infinity): number {
  const v = value ?? fallback;
  if (!Number.isFinite(v) || v < 0 || v > max)
    throw new LossError(`GRPO ${name} must be a number in [0, ${max}], got ${value}`);
  return v;
}

/** Appends the GRPO loss and its diagnostics to `g`. */
export function grpoLoss(g: GraphBuilder, inputs: GrpoInputs, options: GrpoOptions = {}): GrpoOutputs {
  const epsLow = numberOption(options.epsLow, 0.2, "epsLow", 1);
  const epsHigh = numberOption(options.epsHigh, 0.2, "epsHigh");
  const beta = numberOption(options.beta, 0, "beta");
  const lp = inputs.logprobs;
  if (lp.dtype !== "float32" && lp.dtype !== "float64")
    throw new LossError(`GRPO logprobs "${lp.name}" must be float32 or float64, got ${lp.dtype}`);
  checkRank(lp, 2, "GRPO logprobs", "[B, T]");
  checkRank(inputs.oldLogprobs, 2, "GRPO oldLogprobs", "[B, T]");
  checkRank(inputs.completionMask, 2, "GRPO completionMask", "[B, T]");
  checkRank(inputs.advantages, 1, "GRPO advantages", "[B]");
  checkRank(inputs.lossScale, 1, "GRPO lossScale", "[B]");
  if (inputs.refLogprobs) checkRank(inputs.refLogprobs, 2, "GRPO refLogprobs", "[B, T]");
  if (beta > 0 && !inputs.refLogprobs)
    throw new LossError(`GRPO beta ${beta} > 0 needs refLogprobs for the KL penalty`);

  return g.scope("grpo", () => {
    const m = asDtypeOf(g, inputs.completionMask, lp);
    const old = asDtypeOf(g, inputs.oldLogprobs, lp);
    const adv = g.unsqueeze(asDtypeOf(g, inputs.advantages, lp), [1]); // [B, 1]
    const scale = asDtypeOf(g, inputs.lossScale, lp);
    // Masking the log-ratio (not just the loss) keeps padding finite: there r = 1 and k3 = 0.
    const ratio = g.exp(g.mul(g.sub(lp, old), m));
    const unclipped = g.mul(ratio, adv);
    const clipped = g.mul(g.clip(ratio, 1 - epsLow, 1 + epsHigh), adv);
    let tokenLoss = g.neg(g.min(unclipped, clipped));
    let k3: Value | undefined;
    if (inputs.refLogprobs) {
      const d = g.mul(g.sub(asDtypeOf(g, inputs.refLogprobs, lp), lp), m);
      k3 = g.sub(g.sub(g.exp(d), d), 1);
      if (beta > 0) tokenLoss = g.add(tokenLoss, g.mul(k3, beta));
    }
    const maskedTokens = g.reduceSum(m, undefined, false);
    const clippedActive = g.cast(g.less(clipped, unclipped), lp.dtype);
    return {
      loss: scaledSum(g, tokenLoss, m, scale),
      tokenLoss,
      clipFraction: maskedMean(g, clippedActive, m, maskedTokens),
      kl: k3 ? maskedMean(g, k3, m, maskedTokens) : undefined,
      maskedTokens,
    };
  });
}

/** Appends the SFT loss (token cross-entropy on masked tokens) to `g`. */
export function sftLoss(g: GraphBuilder, inputs: SftInputs): SftOutputs {
  const lp = inputs.logprobs;
  if (lp.dtype !== "float32" && lp.dtype !== "float64")
    throw new LossError(`SFT logprobs "${lp.name}" must be float32 or float64, got ${lp.dtype}`);
  checkRank(lp, 2, "SFT logprobs", "[B, T]");
  checkRank(inputs.completionMask, 2, "SFT completionMask", "[B, T]");
  checkRank(inputs.lossScale, 1, "SFT lossScale", "[B]");
  return g.scope("sft", () => {
    const m = asDtypeOf(g, inputs.completionMask, lp);
    return {
      loss: g.neg(scaledSum(g, lp, m, asDtypeOf(g, inputs.lossScale, lp))),
      maskedTokens: g.reduceSum(m, undefined, false),
    };
  });
}

/**
 * Shifts next-token rows into the blueprint's alignment: [B, T] with out[:, t] = x[:, t−1] for t ≥ 1
 * and out[:, 0] = 0 (x[:, t] being about the token after position t).
 */
export function alignToTokens(g: GraphBuilder, x: Value): Value {
  checkRank(x, 2, "alignToTokens input", "[B, T]");
  const head = g.slice(x, [0], [-1], [1]); // [B, T−1]
  const b = x.shape![0];
  const zerosShape =
    typeof b === "number"
      ? g.ints([b, 1])
      : g.concat([g.op("Shape", [x], { start: 0, end: 1 }), g.ints([1])], 0);
  return g.concat([g.fill(zerosShape, 0, x.dtype), head], 1);
}

export interface EntropyOutputs {
  /** Scalar: mean over masked tokens of −Σ p log p. */
  entropy: Value;
  /** [B, T] aligned per-token entropy (entry 0 = 0). */
  tokenEntropy: Value;
}

/**
 * Entropy of the policy distribution at each completion token: logits [B, T, V] with row t the
 * distribution of token t+1 (as a causal LM emits them, divided by the sampling temperature) and
 * mask [B, T] aligned. A diagnostic: not differentiated.
 */
export function maskedEntropy(g: GraphBuilder, logits: Value, mask: Value): EntropyOutputs {
  checkRank(logits, 3, "entropy logits", "[B, T, V]");
  checkRank(mask, 2, "entropy mask", "[B, T]");
  return g.scope("entropy", () => {
    const logp = g.logSoftmax(logits, -1);
    const perRow = g.neg(g.reduceSum(g.mul(g.exp(logp), logp), [2], false)); // [B, T]
    const tokenEntropy = alignToTokens(g, perRow);
    const m = asDtypeOf(g, mask, tokenEntropy);
    return { entropy: maskedMean(g, tokenEntropy, m, g.reduceSum(m, undefined, false)), tokenEntropy };
  });
}

/**
 * The per-sequence `lossScale` of a WHOLE batch (every micro-batch's sequences, in order), checking
 * each mask (0/1 entries, entry 0 = 0). token: 1/Σm over the batch; sequence: 1/(N·Σ_t m_b) with N
 * sequences (a sequence without completion tokens gets 0 but still counts in N, like TRL).
 */
export function lossScales(masks: readonly ArrayLike<number>[], aggregation: LossAggregation): Float64Array {
  if (!LOSS_AGGREGATIONS.includes(aggregation))
    throw new LossError(
      `loss aggregation must be one of ${LOSS_AGGREGATIONS.join(", ")}, got "${aggregation}"`,
    );
  if (masks.length === 0) throw new LossError("loss scales: the batch has no sequences");
  const counts = masks.map((mask, b) => {
    if (mask.length > 0 && mask[0] !== 0)
      throw new LossError(`sequence ${b}: completion_mask[0] must be 0 (entry 0 has no logprob)`);
    let n = 0;
    for (let t = 0; t < mask.length; t++) {
      if (mask[t] !== 0 && mask[t] !== 1)
        throw new LossError(`sequence ${b}: completion_mask[${t}] is ${mask[t]}, expected 0 or 1`);
      n += mask[t];
    }
    return n;
  });
  if (aggregation === "token") {
    const total = counts.reduce((a, b) => a + b, 0);
    if (total === 0) throw new LossError("loss scales: no completion tokens in the batch");
    return new Float64Array(masks.length).fill(1 / total);
  }
  return Float64Array.from(counts, (n) => (n === 0 ? 0 : 1 / (masks.length * n)));
}
