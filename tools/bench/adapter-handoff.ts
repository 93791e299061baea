// The time from the learner publishing an adapter version to rollout sampling with it, on loopback
// with real processes (nats-server, learner, rollout) and the small model. For each of N steps:
// Train returns version v (already in the object store); the first Generate with v fetches, decodes
// and installs it; a second Generate with v finds it cached. Hand-off = first − second. Prints
// figures; asserts nothing.
//   node --import tsx tools/bench/adapter-handoff.ts [--steps 5] [--model DIR] [--rank 16]
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { learner, rollout } from "@temper/proto";
import { initModel, presetConfig, tokenizerIds } from "@temper/qwen3";
import { Harness } from "../../tests/src/index.ts";

const { values } = parseArgs({
  options: {
    steps: { type: "string", default: "5" },
    model: { type: "string" },
    rank: { type: "string", default: "16" },
  },
});
const steps = Number(values.steps);
const root = mkdtempSync(join(tmpdir(), "temper-handoff-"));
const modelDir = values.model ?? join(root, "small");
if (!values.model)
  initModel({
    config: presetConfig("small", tokenizerIds("bytes")),
    tokenizer: "bytes",
    out: modelDir,
    dtype: "f32",
  });

const h = new Harness();
try {
  const env = { MODEL_DIR: modelDir, CHECKPOINT_DIR: join(root, "ckpt"), EXPORT_DIR: join(root, "export") };
  const [ro, le] = await Promise.all([
    h.service("rollout", { withNats: true, env: { MODEL_DIR: modelDir } }),
    h.service("learner", { withNats: true, env }),
  ]);
  const gen = h.client(rollout.RolloutServiceService, ro.address);
  const lrn = h.client(learner.LearnerServiceService, le.address);
  const rank = Number(values.rank);
  await lrn.createRun({
    runId: "handoff",
    config: {
      model: "",
      lora: { rank, alpha: 2 * rank, targetModules: [], useRslora: false },
      optimizer: { learningRate: 1e-3, schedule: 0, warmupSteps: 0, totalSteps: 0 },
      loss: { type: learner.LossType.LOSS_TYPE_GRPO, aggregation: 0 },
      microBatchSize: 0,
      miniBatches: 1,
      iterations: 1,
      seed: 1,
    },
  });
  const generate = (adapterVersion: string, step: number) =>
    gen.generate({
      prompts: [{ id: "p", prompt: "1 + 1 = ", reference: "" }],
      numCompletions: 1,
      sampling: { temperature: 0, topK: 0, topP: 1, maxNewTokens: 1, stop: [], seed: 0 },
      adapterVersion,
      chat: false,
      enableThinking: false,
      runId: "handoff",
      step,
      callTag: "bench",
    });
  const rows: string[] = [];
  for (let step = 0; step < steps; step++) {
    const sample = await generate("", step);
    const g = sample.groups[0];
    const ids = [...g.promptTokenIds, ...g.completions[0].tokenIds];
    const p = g.promptTokenIds.length;
    const trained = await lrn.train({
      runId: "handoff",
      step,
      sequences: [
        {
          inputIds: ids,
          completionMask: ids.map((_, t) => (t >= p ? 1 : 0)),
          advantage: 1,
          oldLogprobs: ids.map((_, t) => (t >= p ? g.completions[0].logprobs[t - p] : 0)),
          refLogprobs: [],
        },
      ],
    });
    const t0 = performance.now();
    await generate(trained.adapterVersion, step);
    const first = performance.now() - t0;
    const t1 = performance.now();
    await generate(trained.adapterVersion, step);
    const cached = performance.now() - t1;
    rows.push(
      `step ${step}: first Generate with ${trained.adapterVersion} ${first.toFixed(1)} ms, cached ${cached.toFixed(1)} ms, hand-off ${(first - cached).toFixed(1)} ms`,
    );
  }
  console.log(
    `adapter hand-off, learner → object store → rollout (LoRA r=${rank}, all modules, ${modelDir})`,
  );
  for (const r of rows) console.log(`  ${r}`);
} finally {
  await h.close();
  rmSync(root, { recursive: true, force: true });
}
