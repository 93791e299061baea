import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { initLoraAdapter } from "../adapter/lora.ts";
import { presetConfig } from "../model/config.ts";
import { initModel } from "../model/init.ts";
import { type ModelDir, openModelDir } from "../model/model-dir.ts";
import { loadTokenizer, type Tokenizer, tokenizerIds } from "../model/tokenizer.ts";
import { type DecodeBackendOptions, openDecodeBackend, resolveDecodeEngine } from "./decode-backend.ts";
import { generate } from "./generate.ts";

const root = mkdtempSync(join(tmpdir(), "qwen3-decode-backend-"));
after(() => rmSync(root, { recursive: true, force: true }));

describe("openDecodeBackend", () => {
  const dir = join(root, "tiny");
  let model: ModelDir;
  let tokenizer: Tokenizer;
  let prompts: number[][];

  before(async () => {
    initModel({ config: presetConfig("tiny", tokenizerIds("bytes")), tokenizer: "bytes", out: dir, seed: 3 });
    model = openModelDir(dir);
    tokenizer = await loadTokenizer(dir);
    prompts = ["Hi", "Compute 12*3.", "Hi"].map((t) => tokenizer.encode(t));
  });
  after(() => model?.checkpoint.close());

  /** Greedy completions (2 per prompt) and the engine and dtype that ran. */
  async function greedy(options: DecodeBackendOptions, adapter = false) {
    const lora = {
      rank: 2,
      alpha: 4,
      useRslora: false,
      targetModules: ["v_proj" as const, "up_proj" as const],
    };
    const backend = await openDecodeBackend(model, { ...options, lora: adapter ? lora : undefined });
    try {
      if (adapter) backend.setAdapter(initLoraAdapter(model.config, lora, { seed: 4, initB: "random" }));
      const out = await generate(backend, tokenizer, prompts, { temperature: 0, maxNewTokens: 6, n: 2 });
      return { engine: backend.engine, dtype: backend.dtype, tokens: out.flat().map((c) => c.tokenIds) };
    } finally {
      await backend.release();
    }
  }

  it("defaults to the rollout's engine; fast at float64 runs kv", async () => {
    assert.equal(resolveDecodeEngine("float32", "fast"), "fast");
    assert.equal(resolveDecodeEngine("float64", "fast"), "kv");
    assert.equal(resolveDecodeEngine("float32", "reference"), "reference");
    const fast = await greedy({});
    assert.deepEqual([fast.engine, fast.dtype], ["fast", "float32"]);
    const f64 = await greedy({ dtype: "float64" });
    assert.deepEqual([f64.engine, f64.dtype], ["kv", "float64"]);
  });

  it("every engine and dtype gives the reference's greedy tokens, with and without an adapter", async () => {
    const wants: number[][][] = [];
    for (const adapter of [false, true]) {
      const want = await greedy({ engine: "reference" }, adapter);
      assert.equal(want.dtype, "float64");
      wants.push(want.tokens);
      for (const options of [
        { engine: "fast" },
        { engine: "kv" },
        { engine: "kv", dtype: "float64" },
      ] as DecodeBackendOptions[]) {
        const got = await greedy(options, adapter);
        assert.deepEqual(got.tokens, want.tokens, `${JSON.stringify(options)}, adapter ${adapter}`);
      }
    }
    assert.notDeepEqual(wants[1], wants[0], "the adapter changes no greedy token");
  });

  it("an unknown engine or dtype is a one-line error naming it", async () => {
    await assert.rejects(
      openDecodeBackend(model, { engine: "gpu" as "fast" }),
      /^EngineInputError: engine must be one of fast, kv, reference, got "gpu"$/,
    );
    await assert.rejects(
      openDecodeBackend(model, { dtype: "float16" as "float32" }),
      /^EngineInputError: dtype must be float32 or float64, got "float16"$/,
    );
  });
});
