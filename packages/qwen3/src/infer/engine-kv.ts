// Qwen3KvEngine: one ORT session of the KV-cached forward graph, serving both prefill (an empty past,
// seq 0 on the cache axis) and decode (one new token per row). I/O follow the Optimum /
// transformers.js export: input_ids, attention_mask [batch, past + seq], position_ids,
// past_key_values.N.key/value → logits, present.N.key/value ([batch, kv_heads, total, head_dim]).
//
// Only the last position's logits are computed ([batch, 1, vocab]): with left padding that is every
// row's next-token distribution, and a [batch, seq, vocab] tensor is never materialised.
//
// LoRA A/B (when the engine is built with a LoRA config) are graph inputs fed on every run, so an
// adapter swap is a change of feeds, never a new session; no adapter = zero feeds = the base model.
import {
  type CreateSessionOptions,
  checkProvider,
  type ExecutionProvider,
  GraphBuilder,
  Session,
  tensor,
} from "@temper/onnx";
import type * as ort from "onnxruntime-node";
import {
  type LoraAdapter,
  type LoraConfig,
  LoraError,
  loraLayout,
  loraScale,
  loraTensorName,
  validateLoraConfig,
} from "../adapter/lora.ts";
import { EngineInputError } from "../graph/engine-batch.ts";
import { forwardInputs, linear, qwen3Forward, type WeightSource } from "../graph/forward-graph.ts";
import { checkpointWeights } from "../graph/graph-weights.ts";
import { declareLoraInputs, type LoraGraphInputs, loraFeeds } from "../graph/lora-graph.ts";
import type { Checkpoint } from "../model/checkpoint.ts";
import type { Qwen3Config } from "../model/config.ts";
import { fromModelDir } from "../model/model-dir.ts";
import type { EngineDtype } from "./engine.ts";

/**
 * Declares the KV-cached forward graph on `g`: inputs input_ids, attention_mask, position_ids,
 * past_key_values.N.key/value (and the LoRA inputs `lora` was declared with); outputs logits
 * [batch, 1, vocab] of the last position and present.N.key/value.
 */
export function declareKvGraph(
  g: GraphBuilder,
  config: Qwen3Config,
  weights: WeightSource,
  lora?: LoraGraphInputs,
): void {
  const inputs = forwardInputs(g, config, true);
  const fwd = qwen3Forward(g, config, weights, inputs, lora ? (l, m) => lora.get(l, m) : undefined);
  const last = g.slice(fwd.hidden, [-1], [2 ** 62], [1]); // [batch, 1, hidden]
  const head = config.tieWordEmbeddings
    ? weights("model.embed_tokens.weight", [config.vocabSize, config.hiddenSize])
    : weights("lm_head.weight", [config.vocabSize, config.hiddenSize]);
  g.output(linear(g, last, head), "logits");
  fwd.present.forEach((kv, i) => {
    g.output(kv.key, `present.${i}.key`);
    g.output(kv.value, `present.${i}.value`);
  });
}

export interface KvEngineOptions {
  /** Compute precision; weights are converted at load (default float32). */
  dtype?: EngineDtype;
  /** Default cpu. */
  provider?: ExecutionProvider;
  /** Intra-op threads (ORT's choice when omitted). */
  threads?: number;
  /** Default "all" for float32, "basic" for float64 (fused kernels are not exact). */
  optimization?: CreateSessionOptions["optimization"];
  /**
   * Declares LoRA A/B inputs of this layout; adapters with the same rank, targets and scale then
   * swap per run (setAdapter). Omitted: a base-model graph without LoRA inputs.
   */
  lora?: LoraConfig;
}

/** One run's token inputs, row-major. */
export interface KvStepInputs {
  batch: number;
  /** New tokens per row. */
  seq: number;
  /** [batch, seq] */
  inputIds: BigInt64Array;
  /** [batch, past + seq]: 1 = token, 0 = padding, for the cached columns and the new ones. */
  attentionMask: BigInt64Array;
  /** [batch, seq] */
  positionIds: BigInt64Array;
}

export interface KvStepOutputs {
  /** [batch, vocab]: next-token logits after each row's last new token. */
  logits: Float32Array | Float64Array;
  /** Per layer key then value ([batch, kv_heads, past + seq, head_dim]), the next run's past. */
  present: ort.Tensor[];
}

export class Qwen3KvEngine {
  private adapterFeeds: Record<string, ort.Tensor>;
  private readonly zeroFeeds: Record<string, ort.Tensor>;

  private constructor(
    readonly config: Qwen3Config,
    readonly dtype: EngineDtype,
    readonly provider: ExecutionProvider,
    /** The LoRA layout of the graph's inputs (validated), or null for a base-model graph. */
    readonly lora: LoraConfig | null,
    private readonly session: Session,
  ) {
    this.zeroFeeds = lora ? zeroLoraFeeds(config, lora, dtype) : {};
    this.adapterFeeds = this.zeroFeeds;
  }

  /** Opens a Hugging Face-layout directory (validated), builds the graph and its session. */
  static async load(dir: string, options: KvEngineOptions = {}): Promise<Qwen3KvEngine> {
    checkProvider(options.provider ?? "cpu");
    return fromModelDir(dir, (config, checkpoint) =>
      Qwen3KvEngine.fromCheckpoint(config, checkpoint, options),
    );
  }

  /** Builds from an open checkpoint (not closed here). */
  static async fromCheckpoint(
    config: Qwen3Config,
    checkpoint: Checkpoint,
    options: KvEngineOptions = {},
  ): Promise<Qwen3KvEngine> {
    const dtype = options.dtype ?? "float32";
    if (dtype !== "float32" && dtype !== "float64")
      throw new EngineInputError(`dtype must be float32 or float64, got "${dtype}"`);
    const provider = options.provider ?? "cpu";
    checkProvider(provider);
    const lora = options.lora ? validateLoraConfig(options.lora) : null;
    const g = new GraphBuilder("qwen3_kv", { dtype });
    const loraInputs = lora ? declareLoraInputs(g, config, lora) : undefined;
    declareKvGraph(g, config, checkpointWeights(g, checkpoint), loraInputs);
    const session = await Session.create(g.build(), {
      provider,
      threads: options.threads,
      optimization: options.optimization ?? (dtype === "float64" ? "basic" : "all"),
    });
    return new Qwen3KvEngine(config, dtype, provider, lora, session);
  }

  /**
   * The adapter later runs use (null: the base model). It must have the layout the engine was
   * built with (rank, target modules, scale); the session is not rebuilt.
   */
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
    const feeds = loraFeeds(adapter, this.dtype);
    for (const name of Object.keys(this.zeroFeeds))
      if (!feeds[name]) throw new LoraError(`adapter lacks ${name}`);
    this.adapterFeeds = feeds;
  }

  /** An empty cache for `batch` rows: every past_key_values tensor [batch, kv_heads, 0, head_dim]. */
  emptyPast(batch: number): ort.Tensor[] {
    const { numKeyValueHeads: kvh, headDim: d, numHiddenLayers: L } = this.config;
    const empty = this.dtype === "float64" ? new Float64Array(0) : new Float32Array(0);
    return Array.from({ length: 2 * L }, () => tensor(this.dtype, empty, [batch, kvh, 0, d]));
  }

  /** Runs the graph on new tokens after `past` (emptyPast for a prefill). */
  async step(inputs: KvStepInputs, past: readonly ort.Tensor[]): Promise<KvStepOutputs> {
    const L = this.config.numHiddenLayers;
    if (past.length !== 2 * L)
      throw new EngineInputError(`past has ${past.length} tensors, expected ${2 * L}`);
    const pastLen = past[0].dims[2];
    const total = pastLen + inputs.seq;
    if (inputs.attentionMask.length !== inputs.batch * total)
      throw new EngineInputError(
        `attention_mask has ${inputs.attentionMask.length} values, [${inputs.batch}, ${total}] needs ${inputs.batch * total}`,
      );
    const feeds: Record<string, ort.Tensor> = {
      ...this.adapterFeeds,
      input_ids: tensor("int64", inputs.inputIds, [inputs.batch, inputs.seq]),
      attention_mask: tensor("int64", inputs.attentionMask, [inputs.batch, total]),
      position_ids: tensor("int64", inputs.positionIds, [inputs.batch, inputs.seq]),
    };
    for (let i = 0; i < L; i++) {
      feeds[`past_key_values.${i}.key`] = past[2 * i];
      feeds[`past_key_values.${i}.value`] = past[2 * i + 1];
    }
    const out = await this.session.run(feeds);
    const present: ort.Tensor[] = [];
    for (let i = 0; i < L; i++) present.push(out[`present.${i}.key`], out[`present.${i}.value`]);
    return { logits: out.logits.data as Float32Array | Float64Array, present };
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}

/** Zero A and B for every pair of `lora`: W + s·0·0 = W, the base model. */
function zeroLoraFeeds(
  config: Qwen3Config,
  lora: LoraConfig,
  dtype: EngineDtype,
): Record<string, ort.Tensor> {
  const r = lora.rank;
  const feeds: Record<string, ort.Tensor> = {};
  const zeros = (n: number) => (dtype === "float64" ? new Float64Array(n) : new Float32Array(n));
  for (const p of loraLayout(config, lora)) {
    feeds[loraTensorName(p.layer, p.module, "A")] = tensor(dtype, zeros(r * p.inFeatures), [r, p.inFeatures]);
    feeds[loraTensorName(p.layer, p.module, "B")] = tensor(dtype, zeros(p.outFeatures * r), [
      p.outFeatures,
      r,
    ]);
  }
  return feeds;
}
