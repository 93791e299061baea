// Training batches: sequences with per-token arrays in the blueprint's "Logprob alignment" (entry t
// is about token t given tokens < t; entry 0 unused, completion_mask[0] = 0), checked and padded to
// one length (left or right) with an attention mask; pads carry mask 0 everywhere.
import { positionIdsFromMask } from "../graph/engine-batch.ts";

/** One training sequence. Every per-token array has len(inputIds) entries. */
export interface TrainSequence {
  /** Prompt + completion token ids. */
  inputIds: readonly number[];
  /** 1 on tokens the loss counts (completion), 0 elsewhere; entry 0 must be 0. */
  completionMask: readonly number[];
  /** GRPO: the sequence's advantage. */
  advantage?: number;
  /** GRPO: logprobs under the policy that sampled it (entry 0 ignored). */
  oldLogprobs?: readonly number[];
  /** GRPO with β > 0: logprobs under the reference policy (entry 0 ignored). */
  refLogprobs?: readonly number[];
}

export type Padding = "left" | "right";

/** A batch the trainer cannot use: one line naming the sequence and field. */
export class TrainInputError extends Error {
  override name = "TrainInputError";
}

export interface BatchRequirements {
  vocabSize: number;
  /** GRPO needs advantage and old_logprobs. */
  grpo: boolean;
  /** β > 0 needs ref_logprobs on every sequence. */
  needsRef: boolean;
}

/**
 * Checks every sequence (`label(b)` names sequence b in messages, e.g. "line 3"). Returns whether
 * every sequence has ref_logprobs (all or none: a mixed batch is an error).
 */
export function checkTrainBatch(
  batch: readonly TrainSequence[],
  req: BatchRequirements,
  label: (b: number) => string = (b) => `sequence ${b}`,
): { hasRef: boolean } {
  if (batch.length === 0) throw new TrainInputError("the batch has no sequences");
  let withRef = 0;
  batch.forEach((s, b) => {
    const where = label(b);
    const n = s.inputIds.length;
    if (n < 2) throw new TrainInputError(`${where}: input_ids needs at least 2 tokens, got ${n}`);
    s.inputIds.forEach((id, t) => {
      if (!Number.isInteger(id) || id < 0 || id >= req.vocabSize)
        throw new TrainInputError(`${where}: input_ids[${t}] = ${id} is outside vocab_size ${req.vocabSize}`);
    });
    const perToken = (field: string, v: readonly number[] | undefined, finite = true) => {
      if (v === undefined) return;
      if (v.length !== n)
        throw new TrainInputError(`${where}: ${field} has ${v.length} entries, input_ids has ${n}`);
      v.forEach((x, t) => {
        if (typeof x !== "number" || (finite && t > 0 && !Number.isFinite(x)))
          throw new TrainInputError(`${where}: ${field}[${t}] = ${x} is not a finite number`);
      });
    };
    perToken("completion_mask", s.completionMask);
    s.completionMask.forEach((m, t) => {
      if (m !== 0 && m !== 1)
        throw new TrainInputError(`${where}: completion_mask[${t}] = ${m}, expected 0 or 1`);
    });
    if (s.completionMask[0] !== 0)
      throw new TrainInputError(`${where}: completion_mask[0] must be 0 (entry 0 has no logprob)`);
    if (req.grpo) {
      if (s.advantage === undefined || !Number.isFinite(s.advantage))
        throw new TrainInputError(`${where}: advantage must be a finite number, got ${s.advantage}`);
      if (s.oldLogprobs === undefined)
        throw new TrainInputError(`${where}: old_logprobs is required for GRPO`);
    }
    perToken("old_logprobs", s.oldLogprobs);
    perToken("ref_logprobs", s.refLogprobs);
    if (s.refLogprobs) withRef++;
    else if (req.needsRef) throw new TrainInputError(`${where}: ref_logprobs is required when beta > 0`);
  });
  if (withRef !== 0 && withRef !== batch.length) {
    const b = batch.findIndex((s) => !s.refLogprobs);
    throw new TrainInputError(
      `${label(b)}: ref_logprobs is missing while ${withRef} other sequences have it (give it for all or none)`,
    );
  }
  if (!batch.some((s) => s.completionMask.some((m) => m === 1)))
    throw new TrainInputError("the batch has no completion tokens (every completion_mask is 0)");
  return { hasRef: withRef > 0 };
}

/** Row-major [batch, seq] arrays of a padded batch (or a micro-batch of it). */
export interface PaddedTrainBatch {
  batch: number;
  seq: number;
  /** Index of sequence b's token 0 in its row (left padding: seq − length). */
  offsets: number[];
  lengths: number[];
  inputIds: BigInt64Array;
  attentionMask: BigInt64Array;
  positionIds: BigInt64Array;
  completionMask: Float64Array;
  oldLogprobs: Float64Array;
  refLogprobs: Float64Array;
  /** [batch] */
  advantages: Float64Array;
}

/** Pads every sequence to the longest with id `padId`; pad entries of every per-token array are 0. */
export function padTrainBatch(
  batch: readonly TrainSequence[],
  padding: Padding = "left",
  padId = 0,
): PaddedTrainBatch {
  const B = batch.length;
  const T = Math.max(...batch.map((s) => s.inputIds.length));
  const inputIds = new BigInt64Array(B * T).fill(BigInt(padId));
  const attentionMask = new BigInt64Array(B * T);
  const completionMask = new Float64Array(B * T);
  const oldLogprobs = new Float64Array(B * T);
  const refLogprobs = new Float64Array(B * T);
  const offsets = batch.map((s) => (padding === "left" ? T - s.inputIds.length : 0));
  batch.forEach((s, b) => {
    const at = b * T + offsets[b];
    s.inputIds.forEach((id, t) => {
      inputIds[at + t] = BigInt(id);
      attentionMask[at + t] = 1n;
      completionMask[at + t] = s.completionMask[t];
      // entry 0 is unused: keep it 0 so nothing non-finite enters the graph
      if (t > 0) {
        oldLogprobs[at + t] = s.oldLogprobs?.[t] ?? 0;
        refLogprobs[at + t] = s.refLogprobs?.[t] ?? 0;
      }
    });
  });
  return {
    batch: B,
    seq: T,
    offsets,
    lengths: batch.map((s) => s.inputIds.length),
    inputIds,
    attentionMask,
    positionIds: positionIdsFromMask(attentionMask, B, T),
    completionMask,
    oldLogprobs,
    refLogprobs,
    advantages: Float64Array.from(batch, (s) => s.advantage ?? 0),
  };
}

/** Rows [from, to) of a padded batch (same seq). */
export function sliceTrainBatch(p: PaddedTrainBatch, from: number, to: number): PaddedTrainBatch {
  const T = p.seq;
  const rows = <A extends BigInt64Array | Float64Array>(a: A) => a.slice(from * T, to * T) as A;
  return {
    batch: to - from,
    seq: T,
    offsets: p.offsets.slice(from, to),
    lengths: p.lengths.slice(from, to),
    inputIds: rows(p.inputIds),
    attentionMask: rows(p.attentionMask),
    positionIds: rows(p.positionIds),
    completionMask: rows(p.completionMask),
    oldLogprobs: rows(p.oldLogprobs),
    refLogprobs: rows(p.refLogprobs),
    advantages: p.advantages.slice(from, to),
  };
}
