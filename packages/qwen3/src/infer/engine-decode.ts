// Qwen3DecodeEngine: the fast float32 KV-cached forward graph. One ORT session serves prefill (many
// new tokens per row, an empty cache) and decode (one new token per row), as Qwen3KvEngine does, but
// the cache never leaves JavaScript memory and is never concatenated:
//
//   - The cache is a set of caller-owned buffers, one per layer for keys and one for values,
//     [batch, kv_heads, capacity, head_dim]. ORT reads them in place (onnxruntime-node wraps a feed's
//     typed array without copying); a run outputs only the new tokens' keys and values
//     ([batch, 2·layers·kv_heads, seq, head_dim], one small tensor), which the caller writes into the
//     free slots. Nothing proportional to the cache is copied per step (onnxruntime-node copies every
//     output, preallocated or not, so a cache that went out as `present` would be copied each step).
//   - Attention has two parts: the queries against the cached slots (a per-row additive bias hides
//     free and padding slots) and against the new tokens (causal, padding masked), joined by one
//     softmax. Which slot holds which token does not matter: keys are stored after RoPE.
//   - Fewer nodes per layer: the linear parts run on 2-D [tokens, features]; q/k/v are one MatMul
//     (weights concatenated at build); residual adds are fused into SkipSimplifiedLayerNormalization;
//     q_norm and k_norm are one RMSNorm and RoPE one com.microsoft RotaryEmbedding (constant cos/sin
//     table) for q and k together; the attention scale is folded into q_norm's weight.
//   - LoRA A/B stay graph inputs (packed per projection group: A of the group's targets side by side,
//     B block-diagonal with the scale folded in; y + (x·A)·B is one Gemm), so setAdapter swaps feeds,
//     never the session.
//
// float32 only: RotaryEmbedding and the fusions ORT applies have no float64 kernels; the float64 path
// (Qwen3KvEngine at dtype float64) stays the oracle the exactness tests use.

import {
  type CreateSessionOptions,
  checkProvider,
  type ExecutionProvider,
  GraphBuilder,
  Session,
  tensor,
  type Value,
} from "@temper/onnx";
import type * as ort from "onnxruntime-node";
import {
  type LoraAdapter,
  type LoraConfig,
  LoraError,
  type LoraModule,
  loraModuleShape,
  loraScale,
  validateLoraConfig,
} from "../adapter/lora.ts";
import { EngineInputError } from "../graph/engine-batch.ts";
import { attentionMask } from "../graph/forward-graph.ts";
import { MappedWeights } from "../graph/weight-cache.ts";
import type { Checkpoint } from "../model/checkpoint.ts";
import type { Qwen3Config } from "../model/config.ts";
import { type DecodeWeightsOptions, decodeWeightPlacement } from "../model/load-memory.ts";
import { fromModelDir } from "../model/model-dir.ts";
import { layerPrefix } from "../model/weights.ts";

/** The four fused projections of a layer and the checkpoint modules each concatenates (output axis). */
export const DECODE_GROUPS = {
  qkv: ["q_proj", "k_proj", "v_proj"],
  o: ["o_proj"],
  gate: ["gate_proj"],
  up: ["up_proj"],
  down: ["down_proj"],
} as const satisfies Record<string, readonly LoraModule[]>;
export type DecodeGroup = keyof typeof DECODE_GROUPS;
const GROUP_NAMES = Object.keys(DECODE_GROUPS) as DecodeGroup[];

const MODULE_PATH: Record<LoraModule, string> = {
  q_proj: "self_attn.q_proj",
  k_proj: "self_attn.k_proj",
  v_proj: "self_attn.v_proj",
  o_proj: "self_attn.o_proj",
  gate_proj: "mlp.gate_proj",
  up_proj: "mlp.up_proj",
  down_proj: "mlp.down_proj",
};

/** Additive bias of a hidden cache slot: exp(bias + score − max) is exactly 0 in float32. */
export const HIDDEN_SLOT = -1e30;

/** Name of the packed LoRA input of one fused projection. */
export function decodeLoraInputName(layer: number, group: DecodeGroup, which: "A" | "B"): string {
  return `lora.${layer}.${group}.${which}`;
}

/** The LoRA targets of `group` under `lora` (in the group's output order); empty when none. */
function groupTargets(lora: LoraConfig, group: DecodeGroup): LoraModule[] {
  return DECODE_GROUPS[group].filter((m) => lora.targetModules.includes(m));
}

function groupShape(config: Qwen3Config, group: DecodeGroup): { inFeatures: number; outFeatures: number } {
  const mods = DECODE_GROUPS[group];
  const inFeatures = loraModuleShape(config, mods[0]).inFeatures;
  const outFeatures = mods.reduce((s, m) => s + loraModuleShape(config, m).outFeatures, 0);
  return { inFeatures, outFeatures };
}

/** Reads checkpoint tensors for the graph (float32, shapes checked). */
export type TensorReader = (name: string, shape: number[]) => Float32Array;

export function checkpointReader(checkpoint: Checkpoint): TensorReader {
  return (name, shape) => {
    const info = checkpoint.info(name);
    if (info.shape.length !== shape.length || info.shape.some((s, i) => s !== shape[i]))
      throw new EngineInputError(
        `${checkpoint.dir}: tensor ${name} has shape [${info.shape.join(", ")}], the graph needs [${shape.join(", ")}]`,
      );
    return checkpoint.read(name, "float32") as Float32Array;
  };
}

/**
 * Places a graph weight [shape] whose values `make` computes: in memory, or as a region of the mapped
 * weight cache (where `make` runs only while the cache entry is written).
 */
export type WeightPlacer = (name: string, shape: number[], make: () => Float32Array) => Value;

/** The name and version of the decode graph's weight layout in the mapped cache. */
export const DECODE_WEIGHT_LAYOUT = "decode-v1";

export function inMemoryPlacer(g: GraphBuilder): WeightPlacer {
  return (name, shape, make) => g.weight(name, "float32", shape, make());
}

export function mappedPlacer(g: GraphBuilder, cache: MappedWeights): WeightPlacer {
  return (name, shape, make) => g.weightFromFile(name, "float32", shape, cache.region(name, shape, make));
}

/** [rows, cols] → [cols, rows] */
function transposed(data: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(data.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = data[r * cols + c];
  return out;
}

/**
 * Declares the decode graph on `g` (float32). Inputs: input_ids, attention_mask (of the new tokens),
 * position_ids [batch, seq]; cache_bias [batch, capacity] (0 = a visible cached slot, HIDDEN_SLOT =
 * free or padding); past_key_values.N.key/value [batch, kv_heads, capacity, head_dim]; the packed LoRA
 * inputs when `lora` is given. Outputs: logits [batch, vocab] of the last new position and
 * new_key_values [batch, 2·layers·kv_heads, seq, head_dim] (layer-major, keys then values).
 */
export function declareDecodeGraph(
  g: GraphBuilder,
  config: Qwen3Config,
  read: TensorReader,
  lora: LoraConfig | null,
  place: WeightPlacer = inMemoryPlacer(g),
): void {
  if (g.dtype !== "float32") throw new EngineInputError("the decode graph is float32 only");
  const { hiddenSize: H, headDim: d, numKeyValueHeads: nKV, numAttentionHeads: nQ } = config;
  const rep = nQ / nKV;
  const eps = config.rmsNormEps;
  const L = config.numHiddenLayers;

  const inputIds = g.input("input_ids", "int64", ["batch", "seq"]);
  const newMask = g.input("attention_mask", "int64", ["batch", "seq"]);
  const positionIds = g.input("position_ids", "int64", ["batch", "seq"]);
  const cacheBias = g.floatInput("cache_bias", ["batch", "capacity"]);
  const past = Array.from({ length: L }, (_, i) => ({
    key: g.floatInput(`past_key_values.${i}.key`, ["batch", nKV, "capacity", d]),
    // [batch, kv_heads, 1, capacity, head_dim]: the unit axis lets every query row meet the values
    // as its own M = 1 product (see below) without a node to add it.
    value: g.floatInput(`past_key_values.${i}.value`, ["batch", nKV, 1, "capacity", d]),
  }));
  const r = lora?.rank ?? 0;
  const loraIn = new Map<string, { a: Value; b: Value }>();
  if (lora)
    for (let i = 0; i < L; i++)
      for (const group of GROUP_NAMES) {
        const t = groupTargets(lora, group).length;
        if (t === 0) continue;
        const s = groupShape(config, group);
        loraIn.set(`${i}/${group}`, {
          a: g.floatInput(decodeLoraInputName(i, group, "A"), [s.inFeatures, t * r]),
          b: g.floatInput(decodeLoraInputName(i, group, "B"), [t * r, s.outFeatures]),
        });
      }

  const w = (name: string, shape: number[]) => place(name, shape, () => read(name, shape));
  /**
   * y = x·W over the group's modules' weights concatenated on the output axis and stored transposed,
   * [in, out], the MatMul's own layout (a Transpose in the graph would be folded into a private copy).
   */
  const project = (x: Value, layer: number, group: DecodeGroup): Value => {
    const mods = DECODE_GROUPS[group];
    const { inFeatures, outFeatures } = groupShape(config, group);
    const weightT = place(`${layerPrefix(layer)}.${group}.weight.T`, [inFeatures, outFeatures], () => {
      const data = new Float32Array(outFeatures * inFeatures);
      let at = 0;
      for (const m of mods) {
        const out = loraModuleShape(config, m).outFeatures;
        data.set(read(`${layerPrefix(layer)}.${MODULE_PATH[m]}.weight`, [out, inFeatures]), at);
        at += out * inFeatures;
      }
      return transposed(data, outFeatures, inFeatures);
    });
    const y = g.matmul(x, weightT);
    const pair = loraIn.get(`${layer}/${group}`);
    // y + (x·A)·B as one Gemm with C = y (x is 2-D [tokens, in]).
    return pair ? g.gemm(g.matmul(x, pair.a), pair.b, y) : y;
  };

  // RoPE tables [max_positions, d/2], computed in float64 and rounded once.
  const half = d / 2;
  const P = config.maxPositionEmbeddings;
  const ropeTable = (f: (angle: number) => number) => () => {
    const table = new Float32Array(P * half);
    for (let p = 0; p < P; p++)
      for (let i = 0; i < half; i++) table[p * half + i] = f(p * config.ropeTheta ** ((-2 * i) / d));
    return table;
  };
  const cosCache = place("rope_cos", [P, half], ropeTable(Math.cos));
  const sinCache = place("rope_sin", [P, half], ropeTable(Math.sin));
  const rope = (x: Value, heads: number): Value =>
    g.op(
      "RotaryEmbedding",
      [x, positionIds, cosCache, sinCache],
      { interleaved: 0, num_heads: heads },
      {
        domain: "com.microsoft",
        outputTypes: [{ dtype: "float32", shape: ["batch", "seq", heads * d] }],
      },
    );

  // Shared by every layer: which new keys each query sees (causal + padding), the cache bias, shapes.
  const newVisible = attentionMask(g, newMask, inputIds, rep); // [batch, 1, rep·seq, seq]
  const bias = g.unsqueeze(cacheBias, [1, 2]); // [batch, 1, 1, capacity]
  const capacity = g.slice(g.shapeOf(cacheBias), [1], [2], [0]); // [1]
  const batchSeq = g.slice(g.shapeOf(inputIds), [0], [2], [0]); // [2]
  const toBatchSeq = (x: Value, ...rest: number[]) => g.reshape(x, g.concat([batchSeq, g.ints(rest)], 0));
  // Per-head RMSNorm weights of q and k side by side; q's carry the attention scale d^-½ (RoPE is
  // linear, so it commutes).
  const headNorm = (i: number): Value => {
    const p = layerPrefix(i);
    return place(`${p}.self_attn.qk_norm.scaled`, [nQ + nKV, d], () => {
      const data = new Float32Array((nQ + nKV) * d);
      const qn = read(`${p}.self_attn.q_norm.weight`, [d]);
      const kn = read(`${p}.self_attn.k_norm.weight`, [d]);
      for (let hd = 0; hd < nQ + nKV; hd++)
        for (let j = 0; j < d; j++) data[hd * d + j] = hd < nQ ? qn[j] * d ** -0.5 : kn[j];
      return data;
    });
  };
  const ones = g.constant(new Array(d).fill(1), "float32", [d]);
  const rms = (x: Value, weight: Value) =>
    g.op(
      "SimplifiedLayerNormalization",
      [x, weight],
      { axis: -1, epsilon: eps, stash_type: 1 },
      { outputTypes: [{ dtype: "float32", shape: x.shape }] },
    );
  /** (normed, input + skip): the residual add fused into the next RMSNorm. */
  const skipRms = (x: Value, skip: Value, weight: Value): [Value, Value] => {
    const outs = g.opMulti(
      "SkipSimplifiedLayerNormalization",
      [x, skip, weight],
      { epsilon: eps },
      {
        domain: "com.microsoft",
        outputTypes: [
          { dtype: "float32", shape: x.shape },
          { dtype: "float32", shape: [] },
          { dtype: "float32", shape: [] },
          { dtype: "float32", shape: x.shape },
        ],
      },
    );
    return [outs[0], outs[3]];
  };

  // Rows of every linear part are the batch·seq tokens, 2-D [tokens, features].
  const embed = w("model.embed_tokens.weight", [config.vocabSize, H]);
  const h0 = g.gather(embed, g.reshape(inputIds, [-1]), 0); // [tokens, H]
  let resid = h0;
  let delta: Value | null = null;
  const newKv: Value[] = [];
  for (let i = 0; i < L; i++) {
    const p = layerPrefix(i);
    g.scope(`layer${i}`, () => {
      const inNorm = w(`${p}.input_layernorm.weight`, [H]);
      let x: Value;
      if (delta) [x, resid] = skipRms(delta, resid, inNorm);
      else x = rms(resid, inNorm);
      const [qk0, v0] = g.split(project(x, i, "qkv"), [(nQ + nKV) * d, nKV * d], -1);
      // q_norm and k_norm in one RMSNorm over [tokens, heads, d], then one RoPE over both.
      const qkn = g.mul(rms(g.reshape(qk0, [-1, nQ + nKV, d]), ones), headNorm(i));
      const qk = rope(toBatchSeq(qkn, (nQ + nKV) * d), nQ + nKV); // [batch, seq, (nQ+nKV)·d]
      const [q, k] = g.split(qk, [nQ * d, nKV * d], -1);
      const keys = g.transpose(g.reshape(k, [0, 0, nKV, d]), [0, 2, 1, 3]); // [batch, nKV, seq, d]
      const values = g.transpose(toBatchSeq(v0, nKV, d), [0, 2, 1, 3]);
      newKv.push(keys, values);
      // [batch, seq, nKV, rep, d] → [batch, nKV, rep, seq, d] → [batch, nKV, rep·seq, d]
      const grouped = g.reshape(g.transpose(g.reshape(q, [0, 0, nKV, rep, d]), [0, 2, 3, 1, 4]), [
        0,
        0,
        -1,
        d,
      ]);
      // The cache is the MatMuls' left operand (read in place, never packed); the small right operand
      // is packed. K·qᵀ gives [batch, nKV, capacity, rep·seq], transposed back (small).
      const scoresT = g.matmul(past[i].key, g.transpose(grouped, [0, 1, 3, 2]));
      const cached = g.add(g.transpose(scoresT, [0, 1, 3, 2]), bias);
      const fresh = g.where(newVisible, g.matmul(grouped, g.transpose(keys, [0, 1, 3, 2])), HIDDEN_SLOT);
      const probs = g.softmax(g.concat([cached, fresh], -1), -1); // [batch, nKV, rep·seq, capacity + seq]
      const pCached = g.op("Slice", [probs, g.ints([0]), capacity, g.ints([-1])]);
      const pFresh = g.op("Slice", [probs, capacity, g.ints([2 ** 62]), g.ints([-1])]);
      // One query row at a time (M = 1: MLAS's GEMV kernel, no packing of the cached values):
      // [batch, nKV, rep·seq, 1, capacity] · [batch, nKV, 1, capacity, d] → [batch, nKV, rep·seq, 1, d]
      const fromCache = g.matmul(g.unsqueeze(pCached, [3]), past[i].value);
      const context = g.add(
        g.reshape(fromCache, [0, 0, rep, -1, d]),
        g.reshape(g.matmul(pFresh, values), [0, 0, rep, -1, d]),
      );
      // [batch, nKV, rep, seq, d] → [batch, seq, nKV, rep, d] → [tokens, nQ·d]
      const merged = g.reshape(g.transpose(context, [0, 3, 1, 2, 4]), [-1, nQ * d]);
      const [x2, mid] = skipRms(
        project(merged, i, "o"),
        resid,
        w(`${p}.post_attention_layernorm.weight`, [H]),
      );
      resid = mid;
      // gate and up stay two MatMuls: one fused [tokens, 2·I] output and its Split cost a prefill more
      // memory traffic than the node they save a decode step.
      const gate = project(x2, i, "gate");
      const up = project(x2, i, "up");
      const act = g.mul(g.mul(gate, g.sigmoid(gate)), up);
      delta = project(act, i, "down");
    });
  }
  const [normed] = skipRms(delta!, resid, w("model.norm.weight", [H])); // [tokens, H]
  const last = g.slice(toBatchSeq(normed, H), [-1], [2 ** 62], [1]); // [batch, 1, H]
  // [H, vocab]: a tied head is the embedding transposed, a layout of its own.
  const headName = config.tieWordEmbeddings ? "model.embed_tokens.weight" : "lm_head.weight";
  const headT = place("lm_head.weight.T", [H, config.vocabSize], () =>
    transposed(read(headName, [config.vocabSize, H]), config.vocabSize, H),
  );
  const logits = g.matmul(last, headT); // [batch, 1, vocab]
  g.output(g.reshape(logits, [0, -1]), "logits");
  g.output(g.concat(newKv, 1), "new_key_values");
}

export interface DecodeEngineOptions {
  /** Default cpu. */
  provider?: ExecutionProvider;
  /** Intra-op threads (ORT's choice when omitted). */
  threads?: number;
  /** Default "all". */
  optimization?: CreateSessionOptions["optimization"];
  /** Declares packed LoRA inputs of this layout (see setAdapter); omitted: a base-model graph. */
  lora?: LoraConfig;
  /**
   * Whether idle intra-op threads spin for the next parallel section (default false; ORT's own
   * default is to spin). A decode step is hundreds of short parallel sections: on a machine other
   * processes keep busy, a spinning thread burns the time slice its partner needs (measured in
   * tools/bench/qwen3-decode.ts, --spin on|off).
   */
  spin?: boolean;
  /** Extra ORT session options (profiling, an optimized-model path). */
  ortOptions?: CreateSessionOptions["ortOptions"];
  /** Where the weights live (see decodeWeightPlacement). */
  weights?: DecodeWeightsOptions;
}

/** `options` with config entries added under `session.` (ORT's config keys). */
function withSessionConfig(
  options: CreateSessionOptions["ortOptions"],
  entries: Record<string, unknown>,
): NonNullable<CreateSessionOptions["ortOptions"]> {
  const extra = (options?.extra ?? {}) as { session?: Record<string, unknown> };
  return { ...options, extra: { ...extra, session: { ...extra.session, ...entries } } };
}

/** One run: `seq` new tokens per row after `capacity` cache slots per row. */
export interface DecodeRunInputs {
  batch: number;
  seq: number;
  /** [batch, seq] */
  inputIds: BigInt64Array;
  /** [batch, seq]: 1 = token, 0 = left padding of a prefill. */
  attentionMask: BigInt64Array;
  /** [batch, seq] */
  positionIds: BigInt64Array;
  /** Slots per row in the cache buffers fed (0 for a prefill). */
  capacity: number;
  /** [batch, capacity]: 0 = a cached token, HIDDEN_SLOT = free or padding. */
  cacheBias: Float32Array;
  /** Per layer, keys then values: each holds at least batch·kv_heads·capacity·head_dim values. */
  cache: readonly Float32Array[];
}

export interface DecodeRunOutputs {
  /** [batch, vocab] */
  logits: Float32Array;
  /** [batch, 2·layers·kv_heads, seq, head_dim]: the new tokens' keys (after RoPE) and values. */
  newKeyValues: Float32Array;
}

export class Qwen3DecodeEngine {
  private adapterFeeds: Record<string, ort.Tensor>;
  private readonly zeroFeeds: Record<string, ort.Tensor>;
  /** Cache buffers of a prefill (capacity 0). */
  readonly emptyCache: readonly Float32Array[];

  private constructor(
    readonly config: Qwen3Config,
    readonly provider: ExecutionProvider,
    /** The LoRA layout of the graph's inputs (validated), or null for a base-model graph. */
    readonly lora: LoraConfig | null,
    private readonly session: Session,
  ) {
    this.zeroFeeds = lora ? packLora(config, lora, null) : {};
    this.adapterFeeds = this.zeroFeeds;
    this.emptyCache = Array.from({ length: 2 * config.numHiddenLayers }, () => new Float32Array(0));
  }

  readonly dtype = "float32" as const;

  /** Opens a Hugging Face-layout directory (validated), builds the graph and its session. */
  static async load(dir: string, options: DecodeEngineOptions = {}): Promise<Qwen3DecodeEngine> {
    checkProvider(options.provider ?? "cpu");
    return fromModelDir(dir, (config, checkpoint) =>
      Qwen3DecodeEngine.fromCheckpoint(config, checkpoint, options),
    );
  }

  /** Builds from an open checkpoint (not closed here). */
  static async fromCheckpoint(
    config: Qwen3Config,
    checkpoint: Checkpoint,
    options: DecodeEngineOptions = {},
  ): Promise<Qwen3DecodeEngine> {
    const provider = options.provider ?? "cpu";
    checkProvider(provider);
    const lora = options.lora ? validateLoraConfig(options.lora) : null;
    const g = new GraphBuilder("qwen3_decode", { dtype: "float32" });
    const read = checkpointReader(checkpoint);
    let ortOptions =
      options.spin !== true
        ? withSessionConfig(options.ortOptions, { intra_op: { allow_spinning: "0" } })
        : options.ortOptions;
    const sessionOptions = {
      provider,
      threads: options.threads,
      optimization: options.optimization ?? "all",
    };
    const placement = decodeWeightPlacement(config, options.weights);
    if (!placement.mapped) {
      declareDecodeGraph(g, config, read, lora);
      const session = await Session.create(g.build(), { ...sessionOptions, ortOptions });
      return new Qwen3DecodeEngine(config, provider, lora, session);
    }
    const progress = options.weights?.onProgress;
    const stage = (name: "hash" | "pack") => (done: boolean) =>
      progress?.({ stage: name, done: done ? 1 : 0, total: 1 });
    const cache = await MappedWeights.open(
      checkpoint.dir,
      DECODE_WEIGHT_LAYOUT,
      options.weights?.cacheRoot,
      stage("hash"),
    );
    // the total is the model's bytes; page alignment and the RoPE tables add a little, hence the cap
    const total = placement.weightBytes;
    if (progress)
      cache.onWrite = (bytes) => progress({ stage: "convert", done: Math.min(bytes, total - 1), total });
    cache.declareWith(() => declareDecodeGraph(g, config, read, lora, mappedPlacer(g, cache)));
    if (!cache.hit) progress?.({ stage: "convert", done: total, total });
    const graph = cache.saveGraph(g.build(), lora ? "decode-lora" : "decode");
    let session: Session;
    if (placement.prepack) {
      // The packed graph is already optimized: optimizing it again could change what was packed.
      const packed = await cache.packedGraph(graph, options.threads, stage("pack"));
      session = await Session.create(packed, { ...sessionOptions, optimization: "disabled", ortOptions });
    } else {
      ortOptions = withSessionConfig(ortOptions, { disable_prepacking: "1" });
      session = await Session.create(graph, { ...sessionOptions, ortOptions });
    }
    return new Qwen3DecodeEngine(config, provider, lora, session);
  }

  /** The adapter later runs use (null: the base model); same layout as the engine's LoRA inputs. */
  setAdapter(adapter: LoraAdapter | null): void {
    if (adapter === null) {
      this.adapterFeeds = this.zeroFeeds;
      return;
    }
    const lora = this.lora;
    if (!lora) throw new LoraError("this engine was built without LoRA inputs (pass a lora config at load)");
    const cfg = validateLoraConfig(adapter.config);
    const same =
      cfg.rank === lora.rank &&
      loraScale(cfg) === loraScale(lora) &&
      cfg.targetModules.join(",") === lora.targetModules.join(",");
    if (!same)
      throw new LoraError(
        `adapter (rank ${cfg.rank}, scale ${loraScale(cfg)}, targets ${cfg.targetModules.join(",")}) does not match the engine's LoRA inputs (rank ${lora.rank}, scale ${loraScale(lora)}, targets ${lora.targetModules.join(",")})`,
      );
    this.adapterFeeds = packLora(this.config, lora, adapter);
  }

  async run(inputs: DecodeRunInputs): Promise<DecodeRunOutputs> {
    const { batch, seq, capacity } = inputs;
    const { numHiddenLayers: L, numKeyValueHeads: kvh, headDim: d } = this.config;
    if (inputs.cache.length !== 2 * L)
      throw new EngineInputError(`cache has ${inputs.cache.length} buffers, expected ${2 * L}`);
    const slots = batch * kvh * capacity * d;
    if (inputs.cacheBias.length !== batch * capacity)
      throw new EngineInputError(
        `cache_bias has ${inputs.cacheBias.length} values, expected ${batch * capacity}`,
      );
    const feeds: Record<string, ort.Tensor> = {
      ...this.adapterFeeds,
      input_ids: tensor("int64", inputs.inputIds, [batch, seq]),
      attention_mask: tensor("int64", inputs.attentionMask, [batch, seq]),
      position_ids: tensor("int64", inputs.positionIds, [batch, seq]),
      cache_bias: tensor("float32", inputs.cacheBias, [batch, capacity]),
    };
    for (let i = 0; i < 2 * L; i++) {
      const buf = inputs.cache[i];
      if (buf.length < slots)
        throw new EngineInputError(
          `cache buffer ${i} has ${buf.length} values, [${batch}, ${kvh}, ${capacity}, ${d}] needs ${slots}`,
        );
      const data = buf.length === slots ? buf : buf.subarray(0, slots);
      feeds[`past_key_values.${i >> 1}.${i & 1 ? "value" : "key"}`] = tensor(
        "float32",
        data,
        i & 1 ? [batch, kvh, 1, capacity, d] : [batch, kvh, capacity, d],
      );
    }
    const out = await this.session.run(feeds);
    return {
      logits: out.logits.data as Float32Array,
      newKeyValues: out.new_key_values.data as Float32Array,
    };
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}

/**
 * The packed LoRA feeds of `lora`'s layout: per layer and fused projection, A [in, t·r] (the targets'
 * Aᵀ side by side) and B [t·r, out] (block-diagonal: target j's scale·Bᵀ in its rows and output
 * columns). `adapter` null: zeros (the base model).
 */
function packLora(
  config: Qwen3Config,
  lora: LoraConfig,
  adapter: LoraAdapter | null,
): Record<string, ort.Tensor> {
  const r = lora.rank;
  const scale = loraScale(lora);
  const byKey = new Map(adapter?.pairs.map((p) => [`${p.layer}/${p.module}`, p]));
  const feeds: Record<string, ort.Tensor> = {};
  for (let layer = 0; layer < config.numHiddenLayers; layer++)
    for (const group of GROUP_NAMES) {
      const targets = groupTargets(lora, group);
      if (targets.length === 0) continue;
      const { inFeatures: inF, outFeatures: outF } = groupShape(config, group);
      const cols = targets.length * r;
      const a = new Float32Array(inF * cols);
      const b = new Float32Array(cols * outF);
      let outAt = 0;
      for (const m of DECODE_GROUPS[group]) {
        const out = loraModuleShape(config, m).outFeatures;
        const j = targets.indexOf(m);
        if (j >= 0 && adapter) {
          const pair = byKey.get(`${layer}/${m}`);
          if (!pair) throw new LoraError(`adapter lacks layer ${layer} ${m}`);
          // A [r, in] → columns j·r … j·r + r − 1 of A_packed [in, cols]
          for (let k = 0; k < r; k++)
            for (let x = 0; x < inF; x++) a[x * cols + j * r + k] = pair.a[k * inF + x];
          // B [out, r] → rows j·r …, columns outAt … of B_packed [cols, outF], times the scale
          for (let o = 0; o < out; o++)
            for (let k = 0; k < r; k++) b[(j * r + k) * outF + outAt + o] = scale * pair.b[o * r + k];
        }
        outAt += out;
      }
      feeds[decodeLoraInputName(layer, group, "A")] = tensor("float32", a, [inF, cols]);
      feeds[decodeLoraInputName(layer, group, "B")] = tensor("float32", b, [cols, outF]);
    }
  return feeds;
}
