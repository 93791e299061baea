// A DecodeBackend that recomputes the whole float64 reference forward pass at every step: slow
// (quadratic in length, plain loops) but exact, the oracle a KV-cached engine is checked against.
// Each step runs the still-active rows left-padded to a common length, so the padding path
// (attention mask, position_ids = cumsum(mask) − 1) is exercised exactly as a cached engine sees it.
// An adapter is merged into the weights (setAdapter), not fed beside them.
import { type LoraAdapter, mergeLora } from "../adapter/lora.ts";
import type { DecodeBackend, DecodeSession } from "../infer/generate.ts";
import type { LogitsRow } from "../infer/sampler.ts";
import type { Qwen3Config } from "../model/config.ts";
import type { Qwen3Weights } from "../model/weights.ts";
import { referenceForward } from "./reference.ts";

export class ReferenceBackend implements DecodeBackend {
  readonly vocabSize: number;
  readonly maxPositions: number;
  /** The weights later sessions use: the base weights, with the adapter merged in when one is set. */
  weights: Qwen3Weights;

  constructor(
    readonly config: Qwen3Config,
    readonly baseWeights: Qwen3Weights,
  ) {
    this.vocabSize = config.vocabSize;
    this.maxPositions = config.maxPositionEmbeddings;
    this.weights = baseWeights;
  }

  /** The LoRA adapter of later sessions, merged into the base weights (null: the base model). */
  setAdapter(adapter: LoraAdapter | null): void {
    this.weights = adapter ? mergeLora(this.baseWeights, adapter) : this.baseWeights;
  }

  /** Next-token logits ([V] float64) of each sequence, computed as one left-padded batch. */
  lastLogits(sequences: readonly (readonly number[])[]): Float64Array[] {
    const T = Math.max(...sequences.map((s) => s.length));
    const ids = sequences.map((s) => [...new Array<number>(T - s.length).fill(0), ...s]);
    const attentionMask = sequences.map((s) => [
      ...new Array<number>(T - s.length).fill(0),
      ...new Array<number>(s.length).fill(1),
    ]);
    const { logits } = referenceForward(this.config, this.weights, ids, {
      attentionMask,
      returnLogits: true,
    });
    const V = this.vocabSize;
    return logits!.map((l) => l.slice((T - 1) * V, T * V));
  }

  async prefill(
    prompts: readonly (readonly number[])[],
  ): Promise<{ session: DecodeSession; logits: LogitsRow[] }> {
    const sequences = prompts.map((p) => [...p]);
    const session: DecodeSession = {
      decode: async (rows, tokens) => {
        rows.forEach((r, i) => {
          sequences[r].push(tokens[i]);
        });
        return this.lastLogits(rows.map((r) => sequences[r]));
      },
      close: () => {
        sequences.length = 0;
      },
    };
    return { session, logits: this.lastLogits(sequences) };
  }
}
