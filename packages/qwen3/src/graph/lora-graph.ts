// LoRA in ONNX graphs: A and B of every adapted projection are graph inputs (named by their PEFT
// tensor names), so one session serves every training step while the adapter changes.
import { type FloatDType, type GraphBuilder, tensor, type Value } from "@temper/onnx";
import type * as ort from "onnxruntime-node";
import {
  checkLoraAdapter,
  type LoraAdapter,
  type LoraConfig,
  type LoraModule,
  loraLayout,
  loraScale,
  loraTensorName,
  validateLoraConfig,
} from "../adapter/lora.ts";
import type { Qwen3Config } from "../model/config.ts";

export interface LoraGraphPair {
  /** α/r (α/√r with rsLoRA): with a and b, the pair forward-graph's linear() takes. */
  scale: number;
  layer: number;
  module: LoraModule;
  inFeatures: number;
  outFeatures: number;
  /** Graph input [rank, inFeatures] */
  a: Value;
  /** Graph input [outFeatures, rank] */
  b: Value;
}

export interface LoraGraphInputs {
  config: LoraConfig;
  scale: number;
  /** Layer-major, modules in LORA_MODULES order (the order of loraLayout and of adapters). */
  pairs: LoraGraphPair[];
  /** The pair of one projection (short name q…down or full *_proj name), or undefined when not adapted. */
  get(layer: number, module: string): LoraGraphPair | undefined;
  /** A and B of every pair, interleaved (A₀, B₀, A₁, …): the `wrt` list for gradients(). */
  trainable(): Value[];
}

/** Declares A and B of every adapted projection as inputs of `g` (dtype defaults to the graph's). */
export function declareLoraInputs(
  g: GraphBuilder,
  model: Qwen3Config,
  config: LoraConfig,
  dtype: FloatDType = g.dtype,
): LoraGraphInputs {
  const cfg = validateLoraConfig(config);
  const r = cfg.rank;
  const scale = loraScale(cfg);
  const pairs = loraLayout(model, cfg).map((p) => ({
    ...p,
    scale,
    a: g.input(loraTensorName(p.layer, p.module, "A"), dtype, [r, p.inFeatures]),
    b: g.input(loraTensorName(p.layer, p.module, "B"), dtype, [p.outFeatures, r]),
  }));
  const index = new Map(pairs.map((p) => [`${p.layer}/${p.module}`, p]));
  return {
    config: cfg,
    scale,
    pairs,
    get: (layer, module) => index.get(`${layer}/${module.endsWith("_proj") ? module : `${module}_proj`}`),
    trainable: () => pairs.flatMap((p) => [p.a, p.b]),
  };
}

/** Feeds for the inputs declareLoraInputs made, from an adapter's arrays (converted to `dtype`). */
export function loraFeeds(adapter: LoraAdapter, dtype: "float32" | "float64"): Record<string, ort.Tensor> {
  checkLoraAdapter(adapter);
  const r = adapter.config.rank;
  const feeds: Record<string, ort.Tensor> = {};
  for (const p of adapter.pairs) {
    const host = (v: ArrayLike<number>) =>
      dtype === "float64" ? Float64Array.from(v) : Float32Array.from(v);
    feeds[loraTensorName(p.layer, p.module, "A")] = tensor(dtype, host(p.a), [r, p.inFeatures]);
    feeds[loraTensorName(p.layer, p.module, "B")] = tensor(dtype, host(p.b), [p.outFeatures, r]);
  }
  return feeds;
}
