// Qwen3Engine: a model directory loaded into one ORT session of the logprobs graph; scores batches
// of token-id sequences (left-padded) under a temperature, optionally with the top-k of each position.
import {
  type CreateSessionOptions,
  checkProvider,
  type ExecutionProvider,
  GraphBuilder,
  Session,
  tensor,
} from "@temper/onnx";
import { checkSequences, EngineInputError, leftPad, type PaddedBatch } from "../graph/engine-batch.ts";
import { declareLogprobsGraph, type LoraSource } from "../graph/forward-graph.ts";
import { checkpointWeights, mappedCheckpointWeights, mapsCheckpointWeights } from "../graph/graph-weights.ts";
import type { MappedWeights } from "../graph/weight-cache.ts";
import type { Checkpoint } from "../model/checkpoint.ts";
import type { Qwen3Config } from "../model/config.ts";
import { fromModelDir } from "../model/model-dir.ts";

export type EngineDtype = "float32" | "float64";

export interface EngineOptions {
  /** Compute precision; weights are converted at load (default float32). */
  dtype?: EngineDtype;
  /** Default cpu. */
  provider?: ExecutionProvider;
  /** Intra-op threads (ORT's choice when omitted). */
  threads?: number;
  /** ORT graph optimization; default "all" for float32, "basic" for float64 (fused kernels are not exact). */
  optimization?: CreateSessionOptions["optimization"];
  /** Also compute raw logits (forward() returns them). */
  logits?: boolean;
  /** LoRA pairs wired into the graph (weights or graph inputs the caller declares). */
  lora?: (g: GraphBuilder) => LoraSource;
  /**
   * float32 without `lora`: map the weights from the weight cache (default: above MAP_MIN_BYTES of
   * float32 weights). The results are bitwise the in-memory graph's.
   */
  mappedWeights?: boolean;
  /** The weight cache's root (default weightCacheRoot()). */
  weightCache?: string;
}

export interface LogprobsOptions {
  /** Logits are divided by this before the softmax (default 1). */
  temperature?: number;
  /** Also return the k most likely tokens of every scored position. */
  topK?: number;
}

export interface TopToken {
  id: number;
  logprob: number;
}

export interface LogprobsResult {
  /** Per sequence, T−1 values: entry t−1 = log p(ids[t] | ids[<t]) (temperature-scaled, untruncated). */
  logprobs: number[][];
  /** Per sequence and scored position t (same T−1 alignment), the k best tokens, most likely first. */
  topK?: TopToken[][][];
}

/** The graph's raw outputs for one padded batch, row-major. */
export interface ForwardOutputs {
  /** [batch, seq]: entry t = log p(token t | tokens < t); 0 at t = 0 and wherever t or t−1 is padding. */
  logprobs: Float32Array | Float64Array;
  /** [batch, seq, vocab] when the engine was loaded with `logits: true`. */
  logits?: Float32Array | Float64Array;
  /** [batch, seq−1, k] */
  topKLogprobs: Float32Array | Float64Array;
  topKIds: BigInt64Array;
  k: number;
}

export class Qwen3Engine {
  private constructor(
    readonly config: Qwen3Config,
    readonly dtype: EngineDtype,
    readonly provider: ExecutionProvider,
    private readonly session: Session,
    private readonly hasLogits: boolean,
  ) {}

  /** Opens a Hugging Face-layout directory (validated), builds the graph and its session. */
  static async load(dir: string, options: EngineOptions = {}): Promise<Qwen3Engine> {
    checkProvider(options.provider ?? "cpu");
    return fromModelDir(dir, (config, checkpoint) => Qwen3Engine.fromCheckpoint(config, checkpoint, options));
  }

  /** Builds from an open checkpoint (not closed here). */
  static async fromCheckpoint(
    config: Qwen3Config,
    checkpoint: Checkpoint,
    options: EngineOptions = {},
  ): Promise<Qwen3Engine> {
    const dtype = options.dtype ?? "float32";
    if (dtype !== "float32" && dtype !== "float64")
      throw new EngineInputError(`dtype must be float32 or float64, got "${dtype}"`);
    const provider = options.provider ?? "cpu";
    checkProvider(provider);
    const g = new GraphBuilder("qwen3_logprobs", { dtype });
    let source = checkpointWeights(g, checkpoint);
    let cache: MappedWeights | undefined;
    // a caller's LoRA weights would live in memory, and a graph saved by path cannot hold them
    if (!options.lora && mapsCheckpointWeights(config, dtype, options.mappedWeights))
      ({ source, cache } = await mappedCheckpointWeights(g, checkpoint, options.weightCache));
    const declare = () =>
      declareLogprobsGraph(g, config, source, {
        logits: options.logits,
        topK: true,
        lora: options.lora?.(g),
      });
    if (cache) cache.declareWith(declare);
    else declare();
    // a mapped graph is saved beside its weights and opened by path
    const session = await Session.create(cache ? cache.saveGraph(g.build(), "logprobs") : g.build(), {
      provider,
      threads: options.threads,
      optimization: options.optimization ?? (dtype === "float64" ? "basic" : "all"),
    });
    return new Qwen3Engine(config, dtype, provider, session, options.logits === true);
  }

  /** Runs one padded batch through the graph. */
  async forward(batch: PaddedBatch, options: LogprobsOptions = {}): Promise<ForwardOutputs> {
    const temperature = options.temperature ?? 1;
    if (!(temperature > 0) || !Number.isFinite(temperature))
      throw new EngineInputError(`temperature must be a positive number, got ${temperature}`);
    const k = options.topK ?? 1;
    if (!Number.isInteger(k) || k < 1 || k > this.config.vocabSize)
      throw new EngineInputError(`top-k must be an integer in 1..${this.config.vocabSize}, got ${k}`);
    const dims = [batch.batch, batch.seq];
    const out = await this.session.run({
      input_ids: tensor("int64", batch.inputIds, dims),
      attention_mask: tensor("int64", batch.attentionMask, dims),
      position_ids: tensor("int64", batch.positionIds, dims),
      temperature: tensor(this.dtype, [temperature], []),
      top_k: tensor("int64", [k], [1]),
    });
    return {
      logprobs: out.logprobs.data as Float32Array | Float64Array,
      logits: this.hasLogits ? (out.logits.data as Float32Array | Float64Array) : undefined,
      topKLogprobs: out.top_k_logprobs.data as Float32Array | Float64Array,
      topKIds: out.top_k_ids.data as BigInt64Array,
      k,
    };
  }

  /**
   * Log-probabilities of each sequence's tokens given their prefixes (no BOS added): T−1 values per
   * sequence of T tokens. Sequences of different lengths share one left-padded run.
   */
  async logprobs(
    sequences: readonly (readonly number[])[],
    options: LogprobsOptions = {},
  ): Promise<LogprobsResult> {
    checkSequences(sequences, this.config.vocabSize);
    const batch = leftPad(sequences);
    const result: LogprobsResult = { logprobs: sequences.map(() => []) };
    if (options.topK !== undefined) result.topK = sequences.map(() => []);
    if (batch.seq < 2) {
      // nothing to score; still validate the options
      if (options.topK !== undefined || options.temperature !== undefined)
        await this.forward(leftPad(sequences.map((s) => [s[0], s[0]])), options);
      return result;
    }
    const out = await this.forward(batch, options);
    const S = batch.seq;
    const k = out.k;
    batch.lengths.forEach((length, b) => {
      const pad = S - length;
      for (let t = pad + 1; t < S; t++) {
        result.logprobs[b].push(out.logprobs[b * S + t]);
        if (result.topK) {
          const at = (b * (S - 1) + t - 1) * k;
          const top: TopToken[] = [];
          for (let j = 0; j < k; j++)
            top.push({ id: Number(out.topKIds[at + j]), logprob: out.topKLogprobs[at + j] });
          result.topK[b].push(top);
        }
      }
    });
    return result;
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}
