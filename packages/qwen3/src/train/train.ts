// Qwen3Trainer: one ORT session of the training graph (train-graph.ts) for a model, a trainable set
// (LoRA pairs or every weight) and a loss. step() pads a batch, runs it in micro-batches, each fed
// its slice of the WHOLE batch's loss scales, and sums their losses and gradients: the result equals
// the one-batch result. Diagnostics (clip fraction, KL, entropy) are masked-token means, combined
// across micro-batches by their masked-token counts.
import {
  type CreateSessionOptions,
  checkProvider,
  type ExecutionProvider,
  GraphBuilder,
  gradients,
  type OnnxModel,
  Session,
  tensor,
} from "@temper/onnx";
import type * as ort from "onnxruntime-node";
import type { LoraAdapter, LoraConfig } from "../adapter/lora.ts";
import { checkpointWeights, mappedCheckpointWeights, mapsCheckpointWeights } from "../graph/graph-weights.ts";
import { declareLoraInputs, loraFeeds } from "../graph/lora-graph.ts";
import {
  declareTrainGraph,
  inputWeights,
  TRAIN_LOSS_KINDS,
  type TrainLossConfig,
} from "../graph/train-graph.ts";
import type { MappedWeights } from "../graph/weight-cache.ts";
import type { Checkpoint } from "../model/checkpoint.ts";
import type { Qwen3Config } from "../model/config.ts";
import { fromModelDir } from "../model/model-dir.ts";
import type { FloatArray } from "../model/safetensors.ts";
import { expectedTensors, validateCheckpoint } from "../model/weights.ts";
import { LOSS_AGGREGATIONS, lossScales } from "./loss.ts";
import {
  checkTrainBatch,
  type PaddedTrainBatch,
  type Padding,
  padTrainBatch,
  sliceTrainBatch,
  TrainInputError,
  type TrainSequence,
} from "./train-batch.ts";

export type TrainMode = "lora" | "full";
export type TrainDtype = "float32" | "float64";

export interface TrainerOptions {
  mode: TrainMode;
  /** Required for mode "lora". */
  lora?: LoraConfig;
  loss: TrainLossConfig;
  /** Compute precision (default float32). */
  dtype?: TrainDtype;
  provider?: ExecutionProvider;
  threads?: number;
  /** Default "all" for float32, "basic" for float64 (ORT's fused kernels are not exact in float64). */
  optimization?: CreateSessionOptions["optimization"];
  /** Also build a loss-only (forward) session for evaluate(): finite differences, validation. */
  evaluate?: boolean;
  /**
   * LoRA at float32: map the base weights from the weight cache (default: above MAP_MIN_BYTES of
   * float32 weights). The results are bitwise the in-memory graph's.
   */
  mappedWeights?: boolean;
  /** The weight cache's root (default weightCacheRoot()). */
  weightCache?: string;
  /** Extra ORT session options (e.g. enableProfiling + profileFilePrefix), merged last. */
  ortOptions?: CreateSessionOptions["ortOptions"];
}

export interface StepOptions {
  /** Sequences per graph run (default: the whole batch). */
  microBatchSize?: number;
  /** Logits are divided by this before the softmax (default 1). */
  temperature?: number;
  /** Where pads go when sequences differ in length (default left). */
  padding?: Padding;
}

/** LoRA mode: an adapter; full mode: every checkpoint tensor by Hugging Face name (see readWeightMap). */
export type TrainParams = LoraAdapter | ReadonlyMap<string, FloatArray>;

export interface StepResult {
  /** The batch loss (sum of the micro-batch shares). */
  loss: number;
  /** [batch][len(input_ids)] per sequence, in the blueprint's alignment (entry 0 = 0). */
  logprobs: number[][];
  /** LoRA: by PEFT tensor name; full: by Hugging Face name. Float64Array for float64, else Float32Array. */
  grads: Map<string, FloatArray>;
  /** GRPO only. */
  clipFraction?: number;
  /** GRPO only: mean k3 KL to ref_logprobs (undefined when the batch has none). */
  kl?: number;
  entropy: number;
  /** Σ completion_mask over the batch. */
  maskedTokens: number;
}

/** Every checkpoint tensor (Hugging Face names) widened to `dtype`: full-parameter mode's params. */
export function readWeightMap(
  config: Qwen3Config,
  checkpoint: Checkpoint,
  dtype: TrainDtype = "float32",
): Map<string, FloatArray> {
  validateCheckpoint(config, checkpoint);
  return new Map(expectedTensors(config).map((t) => [t.name, checkpoint.read(t.name, dtype)]));
}

function checkOptions(options: TrainerOptions): void {
  if (options.mode !== "lora" && options.mode !== "full")
    throw new TrainInputError(`training mode must be lora or full, got "${options.mode}"`);
  if (options.mode === "lora" && !options.lora) throw new TrainInputError("mode lora needs a LoRA config");
  if (!TRAIN_LOSS_KINDS.includes(options.loss.kind))
    throw new TrainInputError(
      `loss must be one of ${TRAIN_LOSS_KINDS.join(", ")}, got "${options.loss.kind}"`,
    );
  const agg = options.loss.aggregation ?? "token";
  if (!LOSS_AGGREGATIONS.includes(agg))
    throw new TrainInputError(`aggregation must be one of ${LOSS_AGGREGATIONS.join(", ")}, got "${agg}"`);
  const dtype = options.dtype ?? "float32";
  if (dtype !== "float32" && dtype !== "float64")
    throw new TrainInputError(`dtype must be float32 or float64, got "${dtype}"`);
}

export class Qwen3Trainer {
  private lossSession: Session | undefined;

  private constructor(
    readonly config: Qwen3Config,
    readonly options: Readonly<TrainerOptions>,
    readonly dtype: TrainDtype,
    /** Trainable tensor names (graph inputs), in gradient order. */
    readonly trainable: readonly { name: string; shape: number[] }[],
    private readonly session: Session,
    private readonly lossModel: OnnxModel | string | undefined,
    private readonly sessionOptions: CreateSessionOptions,
  ) {}

  /** Opens a Hugging Face-layout model directory and builds the training session. */
  static async load(dir: string, options: TrainerOptions): Promise<Qwen3Trainer> {
    return fromModelDir(dir, (config, checkpoint) =>
      Qwen3Trainer.fromCheckpoint(config, checkpoint, options),
    );
  }

  /** Builds from an open checkpoint (not closed here; full mode reads nothing from it). */
  static async fromCheckpoint(
    config: Qwen3Config,
    checkpoint: Checkpoint,
    options: TrainerOptions,
  ): Promise<Qwen3Trainer> {
    checkOptions(options);
    const dtype = options.dtype ?? "float32";
    checkProvider(options.provider ?? "cpu");
    const g = new GraphBuilder(`qwen3_train_${options.mode}_${options.loss.kind}`, { dtype });
    let declared: ReturnType<typeof declareTrainGraph>;
    let cache: MappedWeights | undefined;
    if (options.mode === "lora") {
      validateCheckpoint(config, checkpoint);
      const lora = declareLoraInputs(g, config, options.lora!);
      let source = checkpointWeights(g, checkpoint);
      if (mapsCheckpointWeights(config, dtype, options.mappedWeights))
        ({ source, cache } = await mappedCheckpointWeights(g, checkpoint, options.weightCache));
      const declare = () => declareTrainGraph(g, config, source, { loss: options.loss, lora });
      declared = cache ? cache.declareWith(declare) : declare();
    } else {
      const weights = inputWeights(g);
      // declare every weight in checkpoint order, so the trainable list (and gradient order) is stable
      for (const t of expectedTensors(config)) weights.source(t.name, t.shape);
      declared = declareTrainGraph(g, config, weights.source, {
        loss: options.loss,
        trainable: [...weights.inputs.values()],
      });
    }
    // a mapped graph is saved beside its weights and opened by path
    const built = (name: string) => (cache ? cache.saveGraph(g.build(), name) : g.build());
    const lossModel = options.evaluate ? built("train-loss") : undefined;
    gradients(g, declared.loss, declared.trainable);
    const sessionOptions: CreateSessionOptions = {
      provider: options.provider ?? "cpu",
      threads: options.threads,
      optimization: options.optimization ?? (dtype === "float64" ? "basic" : "all"),
      // Every step pads to its own length. With ORT's memory pattern on, the first repeat of the
      // first run's shape cost as much as that first run (5.4 s against ~1 s, batch 128 × 124);
      // off, half that, and later steps no slower (tools/bench/train-shapes.ts).
      ortOptions: { enableMemPattern: false, ...options.ortOptions },
    };
    const session = await Session.create(built("train"), sessionOptions);
    const trainable = declared.trainable.map((v) => ({ name: v.name, shape: v.shape as number[] }));
    return new Qwen3Trainer(config, options, dtype, trainable, session, lossModel, sessionOptions);
  }

  private paramFeeds(params: TrainParams): Record<string, ort.Tensor> {
    if (this.options.mode === "lora") {
      if (params instanceof Map)
        throw new TrainInputError("a LoRA trainer takes an adapter, got a weight map");
      const adapter = params as LoraAdapter;
      const want = this.options.lora!;
      if (
        adapter.config.rank !== want.rank ||
        adapter.config.targetModules.join(",") !== [...want.targetModules].join(",")
      )
        throw new TrainInputError(
          `the adapter (r=${adapter.config.rank}, ${adapter.config.targetModules.join(",")}) does not match the trainer's LoRA config (r=${want.rank}, ${want.targetModules.join(",")})`,
        );
      return loraFeeds(adapter, this.dtype);
    }
    if (!(params instanceof Map)) throw new TrainInputError("a full-parameter trainer takes a weight map");
    const feeds: Record<string, ort.Tensor> = {};
    for (const t of this.trainable) {
      const data = params.get(t.name);
      if (!data) throw new TrainInputError(`the weight map lacks ${t.name}`);
      const host = data instanceof (this.dtype === "float64" ? Float64Array : Float32Array);
      feeds[t.name] = tensor(
        this.dtype,
        host ? data : this.dtype === "float64" ? Float64Array.from(data) : Float32Array.from(data),
        t.shape,
      );
    }
    return feeds;
  }

  private prepare(batch: readonly TrainSequence[], options: StepOptions) {
    const grpo = this.options.loss.kind === "grpo";
    const { hasRef } = checkTrainBatch(batch, {
      vocabSize: this.config.vocabSize,
      grpo,
      needsRef: grpo && (this.options.loss.beta ?? 0) > 0,
    });
    const micro = options.microBatchSize ?? batch.length;
    if (!Number.isSafeInteger(micro) || micro < 1)
      throw new TrainInputError(`micro-batch size must be an integer ≥ 1, got ${micro}`);
    const temperature = options.temperature ?? 1;
    if (!(temperature > 0) || !Number.isFinite(temperature))
      throw new TrainInputError(`temperature must be a positive number, got ${temperature}`);
    const padded = padTrainBatch(batch, options.padding ?? "left");
    const scales = lossScales(
      batch.map((s) => s.completionMask),
      this.options.loss.aggregation ?? "token",
    );
    const parts: { rows: PaddedTrainBatch; scale: Float64Array }[] = [];
    for (let from = 0; from < batch.length; from += micro) {
      const to = Math.min(batch.length, from + micro);
      parts.push({ rows: sliceTrainBatch(padded, from, to), scale: scales.slice(from, to) });
    }
    return { padded, parts, hasRef, temperature };
  }

  private batchFeeds(rows: PaddedTrainBatch, scale: Float64Array, temperature: number) {
    const dt = this.dtype;
    const dims = [rows.batch, rows.seq];
    const f = (a: Float64Array) => (dt === "float64" ? a : Float32Array.from(a));
    const feeds: Record<string, ort.Tensor> = {
      input_ids: tensor("int64", rows.inputIds, dims),
      attention_mask: tensor("int64", rows.attentionMask, dims),
      position_ids: tensor("int64", rows.positionIds, dims),
      temperature: tensor(dt, [temperature], []),
      completion_mask: tensor(dt, f(rows.completionMask), dims),
      loss_scale: tensor(dt, f(scale), [rows.batch]),
    };
    if (this.options.loss.kind === "grpo") {
      feeds.old_logprobs = tensor(dt, f(rows.oldLogprobs), dims);
      feeds.ref_logprobs = tensor(dt, f(rows.refLogprobs), dims);
      feeds.advantages = tensor(dt, f(rows.advantages), [rows.batch]);
    }
    return feeds;
  }

  private async run(
    session: Session,
    batch: readonly TrainSequence[],
    params: TrainParams,
    options: StepOptions,
    withGrads: boolean,
  ): Promise<StepResult> {
    const { parts, hasRef, temperature } = this.prepare(batch, options);
    const paramFeeds = this.paramFeeds(params);
    // One part: its gradients as they come out of the run. Several: summed in float64 (float32 graphs:
    // rounded to float32 once, at the end), the first part copied rather than added to zeros.
    const sums: (Float32Array | Float64Array)[] = [];
    let loss = 0;
    let masked = 0;
    let clipped = 0;
    let kl = 0;
    let entropy = 0;
    const logprobs: number[][] = [];
    for (const part of parts) {
      const out = await session.run({
        ...paramFeeds,
        ...this.batchFeeds(part.rows, part.scale, temperature),
      });
      const scalar = (name: string) => Number(out[name].data[0]);
      loss += scalar("loss");
      const n = scalar("masked_tokens");
      masked += n;
      entropy += n * scalar("entropy");
      if (this.options.loss.kind === "grpo") {
        clipped += n * scalar("clip_fraction");
        kl += n * scalar("kl");
      }
      const lp = out.logprobs.data as Float32Array | Float64Array;
      const T = part.rows.seq;
      part.rows.lengths.forEach((len, b) => {
        const at = b * T + part.rows.offsets[b];
        logprobs.push(Array.from(lp.subarray(at, at + len)));
      });
      this.trainable.forEach((t, k) => {
        if (!withGrads) return;
        const grad = out[`${t.name}.grad`].data as Float32Array | Float64Array;
        const acc = sums[k];
        if (!acc)
          sums[k] = parts.length === 1 || grad instanceof Float64Array ? grad : Float64Array.from(grad);
        else for (let i = 0; i < acc.length; i++) acc[i] += grad[i];
      });
    }
    const grads = new Map<string, FloatArray>();
    this.trainable.forEach((t, k) => {
      if (withGrads)
        grads.set(
          t.name,
          this.dtype === "float32" && sums[k] instanceof Float64Array ? Float32Array.from(sums[k]) : sums[k],
        );
    });
    const result: StepResult = { loss, logprobs, grads, entropy: entropy / masked, maskedTokens: masked };
    if (this.options.loss.kind === "grpo") {
      result.clipFraction = clipped / masked;
      if (hasRef) result.kl = kl / masked;
    }
    return result;
  }

  /** Forward + backward over `batch` in micro-batches: loss, logprobs, summed gradients, diagnostics. */
  async step(
    batch: readonly TrainSequence[],
    params: TrainParams,
    options: StepOptions = {},
  ): Promise<StepResult> {
    return this.run(this.session, batch, params, options, true);
  }

  /** The loss and diagnostics without gradients (needs `evaluate: true` at creation); grads is empty. */
  async evaluate(
    batch: readonly TrainSequence[],
    params: TrainParams,
    options: StepOptions = {},
  ): Promise<StepResult> {
    if (!this.lossModel) throw new TrainInputError("evaluate() needs a trainer created with evaluate: true");
    this.lossSession ??= await Session.create(this.lossModel, this.sessionOptions);
    return this.run(this.lossSession, batch, params, options, false);
  }

  async release(): Promise<void> {
    await this.session.release();
    await this.lossSession?.release();
  }
}
