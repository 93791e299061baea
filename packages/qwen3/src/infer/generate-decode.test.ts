// DecodeCacheBackend (Qwen3DecodeEngine, float32) against the float64 plain-loop reference: cached
// logits at every decode step, greedy and sampled generation, the rollout's shapes (prompts × n
// sharing one prefill, different lengths, rows finishing at different times, batches of 64 rows)
// and LoRA adapter swaps on one session.
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
import { Qwen3DecodeEngine } from "./engine-decode.ts";
import { type GenerateOptions, generate } from "./generate.ts";
import { DecodeCacheBackend } from "./generate-decode.ts";

const root = mkdtempSync(join(tmpdir(), "qwen3-generate-decode-"));
after(() => rmSync(root, { recursive: true, force: true }));

const LORA: LoraConfig = {
  rank: 4,
  alpha: 8,
  useRslora: false,
  targetModules: ["q_proj", "v_proj", "o_proj", "up_proj", "down_proj"],
};

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

describe("DecodeCacheBackend (fast float32 KV cache: in-place buffers, two-part attention)", () => {
  const dir = join(root, "tiny");
  let config: Qwen3Config;
  let weights: Qwen3Weights<Float64Array>;
  let reference: ReferenceBackend;
  let engine: Qwen3DecodeEngine;
  let base: Qwen3DecodeEngine;
  let tokenizer: Tokenizer;
  let prompts: number[][];

  before(async () => {
    initModel({ config: presetConfig("tiny", tokenizerIds("bytes")), tokenizer: "bytes", out: dir, seed: 3 });
    const model = openModelDir(dir);
    config = model.config;
    weights = loadWeights(config, model.checkpoint, "float64");
    reference = new ReferenceBackend(config, weights);
    engine = await Qwen3DecodeEngine.fromCheckpoint(config, model.checkpoint, { threads: 1, lora: LORA });
    base = await Qwen3DecodeEngine.fromCheckpoint(config, model.checkpoint, { threads: 1 });
    model.checkpoint.close();
    tokenizer = await loadTokenizer(dir);
    prompts = ["Compute 12*3.", "Hi", "What is 7+5?"].map((t) => tokenizer.encode(t));
  });
  after(async () => {
    await engine?.release();
    await base?.release();
  });

  // Drives a session by hand: rows of different prompt lengths (one prompt twice), row 1 leaving
  // after step 2 and row 0 after step 4, each step checked against the float64 full forward of the
  // rows' whole sequences. A chunk of 4 slots makes the cache grow several times.
  const stepByStep = async (backend: DecodeCacheBackend) => {
    const continuation = tokenizer.encode(" the answer is 36");
    const rowsPrompts = [...prompts, prompts[0]];
    const sequences = rowsPrompts.map((p) => [...p]);
    const { session, logits } = await backend.prefill(rowsPrompts);
    let worst = maxDiff(
      logits.flatMap((l) => Array.from(l)),
      reference.lastLogits(sequences).flatMap((l) => Array.from(l)),
    );
    try {
      for (let step = 0; step < 9; step++) {
        const rows = [0, 1, 2, 3].filter((r) => !(r === 1 && step >= 2) && !(r === 0 && step >= 4));
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
        assert.ok(worst < 1e-4, `step ${step}: max |Δlogit| = ${worst}`);
      }
    } finally {
      session.close();
    }
    return worst;
  };

  it("cached logits are within 1e-4 of the float64 full forward at every step, compacted or padded", async () => {
    await stepByStep(new DecodeCacheBackend(base, { chunk: 4 }));
    await stepByStep(new DecodeCacheBackend(base, { chunk: 4, compact: false }));
    engine.setAdapter(initLoraAdapter(config, LORA, { seed: 4, initB: "random" }));
    try {
      await assert.rejects(stepByStep(new DecodeCacheBackend(engine)), /max \|Δlogit\|/);
    } finally {
      engine.setAdapter(null);
    }
    await stepByStep(new DecodeCacheBackend(engine));
  });

  it("greedy generation equals the float64 reference's argmax token by token", async () => {
    const options: GenerateOptions = { temperature: 0, maxNewTokens: 12 };
    const want = (await generate(reference, tokenizer, prompts, options)).flat();
    const got = (await generate(new DecodeCacheBackend(base), tokenizer, prompts, options)).flat();
    got.forEach((c, i) => {
      assert.deepEqual(
        [c.tokenIds, c.text, c.finishReason],
        [want[i].tokenIds, want[i].text, want[i].finishReason],
      );
      assert.ok(maxDiff(c.logprobs, want[i].logprobs) < 1e-4);
    });
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
    const completions = (await generate(new DecodeCacheBackend(base), tokenizer, prompts, options)).flat();
    for (const c of completions) {
      const prompt = prompts[c.promptIndex];
      const full = referenceForward(config, weights, [[...prompt, ...c.tokenIds]], { temperature: 0.7 });
      const want = full.logprobs[0].slice(prompt.length - 1);
      assert.equal(c.logprobs.length, c.tokenIds.length);
      assert.ok(maxDiff(c.logprobs, want) < 1e-4, `${c.logprobs} vs ${want}`);
    }
  });

  it("rollout shapes: 16 prompts × 4 in batches of 64, rows stopping at different times, equal each prompt alone", async () => {
    const texts = Array.from({ length: 16 }, (_, i) => `Q${i}: ${"7+".repeat(i % 5)}${i}=`);
    const many = texts.map((t) => tokenizer.encode(t));
    const options: GenerateOptions = {
      temperature: 1,
      maxNewTokens: 12,
      n: 4,
      seeds: many.map((_, i) => 100 + i),
      // a stop string and an EOS id end rows at different steps
      stop: ["3"],
      eosTokenIds: [tokenizer.encode("5")[0]],
    };
    const backend = new DecodeCacheBackend(engine);
    engine.setAdapter(initLoraAdapter(config, LORA, { seed: 9, initB: "random" }));
    try {
      const batched = await generate(backend, tokenizer, many, { ...options, batchSize: 64 });
      const lengths = new Set(batched.flat().map((c) => c.tokenIds.length));
      assert.ok(lengths.size >= 3, `rows should finish at different times, got lengths ${[...lengths]}`);
      for (let p = 0; p < many.length; p += 5) {
        const alone = await generate(backend, tokenizer, [many[p]], { ...options, seeds: [100 + p] });
        alone[0].forEach((c, j) => {
          assert.deepEqual(batched[p][j].tokenIds, c.tokenIds, `prompt ${p} sample ${j}`);
          assert.ok(maxDiff(batched[p][j].logprobs, c.logprobs) < 1e-5);
        });
      }
      // Bitwise repeatable.
      const again = await generate(backend, tokenizer, many, { ...options, batchSize: 64 });
      assert.deepEqual(again, batched);
    } finally {
      engine.setAdapter(null);
    }
  });

  it("adapters swap between generate calls on one session and equal the merged-weights model", async () => {
    const backend = new DecodeCacheBackend(engine);
    const options: GenerateOptions = { temperature: 0, maxNewTokens: 8 };
    const baseOut = (await generate(backend, tokenizer, prompts, options)).flat();
    const outputs = [];
    for (const seed of [1, 2]) {
      const adapter = initLoraAdapter(config, LORA, { seed, initB: "random" });
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
    backend.setAdapter(null);
    const again = (await generate(backend, tokenizer, prompts, options)).flat();
    assert.deepEqual(
      again.map((c) => c.tokenIds),
      baseOut.map((c) => c.tokenIds),
    );
    const want = (await generate(reference, tokenizer, prompts, options)).flat();
    assert.deepEqual(
      baseOut.map((c) => c.tokenIds),
      want.map((c) => c.tokenIds),
    );
  });

  it("bad input is a one-line error naming it", async () => {
    const backend = new DecodeCacheBackend(base);
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
      () => engine.setAdapter(initLoraAdapter(config, { ...LORA, rank: 2 })),
      /does not match the engine's LoRA inputs/,
    );
    assert.throws(() => new DecodeCacheBackend(base, { chunk: 0 }), /chunk must be a positive integer/);
  });
});
