// A DecodeBackend over the ONNX forward graph (Qwen3Engine loaded with `logits: true`) that
// recomputes the whole left-padded batch at every step: no KV cache yet, so quadratic in length,
// but ORT-fast and on any execution provider. It is the stand-in until the cached prefill/decode
// graphs land, and a second oracle for them.

import type { Qwen3Engine } from "./engine.ts";
import { leftPad } from "../graph/engine-batch.ts";
import type { DecodeBackend, DecodeSession } from "./generate.ts";
import type { LogitsRow } from "./sampler.ts";

export class EngineRecomputeBackend implements DecodeBackend {
  readonly vocabSize: number;
  readonly maxPositions: number;

  /** `engine` must have been loaded with `logits: true`; it stays the caller's to release. */
  constructor(readonly engine: Qwen3Engine) {
    this.vocabSize = engine.config.vocabSize;
    this.maxPositions = engine.config.maxPositionEmbeddings;
  }

  /** Next-token logits ([V]) of each sequence, from one left-padded forward run. */
  async lastLogits(sequences: readonly (readonly number[])[]): Promise<LogitsRow[]> {
    const batch = leftPad(sequences);
    const out = await this.engine.forward(batch);
    if (!out.logits) throw new Error("EngineRecomputeBackend needs an engine loaded with logits: true");
    const V = this.vocabSize;
    const S = batch.seq;
    // Left padding puts every row's last real token at position S − 1.
    return sequences.map((_, b) => out.logits!.slice((b * S + S - 1) * V, (b * S + S) * V));
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
    return { session, logits: await this.lastLogits(sequences) };
  }
}
