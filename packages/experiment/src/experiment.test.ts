import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { DEFAULT_INSTRUCTION } from "@temper/gsm8k";
import { learner, type orchestrator, reward, scheduler } from "@temper/proto";
import { type Fixture, gsm8kLines, makeFixture } from "./fixture.ts";
import {
  ExperimentError,
  formatExperimentError,
  type LoadOptions,
  loadExperiment,
  resolveExperiment,
  toYaml,
} from "./index.ts";

// Line numbers below refer to this text.
const VALID = `name: hard
model: model
data:
  train: data/train.jsonl
  eval: data/eval.jsonl
steps: 20
prompts_per_step: 4
completions_per_prompt: 8
seed: 7
chat: false
sampling:
  temperature: 0.9
  max_new_tokens: 64
reward:
  structure: hybrid
  hybrid: { alpha: 0.7 }
lora:
  rank: 8
  target_modules: [q, v_proj]
optimizer:
  learning_rate: 2.0e-4
  schedule: cosine
  warmup_steps: 2
loss:
  beta: 0.01
  aggregation: sequence
mini_batches: 2
eval:
  every: 5
  size: 3
`;

const MINIMAL = `name: plain
model: model
data: { train: data/train.jsonl, eval: data/eval.jsonl }
steps: 3
reward: { structure: hard }
optimizer: { learning_rate: 1.0e-4 }
`;

let fx: Fixture;
before(() => {
  fx = makeFixture(10);
});
after(() => fx.cleanup());

const resolveText = (text: string, opts: LoadOptions = {}) =>
  resolveExperiment(text, "exp.yaml", fx.dir, opts);

/** The one-line message the text fails with. */
function errorOf(text: string, opts: LoadOptions = {}): string {
  try {
    resolveText(text, opts);
  } catch (err) {
    assert.ok(err instanceof ExperimentError, `not an ExperimentError: ${err}`);
    assert.equal(formatExperimentError(err), err.message);
    assert.ok(!err.message.includes("\n"), "one line");
    return err.message;
  }
  assert.fail("resolved without an error");
}

/** VALID with line `n` (1-based) replaced by `lines` (none: removed). */
function editLine(n: number, ...lines: string[]): string {
  const all = VALID.split("\n");
  all.splice(n - 1, 1, ...lines);
  return all.join("\n");
}

describe("a valid experiment", () => {
  test("resolves to the expected RunSpec", () => {
    const { spec } = resolveText(VALID);
    assert.equal(spec.runId, "");
    assert.equal(spec.name, "hard");
    assert.equal(spec.model, join(fx.dir, "model"));
    assert.equal(spec.trainData, join(fx.dir, "data/train.jsonl"));
    assert.equal(spec.evalData, join(fx.dir, "data/eval.jsonl"));
    assert.equal(spec.steps, 20);
    assert.equal(spec.promptsPerStep, 4);
    assert.equal(spec.completionsPerPrompt, 8);
    assert.equal(spec.seed, 7);
    // Structure oneof.
    assert.deepEqual(spec.reward?.structure?.kind, {
      $case: "hybrid",
      value: {
        alpha: 0.7,
        continuous: {
          weights: { correctness_soft: 0.4, reasoning: 0.25, consistency: 0.2, perplexity: 0.15 },
        },
      },
    });
    assert.equal(spec.reward?.runId, "");
    // Learner config.
    assert.deepEqual(spec.training, {
      model: join(fx.dir, "model"),
      lora: { rank: 8, alpha: 16, targetModules: ["q_proj", "v_proj"], useRslora: false },
      optimizer: {
        learningRate: 2e-4,
        beta1: 0.9,
        beta2: 0.999,
        epsilon: 1e-8,
        weightDecay: 0,
        maxGradNorm: 1,
        schedule: learner.LrSchedule.LR_SCHEDULE_COSINE,
        warmupSteps: 2,
        totalSteps: 40, // steps × mini_batches × iterations
        minLrRatio: 0,
      },
      loss: {
        type: learner.LossType.LOSS_TYPE_GRPO,
        epsLow: 0.2,
        epsHigh: 0.2,
        beta: 0.01,
        aggregation: learner.LossAggregation.LOSS_AGGREGATION_SEQUENCE,
      },
      microBatchSize: 0,
      miniBatches: 2,
      iterations: 1,
      temperature: 0.9,
      seed: 7,
    });
    // Sampling carries the seed; eval's max_new_tokens follows sampling's.
    assert.equal(spec.sampling?.seed, 7);
    assert.equal(spec.sampling?.temperature, 0.9);
    assert.deepEqual(spec.eval, { every: 5, size: 3, baseline: true, maxNewTokens: 64, majK: 0 });
  });

  test("a minimal file gets every default, in the RunSpec and in resolved", () => {
    const { spec, resolved } = resolveText(MINIMAL);
    const model = join(fx.dir, "model");
    const expected: orchestrator.RunSpec = {
      runId: "",
      name: "plain",
      model,
      trainData: join(fx.dir, "data/train.jsonl"),
      evalData: join(fx.dir, "data/eval.jsonl"),
      steps: 3,
      promptsPerStep: 8,
      completionsPerPrompt: 8,
      seed: 0,
      sampling: { temperature: 1, topK: 0, topP: 1, maxNewTokens: 256, stop: [], seed: 0 },
      chat: false,
      enableThinking: false,
      instruction: DEFAULT_INSTRUCTION,
      reward: {
        runId: "",
        structure: { kind: { $case: "hard", value: {} } },
        sources: {},
        advantageScale: scheduler.AdvantageScale.ADVANTAGE_SCALE_GROUP,
        failurePolicy: scheduler.FailurePolicy.FAILURE_POLICY_SKIP,
        control: scheduler.RewardControl.REWARD_CONTROL_NONE,
        controlSeed: 0,
        sourceTimeoutMs: 5000,
        params: {
          perplexityTau: 1,
          minTokens: 10,
          maxTokens: 400,
          perplexityMode: reward.PerplexityMode.PERPLEXITY_MODE_UNSPECIFIED,
        },
      },
      training: {
        model,
        lora: {
          rank: 16,
          alpha: 32,
          targetModules: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
          useRslora: false,
        },
        optimizer: {
          learningRate: 1e-4,
          beta1: 0.9,
          beta2: 0.999,
          epsilon: 1e-8,
          weightDecay: 0,
          maxGradNorm: 1,
          schedule: learner.LrSchedule.LR_SCHEDULE_CONSTANT,
          warmupSteps: 0,
          totalSteps: 3,
          minLrRatio: 0,
        },
        loss: {
          type: learner.LossType.LOSS_TYPE_GRPO,
          epsLow: 0.2,
          epsHigh: 0.2,
          beta: 0,
          aggregation: learner.LossAggregation.LOSS_AGGREGATION_TOKEN,
        },
        microBatchSize: 0,
        miniBatches: 1,
        iterations: 1,
        temperature: 1,
        seed: 0,
      },
      eval: { every: 0, size: 200, baseline: true, maxNewTokens: 256, majK: 0 },
      dropZeroSignalGroups: false,
      samplesPerStep: 4,
    };
    assert.deepEqual(spec, expected);
    assert.deepEqual(resolved, {
      name: "plain",
      model,
      data: { train: join(fx.dir, "data/train.jsonl"), eval: join(fx.dir, "data/eval.jsonl") },
      steps: 3,
      prompts_per_step: 8,
      completions_per_prompt: 8,
      seed: 0,
      instruction: DEFAULT_INSTRUCTION,
      chat: false,
      enable_thinking: false,
      sampling: { temperature: 1, top_k: 0, top_p: 1, max_new_tokens: 256, stop: [] },
      reward: {
        structure: "hard",
        advantage_scale: "group",
        failure_policy: "skip",
        control: "none",
        source_timeout_ms: 5000,
        sources: {},
        params: { perplexity_tau: 1, min_tokens: 10, max_tokens: 400, perplexity_mode: "service" },
      },
      lora: {
        rank: 16,
        alpha: 32,
        target_modules: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
        use_rslora: false,
      },
      optimizer: {
        learning_rate: 1e-4,
        schedule: "constant",
        warmup_steps: 0,
        total_steps: 3,
        min_lr_ratio: 0,
        weight_decay: 0,
        beta1: 0.9,
        beta2: 0.999,
        epsilon: 1e-8,
        max_grad_norm: 1,
      },
      loss: { type: "grpo", eps_low: 0.2, eps_high: 0.2, beta: 0, aggregation: "token" },
      micro_batch_size: 0,
      mini_batches: 1,
      iterations: 1,
      drop_zero_signal_groups: false,
      samples_per_step: 4,
      eval: { every: 0, size: 200, baseline: true, max_new_tokens: 256, maj_k: 0 },
    });
  });

  test("adaptive: time schedule defaults, total_steps = steps; progress schedule", () => {
    const time = resolveText(MINIMAL.replace("{ structure: hard }", "{ structure: adaptive }"));
    assert.deepEqual(time.resolved.reward.adaptive, {
      time: {
        shape: "linear",
        alpha_start: 0.2,
        alpha_end: 0.9,
        total_steps: 3,
        milestones: [],
        sigmoid_k: 10,
      },
      fallback: true,
    });
    assert.deepEqual(time.spec.reward?.structure?.kind, {
      $case: "adaptive",
      value: {
        schedule: {
          $case: "time",
          value: {
            shape: scheduler.ScheduleShape.SCHEDULE_SHAPE_LINEAR,
            alphaStart: 0.2,
            alphaEnd: 0.9,
            totalSteps: 3,
            milestones: [],
            sigmoidK: 10,
          },
        },
        fallback: true,
        continuous: {
          weights: { correctness_soft: 0.4, reasoning: 0.25, consistency: 0.2, perplexity: 0.15 },
        },
      },
    });
    const progress = resolveText(
      MINIMAL.replace(
        "{ structure: hard }",
        "{ structure: adaptive, adaptive: { progress: { target_accuracy: 0.5 }, fallback: false }, weights: { correctness_soft: 1 } }",
      ),
    );
    assert.deepEqual(progress.spec.reward?.structure?.kind, {
      $case: "adaptive",
      value: {
        schedule: {
          $case: "progress",
          value: { alphaMin: 0.2, alphaMax: 0.9, targetAccuracy: 0.5, emaDecay: 0.9 },
        },
        fallback: false,
        continuous: { weights: { correctness_soft: 1 } },
      },
    });
    assert.deepEqual(Object.keys(progress.resolved.reward), [
      "structure",
      "weights",
      "adaptive",
      "advantage_scale",
      "failure_policy",
      "control",
      "source_timeout_ms",
      "sources",
      "params",
    ]);
  });

  test("sections of structures not in use are checked but left out of resolved", () => {
    const { resolved } = resolveText(
      MINIMAL.replace(
        "{ structure: hard }",
        "{ structure: continuous, hybrid: { alpha: 0.3 }, adaptive: {} }",
      ),
    );
    assert.equal(resolved.reward.hybrid, undefined);
    assert.equal(resolved.reward.adaptive, undefined);
    assert.ok(resolved.reward.weights);
  });

  test("toYaml(resolved) loads again as the same experiment", () => {
    const { spec, resolved } = resolveText(VALID);
    const text = toYaml(resolved);
    const again = resolveExperiment(text, "spec.yaml", "/nonexistent");
    assert.deepEqual(again.resolved, resolved);
    assert.deepEqual(again.spec, spec);
  });

  test("loadExperiment resolves paths against the file's directory", () => {
    const path = fx.write(
      "exps/e.yaml",
      MINIMAL.replaceAll("data/", "../data/").replace("model: model", "model: ../model"),
    );
    const { spec } = loadExperiment(path);
    assert.equal(spec.model, join(fx.dir, "model"));
    assert.equal(spec.trainData, join(fx.dir, "data/train.jsonl"));
  });
});

describe("a bad experiment gives one `file:line: field: problem` line", () => {
  test("missing fields (the parent mapping's line)", () => {
    assert.equal(errorOf(editLine(6)), "exp.yaml:1: steps: is required");
    assert.equal(errorOf(editLine(5)), "exp.yaml:3: data.eval: is required");
    assert.equal(
      errorOf(editLine(21, "  schedule: constant").replace("  schedule: cosine\n", "")),
      "exp.yaml:20: optimizer.learning_rate: is required",
    );
    assert.equal(
      errorOf(editLine(15)),
      "exp.yaml:14: reward.structure: is required (one of hard | continuous | hybrid | adaptive)",
    );
    assert.equal(errorOf(""), "exp.yaml:1: (top level): must be a mapping of experiment settings, got null");
  });

  test("wrong types", () => {
    assert.equal(errorOf(editLine(6, "steps: many")), 'exp.yaml:6: steps: must be an integer, got "many"');
    assert.equal(errorOf(editLine(6, "steps: 2.5")), "exp.yaml:6: steps: must be an integer, got 2.5");
    assert.equal(errorOf(editLine(10, "chat: yes")), 'exp.yaml:10: chat: must be true or false, got "yes"');
    assert.equal(
      errorOf(VALID.replace(/data:\n.*\n.*\n/, "data: data/train.jsonl\n")),
      'exp.yaml:3: data: must be a mapping, got "data/train.jsonl"',
    );
    assert.equal(
      errorOf(editLine(19, "  target_modules: q_proj")),
      'exp.yaml:19: lora.target_modules: must be a list, got "q_proj"',
    );
    assert.equal(
      errorOf(editLine(12, "  temperature: .inf")),
      "exp.yaml:12: sampling.temperature: must be a number, got Infinity",
    );
  });

  test("unknown keys, top level and nested", () => {
    assert.match(
      errorOf(editLine(7, "prompts_per_step: 4", "stepz: 3")),
      /^exp\.yaml:8: stepz: unknown key \(expected one of name, model, data, steps, /,
    );
    assert.equal(
      errorOf(editLine(18, "  ranks: 8")),
      "exp.yaml:18: lora.ranks: unknown key (expected one of rank, alpha, target_modules, use_rslora)",
    );
    assert.match(
      errorOf(editLine(16, "  hybrid: { alpha: 0.7, beta: 1 }")),
      /^exp\.yaml:16: reward\.hybrid\.beta: unknown key \(expected one of alpha\)$/,
    );
    assert.equal(
      errorOf(editLine(16, "  sources: { judge: 'localhost:1' }")),
      "exp.yaml:16: reward.sources.judge: unknown key (expected one of correctness, reasoning, consistency, perplexity)",
    );
  });

  test("an unknown structure", () => {
    assert.equal(
      errorOf(editLine(15, "  structure: harder")),
      'exp.yaml:15: reward.structure: must be one of hard | continuous | hybrid | adaptive, got "harder"',
    );
  });

  test("out of range values", () => {
    assert.equal(errorOf(editLine(6, "steps: -5")), "exp.yaml:6: steps: must be ≥ 1, got -5");
    assert.equal(
      errorOf(editLine(8, "completions_per_prompt: 1")),
      "exp.yaml:8: completions_per_prompt: must be ≥ 2, got 1",
    );
    assert.equal(
      errorOf(editLine(21, "  learning_rate: 0")),
      "exp.yaml:21: optimizer.learning_rate: must be > 0, got 0",
    );
    assert.equal(
      errorOf(editLine(12, "  temperature: 0")),
      "exp.yaml:12: sampling.temperature: must be > 0, got 0",
    );
    assert.equal(errorOf(editLine(30, "  size: 0")), "exp.yaml:30: eval.size: must be ≥ 1, got 0");
    assert.equal(
      errorOf(editLine(16, "  hybrid: { alpha: 1.5 }")),
      "exp.yaml:16: reward.hybrid.alpha: must be ≤ 1, got 1.5",
    );
  });

  test("rules across fields", () => {
    assert.equal(
      errorOf(editLine(10, "enable_thinking: true")),
      "exp.yaml:10: enable_thinking: needs chat: true (it switches the chat template's thinking mode)",
    );
    assert.equal(
      errorOf(editLine(19, "  target_modules: [q, lm_head]")),
      'exp.yaml:19: lora.target_modules[1]: unknown module "lm_head" (expected one of q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj)',
    );
    assert.equal(
      errorOf(editLine(23, "  warmup_steps: 50")),
      "exp.yaml:23: optimizer.warmup_steps: must be ≤ optimizer.total_steps (40 = steps × mini_batches × iterations), got 50",
    );
    assert.equal(
      errorOf(editLine(16, "  weights: { correctness_sof: 1 }")),
      "exp.yaml:16: reward.weights.correctness_sof: unknown component (expected correctness_soft, reasoning, consistency, perplexity, ... or source.component)",
    );
    assert.equal(
      errorOf(editLine(15, "  structure: adaptive", "  adaptive: { time: {}, progress: {} }")),
      "exp.yaml:16: reward.adaptive: takes one schedule: time or progress, not both",
    );
    assert.equal(
      errorOf(
        editLine(
          15,
          "  structure: adaptive",
          "  adaptive:",
          "    time: { shape: step, milestones: [5, 25] }",
        ),
      ),
      "exp.yaml:17: reward.adaptive.time.milestones[1]: is never reached: steps are numbered 0 to 19, got 25",
    );
  });

  test("YAML syntax errors and duplicate keys", () => {
    assert.match(errorOf(editLine(6, "steps: [20")), /^exp\.yaml:\d+: \(syntax\): /);
    assert.match(errorOf(editLine(7, "steps: 4")), /^exp\.yaml:7: \(syntax\): Map keys must be unique/);
  });

  test("a model directory that does not exist, or has no config.json", () => {
    assert.equal(
      errorOf(editLine(2, "model: nope")),
      `exp.yaml:2: model: directory "nope" does not exist (${join(fx.dir, "nope")})`,
    );
    assert.equal(
      errorOf(editLine(2, "model: data")),
      'exp.yaml:2: model: "data" has no config.json (not a Hugging Face model directory)',
    );
    // Skipped with the file checks.
    assert.equal(
      resolveText(editLine(2, "model: nope"), { checkFiles: false }).spec.model,
      join(fx.dir, "nope"),
    );
  });

  test("a data file with a bad line names the data file's line too", () => {
    fx.write("data/bad.jsonl", `${gsm8kLines(2)}{"question": "x", "answer": "y\n${gsm8kLines(1)}`);
    assert.equal(
      errorOf(editLine(4, "  train: data/bad.jsonl")),
      "exp.yaml:4: data.train: data/bad.jsonl:3: not valid JSON",
    );
    fx.write("data/noanswer.jsonl", `${gsm8kLines(1)}\n{"question": "x", "answer": "no final answer"}\n`);
    assert.equal(
      errorOf(editLine(5, "  eval: data/noanswer.jsonl")),
      'exp.yaml:5: data.eval: data/noanswer.jsonl:3: "answer" has no numeric final answer ("#### N")',
    );
    assert.equal(
      errorOf(editLine(5, "  eval: data/missing.jsonl")),
      `exp.yaml:5: data.eval: data/missing.jsonl: file not found (${join(fx.dir, "data/missing.jsonl")})`,
    );
  });

  test("a dataset smaller than one step, an empty eval set", () => {
    assert.equal(
      errorOf(editLine(7, "prompts_per_step: 11")),
      "exp.yaml:4: data.train: data/train.jsonl holds 10 problems, fewer than one step's prompts_per_step (11)",
    );
    fx.write("data/empty.jsonl", "\n");
    assert.equal(
      errorOf(editLine(5, "  eval: data/empty.jsonl")),
      "exp.yaml:5: data.eval: data/empty.jsonl holds no problems",
    );
    // Skipped with the data checks alone.
    assert.equal(
      resolveText(editLine(7, "prompts_per_step: 11"), { checkData: false }).spec.promptsPerStep,
      11,
    );
  });

  test("a file that cannot be read", () => {
    assert.throws(
      () => loadExperiment(join(fx.dir, "absent.yaml")),
      (err: unknown) => {
        assert.ok(err instanceof ExperimentError);
        assert.equal(err.message, `${join(fx.dir, "absent.yaml")}:1: (file): cannot read (ENOENT)`);
        return true;
      },
    );
  });
});
