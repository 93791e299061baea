// One RL step's wall time by phase, next to the services' own engine time: a whole local stack
// (nats-server and every service a process), the small model, GRPO under the hard structure,
// 8 prompts × 8 completions × 48 new tokens, LoRA r=4. Overhead = step − rollout engine − reward
// scoring − learner engine: gRPC, NATS, storing the step, orchestration. Prints; asserts nothing.
//   node --import tsx tools/bench/rl-step.ts [--steps 4]
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { synthesizeSets } from "@temper/gsm8k";
import { createClient } from "@temper/kit";
import { orchestrator } from "@temper/proto";
import { startStack } from "@temper/stack";
import { freeStackOffset, STRUCTURES, testRunSpec } from "../../tests/src/index.ts";

const { values } = parseArgs({ options: { steps: { type: "string", default: "4" } } });
const STEPS = Number(values.steps);
const tmp = mkdtempSync(join(tmpdir(), "temper-bench-rl-"));
const sets = synthesizeSets({
  sft: 0,
  train: 200,
  eval: 0,
  seed: 1,
  maxOperand: 20,
  steps: { min: 1, max: 2 },
});
writeFileSync(join(tmp, "train.jsonl"), sets.train.map((e) => JSON.stringify(e)).join("\n"));

const offset = await freeStackOffset();
const stack = await startStack({ dataDir: join(tmp, "stack"), natsPort: 4222 + offset, portOffset: offset });
const client = createClient(orchestrator.OrchestratorServiceService, stack.address("orchestrator"), {
  defaults: { timeoutMs: 600_000 },
});
try {
  const { run } = await client.startRun({
    spec: testRunSpec(
      {
        model: stack.modelDir!,
        trainData: join(tmp, "train.jsonl"),
        name: "bench",
        structure: STRUCTURES.hard,
        learningRate: 5e-4,
      },
      {
        steps: STEPS,
        promptsPerStep: 8,
        completionsPerPrompt: 8,
        seed: 1,
        sampling: { temperature: 1, topK: 0, topP: 1, maxNewTokens: 48, stop: [], seed: 0 },
      },
    ),
  });
  for await (const ev of client.watchRun({ runId: run!.runId, fromStep: 0 }))
    if (ev.event === undefined) break;
  const lines = readFileSync(join(run!.directory, "metrics.jsonl"), "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as Record<string, number>);
  const rows = lines.slice(1); // step 0 builds the sessions
  const mean = (k: string) => rows.reduce((a, r) => a + (r[k] ?? 0), 0) / rows.length;
  const step = mean("time/step");
  const phases = [
    "time/rollout",
    "time/rollout_engine",
    "time/reward",
    "time/train",
    "time/train_engine",
    "time/other",
  ];
  console.log(
    `one RL step, small model, 8 prompts × 8 × 48 tokens, LoRA r=4, hard; mean of steps 1..${STEPS - 1}`,
  );
  for (const k of phases)
    console.log(
      `  ${k.padEnd(22)} ${(mean(k) * 1000).toFixed(0).padStart(7)} ms  ${((100 * mean(k)) / step).toFixed(1)}%`,
    );
  console.log(`  ${"time/step".padEnd(22)} ${(step * 1000).toFixed(0).padStart(7)} ms`);
  const overhead = step - mean("time/rollout_engine") - mean("time/reward") - mean("time/train_engine");
  console.log(
    `  overhead (step − rollout engine − reward − learner engine): ${(overhead * 1000).toFixed(0)} ms = ${((100 * overhead) / step).toFixed(1)}% of the step (target ≤ 5%)`,
  );
} finally {
  client.$close();
  await stack.stop();
  rmSync(tmp, { recursive: true, force: true });
}
