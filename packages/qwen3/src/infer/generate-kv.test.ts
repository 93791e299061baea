// KvCacheBackend against the float64 plain-loop reference: cached logits at every decode step,
// greedy and sampled generation, logprob alignment, seeding and LoRA adapter swaps on one session.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { initLoraAdapter, type LoraConfig, mergeLora } from "../adapter/lora.ts";
import { presetConfig, type Qwen3Config } from "../model/config.ts";
import { initModel } from "../model/init.ts";
import { openModelDir } from "../model/model-dir.ts";
import { loadTokenizer, type Tokenizer, tokenizerIds } from "../model/tokenizer.ts";
import { loadWeights, type Qwen3Weights } from "../model/weights.ts";
import { ReferenceBackend } from "../reference/generate-reference.ts";
import { referenceForward } from "../reference/reference.ts";
import { Qwen3KvEngine } from "./engine-kv.ts";
import { type GenerateOptions, generate } from "./generate.ts";
import { KvCacheBackend } from "./generate-kv.ts";

const root = mkdtempSync(join(tmpdir(), "qwen3-generate-kv-"));
after(() => rmSync(root, { recursive: true, force: true }));

const LORA: LoraConfig = {
  rank: 4,
  alpha: 8,
  useRslora: false,
  targetModules: ["q_proj", "v_proj", "down_proj"],
};

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

describe("KvCacheBackend (KV-cached ONNX prefill + decode)", () => {
  const dir = join(root, "tiny");
  let config: Qwen3Config;
  let weights: Qwen3Weights<Float64Array>;
  let reference: ReferenceBackend;
  let engine32: Qwen3KvEngine;
  let engine64: Qwen3KvEngine;
  let tokenizer: Tokenizer;
  let prompts: number[][];

  before(async () => {
    initModel({ config: presetConfig("tiny", tokenizerIds("bytes")), tokenizer: "bytes", out: dir, seed: 3 });
    const model = openModelDir(dir);
    config = model.config;
    weights = loadWeights(config, model.checkpoint, "float64");
    reference = new ReferenceBackend(config, weights);
    engine32 = await Qwen3KvEngine.fromCheckpoint(config, model.checkpoint, { threads: 1, lora: LORA });
    engine64 = await Qwen3KvEngine.fromCheckpoint(config, model.checkpoint, { dtype: "float64", threads: 1 });
    model.checkpoint.close();
    tokenizer = await loadTokenizer(dir);
    prompts = ["Compute 12*3.", "Hi", "What is 7+5?"].map((t) => tokenizer.encode(t));
  });
  after(async () => {
    await engine32?.release();
    await engine64?.release();
  });

  // Drives a session by hand: rows of different prompt lengths, row 1 leaving after step 2 and row 0
  // after step 4, each step checked against the float64 full forward of the rows' whole sequences.
  const stepByStep = async (backend: KvCacheBackend, tolerance: number) => {
    const continuation = tokenizer.encode(" the answer is 36");
    const sequences = prompts.map((p) => [...p]);
    const { session, logits } = await backend.prefill(prompts);
    let worst = maxDiff(
      logits.flatMap((l) => Array.from(l)),
      reference.lastLogits(sequences).flatMap((l) => Array.from(l)),
    );
    try {
      for (let step = 0; step < 6; step++) {
        const rows = [0, 1, 2].filter((r) => !(r === 1 && step >= 2) && !(r === 0 && step >= 4));
        const tokens = rows.map((r) => continuation[(step + r) % continuation.length]);
        rows.forEach((r, i) => {
          sequences[r].push(tokens[i]);
        });
        const got = await session.decode(rows, tokens);
        assert.equal(got.length, rows.length);
        const want = reference.lastLogits(rows.map((r) => sequences[r]));
        got.forEach((row, i) => {
          assert.equal(row.length, config.vocabSize);
          worst = Math.max(worst, maxDiff(row, want[i]));
        });
        assert.ok(worst < tolerance, `step ${step}: max |Δlogit| = ${worst}`);
      }
    } finally {
      session.close();
    }
    return worst;
  };

  it("float64: cached logits equal the full forward at every step (< 1e-9), compacted or padded", async () => {
    assert.ok((await stepByStep(new KvCacheBackend(engine64), 1e-9)) < 1e-9);
    assert.ok((await stepByStep(new KvCacheBackend(engine64, { compact: false }), 1e-9)) < 1e-9);
  });

  it("float32: cached logits within 1e-4 of the float64 full forward at every step", async () => {
    await stepByStep(new KvCacheBackend(engine32), 1e-4);
  });

  it("greedy generation equals the reference backend token by token", async () => {
    const options: GenerateOptions = { temperature: 0, maxNewTokens: 12 };
    const want = (await generate(reference, tokenizer, prompts, options)).flat();
    for (const engine of [engine64, engine32]) {
      const got = (await generate(new KvCacheBackend(engine), tokenizer, prompts, options)).flat();
      got.forEach((c, i) => {
        assert.deepEqual(
          [c.tokenIds, c.text, c.finishReason],
          [want[i].tokenIds, want[i].text, want[i].finishReason],
        );
        const tol = engine === engine64 ? 1e-9 : 1e-4;
        assert.ok(maxDiff(c.logprobs, want[i].logprobs) < tol);
      });
    }
  });

  it("logprobs are the full forward's temperature-scaled logprobs of the sampled tokens", async () => {
    const options: GenerateOptions = {
      temperature: 0.7,
      topK: 40,
      topP: 0.9,
      maxNewTokens: 10,
      n: 2,
      seed: 11,
    };
    const completions = (await generate(new KvCacheBackend(engine32), tokenizer, prompts, options)).flat();
    for (const c of completions) {
      const prompt = prompts[c.promptIndex];
      const full = referenceForward(config, weights, [[...prompt, ...c.tokenIds]], { temperature: 0.7 });
      const want = full.logprobs[0].slice(prompt.length - 1);
      assert.equal(c.logprobs.length, c.tokenIds.length);
      assert.ok(maxDiff(c.logprobs, want) < 1e-4, `${c.logprobs} vs ${want}`);
      assert.ok(c.tokenIds.every((id) => id < tokenizer.vocabSize));
    }
  });

  it("the same seed gives the same samples, another seed others", async () => {
    const backend = new KvCacheBackend(engine32);
    const options: GenerateOptions = { temperature: 1, maxNewTokens: 8, n: 2 };
    const run = async (seed: number) =>
      (await generate(backend, tokenizer, prompts, { ...options, seed })).flat().map((c) => c.tokenIds);
    const first = await run(5);
    assert.deepEqual(await run(5), first);
    assert.notDeepEqual(await run(6), first);
  });

  it("adapters swap between generate calls on one session and equal the merged-weights model", async () => {
    const backend = new KvCacheBackend(engine32);
    const options: GenerateOptions = { temperature: 0, maxNewTokens: 8 };
    const adapters = [1, 2].map((seed) => initLoraAdapter(config, LORA, { seed, initB: "random" }));
    const base = (await generate(backend, tokenizer, prompts, options)).flat();
    const outputs = [];
    for (const adapter of adapters) {
      backend.setAdapter(adapter);
      const got = (await generate(backend, tokenizer, prompts, options)).flat();
      const merged = new ReferenceBackend(config, mergeLora(weights, adapter));
      const want = (await generate(merged, tokenizer, prompts, options)).flat();
      got.forEach((c, i) => {
        assert.deepEqual(c.tokenIds, want[i].tokenIds);
        assert.ok(maxDiff(c.logprobs, want[i].logprobs) < 1e-4);
      });
      outputs.push(got.map((c) => c.tokenIds));
    }
    assert.notDeepEqual(outputs[0], outputs[1]);
    assert.notDeepEqual(
      outputs[0],
      base.map((c) => c.tokenIds),
    );
    // Back to the base model on the same session.
    backend.setAdapter(null);
    const again = (await generate(backend, tokenizer, prompts, options)).flat();
    assert.deepEqual(
      again.map((c) => c.tokenIds),
      base.map((c) => c.tokenIds),
    );
    const want = (await generate(reference, tokenizer, prompts, options)).flat();
    assert.deepEqual(
      base.map((c) => c.tokenIds),
      want.map((c) => c.tokenIds),
    );
  });

  it("bad input is a one-line error naming it", async () => {
    const backend = new KvCacheBackend(engine64);
    await assert.rejects(backend.prefill([[1, 2], []]), /sequence 1 is empty/);
    await assert.rejects(backend.prefill([[config.vocabSize]]), /id \d+ is outside vocab_size/);
    const { session } = await backend.prefill([[1, 2], [3]]);
    await assert.rejects(session.decode([1, 0], [4, 5]), /rows must be increasing/);
    await session.decode([1], [4]);
    await assert.rejects(session.decode([0], [4]), /among the previous step's rows, got row 0/);
    session.close();
    await assert.rejects(session.decode([1], [4]), /decode after close/);
    assert.throws(() => backend.setAdapter(initLoraAdapter(config, LORA)), /built without LoRA inputs/);
    assert.throws(
      () => engine32.setAdapter(initLoraAdapter(config, { ...LORA, rank: 2 })),
      /does not match the engine's LoRA inputs/,
    );
  });
});
