// Training-step time when every step pads to its own length, as the learner's and `temper sft`'s
// steps do: the `mini` preset (the default experiment's model, byte tokenizer), LoRA r=8 on all
// seven projections, GRPO (β = 0, token aggregation), float32, batches of --batch sequences padded
// to a cycle of lengths around 124 tokens (a default-experiment prompt + completion). Each session
// runs the same cycle twice; the table prints every step's seconds, so a shape that stays slow shows.
//
// Two sessions, each in its own child process: ORT's memory pattern on (ORT's default) and off (what
// Qwen3Trainer sets). Measured on this 2-core machine, 2 threads: on, the first repeat of the first
// shape took 5.4 s, as long as the session's first run (4.9 s), against ~1.0 s for the other
// steps; off, 2.6 s, the other steps unchanged (mean after the first 1.57 s on, 1.24 s off).
//
// Run: node --import tsx tools/bench/train-shapes.ts [--batch 128] [--threads 2]
// Internal: --worker on|off --model DIR runs one session's steps and prints them as JSON.
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
} from "@temper/qwen3";
import { REPO_ROOT, runNodeJson } from "./baseline.ts";

const { values } = parseArgs({
  options: {
    batch: { type: "string", default: "128" },
    threads: { type: "string", default: "2" },
    worker: { type: "string" },
    model: { type: "string" },
  },
});
const batchSize = Number(values.batch);
const threads = Number(values.threads);
const LENGTHS = [124, 120, 131, 124, 118, 124];
const LORA = { rank: 8, alpha: 16, useRslora: false, targetModules: [...LORA_MODULES] };

/** B sequences padded to T: lengths T − (b mod 5), the last 17 tokens the completion. */
function batchOf(B: number, T: number): TrainSequence[] {
  return Array.from({ length: B }, (_, b) => {
    const len = T - (b % 5);
    const inputIds = Array.from({ length: len }, (_, i) => 40 + ((i * 7 + b) % 60));
    return {
      inputIds,
      completionMask: inputIds.map((_, i) => (i >= len - 17 ? 1 : 0)),
      oldLogprobs: inputIds.map(() => -0.1),
      advantage: b % 2 ? 1 : -1,
    };
  });
}

async function worker(memPattern: boolean, dir: string): Promise<void> {
  const trainer = await Qwen3Trainer.load(dir, {
    mode: "lora",
    lora: LORA,
    loss: { kind: "grpo", epsLow: 0.2, epsHigh: 0.2, beta: 0, aggregation: "token" },
    threads,
    ortOptions: { enableMemPattern: memPattern },
  });
  const adapter = initLoraAdapter(readConfig(dir), LORA, { seed: 1 });
  const seconds: number[] = [];
  for (const T of [...LENGTHS, ...LENGTHS]) {
    const t0 = performance.now();
    await trainer.step(batchOf(batchSize, T), adapter, { temperature: 1 });
    seconds.push((performance.now() - t0) / 1000);
  }
  await trainer.release();
  process.stdout.write(`${JSON.stringify(seconds)}\n`);
}

if (values.worker) {
  await worker(values.worker === "on", values.model!);
} else {
  const dir = mkdtempSync(join(tmpdir(), "temper-train-shapes-"));
  try {
    initModel({
      config: presetConfig("mini", tokenizerIds("bytes")),
      tokenizer: "bytes",
      out: dir,
      seed: 0,
      dtype: "f32",
    });
    console.log(
      `mini preset, LoRA r=8, GRPO, float32, batch ${batchSize}, ${threads} threads; seconds per step`,
    );
    console.log(`padded length    ${[...LENGTHS, ...LENGTHS].map((t) => String(t).padStart(6)).join("")}`);
    for (const mode of ["on", "off"]) {
      const s = await runNodeJson<number[]>(REPO_ROOT, import.meta.filename, [
        "--worker",
        mode,
        "--model",
        dir,
        "--batch",
        String(batchSize),
        "--threads",
        String(threads),
      ]);
      const rest = s.slice(1);
      console.log(
        `mem pattern ${mode.padEnd(4)} ${s.map((x) => x.toFixed(2).padStart(6)).join("")}   after the first: mean ${(rest.reduce((a, b) => a + b, 0) / rest.length).toFixed(2)} s, max ${Math.max(...rest).toFixed(2)} s`,
      );
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
