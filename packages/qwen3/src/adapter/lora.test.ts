// LoRA configuration, shapes, initialisation, the float64 adapted linear and merging.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { presetConfig, type Qwen3Config } from "../model/config.ts";
import { initModel } from "../model/init.ts";
import { openModelDir } from "../model/model-dir.ts";
import { tokenizerIds } from "../model/tokenizer.ts";
import { loadWeights } from "../model/weights.ts";
import { referenceForward } from "../reference/reference.ts";
import {
  initLoraAdapter,
  LORA_MODULES,
  type LoraConfig,
  loraLayout,
  loraLinear,
  loraModuleShape,
  loraScale,
  loraTensorName,
  mergeLora,
  parseLoraTargets,
  validateLoraConfig,
} from "./lora.ts";

// hidden 48, q 4·16 = 64, kv 2·16 = 32, intermediate 80: every in/out width distinct
const MODEL: Qwen3Config = {
  ...presetConfig("tiny", tokenizerIds("bytes")),
  hiddenSize: 48,
  intermediateSize: 80,
  numHiddenLayers: 2,
  numAttentionHeads: 4,
  numKeyValueHeads: 2,
  headDim: 16,
};
const ALL: LoraConfig = { rank: 4, alpha: 8, useRslora: false, targetModules: [...LORA_MODULES] };

describe("LoRA config", () => {
  it("targets accept short and full names, deduplicate and sort", () => {
    assert.deepEqual(parseLoraTargets("v,q,q_proj"), ["q_proj", "v_proj"]);
    assert.deepEqual(parseLoraTargets(["down", "gate_proj", "up", "o", "k"]), [
      "k_proj",
      "o_proj",
      "gate_proj",
      "up_proj",
      "down_proj",
    ]);
    assert.throws(() => parseLoraTargets("q,lm_head"), /unknown module "lm_head"/);
    assert.throws(() => parseLoraTargets(""), /none given/);
  });

  it("scale is α/r, or α/√r with rsLoRA", () => {
    assert.equal(loraScale({ rank: 16, alpha: 32, useRslora: false }), 2);
    assert.equal(loraScale({ rank: 16, alpha: 32, useRslora: true }), 8);
  });

  it("rejects bad rank and alpha", () => {
    assert.throws(() => validateLoraConfig({ ...ALL, rank: 0 }), /rank must be a positive integer, got 0/);
    assert.throws(() => validateLoraConfig({ ...ALL, rank: 2.5 }), /rank must be a positive integer/);
    assert.throws(() => validateLoraConfig({ ...ALL, alpha: -1 }), /alpha must be a positive number, got -1/);
  });

  it("module shapes follow the model config", () => {
    const shapes = Object.fromEntries(LORA_MODULES.map((m) => [m, loraModuleShape(MODEL, m)]));
    assert.deepEqual(shapes, {
      q_proj: { inFeatures: 48, outFeatures: 64 },
      k_proj: { inFeatures: 48, outFeatures: 32 },
      v_proj: { inFeatures: 48, outFeatures: 32 },
      o_proj: { inFeatures: 64, outFeatures: 48 },
      gate_proj: { inFeatures: 48, outFeatures: 80 },
      up_proj: { inFeatures: 48, outFeatures: 80 },
      down_proj: { inFeatures: 80, outFeatures: 48 },
    });
    assert.equal(loraLayout(MODEL, ALL).length, 14);
    assert.equal(
      loraTensorName(1, "up_proj", "B"),
      "base_model.model.model.layers.1.mlp.up_proj.lora_B.weight",
    );
  });
});

describe("initLoraAdapter", () => {
  it("A is Kaiming-uniform U(±1/√in), B starts at zero", () => {
    const adapter = initLoraAdapter(MODEL, ALL, { seed: 5 });
    for (const p of adapter.pairs) {
      assert.equal(p.a.length, 4 * p.inFeatures);
      assert.equal(p.b.length, p.outFeatures * 4);
      assert.ok(p.b.every((v) => v === 0));
      const bound = 1 / Math.sqrt(p.inFeatures);
      const max = p.a.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
      assert.ok(max <= bound && max > 0.9 * bound, `${p.module}: max |A| ${max}, bound ${bound}`);
      // the variance of U(−c, c) is c²/3
      const variance = p.a.reduce((s, v) => s + v * v, 0) / p.a.length;
      assert.ok(Math.abs(variance / ((bound * bound) / 3) - 1) < 0.25, `${p.module}: variance ${variance}`);
    }
  });

  it("is deterministic per seed and per tensor, independent of the other targets", () => {
    const qv = { ...ALL, targetModules: parseLoraTargets("q,v") };
    const a = initLoraAdapter(MODEL, qv, { seed: 1 });
    const b = initLoraAdapter(MODEL, ALL, { seed: 1 });
    const c = initLoraAdapter(MODEL, qv, { seed: 2 });
    assert.deepEqual(a.pairs[1].a, b.pairs.find((p) => p.layer === 0 && p.module === "v_proj")!.a);
    assert.notDeepEqual(a.pairs[0].a, c.pairs[0].a);
    assert.deepEqual(
      a.pairs.map((p) => `${p.layer}.${p.module}`),
      ["0.q_proj", "0.v_proj", "1.q_proj", "1.v_proj"],
    );
  });

  it("random B is non-zero within U(±1/√r)", () => {
    const adapter = initLoraAdapter(MODEL, ALL, { seed: 1, initB: "random" });
    for (const p of adapter.pairs) {
      assert.ok(p.b.some((v) => v !== 0));
      assert.ok(p.b.every((v) => Math.abs(v) <= 0.5));
    }
  });
});

describe("loraLinear and mergeLora", () => {
  it("loraLinear computes W x + s·B (A x) (hand example)", () => {
    // W [3, 2], A [1, 2], B [3, 1], s = 0.5, x = [1, 2]: A x = 3, W x = [1, 2, 3]
    const y = loraLinear([1, 2], [1, 0, 0, 1, 1, 1], [1, 1], [1, 0, 2], 0.5);
    assert.deepEqual(Array.from(y), [2.5, 2, 6]);
    assert.throws(
      () => loraLinear([1, 2], [1, 0, 0, 1, 1, 1], [1, 1], [1, 0], 0.5),
      /B has 2 values, \[3, 1\] needs 3/,
    );
  });

  const root = mkdtempSync(join(tmpdir(), "qwen3-lora-"));
  after(() => rmSync(root, { recursive: true, force: true }));

  it("merged weights apply W + s·B·A column by column; others are untouched", () => {
    initModel({ config: MODEL, tokenizer: "bytes", out: join(root, "m"), seed: 3, dtype: "f32" });
    const model = openModelDir(join(root, "m"));
    const weights = loadWeights(model.config, model.checkpoint, "float64");
    model.checkpoint.close();
    const adapter = initLoraAdapter(MODEL, { ...ALL, useRslora: true }, { seed: 4, initB: "random" });
    const merged = mergeLora(weights, adapter);
    const s = loraScale(adapter.config);
    for (const p of adapter.pairs) {
      const field = {
        q_proj: "qProj",
        k_proj: "kProj",
        v_proj: "vProj",
        o_proj: "oProj",
        gate_proj: "gateProj",
        up_proj: "upProj",
        down_proj: "downProj",
      } as const;
      const w = weights.layers[p.layer][field[p.module]];
      const w2 = merged.layers[p.layer][field[p.module]];
      for (const col of [0, p.inFeatures - 1]) {
        const e = new Float64Array(p.inFeatures);
        e[col] = 1;
        const y = loraLinear(e, w, p.a, p.b, s);
        for (let o = 0; o < p.outFeatures; o++)
          assert.ok(Math.abs(w2[o * p.inFeatures + col] - y[o]) < 1e-12, `${p.module}[${o}, ${col}]`);
      }
      assert.ok(
        w2.some((v, i) => v !== w[i]),
        `${p.module} changed`,
      );
    }
    assert.deepEqual(merged.layers[1].qNorm, weights.layers[1].qNorm);
    assert.deepEqual(merged.embedTokens, weights.embedTokens);
    // zero B: the forward pass is the base model's; random B changes it
    const ids = [[1, 40, 41, 42, 7]];
    const base = referenceForward(MODEL, weights, ids).logprobs[0];
    const fresh = referenceForward(MODEL, mergeLora(weights, initLoraAdapter(MODEL, ALL, { seed: 4 })), ids);
    assert.deepEqual(fresh.logprobs[0], base);
    const adapted = referenceForward(MODEL, merged, ids).logprobs[0];
    assert.ok(adapted.some((v, i) => Math.abs(v - base[i]) > 1e-6));
  });
});
