// The learner's overhead: one Train step through gRPC (real nats-server and learner process) against
// the same step in-process (Qwen3Trainer forward + backward, clipping, AdamW) on the small model,
// LoRA r=16 on all seven projections, GRPO, batch 4 × 128, float32. The service's extra cost is
// validation, hashing, moving the batch to the engine thread, the atomic checkpoint (adapter +
// moments + state, fsynced), the object-store put and the policy.updated event. Prints wall time,
// engine_seconds and overhead % = (wall − in-process) / in-process (target ≤ 5%); asserts nothing.
// With --metrics the learner also exports metrics (METRICS_PORT), to compare with and without.
//   node --import tsx tools/bench/learner-train.ts [--steps 5] [--threads 2] [--metrics]
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { learner } from "@temper/proto";
import {
  initLoraAdapter,
  initModel,
  LORA_MODULES,
  loraTensorName,
  presetConfig,
  Qwen3Trainer,
  readConfig,
  type TrainSequence,
  tokenizerIds,
} from "@temper/qwen3";
import { adamwStep, clipGradNorm, initAdamWState, learningRateAt } from "@temper/training";
import { freePort, Harness } from "../../tests/src/index.ts";

const { values: args } = parseArgs({
  options: {
    steps: { type: "string", default: "5" },
    threads: { type: "string", default: "2" },
    metrics: { type: "boolean", default: false },
  },
});
const STEPS = Number(args.steps);
const THREADS = Number(args.threads);
const BATCH = 4;
const SEQ = 128;
const PROMPT = 32;
const LR = 1e-4;

const tmp = mkdtempSync(join(tmpdir(), "temper-bench-learner-"));
const modelDir = join(tmp, "small");
initModel({
  config: presetConfig("small", tokenizerIds("bytes")),
  tokenizer: "bytes",
  out: modelDir,
  seed: 1,
  dtype: "f32",
});
const model = readConfig(modelDir);

function batch(step: number): learner.TrainingSequence[] {
  return Array.from({ length: BATCH }, (_, b) => ({
    inputIds: Array.from({ length: SEQ }, (_, t) => (7 * b + 13 * t + 31 * step) % 256),
    completionMask: Array.from({ length: SEQ }, (_, t) => (t >= PROMPT ? 1 : 0)),
    advantage: b % 2 ? 0.8 : -0.6,
    oldLogprobs: Array.from({ length: SEQ }, (_, t) => (t === 0 ? 0 : -5.5)),
    refLogprobs: [],
  }));
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

// in-process: the same work as one learner step, minus the service
const lora = { rank: 16, alpha: 32, useRslora: false, targetModules: [...LORA_MODULES] };
const trainer = await Qwen3Trainer.load(modelDir, {
  mode: "lora",
  lora,
  loss: { kind: "grpo" },
  dtype: "float32",
  threads: THREADS,
});
const adapter = initLoraAdapter(model, lora, { seed: 0 });
const params = new Map(
  adapter.pairs.flatMap((p) => [
    [loraTensorName(p.layer, p.module, "A"), p.a],
    [loraTensorName(p.layer, p.module, "B"), p.b],
  ]),
);
const state = initAdamWState(params);
const inProcess: number[] = [];
for (let s = 0; s < STEPS + 1; s++) {
  const seqs: TrainSequence[] = batch(s).map(({ refLogprobs: _, ...rest }) => rest);
  const t0 = performance.now();
  const res = await trainer.step(seqs, adapter);
  clipGradNorm(res.grads, 1);
  adamwStep(params, res.grads, state, learningRateAt({ kind: "constant", learningRate: LR }, state.step));
  if (s > 0) inProcess.push((performance.now() - t0) / 1000); // step 0 warms the session
}
await trainer.release();

// through gRPC
const h = new Harness();
try {
  const svc = await h.service("learner", {
    withNats: true,
    env: {
      MODEL_DIR: modelDir,
      CHECKPOINT_DIR: join(tmp, "ckpt"),
      EXPORT_DIR: join(tmp, "export"),
      THREADS: String(THREADS),
      ...(args.metrics ? { METRICS_PORT: String(await freePort()) } : {}),
    },
    readyTimeoutMs: 60_000,
  });
  const client = h.client(learner.LearnerServiceService, svc.address);
  await client.createRun({
    runId: "bench",
    config: {
      model: "",
      lora: { rank: 16, alpha: 32, targetModules: [], useRslora: false },
      optimizer: {
        learningRate: LR,
        schedule: learner.LrSchedule.LR_SCHEDULE_CONSTANT,
        warmupSteps: 0,
        totalSteps: 0,
      },
      microBatchSize: 0,
      miniBatches: 1,
      iterations: 1,
      seed: 0,
    },
  });
  const wall: number[] = [];
  const engine: number[] = [];
  for (let s = 0; s < STEPS + 1; s++) {
    const t0 = performance.now();
    const res = await client.train({ runId: "bench", step: s, sequences: batch(s) });
    if (s > 0) {
      wall.push((performance.now() - t0) / 1000);
      engine.push(res.engineSeconds);
    }
  }
  const w = median(wall);
  const e = median(engine);
  const ip = median(inProcess);
  console.log(
    `learner Train, small model, LoRA r=16 all modules, GRPO, batch ${BATCH} × ${SEQ}, float32, ${THREADS} threads, median of ${STEPS}, metrics ${args.metrics ? "on" : "off"}`,
  );
  console.log(`  in-process step (trainer + clip + AdamW): ${(ip * 1000).toFixed(1)} ms`);
  console.log(`  gRPC Train wall:                          ${(w * 1000).toFixed(1)} ms`);
  console.log(`  engine_seconds reported:                  ${(e * 1000).toFixed(1)} ms`);
  console.log(`  overhead vs in-process: ${(((w - ip) / ip) * 100).toFixed(1)}% (target ≤ 5%)`);
  console.log(
    `  overhead vs engine_seconds: ${(((w - e) / e) * 100).toFixed(1)}% (checkpoint, object store, event, transport)`,
  );
  if (process.env.BENCH_DEBUG) console.log(svc.output().slice(-3000));
  // where the rest goes: the learner logs each step's checkpoint and publish time
  const lines = svc
    .output()
    .split("\n")
    .filter((l) => l.includes('"checkpointSeconds"'))
    .slice(1);
  const ck = median(lines.map((l) => JSON.parse(l).checkpointSeconds));
  const pub = median(lines.map((l) => JSON.parse(l).publishSeconds));
  console.log(
    `  of which checkpoint write + fsync: ${(ck * 1000).toFixed(1)} ms; object store + event: ${(pub * 1000).toFixed(1)} ms`,
  );
} finally {
  await h.close();
  rmSync(tmp, { recursive: true, force: true });
}
