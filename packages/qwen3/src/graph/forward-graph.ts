// The Qwen3 forward pass as an ONNX graph, built from small pieces that the KV-cache decode graphs
// and the LoRA/training graphs reuse. It follows transformers' modeling_qwen3.py:
//
//   h = embed[input_ids]
//   per layer:  a = attention(RMSNorm(h)),  h += a;  m = mlp(RMSNorm(h)),  h += m
//   logits = lm_head(RMSNorm(h))            (lm_head = embed when tie_word_embeddings)
//
// Weights are named and shaped as in the checkpoint ([out, in] for linear layers); `linear` multiplies
// by the transpose, which ORT folds into the constant at session creation. Names follow the Optimum /
// transformers.js export: input_ids, attention_mask, position_ids, past_key_values.N.key/value →
// logits, present.N.key/value ([batch, kv_heads, seq, head_dim]).
import type { Dim, FloatDType, GraphBuilder, Value } from "@temper/onnx";
import type { Qwen3Config } from "../model/config.ts";
import { layerPrefix } from "../model/weights.ts";

/** Returns the graph value of the checkpoint tensor `name` (Hugging Face name and shape). */
export type WeightSource = (name: string, shape: number[]) => Value;

/** The seven linear layers LoRA may target (PEFT's target_modules, short form). */
export type LinearModule = "q" | "k" | "v" | "o" | "gate" | "up" | "down";
export const LINEAR_MODULES: readonly LinearModule[] = ["q", "k", "v", "o", "gate", "up", "down"];

/** Checkpoint suffix of each linear module inside a layer. */
export const MODULE_TENSORS: Record<LinearModule, string> = {
  q: "self_attn.q_proj",
  k: "self_attn.k_proj",
  v: "self_attn.v_proj",
  o: "self_attn.o_proj",
  gate: "mlp.gate_proj",
  up: "mlp.up_proj",
  down: "mlp.down_proj",
};

/** A low-rank update of one linear layer: W' = W + scale·B·A, A [r, in], B [out, r]. */
export interface LoraPair {
  a: Value;
  b: Value;
  /** α/r (α/√r with rsLoRA). */
  scale: number;
}

/** Supplies the LoRA pair of (layer, module), or undefined for a frozen layer. */
export type LoraSource = (layer: number, module: LinearModule) => LoraPair | undefined;

/** Past keys/values of one layer, [batch, kv_heads, past, head_dim] each. */
export interface KeyValue {
  key: Value;
  value: Value;
}

/** y = x·Wᵀ (+ scale·(x·Aᵀ)·Bᵀ); x [..., in], W [out, in] → y [..., out]. */
export function linear(g: GraphBuilder, x: Value, w: Value, lora?: LoraPair): Value {
  const y = g.matmul(x, g.transpose(w, [1, 0]));
  if (!lora) return y;
  // Two thin matmuls instead of forming B·A: r ≪ in, out.
  const low = g.matmul(g.matmul(x, g.transpose(lora.a, [1, 0])), g.transpose(lora.b, [1, 0]));
  return g.add(y, g.mul(low, lora.scale));
}

/**
 * x / sqrt(mean(x²) + eps) · w over the last axis. The statistics are in the graph's dtype (float32
 * graphs: fp32 as in HF; float64 graphs: float64). This Pow/ReduceMean/Add/Sqrt/Div/Mul chain is the
 * pattern ORT fuses into SimplifiedLayerNormalization in float32 sessions.
 */
export function rmsNormLayer(g: GraphBuilder, x: Value, w: Value, eps: number): Value {
  const meanSquare = g.reduceMean(g.pow(x, 2), [-1], true);
  return g.mul(g.div(x, g.sqrt(g.add(meanSquare, eps))), w);
}

/** cos and sin of the rotary angles, [batch, seq, 1, head_dim] each (broadcast over heads). */
export interface RopeTables {
  cos: Value;
  sin: Value;
}

/**
 * Rotary tables from position_ids [batch, seq] (int64): angle_i = pos·θ^(−2i/d) for i < d/2, repeated
 * for both halves (HF's cat(freqs, freqs)).
 */
export function ropeTables(g: GraphBuilder, positionIds: Value, headDim: number, theta: number): RopeTables {
  const half = headDim / 2;
  const invFreq = Array.from({ length: half }, (_, i) => theta ** ((-2 * i) / headDim));
  const pos = g.unsqueeze(g.cast(positionIds, g.dtype), [2]); // [batch, seq, 1]
  const freqs = g.mul(pos, g.constant(invFreq, g.dtype, [half])); // [batch, seq, d/2]
  const angles = g.unsqueeze(g.concat([freqs, freqs], -1), [2]); // [batch, seq, 1, d]
  return { cos: g.op("Cos", [angles]), sin: g.op("Sin", [angles]) };
}

/** Rotate-half RoPE: x·cos + rotate_half(x)·sin on x [batch, seq, heads, d]. */
export function applyRope(g: GraphBuilder, x: Value, rope: RopeTables, headDim: number): Value {
  const [x1, x2] = g.split(x, [headDim / 2, headDim / 2], -1);
  const rotated = g.concat([g.neg(x2), x1], -1);
  return g.add(g.mul(x, rope.cos), g.mul(rotated, rope.sin));
}

/**
 * Which keys each query may see, shared by every layer: bool [batch, 1, rep·seq, total], rows ordered
 * (r, s) to match the grouped query layout of `attention`. Query s sits at absolute index
 * total − seq + s (after `past` cached tokens) and sees key j when j ≤ that index and
 * attention_mask[b, j] = 1 (causal + padding).
 */
export function attentionMask(
  g: GraphBuilder,
  attentionMaskInput: Value,
  inputIds: Value,
  rep: number,
): Value {
  const total = g.gather(g.shapeOf(attentionMaskInput), g.constant([1], "int64", []), 0); // scalar
  const seq = g.gather(g.shapeOf(inputIds), g.constant([1], "int64", []), 0);
  const queryIndex = g.range(g.sub(total, seq), total, 1); // [seq]
  const keyIndex = g.range(0, total, 1); // [total]
  const causal = g.lessOrEqual(g.unsqueeze(keyIndex, [0]), g.unsqueeze(queryIndex, [1])); // [seq, total]
  const present = g.unsqueeze(g.equal(attentionMaskInput, g.constant([1], "int64", [])), [1, 2]); // [b,1,1,total]
  const allowed = g.and(causal, present); // [batch, 1, seq, total]
  return rep === 1 ? allowed : g.concat(Array(rep).fill(allowed), 2);
}

export interface AttentionWeights {
  q: Value;
  k: Value;
  v: Value;
  o: Value;
  qNorm: Value;
  kNorm: Value;
}

/**
 * Grouped-query self-attention of x [batch, seq, hidden] → [batch, seq, hidden], plus this step's
 * keys/values [batch, kv_heads, total, d] (past concatenated with the new ones). KV head j serves query
 * heads j·rep … (j+1)·rep−1: queries are grouped [batch, kv_heads, rep·seq, d] so keys are never copied.
 */
export function attention(
  g: GraphBuilder,
  config: Qwen3Config,
  x: Value,
  w: AttentionWeights,
  ctx: { rope: RopeTables; mask: Value; past?: KeyValue; lora?: (m: LinearModule) => LoraPair | undefined },
): { out: Value; present: KeyValue } {
  const d = config.headDim;
  const nQ = config.numAttentionHeads;
  const nKV = config.numKeyValueHeads;
  const rep = nQ / nKV;
  const eps = config.rmsNormEps;
  const lora = ctx.lora ?? (() => undefined);

  // q [batch, seq, nQ, d], k/v [batch, seq, nKV, d]; per-head RMSNorm before RoPE (Qwen3's q_norm/k_norm)
  const q = g.reshape(linear(g, x, w.q, lora("q")), [0, 0, nQ, d]);
  const k = g.reshape(linear(g, x, w.k, lora("k")), [0, 0, nKV, d]);
  const v = g.reshape(linear(g, x, w.v, lora("v")), [0, 0, nKV, d]);
  const qr = applyRope(g, rmsNormLayer(g, q, w.qNorm, eps), ctx.rope, d);
  const kr = applyRope(g, rmsNormLayer(g, k, w.kNorm, eps), ctx.rope, d);

  let keys = g.transpose(kr, [0, 2, 1, 3]); // [batch, nKV, seq, d]
  let values = g.transpose(v, [0, 2, 1, 3]);
  if (ctx.past) {
    keys = g.concat([ctx.past.key, keys], 2); // [batch, nKV, total, d]
    values = g.concat([ctx.past.value, values], 2);
  }
  // [batch, seq, nKV, rep, d] → [batch, nKV, rep, seq, d] → [batch, nKV, rep·seq, d]
  const grouped = g.reshape(g.transpose(g.reshape(qr, [0, 0, nKV, rep, d]), [0, 2, 3, 1, 4]), [0, 0, -1, d]);
  const scores = g.mul(g.matmul(grouped, g.transpose(keys, [0, 1, 3, 2])), d ** -0.5); // [b, nKV, rep·seq, total]
  // A finite fill keeps fully masked rows (left-pad queries) NaN-free; they never reach real tokens.
  const probs = g.softmax(g.where(ctx.mask, scores, -1e30), -1);
  const context = g.matmul(probs, values); // [batch, nKV, rep·seq, d]
  // → [batch, nKV, rep, seq, d] → [batch, seq, nKV, rep, d] → [batch, seq, nQ·d]; the target shape
  // comes from x so that the builder keeps the symbolic [batch, seq] dims
  const batchSeq = g.slice(g.shapeOf(x), [0], [2], [0]);
  const merged = g.reshape(
    g.transpose(g.reshape(context, [0, 0, rep, -1, d]), [0, 3, 1, 2, 4]),
    g.concat([batchSeq, g.ints([nQ * d])], 0),
  );
  return { out: linear(g, merged, w.o, lora("o")), present: { key: keys, value: values } };
}

export interface MlpWeights {
  gate: Value;
  up: Value;
  down: Value;
}

/** down(silu(gate(x)) ⊙ up(x)), x [batch, seq, hidden]. */
export function mlp(
  g: GraphBuilder,
  x: Value,
  w: MlpWeights,
  lora: (m: LinearModule) => LoraPair | undefined = () => undefined,
): Value {
  const gate = linear(g, x, w.gate, lora("gate"));
  const act = g.mul(gate, g.sigmoid(gate));
  return linear(g, g.mul(act, linear(g, x, w.up, lora("up"))), w.down, lora("down"));
}

export interface LayerWeights {
  attention: AttentionWeights;
  mlp: MlpWeights;
  inputLayernorm: Value;
  postAttentionLayernorm: Value;
}

/** The graph values of layer i's weights, taken from `weights` by checkpoint name. */
export function layerWeights(config: Qwen3Config, weights: WeightSource, i: number): LayerWeights {
  const h = config.hiddenSize;
  const d = config.headDim;
  const q = config.numAttentionHeads * d;
  const kv = config.numKeyValueHeads * d;
  const m = config.intermediateSize;
  const p = layerPrefix(i);
  const lin = (mod: LinearModule, shape: number[]) => weights(`${p}.${MODULE_TENSORS[mod]}.weight`, shape);
  return {
    attention: {
      q: lin("q", [q, h]),
      k: lin("k", [kv, h]),
      v: lin("v", [kv, h]),
      o: lin("o", [h, q]),
      qNorm: weights(`${p}.self_attn.q_norm.weight`, [d]),
      kNorm: weights(`${p}.self_attn.k_norm.weight`, [d]),
    },
    mlp: { gate: lin("gate", [m, h]), up: lin("up", [m, h]), down: lin("down", [h, m]) },
    inputLayernorm: weights(`${p}.input_layernorm.weight`, [h]),
    postAttentionLayernorm: weights(`${p}.post_attention_layernorm.weight`, [h]),
  };
}

/** One pre-norm decoder layer on h [batch, seq, hidden]. */
export function decoderLayer(
  g: GraphBuilder,
  config: Qwen3Config,
  h: Value,
  w: LayerWeights,
  ctx: { rope: RopeTables; mask: Value; past?: KeyValue; lora?: (m: LinearModule) => LoraPair | undefined },
): { hidden: Value; present: KeyValue } {
  const eps = config.rmsNormEps;
  const attn = attention(g, config, rmsNormLayer(g, h, w.inputLayernorm, eps), w.attention, ctx);
  const mid = g.add(h, attn.out);
  const out = g.add(mid, mlp(g, rmsNormLayer(g, mid, w.postAttentionLayernorm, eps), w.mlp, ctx.lora));
  return { hidden: out, present: attn.present };
}

/** The graph inputs of a forward pass (Optimum names). */
export interface ForwardInputs {
  /** [batch, seq] int64 */
  inputIds: Value;
  /** [batch, total] int64, total = past + seq; 1 = token, 0 = padding */
  attentionMask: Value;
  /** [batch, seq] int64; cumsum(attention_mask) − 1 (0 at padding) */
  positionIds: Value;
  /** Per layer, when continuing from a KV cache. */
  past?: KeyValue[];
}

/** Declares input_ids, attention_mask, position_ids and (with `pastKeyValues`) past_key_values.N.key/value. */
export function forwardInputs(g: GraphBuilder, config: Qwen3Config, pastKeyValues = false): ForwardInputs {
  const inputs: ForwardInputs = {
    inputIds: g.input("input_ids", "int64", ["batch", "seq"]),
    attentionMask: g.input("attention_mask", "int64", ["batch", "total"]),
    positionIds: g.input("position_ids", "int64", ["batch", "seq"]),
  };
  if (pastKeyValues) {
    const shape: Dim[] = ["batch", config.numKeyValueHeads, "past", config.headDim];
    inputs.past = Array.from({ length: config.numHiddenLayers }, (_, i) => ({
      key: g.floatInput(`past_key_values.${i}.key`, shape),
      value: g.floatInput(`past_key_values.${i}.value`, shape),
    }));
  }
  return inputs;
}

export interface ForwardValues {
  /** Final-normed hidden states [batch, seq, hidden]. */
  hidden: Value;
  /** Raw logits [batch, seq, vocab]. */
  logits: Value;
  /** Per layer keys/values [batch, kv_heads, total, head_dim]. */
  present: KeyValue[];
}

/** The decoder stack and head: input ids → logits (no outputs declared; callers choose them). */
export function qwen3Forward(
  g: GraphBuilder,
  config: Qwen3Config,
  weights: WeightSource,
  inputs: ForwardInputs,
  lora?: LoraSource,
): ForwardValues {
  const h0 = config.hiddenSize;
  const embed = weights("model.embed_tokens.weight", [config.vocabSize, h0]);
  const rope = ropeTables(g, inputs.positionIds, config.headDim, config.ropeTheta);
  const rep = config.numAttentionHeads / config.numKeyValueHeads;
  const mask = attentionMask(g, inputs.attentionMask, inputs.inputIds, rep);
  let h = g.gather(embed, inputs.inputIds, 0); // [batch, seq, hidden]
  const present: KeyValue[] = [];
  for (let i = 0; i < config.numHiddenLayers; i++) {
    const w = layerWeights(config, weights, i);
    const layerLora = lora ? (m: LinearModule) => lora(i, m) : undefined;
    const out = g.scope(`layer${i}`, () =>
      decoderLayer(g, config, h, w, { rope, mask, past: inputs.past?.[i], lora: layerLora }),
    );
    h = out.hidden;
    present.push(out.present);
  }
  const hidden = rmsNormLayer(g, h, weights("model.norm.weight", [h0]), config.rmsNormEps);
  const head = config.tieWordEmbeddings ? embed : weights("lm_head.weight", [config.vocabSize, h0]);
  return { hidden, logits: linear(g, hidden, head), present };
}

/**
 * Per-token log-probabilities [batch, seq]: entry t = log p(input_ids[t] | tokens < t) under
 * softmax(logits / temperature), for t ≥ 1; entry 0 and entries where token t or t−1 is padding are 0.
 * `logSoftmax` is that distribution at every position ([batch, seq, vocab]).
 */
export function tokenLogprobs(
  g: GraphBuilder,
  logits: Value,
  inputIds: Value,
  attentionMask: Value,
  temperature: Value,
): { logprobs: Value; logSoftmax: Value } {
  const logSoftmax = g.logSoftmax(g.div(logits, temperature), -1);
  const previous = g.slice(logSoftmax, [0], [-1], [1]); // positions 0 … seq−2 predict tokens 1 … seq−1
  const targets = g.unsqueeze(g.slice(inputIds, [1], [2 ** 62], [1]), [2]); // [batch, seq−1, 1]
  const picked = g.squeeze(g.gatherElements(previous, targets, 2), [2]); // [batch, seq−1]
  // attention_mask [batch, seq] here (no KV cache): column t marks token t
  const idsMask = g.equal(g.slice(attentionMask, [1], [2 ** 62], [1]), g.constant([1], "int64", []));
  const prevMask = g.equal(g.slice(attentionMask, [0], [-1], [1]), g.constant([1], "int64", []));
  const valid = g.and(idsMask, prevMask);
  const zeroColumn = g.fill(
    g.concat([g.slice(g.shapeOf(inputIds), [0], [1], [0]), g.ints([1])], 0),
    0,
    logits.dtype,
  ); // [batch, 1]
  const logprobs = g.concat([zeroColumn, g.where(valid, picked, 0)], 1);
  return { logprobs, logSoftmax };
}

export interface LogprobsGraphOptions {
  dtype?: FloatDType;
  /** Also output raw logits [batch, seq, vocab]. */
  logits?: boolean;
  /** Add a `top_k` input (int64 [1]) and outputs top_k_logprobs / top_k_ids [batch, seq−1, k]. */
  topK?: boolean;
  lora?: LoraSource;
}

/**
 * Declares the logprobs graph on `g` (whose dtype must be the weights' dtype): inputs input_ids,
 * attention_mask (both [batch, seq]), position_ids, temperature (scalar, graph dtype) and optionally
 * top_k; outputs logprobs [batch, seq] (see tokenLogprobs), optionally logits and the top-k.
 */
export function declareLogprobsGraph(
  g: GraphBuilder,
  config: Qwen3Config,
  weights: WeightSource,
  options: Omit<LogprobsGraphOptions, "dtype"> = {},
): void {
  const inputs = forwardInputs(g, config);
  const temperature = g.floatInput("temperature", []);
  const fwd = qwen3Forward(g, config, weights, inputs, options.lora);
  const lp = tokenLogprobs(g, fwd.logits, inputs.inputIds, inputs.attentionMask, temperature);
  g.output(lp.logprobs, "logprobs");
  if (options.logits) g.output(fwd.logits, "logits");
  if (options.topK) {
    const k = g.input("top_k", "int64", [1]);
    const previous = g.slice(lp.logSoftmax, [0], [-1], [1]);
    const shape: Dim[] = ["batch", "seq_minus_1", "k"];
    const [values, ids] = g.opMulti(
      "TopK",
      [previous, k],
      { axis: -1, largest: 1, sorted: 1 },
      {
        outputTypes: [
          { dtype: g.dtype, shape },
          { dtype: "int64", shape },
        ],
      },
    );
    g.output(values, "top_k_logprobs");
    g.output(ids, "top_k_ids");
  }
}
