// What one training micro-batch holds in memory beyond the weights: the forward's activations that
// the backward reads, the largest of the backward's own temporaries, and the logits' vocabulary-wide
// tensors. An upper bound to refuse a Train before it starts, not an exact count; its factor is set
// from tools/bench/train-memory.ts, which prints it against measured peak RSS.
import type { Qwen3Config } from "../model/config.ts";

/** Measured peak over this estimate stayed below 1 on every shape the bench tried; this is the margin. */
export const TRAIN_MEMORY_MARGIN = 1.5;

/** Bytes a micro-batch of `rows` sequences padded to `seq` tokens holds while it trains (upper bound). */
export function trainActivationBytes(
  config: Qwen3Config,
  rows: number,
  seq: number,
  dtypeBytes: 4 | 8,
  loraRank = 0,
): number {
  const {
    hiddenSize: h,
    intermediateSize: m,
    numAttentionHeads: nh,
    numKeyValueHeads: nkv,
    headDim: hd,
  } = config;
  // per token and layer: norms and residuals (6h); q, k, v with their norms and rotations and the
  // key/value heads repeated to every query head (3·nh·hd + 4·nkv·hd + 2·nh·hd); attention scores,
  // masked scores and probabilities (3·nh·seq); the attention output and o_proj (nh·hd + h); the
  // MLP's gate, up, activation and product (4m) and down (h); LoRA's rank-wide middles (7 modules)
  const perLayer = 8 * h + 6 * nh * hd + 4 * nkv * hd + 3 * nh * seq + 4 * m + 7 * loraRank;
  // per token, after the layers, vocabulary-wide: logits, tempered logits, their maximum-shifted and
  // exponentiated forms, log-softmax, the token pick's mask, and in the backward each one's
  // gradient. Measured at Qwen3's 151,680-entry vocabulary (bench): 10 to 13.5 such rows a token
  const head = 16 * config.vocabSize;
  // the backward's widest per-layer temporaries live beside what the forward stored: one layer's
  // attention gradients
  const backward = 2 * nh * seq;
  const perToken = config.numHiddenLayers * perLayer + head + backward;
  return TRAIN_MEMORY_MARGIN * rows * seq * perToken * dtypeBytes;
}
