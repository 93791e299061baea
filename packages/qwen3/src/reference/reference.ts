// An independent float64 Qwen3 forward pass in plain loops: the oracle the ONNX graphs are tested
// against. It follows transformers' modeling_qwen3.py step by step and favours being obviously
// right over speed (only for CPU-sized models).
//
//   h = embed[ids]
//   per layer:  x = RMSNorm(h)·w_in
//               q, k, v = Wq x, Wk x, Wv x            per head: q, k ← RMSNorm over head_dim (q_norm/k_norm)
//               q, k ← rotate-half RoPE at position_ids = cumsum(mask) − 1, inv_freq_i = θ^(−2i/d)
//               attention: query head j uses KV head ⌊j / rep⌋; causal and padding mask; scale d^−½
//               h ← h + Wo·attn
//               h ← h + W_down (silu(W_gate y) ⊙ W_up y),  y = RMSNorm(h)·w_post
//   logits = W_lm · RMSNorm(h)·w_final   (W_lm = embed when tied)
import type { Qwen3Config } from "../model/config.ts";
import type { Qwen3Weights } from "../model/weights.ts";

export interface ReferenceOptions {
  /** [B][T]: 1 for a token, 0 for padding (left or right). Default: all ones. */
  attentionMask?: readonly (readonly number[])[];
  /** Logits are divided by this before the log-softmax (the sampling distribution); default 1. */
  temperature?: number;
  /** Also return the raw logits of every position. */
  returnLogits?: boolean;
}

export interface ReferenceResult {
  /**
   * [B][T−1]: entry t−1 = log p(ids[t] | ids[<t]) for t ≥ 1. Entries where token t or token t−1 is
   * padding have no meaning and are 0.
   */
  logprobs: number[][];
  /** [B] of [T·vocab] row-major raw logits (padding positions included), when asked for. */
  logits?: Float64Array[];
}

export class ReferenceInputError extends Error {
  override name = "ReferenceInputError";
}

/** out[r] = Σ_c W[r, c]·x[c] for a row-major [rows, cols] matrix. */
function matVec(w: ArrayLike<number>, rows: number, cols: number, x: ArrayLike<number>): Float64Array {
  const out = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    let s = 0;
    const base = r * cols;
    for (let c = 0; c < cols; c++) s += w[base + c] * x[c];
    out[r] = s;
  }
  return out;
}

/** x[off … off+n) / sqrt(mean(x²) + eps) · w. */
export function rmsNorm(
  x: ArrayLike<number>,
  off: number,
  n: number,
  w: ArrayLike<number>,
  eps: number,
): Float64Array {
  let ss = 0;
  for (let i = 0; i < n; i++) ss += x[off + i] * x[off + i];
  const inv = 1 / Math.sqrt(ss / n + eps);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = x[off + i] * inv * w[i];
  return out;
}

/** Rotate-half RoPE of one head vector at `position`: (x1, x2) → (x1·cos − x2·sin, x2·cos + x1·sin). */
export function rope(x: Float64Array, position: number, theta: number): Float64Array {
  const d = x.length;
  const half = d / 2;
  const out = new Float64Array(d);
  for (let i = 0; i < half; i++) {
    const angle = position * theta ** ((-2 * i) / d);
    const c = Math.cos(angle);
    const s = Math.sin(angle);
    out[i] = x[i] * c - x[i + half] * s;
    out[i + half] = x[i + half] * c + x[i] * s;
  }
  return out;
}

const silu = (z: number) => z / (1 + Math.exp(-z));

function logSoftmaxAt(logits: Float64Array, off: number, n: number, scale: number, index: number): number {
  let max = -Infinity;
  for (let i = 0; i < n; i++) max = Math.max(max, logits[off + i] * scale);
  let sum = 0;
  for (let i = 0; i < n; i++) sum += Math.exp(logits[off + i] * scale - max);
  return logits[off + index] * scale - max - Math.log(sum);
}

function checkInput(
  config: Qwen3Config,
  ids: readonly (readonly number[])[],
  options: ReferenceOptions,
): number {
  if (ids.length === 0) throw new ReferenceInputError("inputIds is empty");
  const t = ids[0].length;
  if (t === 0) throw new ReferenceInputError("inputIds[0] is empty");
  ids.forEach((row, b) => {
    if (row.length !== t)
      throw new ReferenceInputError(`inputIds[${b}] has ${row.length} tokens, inputIds[0] has ${t}`);
    row.forEach((id, i) => {
      if (!Number.isInteger(id) || id < 0 || id >= config.vocabSize) {
        throw new ReferenceInputError(
          `inputIds[${b}][${i}] = ${id} is outside vocab_size ${config.vocabSize}`,
        );
      }
    });
  });
  const mask = options.attentionMask;
  if (mask) {
    if (mask.length !== ids.length)
      throw new ReferenceInputError(`attentionMask has ${mask.length} rows, inputIds ${ids.length}`);
    mask.forEach((row, b) => {
      if (row.length !== t)
        throw new ReferenceInputError(`attentionMask[${b}] has ${row.length} entries, expected ${t}`);
      if (!row.every((m) => m === 0 || m === 1))
        throw new ReferenceInputError(`attentionMask[${b}] holds a value other than 0 or 1`);
    });
  }
  const temperature = options.temperature ?? 1;
  if (!(temperature > 0)) throw new ReferenceInputError(`temperature must be positive, got ${temperature}`);
  return t;
}

/** Forward pass of a batch; per-token logprobs (and optionally logits) in float64. */
export function referenceForward(
  config: Qwen3Config,
  weights: Qwen3Weights,
  inputIds: readonly (readonly number[])[],
  options: ReferenceOptions = {},
): ReferenceResult {
  const T = checkInput(config, inputIds, options);
  const result: ReferenceResult = { logprobs: [] };
  if (options.returnLogits) result.logits = [];
  inputIds.forEach((ids, b) => {
    const mask = options.attentionMask?.[b] ?? ids.map(() => 1);
    const logits = sequenceLogits(config, weights, ids, mask, T);
    const scale = 1 / (options.temperature ?? 1);
    const V = config.vocabSize;
    const lp: number[] = [];
    for (let t = 1; t < T; t++) {
      lp.push(mask[t] && mask[t - 1] ? logSoftmaxAt(logits, (t - 1) * V, V, scale, ids[t]) : 0);
    }
    result.logprobs.push(lp);
    result.logits?.push(logits);
  });
  return result;
}

/** [T·V] logits of one sequence. */
function sequenceLogits(
  config: Qwen3Config,
  weights: Qwen3Weights,
  ids: readonly number[],
  mask: readonly number[],
  T: number,
): Float64Array {
  const H = config.hiddenSize;
  const D = config.headDim;
  const nQ = config.numAttentionHeads;
  const nKV = config.numKeyValueHeads;
  const rep = nQ / nKV;
  const I = config.intermediateSize;
  const V = config.vocabSize;
  const eps = config.rmsNormEps;

  // position_ids = cumsum(mask) − 1; padding positions never influence real tokens.
  const positions: number[] = [];
  let seen = 0;
  for (let t = 0; t < T; t++) {
    seen += mask[t];
    positions.push(mask[t] ? seen - 1 : 0);
  }

  // hidden[t] = embed[ids[t]]
  const hidden: Float64Array[] = ids.map((id) =>
    Float64Array.from(weights.embedTokens.subarray(id * H, (id + 1) * H)),
  );

  for (const layer of weights.layers) {
    // Per position: normed queries [nQ][D], keys and values [nKV][D].
    const qs: Float64Array[][] = [];
    const ks: Float64Array[][] = [];
    const vs: Float64Array[][] = [];
    for (let t = 0; t < T; t++) {
      const x = rmsNorm(hidden[t], 0, H, layer.inputLayernorm, eps);
      const q = matVec(layer.qProj, nQ * D, H, x);
      const k = matVec(layer.kProj, nKV * D, H, x);
      const v = matVec(layer.vProj, nKV * D, H, x);
      qs.push(
        Array.from({ length: nQ }, (_, h) =>
          rope(rmsNorm(q, h * D, D, layer.qNorm, eps), positions[t], config.ropeTheta),
        ),
      );
      ks.push(
        Array.from({ length: nKV }, (_, h) =>
          rope(rmsNorm(k, h * D, D, layer.kNorm, eps), positions[t], config.ropeTheta),
        ),
      );
      vs.push(Array.from({ length: nKV }, (_, h) => v.slice(h * D, (h + 1) * D)));
    }
    const scale = 1 / Math.sqrt(D);
    for (let t = 0; t < T; t++) {
      const attn = new Float64Array(nQ * D); // concatenated head outputs
      for (let h = 0; h < nQ; h++) {
        const g = Math.floor(h / rep); // the KV head serving query head h
        const allowed: number[] = [];
        for (let s = 0; s <= t; s++) if (mask[s]) allowed.push(s);
        if (allowed.length === 0) continue; // a padding row with nothing to attend to: output 0
        const scores = allowed.map((s) => {
          let dot = 0;
          for (let i = 0; i < D; i++) dot += qs[t][h][i] * ks[s][g][i];
          return dot * scale;
        });
        const max = Math.max(...scores);
        const e = scores.map((z) => Math.exp(z - max));
        const z = e.reduce((a, c) => a + c, 0);
        allowed.forEach((s, j) => {
          const p = e[j] / z;
          for (let i = 0; i < D; i++) attn[h * D + i] += p * vs[s][g][i];
        });
      }
      const o = matVec(layer.oProj, H, nQ * D, attn);
      for (let i = 0; i < H; i++) hidden[t][i] += o[i];
    }
    for (let t = 0; t < T; t++) {
      const y = rmsNorm(hidden[t], 0, H, layer.postAttentionLayernorm, eps);
      const gate = matVec(layer.gateProj, I, H, y);
      const up = matVec(layer.upProj, I, H, y);
      const act = gate.map((g, i) => silu(g) * up[i]);
      const down = matVec(layer.downProj, H, I, act);
      for (let i = 0; i < H; i++) hidden[t][i] += down[i];
    }
  }

  const logits = new Float64Array(T * V);
  for (let t = 0; t < T; t++) {
    const x = rmsNorm(hidden[t], 0, H, weights.norm, eps);
    logits.set(matVec(weights.lmHead, V, H, x), t * V);
  }
  return logits;
}
