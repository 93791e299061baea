// The tensors a Qwen3 checkpoint must hold (Hugging Face names and [out, in] Linear shapes), their
// validation against the config, and loading them into typed arrays.
import type { Checkpoint } from "./checkpoint.ts";
import type { Qwen3Config } from "./config.ts";
import type { FloatArray, Precision } from "./safetensors.ts";

export interface ExpectedTensor {
  name: string;
  shape: number[];
  /** Initial value kind for the model maker: RMSNorm weights start at one, the rest random. */
  kind: "norm" | "matrix";
}

export const layerPrefix = (i: number) => `model.layers.${i}`;

/** Every tensor name and shape the config implies, in Hugging Face's state-dict order. */
export function expectedTensors(config: Qwen3Config): ExpectedTensor[] {
  const h = config.hiddenSize;
  const d = config.headDim;
  const q = config.numAttentionHeads * d;
  const kv = config.numKeyValueHeads * d;
  const m = config.intermediateSize;
  const out: ExpectedTensor[] = [
    { name: "model.embed_tokens.weight", shape: [config.vocabSize, h], kind: "matrix" },
  ];
  for (let i = 0; i < config.numHiddenLayers; i++) {
    const p = layerPrefix(i);
    out.push(
      { name: `${p}.self_attn.q_proj.weight`, shape: [q, h], kind: "matrix" },
      { name: `${p}.self_attn.k_proj.weight`, shape: [kv, h], kind: "matrix" },
      { name: `${p}.self_attn.v_proj.weight`, shape: [kv, h], kind: "matrix" },
      { name: `${p}.self_attn.o_proj.weight`, shape: [h, q], kind: "matrix" },
      { name: `${p}.self_attn.q_norm.weight`, shape: [d], kind: "norm" },
      { name: `${p}.self_attn.k_norm.weight`, shape: [d], kind: "norm" },
      { name: `${p}.mlp.gate_proj.weight`, shape: [m, h], kind: "matrix" },
      { name: `${p}.mlp.up_proj.weight`, shape: [m, h], kind: "matrix" },
      { name: `${p}.mlp.down_proj.weight`, shape: [h, m], kind: "matrix" },
      { name: `${p}.input_layernorm.weight`, shape: [h], kind: "norm" },
      { name: `${p}.post_attention_layernorm.weight`, shape: [h], kind: "norm" },
    );
  }
  out.push({ name: "model.norm.weight", shape: [h], kind: "norm" });
  if (!config.tieWordEmbeddings)
    out.push({ name: "lm_head.weight", shape: [config.vocabSize, h], kind: "matrix" });
  return out;
}

/** A checkpoint that does not fit the config: one line naming the tensor. */
export class WeightsError extends Error {
  override name = "WeightsError";
}

/** Checks that every expected tensor is present with the config's shape and a floating dtype. */
export function validateCheckpoint(config: Qwen3Config, checkpoint: Checkpoint): void {
  for (const t of expectedTensors(config)) {
    const info = checkpoint.tensors.get(t.name);
    if (!info) throw new WeightsError(`${checkpoint.dir}: missing tensor ${t.name}`);
    if (info.shape.length !== t.shape.length || info.shape.some((s, i) => s !== t.shape[i])) {
      throw new WeightsError(
        `${checkpoint.dir}: tensor ${t.name} has shape [${info.shape.join(", ")}], config.json implies [${t.shape.join(", ")}]`,
      );
    }
    if (info.dtype === "I64")
      throw new WeightsError(`${checkpoint.dir}: tensor ${t.name} has integer dtype I64`);
  }
}

/** One decoder layer; matrices are row-major [out, in] as in nn.Linear. */
export interface Qwen3LayerWeights<A extends FloatArray = FloatArray> {
  qProj: A; // [heads·headDim, hidden]
  kProj: A; // [kvHeads·headDim, hidden]
  vProj: A; // [kvHeads·headDim, hidden]
  oProj: A; // [hidden, heads·headDim]
  qNorm: A; // [headDim]
  kNorm: A; // [headDim]
  gateProj: A; // [intermediate, hidden]
  upProj: A; // [intermediate, hidden]
  downProj: A; // [hidden, intermediate]
  inputLayernorm: A; // [hidden]
  postAttentionLayernorm: A; // [hidden]
}

export interface Qwen3Weights<A extends FloatArray = FloatArray> {
  embedTokens: A; // [vocab, hidden]
  layers: Qwen3LayerWeights<A>[];
  norm: A; // [hidden]
  /** [vocab, hidden]; the same array as embedTokens when tie_word_embeddings. */
  lmHead: A;
}

const LAYER_FIELDS: [keyof Qwen3LayerWeights, string][] = [
  ["qProj", "self_attn.q_proj.weight"],
  ["kProj", "self_attn.k_proj.weight"],
  ["vProj", "self_attn.v_proj.weight"],
  ["oProj", "self_attn.o_proj.weight"],
  ["qNorm", "self_attn.q_norm.weight"],
  ["kNorm", "self_attn.k_norm.weight"],
  ["gateProj", "mlp.gate_proj.weight"],
  ["upProj", "mlp.up_proj.weight"],
  ["downProj", "mlp.down_proj.weight"],
  ["inputLayernorm", "input_layernorm.weight"],
  ["postAttentionLayernorm", "post_attention_layernorm.weight"],
];

/** The Hugging Face tensor name of a layer field, e.g. (3, "qProj") → model.layers.3.self_attn.q_proj.weight. */
export function layerTensorName(layer: number, field: keyof Qwen3LayerWeights): string {
  const suffix = LAYER_FIELDS.find(([f]) => f === field)![1];
  return `${layerPrefix(layer)}.${suffix}`;
}

/** Validates, then reads every weight widened to float32 or float64 (a whole model in memory: small models). */
export function loadWeights(
  config: Qwen3Config,
  checkpoint: Checkpoint,
  precision: "float64",
): Qwen3Weights<Float64Array>;
export function loadWeights(
  config: Qwen3Config,
  checkpoint: Checkpoint,
  precision?: "float32",
): Qwen3Weights<Float32Array>;
export function loadWeights(
  config: Qwen3Config,
  checkpoint: Checkpoint,
  precision: Precision = "float32",
): Qwen3Weights {
  validateCheckpoint(config, checkpoint);
  const read = (name: string) => checkpoint.read(name, precision);
  const layers: Qwen3LayerWeights[] = [];
  for (let i = 0; i < config.numHiddenLayers; i++) {
    const layer = {} as Qwen3LayerWeights;
    for (const [field] of LAYER_FIELDS) layer[field] = read(layerTensorName(i, field));
    layers.push(layer);
  }
  const embedTokens = read("model.embed_tokens.weight");
  return {
    embedTokens,
    layers,
    norm: read("model.norm.weight"),
    lmHead: config.tieWordEmbeddings ? embedTokens : read("lm_head.weight"),
  };
}
