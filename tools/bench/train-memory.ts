// The learner's memory bound against what a training step really takes: for each shape (rows ×
// tokens), a child process loads the model and a LoRA r=16 GRPO trainer (float32), then runs one step;
// it prints the growth of its peak RSS over the step against trainActivationBytes, which the learner
// refuses a Train by (MAX_TRAIN_BYTES). The estimate must stay above every measured figure; asserts
// nothing.
//   node --import tsx tools/bench/train-memory.ts [--preset small] [--tokenizer bytes|qwen3] [--shapes 1x512,4x512,…]
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import {
  initLoraAdapter,
  initModel,
  LORA_MODULES,
  presetConfig,
  Qwen3Trainer,
  readConfig,
  type TrainSequence,
  tokenizerIds,
  trainActivationBytes,
} from "@temper/qwen3";

const { values: args } = parseArgs({
  options: {
    preset: { type: "string", default: "small" },
    tokenizer: { type: "string", default: "bytes" },
    shapes: { type: "string", default: "1x512,1x1024,1x2048,4x512,8x256" },
    child: { type: "string" },
    model: { type: "string" },
  },
});
const LORA = { rank: 16, alpha: 32, useRslora: false, targetModules: [...LORA_MODULES] };

if (args.child) {
  // one shape, in a fresh process: its peak RSS is this step's alone
  const [rows, seq] = args.child.split("x").map(Number);
  const modelDir = args.model!;
  const trainer = await Qwen3Trainer.load(modelDir, {
    mode: "lora",
    lora: LORA,
    loss: { kind: "grpo" },
    dtype: "float32",
  });
  const adapter = initLoraAdapter(readConfig(modelDir), LORA, { seed: 0 });
  const batch: TrainSequence[] = Array.from({ length: rows }, (_, b) => ({
    inputIds: Array.from({ length: seq }, (_, t) => (7 * b + 13 * t) % 256),
    completionMask: Array.from({ length: seq }, (_, t) => (t >= 16 ? 1 : 0)),
    advantage: b % 2 ? 0.8 : -0.6,
    oldLogprobs: Array.from({ length: seq }, (_, t) => (t === 0 ? 0 : -5.5)),
  }));
  const before = process.memoryUsage().rss;
  await trainer.step(batch, adapter);
  const peak = process.resourceUsage().maxRSS * 1024;
  process.stdout.write(JSON.stringify({ before, peak }));
  await trainer.release();
  process.exit(0);
}

const tmp = mkdtempSync(join(tmpdir(), "temper-bench-trainmem-"));
try {
  const modelDir = join(tmp, "model");
  initModel({
    config: presetConfig(args.preset as "small", tokenizerIds(args.tokenizer as "bytes")),
    tokenizer: args.tokenizer as "bytes",
    out: modelDir,
    seed: 1,
    dtype: "f32",
  });
  const config = readConfig(modelDir);
  const mib = (b: number) => `${(b / 2 ** 20).toFixed(0)} MiB`;
  console.log(
    `one GRPO step, ${args.preset} (hidden ${config.hiddenSize}, ${config.numHiddenLayers} layers, vocab ${config.vocabSize}), LoRA r=16, float32, ORT's default threads`,
  );
  console.log("shape      measured (peak RSS − RSS before the step)   estimate   measured / estimate");
  for (const shape of args.shapes.split(",")) {
    const [rows, seq] = shape.split("x").map(Number);
    const out = execFileSync(
      process.execPath,
      ["--import", "tsx", import.meta.filename, "--child", shape, "--model", modelDir],
      { encoding: "utf8", maxBuffer: 1 << 20 },
    );
    const { before, peak } = JSON.parse(out) as { before: number; peak: number };
    const grew = Math.max(0, peak - before);
    const estimate = trainActivationBytes(config, rows, seq, 4, LORA.rank);
    console.log(
      `${shape.padEnd(10)} ${mib(grew).padStart(12)}                              ${mib(estimate).padStart(9)}   ${(grew / estimate).toFixed(2)}`,
    );
  }
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
