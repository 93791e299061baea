// Reproducibility through the whole stack: the same GRPO spec run twice on the `mini` model, every
// service at its default thread count (ORT's choice: every core), the second run with a busy-loop
// process on every core beside it. Sampling, rewards, advantages, LoRA updates and the held-out
// evaluation must not depend on how the machine schedules threads: the two runs end with the same
// adapter bytes and the same metrics, evaluation and samples, timings aside.
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { type Bus, connectBus, createClient, findNatsServer, type PromiseClient } from "@temper/kit";
import { withBusyCores } from "@temper/kit/testing";
import { machineInfo } from "@temper/onnx";
import { orchestrator } from "@temper/proto";
import { ADAPTER_BUCKET, initModel, presetConfig, tokenizerIds } from "@temper/qwen3";
import type { Stack } from "@temper/stack";
import { parse } from "yaml";
import { additionProblems, STRUCTURES, startTestStack, testRunSpec } from "./src/index.ts";

const STEPS = 3;
/** Fields that differ between any two runs: wall-clock times and names carrying the run id. */
const VARYING = new Set(["elapsed", "seconds", "policy_version"]);

describe("an RL run is reproducible with every core busy", {
  skip: !findNatsServer() && "nats-server not installed",
}, () => {
  const root = mkdtempSync(join(tmpdir(), "temper-rl-determinism-"));
  const modelDir = join(root, "mini");
  let stack: Stack;
  let bus: Bus;
  let client: PromiseClient<typeof orchestrator.OrchestratorServiceService>;

  before(async () => {
    initModel({
      config: presetConfig("mini", tokenizerIds("bytes")),
      tokenizer: "bytes",
      out: modelDir,
      seed: 11,
      dtype: "f32",
      std: 0.1,
    });
    writeFileSync(join(root, "train.jsonl"), additionProblems(32, 1));
    writeFileSync(join(root, "eval.jsonl"), additionProblems(16, 100));
    stack = await startTestStack({
      dataDir: join(root, "stack"),
      model: modelDir,
    });
    bus = await connectBus({ url: stack.natsUrl, name: "rl-determinism-test" });
    client = createClient(orchestrator.OrchestratorServiceService, stack.address("orchestrator"), {
      defaults: { timeoutMs: 30_000 },
    });
  });

  after(async () => {
    client?.$close();
    await bus?.drain();
    await stack?.stop();
    rmSync(root, { recursive: true, force: true });
  });

  async function runToEnd(name: string): Promise<orchestrator.Run> {
    const spec = testRunSpec(
      {
        model: modelDir,
        trainData: join(root, "train.jsonl"),
        evalData: join(root, "eval.jsonl"),
        name,
        // a random model is never right: graded components give GRPO its signal
        structure: STRUCTURES.continuous,
        learningRate: 0.01,
      },
      {
        steps: STEPS,
        promptsPerStep: 8,
        completionsPerPrompt: 4,
        seed: 3,
        sampling: { temperature: 1, topK: 0, topP: 1, maxNewTokens: 16, stop: [], seed: 0 },
        eval: { every: STEPS, size: 16, baseline: true, maxNewTokens: 16, majK: 0 },
        samplesPerStep: 8,
      },
    );
    const { runId } = (await client.startRun({ spec })).run!;
    const until = Date.now() + 300_000;
    while (Date.now() < until) {
      const { run } = await client.getRun({ runId });
      if (run && run.status >= orchestrator.RunStatus.RUN_STATUS_SUCCEEDED) {
        assert.equal(run.status, orchestrator.RunStatus.RUN_STATUS_SUCCEEDED, run.error);
        return run;
      }
      await sleep(250);
    }
    throw new Error(`run ${name} did not end in time`);
  }

  async function outcome(run: orchestrator.Run) {
    const store = await bus.objectStore(ADAPTER_BUCKET);
    const adapter = await store.getBlob(`${run.runId}/${run.latest!.policyVersion}`);
    assert.ok(adapter, `no final adapter for ${run.runId}`);
    const lines = (file: string) =>
      readFileSync(join(run.directory, file), "utf8")
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l) as Record<string, unknown>);
    const untimed = (row: Record<string, unknown>) =>
      Object.fromEntries(Object.entries(row).filter(([k]) => !k.startsWith("time/") && !VARYING.has(k)));
    return {
      adapter: Buffer.from(adapter),
      metrics: lines("metrics.jsonl").map(untimed),
      evals: lines("eval.jsonl").map(untimed),
      samples: lines("samples.jsonl").map(untimed),
    };
  }

  it("two runs, one beside a busy process on every core, end with the same adapter and metrics; spec.yaml names the machine", {
    timeout: 900_000,
  }, async () => {
    const quietRun = await runToEnd("quiet");
    const quiet = await outcome(quietRun);
    const busy = await outcome(await withBusyCores(() => runToEnd("busy")));
    assert.equal(quiet.metrics.length, STEPS);
    assert.ok(
      quiet.metrics.every((m) => (m["train/grad_norm"] as number) > 0),
      "every step must update the adapter",
    );
    assert.deepEqual(busy.metrics, quiet.metrics);
    assert.deepEqual(busy.evals, quiet.evals);
    assert.deepEqual(busy.samples, quiet.samples);
    assert.ok(busy.adapter.equals(quiet.adapter), "the final adapters differ");

    // what the bits depend on besides the inputs is recorded; the stack leaves THREADS unset, so
    // the engines run at ORT's default, this machine's physical cores
    const here = machineInfo();
    const machine = {
      cpu_model: here.cpuModel,
      cpu_flags: here.cpuFlags,
      intra_op_threads: here.intraOpThreads,
      onnxruntime_version: here.onnxruntimeVersion,
    };
    const spec = parse(readFileSync(join(quietRun.directory, "spec.yaml"), "utf8"));
    assert.deepEqual(spec.machine, { rollout: [machine], learner: machine });
  });
});
