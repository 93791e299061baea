// Rollout and learner together, as the RL loop will drive them: an adapter the learner publishes is
// what rollout samples with, and GRPO through the two services moves the policy where a test-side
// reward points it (and away from it when the advantages are negated).
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { findNatsServer } from "@temper/kit";
import { type common, learner, rollout } from "@temper/proto";
import { runTemper } from "../packages/qwen3/src/testing/cli.ts";
import { Harness, type TestService, tinyPolicyModel } from "./src/index.ts";

const PROMPTS = Array.from({ length: 8 }, (_, i) => ({ id: `p${i}`, prompt: `q${i}: `, reference: "" }));
const LORA = { rank: 8, alpha: 16, targetModules: [], useRslora: false };

describe("rollout and learner", { skip: !findNatsServer() && "nats-server not installed" }, () => {
  const h = new Harness();
  const root = mkdtempSync(join(tmpdir(), "temper-rl-"));
  const modelDir = join(root, "model");
  let rolloutSvc: TestService;
  let learnerSvc: TestService;
  let gen: ReturnType<typeof h.client<typeof rollout.RolloutServiceService>>;
  let lrn: ReturnType<typeof h.client<typeof learner.LearnerServiceService>>;

  before(async () => {
    tinyPolicyModel(modelDir);
    [rolloutSvc, learnerSvc] = await Promise.all([
      h.service("rollout", { withNats: true, env: { MODEL_DIR: modelDir } }),
      h.service("learner", {
        withNats: true,
        env: {
          MODEL_DIR: modelDir,
          CHECKPOINT_DIR: join(root, "checkpoints"),
          EXPORT_DIR: join(root, "exports"),
        },
      }),
    ]);
    gen = h.client(rollout.RolloutServiceService, rolloutSvc.address);
    lrn = h.client(learner.LearnerServiceService, learnerSvc.address);
  });

  after(async () => {
    await h.close();
    rmSync(root, { recursive: true, force: true });
  });

  async function createRun(runId: string, learningRate: number) {
    return lrn.createRun({
      runId,
      config: {
        model: "",
        lora: LORA,
        optimizer: {
          learningRate,
          schedule: learner.LrSchedule.LR_SCHEDULE_CONSTANT,
          warmupSteps: 0,
          totalSteps: 0,
        },
        loss: {
          type: learner.LossType.LOSS_TYPE_GRPO,
          aggregation: learner.LossAggregation.LOSS_AGGREGATION_TOKEN,
        },
        microBatchSize: 0,
        miniBatches: 1,
        iterations: 1,
        temperature: 1,
        seed: 7,
      },
    });
  }

  async function sample(runId: string, step: number, adapterVersion: string, temperature: number) {
    return gen.generate({
      prompts: PROMPTS,
      numCompletions: temperature === 0 ? 1 : 8,
      sampling: { temperature, topK: 0, topP: 1, maxNewTokens: 8, stop: [], seed: 11 },
      adapterVersion,
      chat: false,
      enableThinking: false,
      runId,
      step,
      callTag: "train",
    });
  }

  /** GRPO sequences: prompt + completion ids, old logprobs at the completion's positions. */
  function batch(groups: common.Group[], reward: (c: common.Completion) => number, sign = 1) {
    return groups.flatMap((g) => {
      const r = g.completions.map(reward);
      const mean = r.reduce((a, b) => a + b, 0) / r.length;
      const std = Math.sqrt(r.reduce((a, b) => a + (b - mean) ** 2, 0) / Math.max(1, r.length - 1));
      return g.completions.map((c, j) => {
        const inputIds = [...g.promptTokenIds, ...c.tokenIds];
        const p = g.promptTokenIds.length;
        return {
          inputIds,
          completionMask: inputIds.map((_, t) => (t >= p ? 1 : 0)),
          advantage: (sign * (r[j] - mean)) / (std + 1e-4),
          oldLogprobs: inputIds.map((_, t) => (t >= p ? c.logprobs[t - p] : 0)),
          refLogprobs: [],
        };
      });
    });
  }

  it("rollout samples with the adapter version the learner published", async () => {
    const created = await createRun("publish", 0.05);
    assert.equal(created.adapterVersion, "");
    const sampled = await sample("publish", 0, "", 1);
    const trained = await lrn.train({
      runId: "publish",
      step: 0,
      sequences: batch(sampled.groups, (c) => c.tokenIds.length % 2),
    });
    assert.equal(trained.skipped, false);
    assert.ok(trained.adapterVersion, "an applied step names a new adapter version");

    const base = await sample("publish", 1, "", 0);
    const tuned = await sample("publish", 1, trained.adapterVersion, 0);
    assert.equal(tuned.adapterVersion, trained.adapterVersion);
    const texts = (r: rollout.GenerateResponse) => r.groups.map((g) => g.completions[0].tokenIds.join(","));
    assert.notDeepEqual(texts(tuned), texts(base), "the update changes greedy output");

    // The same adapter exported as a PEFT directory gives the same greedy tokens in the CLI.
    const saved = await lrn.saveCheckpoint({ runId: "publish", directory: "publish-0" });
    for (const [k, g] of tuned.groups.entries()) {
      const cli = runTemper(
        "model",
        "generate",
        "--model",
        modelDir,
        "--adapter",
        saved.directory,
        "--prompt",
        PROMPTS[k].prompt,
        "--temperature",
        "0",
        "--max-new-tokens",
        "8",
        "--json",
      );
      assert.equal(cli.code, 0, cli.stderr);
      assert.deepEqual(JSON.parse(cli.stdout).completions[0].token_ids, g.completions[0].tokenIds);
    }
  });

  /**
   * GRPO on "does the completion contain token X": X is the token most often sampled by the base
   * model at step 0, provided it shows in under 20% of completions.
   */
  async function toyRun(runId: string, sign: 1 | -1, steps: number) {
    await createRun(runId, 0.02);
    let version = "";
    const freq: number[] = [];
    let target = -1;
    for (let step = 0; step < steps; step++) {
      const out = await sample(runId, step, version, 1);
      const completions = out.groups.flatMap((g) => g.completions);
      if (target < 0) target = commonToken(completions);
      const share = completions.filter((c) => c.tokenIds.includes(target)).length / completions.length;
      freq.push(share);
      if (sign > 0 && share > 0.6) break;
      if (sign < 0 && step >= 5 && share < freq[0] / 4) break;
      const res = await lrn.train({
        runId,
        step,
        sequences: batch(out.groups, (c) => Number(c.tokenIds.includes(target)), sign),
      });
      version = res.adapterVersion || version;
    }
    return freq;
  }

  it("GRPO raises the frequency of a rewarded token from under 20% to over 60% within 30 steps", async () => {
    const freq = await toyRun("toy-up", 1, 30);
    console.log(`toy-up frequency by step: ${freq.map((f) => f.toFixed(2)).join(" ")}`);
    assert.ok(freq[0] < 0.2, `base frequency ${freq[0]}`);
    assert.ok(freq[freq.length - 1] > 0.6, `frequency by step: ${freq.map((f) => f.toFixed(2)).join(" ")}`);
  });

  it("with the advantages negated the frequency falls", async () => {
    const freq = await toyRun("toy-down", -1, 30);
    console.log(`toy-down frequency by step: ${freq.map((f) => f.toFixed(2)).join(" ")}`);
    const last = freq[freq.length - 1];
    assert.ok(last < freq[0] / 2, `frequency by step: ${freq.map((f) => f.toFixed(2)).join(" ")}`);
  });
});

/** The token contained in the most completions, among those in under 20% of them (not EOS). */
function commonToken(completions: common.Completion[]): number {
  const counts = new Map<number, number>();
  for (const c of completions) for (const t of new Set(c.tokenIds)) counts.set(t, (counts.get(t) ?? 0) + 1);
  let best = -1;
  let most = 0;
  for (const [t, n] of counts)
    if (t < 256 && n > most && n / completions.length < 0.2) {
      best = t;
      most = n;
    }
  assert.ok(best >= 0, "no token shows in a few completions");
  return best;
}
