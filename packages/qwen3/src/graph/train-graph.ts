// The Qwen3 training graph: forward → aligned token logprobs → GRPO or SFT loss → backward w.r.t. the
// trainable set (LoRA A/B or every weight), all graph inputs so that one session serves every step.
//
// Inputs  input_ids, attention_mask, position_ids [batch, seq] int64; temperature []; completion_mask,
//         (GRPO) old_logprobs, ref_logprobs [batch, seq]; (GRPO) advantages [batch]; loss_scale [batch]
//         (lossScales over the whole batch, sliced); LoRA A/B under PEFT names, or every checkpoint
//         tensor under its Hugging Face name.
// Outputs loss [], logprobs [batch, seq], masked_tokens [], entropy [], (GRPO) clip_fraction [], kl [],
//         and "<input>.grad" for every trainable input.
import type { GraphBuilder, Value } from "@temper/onnx";
import type { Qwen3Config } from "../model/config.ts";
import { grpoLoss, type LossAggregation, maskedEntropy, sftLoss } from "../train/loss.ts";
import { forwardInputs, qwen3Forward, tokenLogprobs, type WeightSource } from "./forward-graph.ts";
import type { LoraGraphInputs } from "./lora-graph.ts";

export type TrainLossKind = "grpo" | "sft";
export const TRAIN_LOSS_KINDS: readonly TrainLossKind[] = ["grpo", "sft"];

export interface TrainLossConfig {
  kind: TrainLossKind;
  /** GRPO clip margins (default 0.2 each). */
  epsLow?: number;
  epsHigh?: number;
  /** GRPO k3 KL weight (default 0). */
  beta?: number;
  /** Default "token". */
  aggregation?: LossAggregation;
}

/** Every checkpoint tensor becomes a graph input of the graph's dtype (full-parameter training). */
export function inputWeights(g: GraphBuilder): { source: WeightSource; inputs: Map<string, Value> } {
  const inputs = new Map<string, Value>();
  const source: WeightSource = (name, shape) => {
    let v = inputs.get(name);
    if (!v) {
      v = g.input(name, g.dtype, shape);
      inputs.set(name, v);
    }
    return v;
  };
  return { source, inputs };
}

export interface TrainGraphOptions {
  loss: TrainLossConfig;
  /** LoRA pairs (declareLoraInputs); their A/B are differentiated. */
  lora?: LoraGraphInputs;
  /** Differentiate these instead (full-parameter: inputWeights().inputs). */
  trainable?: Value[];
}

/**
 * Declares the loss graph on `g` and returns the loss and the trainable values; the caller appends
 * gradients(g, loss, trainable) (building the model first gives the loss-only graph).
 */
export function declareTrainGraph(
  g: GraphBuilder,
  config: Qwen3Config,
  weights: WeightSource,
  options: TrainGraphOptions,
): { loss: Value; trainable: Value[] } {
  const inputs = forwardInputs(g, config);
  const temperature = g.floatInput("temperature", []);
  const per = (name: string) => g.floatInput(name, ["batch", "seq"]);
  const completionMask = per("completion_mask");
  const lossScale = g.floatInput("loss_scale", ["batch"]);
  const fwd = qwen3Forward(g, config, weights, inputs, options.lora?.get);
  const lp = tokenLogprobs(g, fwd.logits, inputs.inputIds, inputs.attentionMask, temperature);
  const logprobs = g.output(lp.logprobs, "logprobs");
  // row t of logSoftmax is the (temperature-scaled) distribution of token t+1
  g.output(maskedEntropy(g, lp.logSoftmax, completionMask).entropy, "entropy");

  let loss: Value;
  if (options.loss.kind === "grpo") {
    const out = grpoLoss(
      g,
      {
        logprobs,
        oldLogprobs: per("old_logprobs"),
        refLogprobs: per("ref_logprobs"),
        completionMask,
        advantages: g.floatInput("advantages", ["batch"]),
        lossScale,
      },
      options.loss,
    );
    loss = out.loss;
    g.output(out.clipFraction, "clip_fraction");
    g.output(out.kl!, "kl");
    g.output(out.maskedTokens, "masked_tokens");
  } else {
    const out = sftLoss(g, { logprobs, completionMask, lossScale });
    loss = out.loss;
    g.output(out.maskedTokens, "masked_tokens");
  }
  g.output(loss, "loss");
  const trainable = options.trainable ?? options.lora?.trainable() ?? [];
  if (trainable.length === 0)
    throw new Error("declareTrainGraph: nothing to train (no LoRA pairs or weights)");
  return { loss, trainable };
}
