import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  ConfigError,
  configToJson,
  parameterCount,
  parseConfig,
  parseGenerationConfig,
  presetConfig,
  type Qwen3Config,
} from "./config.ts";

// Qwen/Qwen3-4B's config.json as published.
const QWEN3_4B_JSON = {
  architectures: ["Qwen3ForCausalLM"],
  attention_bias: false,
  attention_dropout: 0.0,
  bos_token_id: 151643,
  eos_token_id: 151645,
  head_dim: 128,
  hidden_act: "silu",
  hidden_size: 2560,
  initializer_range: 0.02,
  intermediate_size: 9728,
  max_position_embeddings: 40960,
  max_window_layers: 36,
  model_type: "qwen3",
  num_attention_heads: 32,
  num_hidden_layers: 36,
  num_key_value_heads: 8,
  rms_norm_eps: 1e-6,
  rope_scaling: null,
  rope_theta: 1000000,
  sliding_window: null,
  tie_word_embeddings: true,
  torch_dtype: "bfloat16",
  transformers_version: "4.51.0",
  use_cache: true,
  use_sliding_window: false,
  vocab_size: 151936,
};

const qwenIds = { vocabSize: 151669, bosTokenId: 151643, eosTokenId: 151645 };

describe("parseConfig", () => {
  it("reads Qwen3-4B's config, head_dim 128 ≠ 2560/32", () => {
    const c = parseConfig(QWEN3_4B_JSON);
    assert.equal(c.headDim, 128);
    assert.equal(c.hiddenSize / c.numAttentionHeads, 80);
    assert.equal(c.vocabSize, 151936);
    assert.deepEqual(c.eosTokenIds, [151645]);
    assert.equal(c.tieWordEmbeddings, true);
    assert.equal(c.extra.transformers_version, "4.51.0");
  });

  it("the qwen3-4b preset equals the published config and counts ~4.02B parameters", () => {
    const preset = presetConfig("qwen3-4b", qwenIds);
    const { extra: _a, ...fromPreset } = preset;
    const { extra: _b, ...published } = parseConfig(QWEN3_4B_JSON);
    assert.deepEqual(fromPreset, published);
    // Qwen reports 4.0B parameters, 3.6B without embeddings.
    assert.ok(Math.abs(parameterCount(preset) - 4.02e9) < 0.01e9, String(parameterCount(preset)));
    assert.ok(Math.abs(parameterCount(preset) - 151936 * 2560 - 3.63e9) < 0.01e9);
  });

  it("the qwen3-0.6b preset is Qwen3-0.6B's published shape: ~0.60B parameters, 0.44B without embeddings", () => {
    const { extra: _, ...preset } = presetConfig("qwen3-0.6b", qwenIds);
    const { extra: _b, ...published } = parseConfig({
      ...QWEN3_4B_JSON,
      hidden_size: 1024,
      intermediate_size: 3072,
      max_window_layers: 28,
      num_attention_heads: 16,
      num_hidden_layers: 28,
      num_key_value_heads: 8,
    });
    assert.deepEqual(preset, published);
    const c = presetConfig("qwen3-0.6b", qwenIds);
    assert.ok(Math.abs(parameterCount(c) - 0.596e9) < 0.005e9, String(parameterCount(c)));
    assert.ok(Math.abs(parameterCount(c) - 151936 * 1024 - 0.44e9) < 0.005e9);
  });

  it("round-trips through configToJson", () => {
    const c = parseConfig(QWEN3_4B_JSON);
    assert.deepEqual(parseConfig(configToJson(c)), c);
  });

  it("accepts rope_theta nested in rope_parameters and eos lists", () => {
    const { rope_theta: _, ...rest } = QWEN3_4B_JSON;
    const c = parseConfig({
      ...rest,
      rope_parameters: { rope_type: "default", rope_theta: 5e5 },
      eos_token_id: [1, 2],
    });
    assert.equal(c.ropeTheta, 5e5);
    assert.deepEqual(c.eosTokenIds, [1, 2]);
  });

  const cases: [string, Record<string, unknown>, RegExp][] = [
    ["llama", { model_type: "llama" }, /model_type "llama" is not supported/],
    [
      "architecture",
      { architectures: ["LlamaForCausalLM"] },
      /architectures \["LlamaForCausalLM"\] is not supported/,
    ],
    ["missing hidden_size", { hidden_size: undefined }, /hidden_size is missing/],
    ["missing head_dim", { head_dim: undefined }, /head_dim is missing/],
    ["fractional layers", { num_hidden_layers: 2.5 }, /num_hidden_layers must be a positive integer/],
    [
      "bad GQA",
      { num_key_value_heads: 5 },
      /num_attention_heads \(32\) must be a multiple of num_key_value_heads \(5\)/,
    ],
    ["odd head_dim", { head_dim: 127 }, /head_dim must be even/],
    ["negative eps", { rms_norm_eps: -1 }, /rms_norm_eps must be a positive number/],
    ["missing tie", { tie_word_embeddings: undefined }, /tie_word_embeddings is missing/],
    [
      "scaled rope",
      { rope_scaling: { rope_type: "yarn", factor: 4 } },
      /rope_scaling.rope_type "yarn" is not supported/,
    ],
    ["gelu", { hidden_act: "gelu" }, /hidden_act "gelu" is not supported/],
    ["bias", { attention_bias: true }, /attention_bias true is not supported/],
    ["sliding", { use_sliding_window: true }, /use_sliding_window true is not supported/],
    ["dtype", { torch_dtype: "int8" }, /torch_dtype "int8" is not supported/],
    ["eos outside vocab", { eos_token_id: 200000 }, /eos_token_id 200000 is outside vocab_size 151936/],
  ];
  for (const [label, patch, message] of cases) {
    it(`rejects ${label} with one line naming the field`, () => {
      const json: Record<string, unknown> = { ...QWEN3_4B_JSON, ...patch };
      for (const [k, v] of Object.entries(patch)) if (v === undefined) delete json[k];
      assert.throws(
        () => parseConfig(json, "dir/config.json"),
        (err: Error) =>
          err instanceof ConfigError &&
          message.test(err.message) &&
          err.message.startsWith("dir/config.json: ") &&
          !err.message.includes("\n"),
      );
    });
  }
});

describe("parseGenerationConfig", () => {
  it("reads Qwen3's eos list and sampling defaults", () => {
    const g = parseGenerationConfig({
      bos_token_id: 151643,
      do_sample: true,
      eos_token_id: [151645, 151643],
      pad_token_id: 151643,
      temperature: 0.6,
      top_k: 20,
      top_p: 0.95,
    });
    assert.deepEqual(g, {
      bosTokenId: 151643,
      doSample: true,
      eosTokenIds: [151645, 151643],
      padTokenId: 151643,
      temperature: 0.6,
      topK: 20,
      topP: 0.95,
    });
  });
  it("reads a single eos id", () =>
    assert.deepEqual(parseGenerationConfig({ eos_token_id: 7 }).eosTokenIds, [7]));
  it("rejects a bad eos id naming it", () =>
    assert.throws(
      () => parseGenerationConfig({ eos_token_id: [1, "x"] }),
      /eos_token_id\[1\] must be a non-negative integer/,
    ));
  it("rejects top_p > 1", () =>
    assert.throws(() => parseGenerationConfig({ top_p: 2 }), /top_p must be in \(0, 1\]/));
});

describe("presets", () => {
  const bytes = { vocabSize: 261, bosTokenId: 256, eosTokenId: 258 };
  it("tiny has grouped KV, head_dim ≠ hidden/heads, more rows than tokens", () => {
    const c: Qwen3Config = presetConfig("tiny", bytes);
    assert.equal(c.numAttentionHeads / c.numKeyValueHeads, 2);
    assert.notEqual(c.headDim, c.hiddenSize / c.numAttentionHeads);
    assert.equal(c.vocabSize, 320);
    assert.deepEqual({ ...parseConfig(configToJson(c)), extra: {} }, c);
  });
  it("small has 10–20M parameters with the byte tokenizer", () => {
    const n = parameterCount(presetConfig("small", bytes));
    assert.ok(n > 10e6 && n < 20e6, String(n));
  });
});
