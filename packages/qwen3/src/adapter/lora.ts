// LoRA adapters for Qwen3's seven linear projections: configuration, shapes, PEFT-style
// initialisation, merging into base weights and a float64 adapted-linear oracle.
//
//   y = W x + s·B (A x),   A ∈ R^{r×in}, B ∈ R^{out×r},   s = α/r (α/√r with rsLoRA)
//
// Initialisation follows PEFT's default: A ~ kaiming_uniform(a=√5), i.e. U(−1/√in, 1/√in), and
// B = 0, so a fresh adapter leaves the model unchanged. Each tensor draws from its own PRNG stream
// (seed, PEFT tensor name), so its values do not depend on which other modules are targeted.
import type { Qwen3Config } from "../model/config.ts";
import { hashString, Rng } from "../model/prng.ts";
import type { FloatArray } from "../model/safetensors.ts";
import type { Qwen3LayerWeights, Qwen3Weights } from "../model/weights.ts";

/** Every projection LoRA can adapt, in the order adapters list them. */
export const LORA_MODULES = [
  "q_proj",
  "k_proj",
  "v_proj",
  "o_proj",
  "gate_proj",
  "up_proj",
  "down_proj",
] as const;
export type LoraModule = (typeof LORA_MODULES)[number];

/** The block of a decoder layer that holds each projection (part of its Hugging Face name). */
export const LORA_MODULE_BLOCK: Readonly<Record<LoraModule, "self_attn" | "mlp">> = {
  q_proj: "self_attn",
  k_proj: "self_attn",
  v_proj: "self_attn",
  o_proj: "self_attn",
  gate_proj: "mlp",
  up_proj: "mlp",
  down_proj: "mlp",
};

/** The Qwen3LayerWeights field each projection adapts. */
export const LORA_MODULE_FIELD: Readonly<Record<LoraModule, keyof Qwen3LayerWeights>> = {
  q_proj: "qProj",
  k_proj: "kProj",
  v_proj: "vProj",
  o_proj: "oProj",
  gate_proj: "gateProj",
  up_proj: "upProj",
  down_proj: "downProj",
};

export interface LoraConfig {
  rank: number;
  alpha: number;
  /** Scale α/√r instead of α/r. */
  useRslora: boolean;
  /** Distinct modules in LORA_MODULES order (validateLoraConfig normalises the order). */
  targetModules: LoraModule[];
}

/** A bad LoRA configuration or adapter: the message is one line naming the field or tensor. */
export class LoraError extends Error {
  override name = "LoraError";
}

/** One adapted projection of one layer; matrices row-major. */
export interface LoraPairData<A extends FloatArray = FloatArray> {
  layer: number;
  module: LoraModule;
  inFeatures: number;
  outFeatures: number;
  /** [rank, inFeatures] */
  a: A;
  /** [outFeatures, rank] */
  b: A;
}

export interface LoraAdapter<A extends FloatArray = FloatArray> {
  config: LoraConfig;
  /** Layer-major, modules in LORA_MODULES order (see loraLayout). */
  pairs: LoraPairData<A>[];
}

export type LoraInitB = "zero" | "random";
export const LORA_INIT_B: readonly LoraInitB[] = ["zero", "random"];

export interface InitLoraOptions {
  seed?: number;
  /** "zero" (default, PEFT's init: the adapter starts as a no-op) or "random" (for gradient checks). */
  initB?: LoraInitB;
}

/**
 * Parses target modules given as a comma-separated string or a list, in short (q, k, v, o, gate,
 * up, down) or full (q_proj, …) names; duplicates collapse and the result is in LORA_MODULES order.
 */
export function parseLoraTargets(spec: string | readonly string[]): LoraModule[] {
  const items = (typeof spec === "string" ? spec.split(",") : [...spec]).map((s) => s.trim());
  if (items.length === 0 || items.every((s) => s === ""))
    throw new LoraError("target modules: none given (expected some of q,k,v,o,gate,up,down)");
  const chosen = new Set<LoraModule>();
  for (const item of items) {
    const full = item.endsWith("_proj") ? item : `${item}_proj`;
    if (!(LORA_MODULES as readonly string[]).includes(full))
      throw new LoraError(
        `target modules: unknown module "${item}" (expected q,k,v,o,gate,up,down or their *_proj names)`,
      );
    chosen.add(full as LoraModule);
  }
  return LORA_MODULES.filter((m) => chosen.has(m));
}

/** Checks rank, alpha and targets; returns the config with targets in LORA_MODULES order. */
export function validateLoraConfig(config: LoraConfig): LoraConfig {
  if (!Number.isSafeInteger(config.rank) || config.rank < 1)
    throw new LoraError(`LoRA rank must be a positive integer, got ${config.rank}`);
  if (!Number.isFinite(config.alpha) || config.alpha <= 0)
    throw new LoraError(`LoRA alpha must be a positive number, got ${config.alpha}`);
  if (typeof config.useRslora !== "boolean")
    throw new LoraError(`LoRA useRslora must be a boolean, got ${JSON.stringify(config.useRslora)}`);
  return { ...config, targetModules: parseLoraTargets(config.targetModules) };
}

/** s = α/r, or α/√r with rsLoRA. */
export function loraScale(config: Pick<LoraConfig, "rank" | "alpha" | "useRslora">): number {
  return config.useRslora ? config.alpha / Math.sqrt(config.rank) : config.alpha / config.rank;
}

/** in/out widths of a projection under a model config (nn.Linear weight is [out, in]). */
export function loraModuleShape(
  model: Qwen3Config,
  module: LoraModule,
): { inFeatures: number; outFeatures: number } {
  const h = model.hiddenSize;
  const q = model.numAttentionHeads * model.headDim;
  const kv = model.numKeyValueHeads * model.headDim;
  const m = model.intermediateSize;
  switch (module) {
    case "q_proj":
      return { inFeatures: h, outFeatures: q };
    case "k_proj":
    case "v_proj":
      return { inFeatures: h, outFeatures: kv };
    case "o_proj":
      return { inFeatures: q, outFeatures: h };
    case "gate_proj":
    case "up_proj":
      return { inFeatures: h, outFeatures: m };
    case "down_proj":
      return { inFeatures: m, outFeatures: h };
  }
}

/** Every (layer, module) an adapter holds, layer-major, with A's and B's shapes. */
export function loraLayout(
  model: Qwen3Config,
  config: LoraConfig,
): { layer: number; module: LoraModule; inFeatures: number; outFeatures: number }[] {
  const targets = validateLoraConfig(config).targetModules;
  const out = [];
  for (let layer = 0; layer < model.numHiddenLayers; layer++)
    for (const module of targets) out.push({ layer, module, ...loraModuleShape(model, module) });
  return out;
}

/** The PEFT tensor name of A or B of one projection (no adapter-name infix such as `.default`). */
export function loraTensorName(layer: number, module: LoraModule, which: "A" | "B"): string {
  return `base_model.model.model.layers.${layer}.${LORA_MODULE_BLOCK[module]}.${module}.lora_${which}.weight`;
}

/** A fresh adapter for `model`: A Kaiming-uniform, B zero (or random with initB "random"). */
export function initLoraAdapter(
  model: Qwen3Config,
  config: LoraConfig,
  options: InitLoraOptions = {},
): LoraAdapter<Float32Array> {
  const cfg = validateLoraConfig(config);
  const seed = options.seed ?? 0;
  const initB = options.initB ?? "zero";
  if (!LORA_INIT_B.includes(initB))
    throw new LoraError(`LoRA initB must be one of ${LORA_INIT_B.join(", ")}, got "${initB}"`);
  const uniform = (name: string, n: number, bound: number) => {
    const rng = new Rng(seed, hashString(name));
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = bound * (2 * rng.uniform() - 1);
    return out;
  };
  const r = cfg.rank;
  const pairs = loraLayout(model, cfg).map((p) => ({
    ...p,
    // kaiming_uniform_(a=√5): gain √(2/(1+5)) times √(3/fan_in) = 1/√fan_in
    a: uniform(loraTensorName(p.layer, p.module, "A"), r * p.inFeatures, 1 / Math.sqrt(p.inFeatures)),
    b:
      initB === "zero"
        ? new Float32Array(p.outFeatures * r)
        : uniform(loraTensorName(p.layer, p.module, "B"), p.outFeatures * r, 1 / Math.sqrt(r)),
  }));
  return { config: cfg, pairs };
}

/** Checks that every pair's arrays have the sizes its shape and the rank imply. */
export function checkLoraAdapter(adapter: LoraAdapter): void {
  const r = adapter.config.rank;
  for (const p of adapter.pairs) {
    if (p.a.length !== r * p.inFeatures)
      throw new LoraError(
        `${loraTensorName(p.layer, p.module, "A")}: ${p.a.length} values, [${r}, ${p.inFeatures}] needs ${r * p.inFeatures}`,
      );
    if (p.b.length !== p.outFeatures * r)
      throw new LoraError(
        `${loraTensorName(p.layer, p.module, "B")}: ${p.b.length} values, [${p.outFeatures}, ${r}] needs ${p.outFeatures * r}`,
      );
  }
}

/**
 * Base weights with every adapted projection replaced by W + s·B·A, in float64 (the oracle for
 * "LoRA logprobs equal merged-weights logprobs"). Unadapted tensors are widened copies; a tied
 * lm_head stays the same array as the embedding.
 */
export function mergeLora(weights: Qwen3Weights, adapter: LoraAdapter): Qwen3Weights<Float64Array> {
  checkLoraAdapter(adapter);
  const r = adapter.config.rank;
  const s = loraScale(adapter.config);
  const layers = weights.layers.map((layer) => {
    const out = {} as Qwen3LayerWeights<Float64Array>;
    for (const key of Object.keys(layer) as (keyof Qwen3LayerWeights)[])
      out[key] = Float64Array.from(layer[key]);
    return out;
  });
  for (const p of adapter.pairs) {
    const layer = layers[p.layer];
    if (!layer)
      throw new LoraError(`${loraTensorName(p.layer, p.module, "A")}: the model has ${layers.length} layers`);
    const w = layer[LORA_MODULE_FIELD[p.module]];
    if (w.length !== p.outFeatures * p.inFeatures)
      throw new LoraError(
        `${loraTensorName(p.layer, p.module, "A")}: base weight has ${w.length} values, adapter implies [${p.outFeatures}, ${p.inFeatures}]`,
      );
    for (let o = 0; o < p.outFeatures; o++)
      for (let k = 0; k < r; k++) {
        const bk = s * p.b[o * r + k];
        if (bk === 0) continue;
        const row = o * p.inFeatures;
        const arow = k * p.inFeatures;
        for (let i = 0; i < p.inFeatures; i++) w[row + i] += bk * p.a[arow + i];
      }
  }
  const embedTokens = Float64Array.from(weights.embedTokens);
  return {
    embedTokens,
    layers,
    norm: Float64Array.from(weights.norm),
    lmHead: weights.lmHead === weights.embedTokens ? embedTokens : Float64Array.from(weights.lmHead),
  };
}

/**
 * y = W x + s·B (A x) for one input vector x [in], in float64 without forming W + s·B·A.
 * W is [out, in], A [r, in], B [out, r], all row-major; out and r follow from the lengths.
 */
export function loraLinear(
  x: ArrayLike<number>,
  w: ArrayLike<number>,
  a: ArrayLike<number>,
  b: ArrayLike<number>,
  scale: number,
): Float64Array {
  const n = x.length;
  if (n === 0 || w.length % n !== 0 || a.length % n !== 0)
    throw new LoraError(
      `loraLinear: W (${w.length}) and A (${a.length}) must be multiples of x's length ${n}`,
    );
  const out = w.length / n;
  const r = a.length / n;
  if (b.length !== out * r)
    throw new LoraError(`loraLinear: B has ${b.length} values, [${out}, ${r}] needs ${out * r}`);
  const ax = new Float64Array(r);
  for (let k = 0; k < r; k++) {
    let acc = 0;
    for (let i = 0; i < n; i++) acc += a[k * n + i] * x[i];
    ax[k] = acc;
  }
  const y = new Float64Array(out);
  for (let o = 0; o < out; o++) {
    let acc = 0;
    for (let i = 0; i < n; i++) acc += w[o * n + i] * x[i];
    let low = 0;
    for (let k = 0; k < r; k++) low += b[o * r + k] * ax[k];
    y[o] = acc + scale * low;
  }
  return y;
}
