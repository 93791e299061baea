// Test helpers for the training graph: a tiny model on disk, a batch whose GRPO log-ratios sit away
// from the clip boundaries, and central finite differences through Qwen3Trainer.evaluate().
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { LoraAdapter } from "../adapter/lora.ts";
import { presetConfig } from "../model/config.ts";
import { initModel } from "../model/init.ts";
import { tokenizerIds } from "../model/tokenizer.ts";
import type { Qwen3Trainer, StepOptions, TrainParams } from "../train/train.ts";
import type { TrainSequence } from "../train/train-batch.ts";

/** A fresh tiny f32 model directory under `root` (or a new temp dir). */
export function tinyModelDir(root = mkdtempSync(join(tmpdir(), "qwen3-train-")), seed = 2): string {
  const dir = join(root, "tiny");
  initModel({
    config: presetConfig("tiny", tokenizerIds("bytes")),
    tokenizer: "bytes",
    out: dir,
    seed,
    dtype: "f32",
  });
  return dir;
}

/** Three sequences of different lengths; completion masks start after a short prompt. */
export const TRAIN_IDS = [
  [1, 40, 41, 42, 7, 99, 12],
  [3, 70, 71, 5, 9],
  [2, 33, 200, 45, 46, 47],
];
const PROMPT = [3, 2, 2];
export const ADVANTAGES = [1.3, -0.7, 0.4];
// lp − old per completion token, away from the clip boundaries ln 0.8 ≈ −0.22 and ln 1.2 ≈ 0.18
const LOG_RATIOS = [0.5, -0.05, -0.4, 0.1, 0.9, 0.12, -0.6, 0.35, 0.02, -0.3, 0.7, -0.1];

/**
 * The GRPO batch for policy logprobs `lp` (per sequence, aligned): old = lp − log-ratio so both
 * clip branches are exercised, ref = lp + a fixed perturbation so the k3 KL is non-zero.
 */
export function grpoBatch(lp: readonly (readonly number[])[]): TrainSequence[] {
  let k = 0;
  return TRAIN_IDS.map((ids, b) => {
    const completionMask = ids.map((_, t) => (t >= PROMPT[b] ? 1 : 0));
    return {
      inputIds: ids,
      completionMask,
      advantage: ADVANTAGES[b],
      oldLogprobs: ids.map((_, t) =>
        t === 0 ? 0 : lp[b][t] - (completionMask[t] ? LOG_RATIOS[k++ % 12] : 0),
      ),
      refLogprobs: ids.map((_, t) => (t === 0 ? 0 : lp[b][t] + 0.3 * Math.sin(7 * b + t))),
    };
  });
}

/** The batch with placeholder old/ref logprobs (for a first evaluate that yields the policy's lp). */
export function placeholderBatch(): TrainSequence[] {
  return grpoBatch(TRAIN_IDS.map((ids) => ids.map(() => 0)));
}

/**
 * Central finite difference of the trainer's loss along one element (or a direction) of the params:
 * `set(x)` writes the perturbation (x = ±h), `reset()` restores.
 */
export async function centralDifference(
  trainer: Qwen3Trainer,
  batch: readonly TrainSequence[],
  params: TrainParams,
  set: (x: number) => void,
  reset: () => void,
  h = 1e-5,
  options: StepOptions = {},
): Promise<number> {
  set(h);
  const plus = (await trainer.evaluate(batch, params, options)).loss;
  set(-h);
  const minus = (await trainer.evaluate(batch, params, options)).loss;
  reset();
  return (plus - minus) / (2 * h);
}

/** The adapter widened to float64 (in-place perturbations of a Float32Array would round away). */
export function float64Adapter(adapter: LoraAdapter): LoraAdapter<Float64Array> {
  return {
    config: adapter.config,
    pairs: adapter.pairs.map((p) => ({ ...p, a: Float64Array.from(p.a), b: Float64Array.from(p.b) })),
  };
}
