// RunSpecs for tests and benchmarks that drive the orchestrator: GRPO with LoRA under one reward
// structure, every field given, and GSM8K-format problems to train on.
import { learner, type orchestrator, scheduler } from "@temper/proto";
import { initModel, presetConfig, tokenizerIds } from "@temper/qwen3";

type StructureKind = NonNullable<NonNullable<scheduler.RunConfig["structure"]>["kind"]>;

export const STRUCTURES = {
  hard: { $case: "hard", value: {} },
  // a random tiny model is never right, so only graded components give GRPO a signal
  continuous: { $case: "continuous", value: { weights: {} } },
} satisfies Record<string, StructureKind>;

export interface SpecBase {
  model: string;
  trainData: string;
  evalData?: string;
  name?: string;
  structure?: StructureKind;
  learningRate?: number;
  microBatchSize?: number;
  failurePolicy?: scheduler.FailurePolicy;
}

/** A complete RunSpec (no eval unless overridden); `overrides` replace top-level fields. */
export function testRunSpec(
  b: SpecBase,
  overrides: Partial<orchestrator.RunSpec> = {},
): orchestrator.RunSpec {
  return {
    runId: "",
    name: b.name ?? "test",
    model: b.model,
    trainData: b.trainData,
    evalData: b.evalData ?? "",
    steps: 3,
    promptsPerStep: 4,
    completionsPerPrompt: 4,
    seed: 5,
    sampling: { temperature: 1, topK: 0, topP: 1, maxNewTokens: 8, stop: [], seed: 0 },
    chat: false,
    enableThinking: false,
    instruction: "",
    reward: {
      runId: "",
      structure: { kind: b.structure ?? STRUCTURES.continuous },
      sources: {},
      advantageScale: scheduler.AdvantageScale.ADVANTAGE_SCALE_UNSPECIFIED,
      failurePolicy: b.failurePolicy ?? scheduler.FailurePolicy.FAILURE_POLICY_SKIP,
      control: 0,
      controlSeed: 0,
      sourceTimeoutMs: 0,
      params: undefined,
    },
    training: {
      model: "",
      lora: { rank: 4, alpha: 8, targetModules: [], useRslora: false },
      optimizer: {
        learningRate: b.learningRate ?? 0.02,
        schedule: learner.LrSchedule.LR_SCHEDULE_CONSTANT,
        warmupSteps: 0,
        totalSteps: 0,
      },
      loss: {
        type: learner.LossType.LOSS_TYPE_GRPO,
        aggregation: learner.LossAggregation.LOSS_AGGREGATION_TOKEN,
      },
      microBatchSize: b.microBatchSize ?? 0,
      miniBatches: 1,
      iterations: 1,
      seed: 0,
    },
    eval: { every: 0, size: 0, baseline: false, maxNewTokens: 0, majK: 0 },
    dropZeroSignalGroups: false,
    samplesPerStep: 0,
    ...overrides,
  };
}

/** GSM8K-format "a+b=?" problems with GSM8K's annotated rationale, one per line. */
export function additionProblems(n: number, from: number): string {
  return Array.from({ length: n }, (_, i) => {
    const a = from + i;
    const b = (i * 7) % 10;
    return JSON.stringify({
      question: `${a}+${b}=?`,
      answer: `${a} + ${b} = <<${a}+${b}=${a + b}>>${a + b}\n#### ${a + b}`,
    });
  }).join("\n");
}

/**
 * A tiny byte-tokenizer policy in `dir`. Weights of std 0.1 give logits far enough from uniform
 * that a LoRA update moves sampling within a few steps.
 */
export function tinyPolicyModel(dir: string): string {
  initModel({
    config: presetConfig("tiny", tokenizerIds("bytes")),
    tokenizer: "bytes",
    out: dir,
    seed: 3,
    dtype: "f32",
    std: 0.1,
  });
  return dir;
}
