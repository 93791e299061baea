import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { presetConfig } from "../model/config.ts";
import { Qwen3Engine } from "./engine.ts";
import { type GenerateOptions, generate } from "./generate.ts";
import { EngineRecomputeBackend } from "./generate-engine.ts";
import { ReferenceBackend } from "../reference/generate-reference.ts";
import { initModel } from "../model/init.ts";
import { openModelDir } from "../model/model-dir.ts";
import { loadTokenizer, type Tokenizer, tokenizerIds } from "../model/tokenizer.ts";
import { loadWeights } from "../model/weights.ts";

const root = mkdtempSync(join(tmpdir(), "qwen3-generate-engine-"));
after(() => rmSync(root, { recursive: true, force: true }));

describe("EngineRecomputeBackend (ONNX forward graph, full recompute)", () => {
  const dir = join(root, "tiny");
  let reference: ReferenceBackend;
  let engine64: Qwen3Engine;
  let engine32: Qwen3Engine;
  let tokenizer: Tokenizer;
  let prompts: number[][];

  before(async () => {
    initModel({ config: presetConfig("tiny", tokenizerIds("bytes")), tokenizer: "bytes", out: dir, seed: 2 });
    const model = openModelDir(dir);
    reference = new ReferenceBackend(model.config, loadWeights(model.config, model.checkpoint, "float64"));
    engine64 = await Qwen3Engine.fromCheckpoint(model.config, model.checkpoint, {
      dtype: "float64",
      logits: true,
    });
    engine32 = await Qwen3Engine.fromCheckpoint(model.config, model.checkpoint, {
      dtype: "float32",
      logits: true,
    });
    model.checkpoint.close();
    tokenizer = await loadTokenizer(dir);
    prompts = ["Hi", "Compute 12*3.", "A"].map((t) => tokenizer.encode(t));
  });
  after(async () => {
    await engine64?.release();
    await engine32?.release();
  });

  it("float64: the same completions and logprobs as the reference backend, greedy and sampled", async () => {
    const backend = new EngineRecomputeBackend(engine64);
    for (const options of [
      { temperature: 0, maxNewTokens: 5 },
      { temperature: 0.8, topK: 30, topP: 0.95, maxNewTokens: 5, n: 2, seed: 1 },
    ] as GenerateOptions[]) {
      const want = await generate(reference, tokenizer, prompts, options);
      const got = await generate(backend, tokenizer, prompts, options);
      got.flat().forEach((c, i) => {
        const w = want.flat()[i];
        assert.deepEqual([c.tokenIds, c.text, c.finishReason], [w.tokenIds, w.text, w.finishReason]);
        c.logprobs.forEach((lp, j) => {
          assert.ok(Math.abs(lp - w.logprobs[j]) < 1e-9, `${lp} vs ${w.logprobs[j]}`);
        });
      });
    }
  });

  it("float32: next-token logits within 1e-4 of float64 at every step of batches of different lengths", async () => {
    const [completions] = await generate(reference, tokenizer, [prompts[1]], {
      temperature: 1,
      maxNewTokens: 6,
    });
    const backend = new EngineRecomputeBackend(engine32);
    for (let step = 0; step <= 6; step++) {
      const sequences = [
        [...prompts[1], ...completions[0].tokenIds.slice(0, step)],
        prompts[0],
        [...prompts[2], ...completions[0].tokenIds.slice(0, step)],
      ];
      const want = reference.lastLogits(sequences);
      const got = await backend.lastLogits(sequences);
      let maxDiff = 0;
      got.forEach((row, b) => {
        assert.equal(row.length, reference.vocabSize);
        row.forEach((v, i) => {
          maxDiff = Math.max(maxDiff, Math.abs(v - want[b][i]));
        });
      });
      assert.ok(maxDiff < 1e-4, `step ${step}: max |Δlogit| = ${maxDiff}`);
    }
  });
});
