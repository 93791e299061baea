import assert from "node:assert/strict";
import { dirname, join, resolve } from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { learner, scheduler } from "@temper/proto";
import { type Fixture, makeFixture } from "./fixture.ts";
import {
  deepMerge,
  ExperimentError,
  type LoadOptions,
  loadComparison,
  loadExperiment,
  resolveComparison,
  resolveExperiment,
  toYaml,
} from "./index.ts";

// Line numbers below refer to this text.
const COMPARISON = `base:
  model: model
  data: { train: data/train.jsonl, eval: data/eval.jsonl }
  steps: 10
  prompts_per_step: 4
  optimizer: { learning_rate: 1.0e-4 }
  reward:
    hybrid: { alpha: 0.6 }
variants:
  - name: hard
    reward: { structure: hard }
  - name: hybrid
    reward: { structure: hybrid }
  - name: hybrid-low
    reward: { structure: hybrid, hybrid: { alpha: 0.2 } }
    steps: 5
seeds: [1, 2]
`;

let fx: Fixture;
before(() => {
  fx = makeFixture(10);
});
after(() => fx.cleanup());

const compare = (text: string, opts: LoadOptions = {}) => resolveComparison(text, "cmp.yaml", fx.dir, opts);

function errorOf(text: string): string {
  try {
    compare(text);
  } catch (err) {
    assert.ok(err instanceof ExperimentError, `not an ExperimentError: ${err}`);
    assert.ok(!err.message.includes("\n"));
    return err.message;
  }
  assert.fail("resolved without an error");
}

describe("comparison files", () => {
  test("variants × seeds, seed-major, each variant deep-merged over the base", () => {
    const { runs } = compare(COMPARISON);
    assert.deepEqual(
      runs.map((r) => [r.spec.name, r.spec.seed, r.spec.sampling?.seed, r.spec.training?.seed]),
      [
        ["hard", 1, 1, 1],
        ["hybrid", 1, 1, 1],
        ["hybrid-low", 1, 1, 1],
        ["hard", 2, 2, 2],
        ["hybrid", 2, 2, 2],
        ["hybrid-low", 2, 2, 2],
      ],
    );
    assert.deepEqual(
      runs.slice(0, 3).map((r) => r.spec.reward?.structure?.kind?.$case),
      ["hard", "hybrid", "hybrid"],
    );
    const alpha = (i: number) => {
      const k = runs[i].spec.reward?.structure?.kind;
      return k?.$case === "hybrid" ? k.value.alpha : undefined;
    };
    assert.equal(alpha(1), 0.6); // the base's hybrid section
    assert.equal(alpha(2), 0.2); // the variant's, merged over it
    assert.deepEqual(
      runs.slice(0, 3).map((r) => r.spec.steps),
      [10, 10, 5],
    );
    // Everything else comes from the base.
    for (const r of runs) {
      assert.equal(r.spec.model, join(fx.dir, "model"));
      assert.equal(r.spec.promptsPerStep, 4);
      assert.equal(r.resolved.optimizer.learning_rate, 1e-4);
    }
    // Each run's resolved form is a complete experiment on its own.
    const again = resolveExperiment(toYaml(runs[2].resolved), "spec.yaml", "/");
    assert.deepEqual(again.spec, runs[2].spec);
  });

  test("without seeds each variant runs once; null removes a base key", () => {
    const text = `base:
  model: model
  data: { train: data/train.jsonl, eval: data/eval.jsonl }
  steps: 10
  seed: 5
  optimizer: { learning_rate: 1.0e-4, schedule: cosine, warmup_steps: 3 }
  reward: { structure: adaptive, adaptive: { time: { shape: cosine } } }
variants:
  - name: time
  - name: progress
    reward: { adaptive: { time: null, progress: {} } }
`;
    const { runs } = compare(text);
    assert.deepEqual(
      runs.map((r) => [r.spec.name, r.spec.seed]),
      [
        ["time", 5],
        ["progress", 5],
      ],
    );
    const schedule = (i: number) => {
      const k = runs[i].spec.reward?.structure?.kind;
      return k?.$case === "adaptive" ? k.value.schedule : undefined;
    };
    const first = schedule(0);
    assert.ok(first?.$case === "time");
    assert.equal(first.value.shape, scheduler.ScheduleShape.SCHEDULE_SHAPE_COSINE);
    assert.equal(schedule(1)?.$case, "progress");
  });

  test("a plain experiment file is a comparison of one", () => {
    const text = `name: solo
model: model
data: { train: data/train.jsonl, eval: data/eval.jsonl }
steps: 2
reward: { structure: continuous }
optimizer: { learning_rate: 1.0e-4 }
`;
    const { runs } = compare(text);
    assert.equal(runs.length, 1);
    assert.equal(runs[0].spec.name, "solo");
    const path = fx.write("solo.yaml", text);
    assert.deepEqual(loadComparison(path).runs[0].spec, loadExperiment(path).spec);
  });

  test("deepMerge: mappings merge, lists and scalars replace, null removes", () => {
    assert.deepEqual(deepMerge({ a: { b: 1, c: [1, 2] }, d: 1 }, { a: { c: [3] }, d: null, e: 2 }), {
      a: { b: 1, c: [3] },
      e: 2,
    });
  });

  test("errors in a variant name the variant's line", () => {
    assert.equal(
      errorOf(COMPARISON.replace("    steps: 5", "    steps: -1")),
      "cmp.yaml:16: variants[2].steps: must be ≥ 1, got -1",
    );
    assert.equal(
      errorOf(COMPARISON.replace("    reward: { structure: hybrid }", "    reward: { structure: hybrd }")),
      'cmp.yaml:13: variants[1].reward.structure: must be one of hard | continuous | hybrid | adaptive, got "hybrd"',
    );
    assert.match(
      errorOf(COMPARISON.replace("    steps: 5", "    stepz: 5")),
      /^cmp\.yaml:16: variants\[2\]\.stepz: unknown key \(expected one of /,
    );
    // A missing field of the merged experiment: the line of the mapping that lacks it.
    assert.equal(
      errorOf(COMPARISON.replace("  optimizer: { learning_rate: 1.0e-4 }\n", "")),
      "cmp.yaml:9: variants[0].optimizer: is required",
    );
    // A bad value in the base names the base's line.
    assert.equal(
      errorOf(COMPARISON.replace("  steps: 10", "  steps: 0")),
      "cmp.yaml:4: base.steps: must be ≥ 1, got 0",
    );
    assert.equal(
      errorOf(COMPARISON.replace("    hybrid: { alpha: 0.6 }", "    hybrid: { alpha: 2 }")),
      "cmp.yaml:8: base.reward.hybrid.alpha: must be ≤ 1, got 2",
    );
  });

  test("the comparison's own shape is checked", () => {
    assert.equal(
      errorOf(COMPARISON.replace("  - name: hybrid\n", "  - nam: hybrid\n")),
      "cmp.yaml:12: variants[1].name: is required (each variant has a name)",
    );
    assert.equal(
      errorOf(COMPARISON.replace("  - name: hybrid-low", "  - name: hard")),
      "cmp.yaml:14: variants[2].name: duplicate name (also variants[0])",
    );
    assert.equal(
      errorOf(COMPARISON.replace("seeds: [1, 2]", "seeds: [1, 1]")),
      "cmp.yaml:17: seeds[1]: duplicate seed 1",
    );
    assert.equal(
      errorOf(COMPARISON.replace("seeds: [1, 2]", "seeds: [1, -2]")),
      "cmp.yaml:17: seeds[1]: must be an integer ≥ 0, got -2",
    );
    assert.equal(
      errorOf(COMPARISON.replace("  steps: 10", "  seed: 3")),
      "cmp.yaml:4: base.seed: conflicts with seeds (remove one of them)",
    );
    assert.equal(
      errorOf(`${COMPARISON}variant: {}\n`),
      "cmp.yaml:18: variant: unknown key (a comparison file has base, variants and seeds)",
    );
    assert.equal(
      errorOf(COMPARISON.replace(/variants:[\s\S]*seeds/, "variants: []\nseeds")),
      "cmp.yaml:9: variants: must be a non-empty list of experiments, got a list",
    );
  });
});

describe("the shipped examples", () => {
  const here = dirname(fileURLToPath(import.meta.url));
  const examples = resolve(here, "../../../examples");
  const repo = resolve(here, "../../..");

  test("default.yaml: the four structures, one seed", () => {
    const { runs } = loadComparison(join(examples, "default.yaml"), { checkFiles: false });
    assert.deepEqual(
      runs.map((r) => [r.spec.name, r.spec.reward?.structure?.kind?.$case, r.spec.seed]),
      [
        ["hard", "hard", 1],
        ["continuous", "continuous", 1],
        ["hybrid", "hybrid", 1],
        ["adaptive", "adaptive", 1],
      ],
    );
    for (const r of runs) {
      assert.equal(r.spec.model, join(repo, ".temper/default/model-warm"));
      assert.equal(r.spec.trainData, join(repo, ".temper/default/data/train.jsonl"));
      assert.equal(r.spec.evalData, join(repo, ".temper/default/data/eval.jsonl"));
      assert.equal(r.spec.steps, 60);
      assert.equal(r.spec.promptsPerStep, 16);
      assert.equal(r.spec.sampling?.maxNewTokens, 24);
      assert.equal(r.spec.training?.lora?.targetModules.length, 7);
      assert.equal(r.spec.dropZeroSignalGroups, true);
      assert.equal(r.spec.training?.optimizer?.schedule, learner.LrSchedule.LR_SCHEDULE_COSINE);
      assert.equal(r.spec.training?.optimizer?.minLrRatio, 0.1);
      assert.equal(r.spec.training?.optimizer?.totalSteps, 60);
      assert.deepEqual(r.spec.eval, { every: 30, size: 2000, baseline: true, maxNewTokens: 24, majK: 0 });
    }
    const adaptive = runs[3].spec.reward?.structure?.kind;
    assert.ok(adaptive?.$case === "adaptive" && adaptive.value.schedule?.$case === "time");
    assert.equal(adaptive.value.schedule.value.totalSteps, 60);
  });

  test("default-long.yaml: default.yaml with twice the steps, seeds 1 and 2", () => {
    const short = loadComparison(join(examples, "default.yaml"), { checkFiles: false }).runs;
    const { runs } = loadComparison(join(examples, "default-long.yaml"), { checkFiles: false });
    assert.deepEqual(
      runs.map((r) => [r.spec.name, r.spec.seed]),
      [1, 2].flatMap((seed) => ["hard", "continuous", "hybrid", "adaptive"].map((n) => [n, seed])),
    );
    for (const r of runs) {
      const same = short.find((s) => s.spec.name === r.spec.name)!.spec;
      assert.equal(r.spec.model, same.model);
      assert.equal(r.spec.trainData, same.trainData);
      assert.equal(r.spec.evalData, same.evalData);
      if (r.spec.name !== "adaptive") assert.deepEqual(r.spec.reward?.structure, same.reward?.structure);
      assert.deepEqual(r.spec.sampling, { ...same.sampling, seed: r.spec.seed });
      assert.deepEqual(r.spec.training?.lora, same.training?.lora);
      assert.equal(r.spec.steps, 120);
      assert.equal(r.spec.dropZeroSignalGroups, same.dropZeroSignalGroups);
      assert.deepEqual(r.spec.training?.optimizer, { ...same.training?.optimizer, totalSteps: 120 });
      assert.deepEqual(r.spec.eval, same.eval);
    }
    const adaptive = runs[3].spec.reward?.structure?.kind;
    assert.ok(adaptive?.$case === "adaptive" && adaptive.value.schedule?.$case === "time");
    assert.equal(adaptive.value.schedule.value.totalSteps, 120);
  });

  test("default-seeds.yaml: default.yaml over seeds 1, 2, 3, with hard's permuted control", () => {
    const short = loadComparison(join(examples, "default.yaml"), { checkFiles: false }).runs;
    const { runs } = loadComparison(join(examples, "default-seeds.yaml"), { checkFiles: false });
    assert.deepEqual(
      runs.map((r) => [r.spec.name, r.spec.seed]),
      [1, 2, 3].flatMap((seed) =>
        ["hard", "continuous", "hybrid", "adaptive", "hard-permuted"].map((n) => [n, seed]),
      ),
    );
    for (const r of runs) {
      const same = short.find(
        (s) => s.spec.name === (r.spec.name === "hard-permuted" ? "hard" : r.spec.name),
      )!.spec;
      const { control, controlSeed, ...reward } = r.spec.reward!;
      const { control: c0, controlSeed: s0, ...sameReward } = same.reward!;
      assert.deepEqual(reward, sameReward, r.spec.name);
      assert.equal(c0, scheduler.RewardControl.REWARD_CONTROL_NONE);
      assert.equal(s0, 0);
      if (r.spec.name === "hard-permuted") {
        assert.equal(control, scheduler.RewardControl.REWARD_CONTROL_PERMUTE);
        assert.equal(controlSeed, r.spec.seed, "the shuffle reproduces with the run's seed");
      } else assert.equal(control, scheduler.RewardControl.REWARD_CONTROL_NONE);
      assert.equal(r.spec.steps, same.steps);
      assert.deepEqual(r.spec.sampling, { ...same.sampling, seed: r.spec.seed });
      assert.deepEqual({ ...r.spec.training, seed: 0 }, { ...same.training, seed: 0 });
      assert.deepEqual(r.spec.eval, same.eval);
    }
  });

  test("qwen3-0.6b-gsm8k.yaml: the CPU-sized example parses (Hub model and data, 4 × 4 × 256 a step)", () => {
    const { spec } = loadExperiment(join(examples, "qwen3-0.6b-gsm8k.yaml"), { checkFiles: false });
    assert.match(spec.model, /^Qwen\/Qwen3-0\.6B$|models--Qwen--Qwen3-0\.6B\/snapshots\/[0-9a-f]{40}$/);
    assert.equal(spec.promptsPerStep * spec.completionsPerPrompt, 16);
    assert.equal(spec.sampling?.maxNewTokens, 256);
    assert.equal(spec.steps, 60);
    assert.equal(spec.training?.microBatchSize, 1);
  });

  test("qwen3-4b-gsm8k.yaml: parses; the model by Hub id, GSM8K by hf:// URL", () => {
    const { spec } = loadExperiment(join(examples, "qwen3-4b-gsm8k.yaml"), { checkFiles: false });
    // as written, or the converted file where this machine's Hub cache holds it
    assert.match(
      spec.trainData,
      /^hf:\/\/datasets\/openai\/gsm8k\/main\/train-00000-of-00001\.parquet$|datasets--openai--gsm8k\/[0-9a-f]{40}\/main\/train-00000-of-00001\.jsonl$/,
    );
    assert.match(spec.model, /^Qwen\/Qwen3-4B$|models--Qwen--Qwen3-4B\/snapshots\/[0-9a-f]{40}$/);
    assert.equal(spec.chat, true);
    assert.equal(spec.enableThinking, false);
    assert.equal(spec.promptsPerStep * spec.completionsPerPrompt, 128);
    assert.equal(spec.sampling?.maxNewTokens, 512);
    assert.equal(spec.training?.optimizer?.learningRate, 1e-5);
    assert.equal(spec.training?.lora?.rank, 16);
    assert.equal(spec.training?.lora?.alpha, 32);
    assert.equal(spec.training?.loss?.beta, 0);
    assert.equal(spec.reward?.structure?.kind?.$case, "adaptive");
  });
});
