// Left-padded batches: the tensors a forward graph takes for a list of token-id sequences.

/** A batch of sequences padded on the left to one length, row-major [batch, seq]. */
export interface PaddedBatch {
  batch: number;
  seq: number;
  /** Real tokens of each row (its padding is seq − length). */
  lengths: number[];
  inputIds: BigInt64Array;
  /** 1 for a token, 0 for padding. */
  attentionMask: BigInt64Array;
  /** cumsum(attention_mask) − 1, clipped at 0 on padding. */
  positionIds: BigInt64Array;
}

/** Input the engine cannot run: one line naming the sequence and token. */
export class EngineInputError extends Error {
  override name = "EngineInputError";
}

/** Checks ids against the embedding's rows (`vocabSize`); an empty batch or sequence is an error. */
export function checkSequences(sequences: readonly (readonly number[])[], vocabSize: number): void {
  if (sequences.length === 0) throw new EngineInputError("no sequences given");
  sequences.forEach((ids, b) => {
    if (ids.length === 0) throw new EngineInputError(`sequence ${b} is empty`);
    ids.forEach((id, i) => {
      if (!Number.isInteger(id) || id < 0 || id >= vocabSize)
        throw new EngineInputError(`sequence ${b} token ${i}: id ${id} is outside vocab_size ${vocabSize}`);
    });
  });
}

/** Pads every sequence on the left with `padId` (masked out) to the longest length. */
export function leftPad(sequences: readonly (readonly number[])[], padId = 0): PaddedBatch {
  const batch = sequences.length;
  const seq = Math.max(...sequences.map((s) => s.length));
  const inputIds = new BigInt64Array(batch * seq).fill(BigInt(padId));
  const attentionMask = new BigInt64Array(batch * seq);
  const positionIds = new BigInt64Array(batch * seq);
  sequences.forEach((ids, b) => {
    const pad = seq - ids.length;
    ids.forEach((id, i) => {
      const at = b * seq + pad + i;
      inputIds[at] = BigInt(id);
      attentionMask[at] = 1n;
      positionIds[at] = BigInt(i);
    });
  });
  return { batch, seq, lengths: sequences.map((s) => s.length), inputIds, attentionMask, positionIds };
}

/** position_ids of an arbitrary 0/1 mask row-major [batch, seq]: cumsum − 1, clipped at 0. */
export function positionIdsFromMask(mask: BigInt64Array, batch: number, seq: number): BigInt64Array {
  const out = new BigInt64Array(batch * seq);
  for (let b = 0; b < batch; b++) {
    let seen = 0n;
    for (let t = 0; t < seq; t++) {
      seen += mask[b * seq + t];
      out[b * seq + t] = seen > 0n ? seen - 1n : 0n;
    }
  }
  return out;
}
