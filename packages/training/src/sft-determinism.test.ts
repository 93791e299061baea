// Reproducibility of full-parameter training: the same SFT run twice, at the product's default
// thread count (ORT's choice, every core), gives bitwise-equal weights — with a busy-loop process on
// every core beside one of the two runs, so that the kernels' threads are scheduled differently.
// The embedding's gradient used to be a ScatterND add, whose CPU kernel races on repeated token ids.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { synthesizeSets } from "@temper/gsm8k";
import { withBusyCores } from "@temper/kit/testing";
import { initModel, presetConfig, tokenizerIds } from "@temper/qwen3";
import { runSft } from "./index.ts";

const root = mkdtempSync(join(tmpdir(), "temper-sft-determinism-"));
after(() => rmSync(root, { recursive: true, force: true }));

const base = join(root, "mini");
initModel({
  config: presetConfig("mini", tokenizerIds("bytes")),
  tokenizer: "bytes",
  out: base,
  seed: 7,
  dtype: "f32",
});
// one-step problems: ~50 byte tokens a sequence, the default experiment's shape
const data = synthesizeSets({
  sft: 192,
  train: 0,
  eval: 0,
  seed: 5,
  steps: { min: 1, max: 1 },
  maxOperand: 10,
});

async function sftOnce(name: string): Promise<{ weights: string; losses: number[] }> {
  const out = join(root, name);
  const losses: number[] = [];
  await runSft(
    {
      modelDir: base,
      train: data.sft,
      out,
      steps: 6,
      batchSize: 32,
      learningRate: 3e-3,
      schedule: "cosine",
      warmupSteps: 0,
      instruction: "",
      seed: 0,
      saveEvery: 0,
    },
    { onStep: (i) => losses.push(i.loss) },
  );
  const weights = createHash("sha256")
    .update(readFileSync(join(out, "model.safetensors")))
    .digest("hex");
  return { weights, losses };
}

describe("full-parameter SFT is reproducible", () => {
  it("two runs, one beside a busy process on every core, give bitwise-equal weights", async () => {
    const quiet = await sftOnce("quiet");
    const busy = await withBusyCores(() => sftOnce("busy"));
    assert.deepEqual(busy.losses, quiet.losses);
    assert.equal(busy.weights, quiet.weights, "model.safetensors differs between the two runs");
  });
});
