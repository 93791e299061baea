// A Qwen3-4B-shaped graph builds with every weight kept external (file regions, no data), and its
// inputs and outputs have the right shapes — without creating a session or touching 16 GB.
import assert from "node:assert/strict";
import { test } from "node:test";
import { GraphBuilder, type Value } from "@temper/onnx";
import { parameterCount, presetConfig } from "../model/config.ts";
import { tokenizerIds } from "../model/tokenizer.ts";
import { expectedTensors } from "../model/weights.ts";
import { declareLogprobsGraph, forwardInputs, qwen3Forward } from "./forward-graph.ts";
import { placeholderWeights } from "./graph-weights.ts";

const config = presetConfig("qwen3-4b", tokenizerIds("qwen3"));

function shapeOf(g: GraphBuilder, name: string): Value["shape"] {
  const v = g.outputs.find((o) => o.name === name) ?? g.inputs.find((i) => i.name === name);
  assert.ok(v, `no graph input or output ${name}`);
  return v.shape;
}

test("Qwen3-4B logprobs graph: external weights, checked shapes, small protobuf", () => {
  assert.equal(config.hiddenSize, 2560);
  assert.equal(config.headDim, 128);
  assert.notEqual(config.headDim, config.hiddenSize / config.numAttentionHeads);
  const rssBefore = process.memoryUsage().rss;
  const g = new GraphBuilder("qwen3_4b", { dtype: "float32" });
  declareLogprobsGraph(g, config, placeholderWeights(g, "model.safetensors"), { logits: true, topK: true });
  const model = g.build();

  // every checkpoint tensor is one file-backed initializer, with its Hugging Face name
  const expected = expectedTensors(config).map((t) => t.name);
  assert.deepEqual([...model.fileBacked].sort(), [...expected].sort());
  assert.equal(model.external.length, 0, "no weight bytes held in memory");
  const inits = model.proto.graph!.initializer.filter((t) => t.dataLocation === 1);
  const bytes = inits.reduce((a, t) => a + Number(t.externalData.find((e) => e.key === "length")!.value), 0);
  assert.equal(bytes, parameterCount(config) * 4);
  const q = inits.find((t) => t.name === "model.layers.35.self_attn.q_proj.weight")!;
  assert.deepEqual(q.dims.map(Number), [32 * 128, 2560]);
  const proto = model.toBytes().byteLength;
  assert.ok(proto < 4 * 2 ** 20, `protobuf is ${proto} bytes`);
  const grown = process.memoryUsage().rss - rssBefore;
  assert.ok(grown < 512 * 2 ** 20, `building grew RSS by ${grown} bytes`);

  assert.deepEqual(model.inputNames, ["input_ids", "attention_mask", "position_ids", "temperature", "top_k"]);
  assert.deepEqual(model.outputNames, ["logprobs", "logits", "top_k_logprobs", "top_k_ids"]);
  assert.deepEqual(shapeOf(g, "input_ids"), ["batch", "seq"]);
  assert.deepEqual(shapeOf(g, "logits"), ["batch", "seq", 151936]);
  const lp = shapeOf(g, "logprobs")!;
  assert.equal(lp.length, 2);
  assert.equal(lp[0], "batch");
  // the tied head reuses the embedding: no lm_head tensor
  assert.ok(!expected.includes("lm_head.weight"));
});

test("Qwen3-4B KV-cache graph: past/present shapes [batch, 8, *, 128] per layer", () => {
  const g = new GraphBuilder("qwen3_4b_kv", { dtype: "float32" });
  const inputs = forwardInputs(g, config, true);
  const fwd = qwen3Forward(g, config, placeholderWeights(g), inputs);
  assert.equal(fwd.present.length, 36);
  assert.deepEqual(inputs.past![35].key.shape, ["batch", 8, "past", 128]);
  for (const kv of [fwd.present[0], fwd.present[35]]) {
    const shape = kv.value.shape!;
    assert.equal(shape.length, 4);
    assert.deepEqual([shape[0], shape[1], shape[3]], ["batch", 8, 128]);
  }
  assert.deepEqual(fwd.logits.shape, ["batch", "seq", 151936]);
  assert.deepEqual(fwd.hidden.shape, ["batch", "seq", 2560]);
});
