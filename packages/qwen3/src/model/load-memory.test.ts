// Where a decode engine's weights go and what opening a model costs in private memory, against the
// published shapes' figures computed here from first principles.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { presetConfig } from "./config.ts";
import {
  decodeLoadBytes,
  decodeWeightBytes,
  decodeWeightPlacement,
  MAP_MIN_BYTES,
  weightLoadBytes,
} from "./load-memory.ts";
import { tokenizerIds } from "./tokenizer.ts";

const GB = 1e9;
const qwen = tokenizerIds("qwen3");

describe("decode weight placement and load memory", () => {
  const mini = presetConfig("mini", tokenizerIds("bytes"));
  const small06 = presetConfig("qwen3-0.6b", qwen);
  const big4 = presetConfig("qwen3-4b", qwen);

  it("decode weight bytes: every parameter in float32, plus a tied head's transposed copy", () => {
    // Qwen3-4B: 4,022,468,096 parameters, tied; the head adds vocab × hidden = 151,936 × 2560
    assert.equal(decodeWeightBytes(big4), 4 * (4_022_468_096 + 151_936 * 2560));
    assert.equal(decodeWeightBytes(small06), 4 * (596_049_920 + 151_936 * 1024));
  });

  it("small models stay in memory; mapped ones prepack while a quarter of the machine holds them", () => {
    assert.ok(decodeWeightBytes(mini) < MAP_MIN_BYTES);
    assert.deepEqual(
      { ...decodeWeightPlacement(mini, { machineBytes: 24 * GB }), weightBytes: 0 },
      { mapped: false, prepack: true, weightBytes: 0 },
    );
    const p06 = decodeWeightPlacement(small06, { machineBytes: 24 * GB });
    assert.equal(p06.mapped, true);
    assert.equal(p06.prepack, true);
    const p4 = decodeWeightPlacement(big4, { machineBytes: 24 * GB });
    assert.equal(p4.mapped, true);
    assert.equal(p4.prepack, false);
    assert.equal(decodeWeightPlacement(big4, { machineBytes: 128 * GB }).prepack, true);
    assert.equal(decodeWeightPlacement(big4, { machineBytes: 24 * GB, prepack: true }).prepack, true);
    assert.equal(decodeWeightPlacement(small06, { mapped: false }).mapped, false);
  });

  it("load memory: in-memory weights twice; mapped ones the packing pass and the largest tensor twice", () => {
    const embed = 4 * 151_936 * 2560;
    assert.equal(decodeLoadBytes(big4, "float32", "fast", { machineBytes: 24 * GB }), 2 * embed);
    assert.equal(
      decodeLoadBytes(big4, "float32", "fast", { machineBytes: 128 * GB }),
      decodeWeightBytes(big4) + 2 * embed,
    );
    // kv and float64 hold the weights in memory; the reference always in float64
    assert.equal(decodeLoadBytes(big4, "float32", "kv"), weightLoadBytes(big4, "float32"));
    assert.equal(decodeLoadBytes(big4, "float64", "fast"), 2 * 8 * 4_022_468_096);
    assert.equal(decodeLoadBytes(mini, "float32", "reference"), weightLoadBytes(mini, "float64"));
    assert.equal(decodeLoadBytes(mini, "float32", "fast"), weightLoadBytes(mini, "float32"));
  });
});
