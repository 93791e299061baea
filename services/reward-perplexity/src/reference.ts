// Reference-model mode of the perplexity source: what the main thread and the engine worker share
// (the worker's init, its call protocol, how sequences are batched). No engine code here: the main
// thread imports this module, and only the worker (reference-worker.ts) loads ONNX Runtime.
import type { WorkerCallContext } from "@temper/kit";

export type ReferenceDtype = "float32" | "float64";
export type ReferenceProvider = "cpu" | "webgpu" | "cuda";

/** The worker's setup argument. */
export interface ReferenceInit {
  dir: string;
  dtype: ReferenceDtype;
  provider: ReferenceProvider;
  threads?: number;
  limits: BatchLimits;
}

/** Bounds on one engine run. */
export interface BatchLimits {
  /** Most sequences in one run. */
  maxRows: number;
  /** Most padded tokens (rows × longest sequence) in one run; a longer sequence runs alone. */
  maxTokens: number;
}

/** One sequence to score: prompt + completion ids, of which the last `scored` are the completion. */
export interface ReferenceSequence {
  ids: number[];
  scored: number;
}

/** The model's shape as far as request validation needs it. */
export interface ReferenceModelInfo {
  /** Rows of the embedding: token ids must be in [0, vocabSize). */
  vocabSize: number;
  /** Longest prompt + completion accepted. */
  maxPositionEmbeddings: number;
}

/** Calls the worker answers (EngineWorker's handler map). */
export type ReferenceHandlers = {
  info(args: Record<string, never>): ReferenceModelInfo;
  /**
   * Per sequence, the log-probabilities of its last `scored` tokens, each given every token before
   * it (temperature 1, untruncated): entry i = log p(ids[n − scored + i] | ids[< n − scored + i]).
   */
  score(args: { sequences: ReferenceSequence[] }, ctx: WorkerCallContext): Promise<Float64Array[]>;
};

/**
 * Splits sequences (by length) into engine runs: longest first, so each run pads little; a run takes
 * at most `maxRows` sequences and `maxTokens` padded tokens, except that one sequence longer than
 * `maxTokens` runs alone. Returns indices into `lengths`; every index appears exactly once.
 */
export function planBatches(lengths: readonly number[], limits: BatchLimits): number[][] {
  const order = lengths.map((_, i) => i).sort((a, b) => lengths[b] - lengths[a] || a - b);
  const batches: number[][] = [];
  let current: number[] = [];
  let width = 0;
  for (const i of order) {
    if (
      current.length > 0 &&
      (current.length >= limits.maxRows || (current.length + 1) * width > limits.maxTokens)
    ) {
      batches.push(current);
      current = [];
    }
    if (current.length === 0) width = lengths[i];
    current.push(i);
  }
  if (current.length > 0) batches.push(current);
  return batches;
}
