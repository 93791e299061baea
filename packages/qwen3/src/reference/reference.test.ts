import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import type { Qwen3Config } from "../model/config.ts";
import { presetConfig } from "../model/config.ts";
import { initModel } from "../model/init.ts";
import { openModelDir } from "../model/model-dir.ts";
import { Rng } from "../model/prng.ts";
import { tokenizerIds } from "../model/tokenizer.ts";
import { loadWeights, type Qwen3LayerWeights, type Qwen3Weights } from "../model/weights.ts";
import { referenceForward, rmsNorm, rope } from "./reference.ts";

function config(patch: Partial<Qwen3Config>): Qwen3Config {
  return {
    vocabSize: 11,
    hiddenSize: 12,
    intermediateSize: 10,
    numHiddenLayers: 2,
    numAttentionHeads: 4,
    numKeyValueHeads: 2,
    headDim: 6, // ≠ 12 / 4
    rmsNormEps: 1e-6,
    ropeTheta: 10000,
    tieWordEmbeddings: false,
    maxPositionEmbeddings: 64,
    torchDtype: "float32",
    bosTokenId: null,
    eosTokenIds: [],
    extra: {},
    ...patch,
  };
}

const zeros = (n: number) => new Float64Array(n);
const ones = (n: number) => new Float64Array(n).fill(1);

/** Random weights with std 0.5 (norm weights around 1) so every part of the model matters. */
function randomWeights(c: Qwen3Config, seed: number): Qwen3Weights<Float64Array> {
  const rng = new Rng(seed);
  const rand = (n: number, center = 0) => Float64Array.from({ length: n }, () => center + 0.5 * rng.normal());
  const { hiddenSize: h, headDim: d, intermediateSize: m } = c;
  const q = c.numAttentionHeads * d;
  const kv = c.numKeyValueHeads * d;
  const layers = Array.from({ length: c.numHiddenLayers }, () => ({
    qProj: rand(q * h),
    kProj: rand(kv * h),
    vProj: rand(kv * h),
    oProj: rand(h * q),
    qNorm: rand(d, 1),
    kNorm: rand(d, 1),
    gateProj: rand(m * h),
    upProj: rand(m * h),
    downProj: rand(h * m),
    inputLayernorm: rand(h, 1),
    postAttentionLayernorm: rand(h, 1),
  }));
  const embedTokens = rand(c.vocabSize * h);
  return {
    embedTokens,
    layers,
    norm: rand(h, 1),
    lmHead: c.tieWordEmbeddings ? embedTokens : rand(c.vocabSize * h),
  };
}

/** A layer whose attention and MLP add nothing, with unit norms. */
function zeroLayer(c: Qwen3Config): Qwen3LayerWeights<Float64Array> {
  const { hiddenSize: h, headDim: d, intermediateSize: m } = c;
  const q = c.numAttentionHeads * d;
  const kv = c.numKeyValueHeads * d;
  return {
    qProj: zeros(q * h),
    kProj: zeros(kv * h),
    vProj: zeros(kv * h),
    oProj: zeros(h * q),
    qNorm: ones(d),
    kNorm: ones(d),
    gateProj: zeros(m * h),
    upProj: zeros(m * h),
    downProj: zeros(h * m),
    inputLayernorm: ones(h),
    postAttentionLayernorm: ones(h),
  };
}

const logSoftmax = (z: number[]) => {
  const max = Math.max(...z);
  const lse = max + Math.log(z.reduce((s, x) => s + Math.exp(x - max), 0));
  return z.map((x) => x - lse);
};
const close = (a: number, b: number, tol: number, what = "") =>
  assert.ok(Math.abs(a - b) <= tol, `${what} ${a} vs ${b} (diff ${Math.abs(a - b)})`);

describe("reference forward: hand-checkable models", () => {
  it("a layer that adds nothing: logits = lm_head · RMSNorm(embedding)", () => {
    // hidden 2, vocab 3; embeddings [1,0], [0,2], [3,4]; lm_head rows [1,0], [0,1], [1,1].
    const c = config({
      vocabSize: 3,
      hiddenSize: 2,
      numHiddenLayers: 1,
      numAttentionHeads: 1,
      numKeyValueHeads: 1,
      headDim: 2,
      intermediateSize: 1,
      rmsNormEps: 1e-300,
    });
    const w: Qwen3Weights<Float64Array> = {
      embedTokens: Float64Array.of(1, 0, 0, 2, 3, 4),
      layers: [zeroLayer(c)],
      norm: ones(2),
      lmHead: Float64Array.of(1, 0, 0, 1, 1, 1),
    };
    const r = referenceForward(c, w, [[0, 1, 2]], { returnLogits: true });
    // Token 0: RMSNorm([1,0]) = [√2, 0] → logits [√2, 0, √2]; log p(1) = −log(2e^√2 + 1).
    close(r.logprobs[0][0], -Math.log(2 * Math.exp(Math.SQRT2) + 1), 1e-14, "lp1");
    // Token 1: RMSNorm([0,2]) = [0, √2] → logits [0, √2, √2]; log p(2) = √2 − log(1 + 2e^√2).
    close(r.logprobs[0][1], Math.SQRT2 - Math.log(1 + 2 * Math.exp(Math.SQRT2)), 1e-14, "lp2");
    // Token 2: RMSNorm([3,4]) = [3,4]/√12.5.
    const s = Math.sqrt(12.5);
    assert.deepEqual(
      [...r.logits![0].subarray(6, 9)].map((x) => +x.toFixed(12)),
      [3 / s, 4 / s, 7 / s].map((x) => +x.toFixed(12)),
    );
  });

  it("attention with zero queries averages the values of the causal prefix", () => {
    // 1 head, head_dim 2 = hidden; Wv = Wo = I, Wq = Wk = 0 → uniform weights over s ≤ t; MLP zero.
    const c = config({
      vocabSize: 2,
      hiddenSize: 2,
      numHiddenLayers: 1,
      numAttentionHeads: 1,
      numKeyValueHeads: 1,
      headDim: 2,
      intermediateSize: 1,
      rmsNormEps: 1e-300,
    });
    const layer = zeroLayer(c);
    layer.vProj = Float64Array.of(1, 0, 0, 1);
    layer.oProj = Float64Array.of(1, 0, 0, 1);
    const e = [
      [1, 0],
      [1, 2],
    ];
    const w = {
      embedTokens: Float64Array.from(e.flat()),
      layers: [layer],
      norm: ones(2),
      lmHead: Float64Array.of(1, 0, 0, 1),
    };
    const ids = [0, 1, 1, 0];
    const r = referenceForward(c, w, [ids], { returnLogits: true });
    const n = (v: number[]) => {
      const rms = Math.sqrt((v[0] ** 2 + v[1] ** 2) / 2);
      return v.map((x) => x / rms);
    };
    ids.forEach((id, t) => {
      const mean = [0, 1].map((i) => ids.slice(0, t + 1).reduce((s, j) => s + n(e[j])[i], 0) / (t + 1));
      const h = [e[id][0] + mean[0], e[id][1] + mean[1]];
      const expected = n(h); // lm_head = I
      close(r.logits![0][2 * t], expected[0], 1e-13, `t${t}[0]`);
      close(r.logits![0][2 * t + 1], expected[1], 1e-13, `t${t}[1]`);
    });
  });

  it("rotate-half RoPE at position 1 and q/k norms before it, in a two-token attention", () => {
    // hidden = head_dim = 2, Wq = Wk = Wv = Wo = I: q_t = k_t = R(pos_t)·n(e_t), v_t = n(e_t).
    const c = config({
      vocabSize: 2,
      hiddenSize: 2,
      numHiddenLayers: 1,
      numAttentionHeads: 1,
      numKeyValueHeads: 1,
      headDim: 2,
      intermediateSize: 1,
      rmsNormEps: 1e-300,
      ropeTheta: 1e6,
    });
    const I = Float64Array.of(1, 0, 0, 1);
    const layer = { ...zeroLayer(c), qProj: I, kProj: I, vProj: I, oProj: I };
    const e = [
      [1, 0],
      [1, 2],
    ];
    const w = { embedTokens: Float64Array.from(e.flat()), layers: [layer], norm: ones(2), lmHead: I };
    const r = referenceForward(c, w, [[0, 1]], { returnLogits: true });
    const n = (v: number[]) => {
      const rms = Math.sqrt((v[0] ** 2 + v[1] ** 2) / 2);
      return v.map((x) => x / rms);
    };
    // head_dim 2: one frequency, inv_freq = θ^0 = 1, so position 1 rotates by 1 radian.
    const [a, b] = [n(e[0]), n(e[1])];
    const q1 = [b[0] * Math.cos(1) - b[1] * Math.sin(1), b[1] * Math.cos(1) + b[0] * Math.sin(1)];
    const s0 = (q1[0] * a[0] + q1[1] * a[1]) / Math.SQRT2; // k_0 = a (position 0: no rotation)
    const s1 = (b[0] ** 2 + b[1] ** 2) / Math.SQRT2; // rotating q and k alike keeps |b|²
    const p0 = Math.exp(s0) / (Math.exp(s0) + Math.exp(s1));
    const h = [0, 1].map((i) => e[1][i] + p0 * a[i] + (1 - p0) * b[i]);
    const expected = n(h);
    close(r.logits![0][2], expected[0], 1e-13, "x");
    close(r.logits![0][3], expected[1], 1e-13, "y");
  });

  it("rope pairs dimension i with i + d/2 at inv_freq θ^(−2i/d)", () => {
    const out = rope(Float64Array.of(1, 2, 3, 4), 3, 100);
    // d = 4: inv_freq = [1, 100^(−1/2) = 0.1]; angles 3 and 0.3.
    const expected = [
      1 * Math.cos(3) - 3 * Math.sin(3),
      2 * Math.cos(0.3) - 4 * Math.sin(0.3),
      3 * Math.cos(3) + 1 * Math.sin(3),
      4 * Math.cos(0.3) + 2 * Math.sin(0.3),
    ];
    for (const [i, v] of expected.entries()) close(out[i], v, 1e-15, `dim ${i}`);
    const normed = rmsNorm(Float64Array.of(3, 4), 0, 2, Float64Array.of(2, 1), 0);
    close(normed[0], (2 * 3) / Math.sqrt(12.5), 1e-15);
    close(normed[1], 4 / Math.sqrt(12.5), 1e-15);
  });

  it("the SiLU-gated MLP: h + W_down(silu(W_gate y) · W_up y)", () => {
    const c = config({
      vocabSize: 2,
      hiddenSize: 2,
      numHiddenLayers: 1,
      numAttentionHeads: 1,
      numKeyValueHeads: 1,
      headDim: 2,
      intermediateSize: 1,
      rmsNormEps: 1e-300,
    });
    const layer = {
      ...zeroLayer(c),
      gateProj: Float64Array.of(0.5, -1),
      upProj: Float64Array.of(2, 0.25),
      downProj: Float64Array.of(1, -3),
    };
    const w = {
      embedTokens: Float64Array.of(1, 2, -1, 0.5),
      layers: [layer],
      norm: ones(2),
      lmHead: Float64Array.of(1, 0, 0, 1),
    };
    const r = referenceForward(c, w, [[0]], { returnLogits: true });
    const y = [1, 2].map((x) => x / Math.sqrt(2.5));
    const g = 0.5 * y[0] - y[1];
    const u = 2 * y[0] + 0.25 * y[1];
    const act = (g / (1 + Math.exp(-g))) * u;
    const h = [1 + act, 2 - 3 * act];
    const rms = Math.sqrt((h[0] ** 2 + h[1] ** 2) / 2);
    close(r.logits![0][0], h[0] / rms, 1e-14);
    close(r.logits![0][1], h[1] / rms, 1e-14);
  });
});

describe("reference forward: invariances", () => {
  const c = config({});
  const w = randomWeights(c, 1);

  it("left padding leaves every real logprob unchanged", () => {
    const a = [3, 1, 4, 1, 5, 9, 2];
    const b = [6, 5, 3];
    const single = [referenceForward(c, w, [a]).logprobs[0], referenceForward(c, w, [b]).logprobs[0]];
    const padded = [[...a], [0, 0, 0, 0, ...b]];
    const mask = [a.map(() => 1), [0, 0, 0, 0, 1, 1, 1]];
    const r = referenceForward(c, w, padded, { attentionMask: mask });
    for (const [i, lp] of single[0].entries()) close(r.logprobs[0][i], lp, 1e-12, `a${i}`);
    // Padded row: entries t−1 for t = 5, 6 are b's; entries touching padding are 0.
    assert.deepEqual(r.logprobs[1].slice(0, 4), [0, 0, 0, 0]);
    for (const [i, lp] of single[1].entries()) close(r.logprobs[1][4 + i], lp, 1e-12, `b${i}`);
    // The pad token ids do not matter.
    const other = referenceForward(c, w, [[7, 8, 9, 10, ...b]], { attentionMask: [mask[1]] });
    assert.deepEqual(other.logprobs[0], r.logprobs[1]);
  });

  it("right padding leaves every real logprob unchanged", () => {
    const b = [6, 5, 3];
    const r = referenceForward(c, w, [[...b, 2, 2]], { attentionMask: [[1, 1, 1, 0, 0]] });
    const single = referenceForward(c, w, [b]).logprobs[0];
    for (const [i, lp] of single.entries()) close(r.logprobs[0][i], lp, 1e-12);
    assert.deepEqual(r.logprobs[0].slice(2), [0, 0]);
  });

  it("is causal: a later token never changes earlier logprobs", () => {
    const x = referenceForward(c, w, [[1, 2, 3, 4, 5]]).logprobs[0];
    const y = referenceForward(c, w, [[1, 2, 3, 4, 9]]).logprobs[0];
    assert.deepEqual(x.slice(0, 3), y.slice(0, 3));
    assert.notEqual(x[3], y[3]);
  });

  it("logprobs are log-softmax of logits / temperature", () => {
    const ids = [2, 7, 1, 8, 2, 8];
    const r = referenceForward(c, w, [ids], { returnLogits: true, temperature: 0.7 });
    const V = c.vocabSize;
    for (let t = 1; t < ids.length; t++) {
      const row = [...r.logits![0].subarray((t - 1) * V, t * V)].map((z) => z / 0.7);
      close(r.logprobs[0][t - 1], logSoftmax(row)[ids[t]], 1e-12, `t${t}`);
    }
    // A distribution: probabilities of all next tokens sum to one.
    const all = logSoftmax([...r.logits![0].subarray(0, V)]);
    close(
      all.reduce((s, x) => s + Math.exp(x), 0),
      1,
      1e-12,
    );
  });

  it("tied weights equal an untied head holding a copy of the embedding", () => {
    const tied = config({ tieWordEmbeddings: true });
    const wt = randomWeights(tied, 2);
    assert.equal(wt.lmHead, wt.embedTokens);
    const untied = { ...wt, lmHead: Float64Array.from(wt.embedTokens) };
    const ids = [[1, 2, 3, 10, 0]];
    assert.deepEqual(
      referenceForward(config({}), untied, ids).logprobs,
      referenceForward(tied, wt, ids).logprobs,
    );
    const other = { ...wt, lmHead: randomWeights(config({}), 3).lmHead };
    assert.notDeepEqual(
      referenceForward(config({}), other, ids).logprobs,
      referenceForward(tied, wt, ids).logprobs,
    );
  });

  it("grouped KV heads equal explicitly repeated KV heads (head j serves query heads j·rep … (j+1)·rep−1)", () => {
    const grouped = config({ numAttentionHeads: 4, numKeyValueHeads: 2 });
    const wg = randomWeights(grouped, 4);
    const d = grouped.headDim;
    const h = grouped.hiddenSize;
    const rep = 2;
    const expand = (m: Float64Array) => {
      const out = new Float64Array(4 * d * h);
      for (let q = 0; q < 4; q++)
        out.set(m.subarray(Math.floor(q / rep) * d * h, (Math.floor(q / rep) + 1) * d * h), q * d * h);
      return out;
    };
    const full = config({ numAttentionHeads: 4, numKeyValueHeads: 4 });
    const wf = {
      ...wg,
      layers: wg.layers.map((l) => ({ ...l, kProj: expand(l.kProj), vProj: expand(l.vProj) })),
    };
    const ids = [
      [1, 5, 9, 2, 6],
      [0, 10, 3, 3, 7],
    ];
    const a = referenceForward(grouped, wg, ids).logprobs;
    const b = referenceForward(full, wf, ids).logprobs;
    for (const [i, row] of a.entries()) for (const [j, lp] of row.entries()) close(lp, b[i][j], 1e-12);
    // Interleaved assignment (q head j ↔ kv head j mod 2) would give different results.
    const wrong = (m: Float64Array) => {
      const out = new Float64Array(4 * d * h);
      for (let q = 0; q < 4; q++) out.set(m.subarray((q % 2) * d * h, ((q % 2) + 1) * d * h), q * d * h);
      return out;
    };
    const ww = {
      ...wg,
      layers: wg.layers.map((l) => ({ ...l, kProj: wrong(l.kProj), vProj: wrong(l.vProj) })),
    };
    assert.ok(Math.abs(referenceForward(full, ww, ids).logprobs[0][3] - a[0][3]) > 1e-6);
  });

  it("rejects ids outside the vocabulary and ragged batches, naming them", () => {
    assert.throws(
      () => referenceForward(c, w, [[1, 11]]),
      /inputIds\[0\]\[1\] = 11 is outside vocab_size 11/,
    );
    assert.throws(
      () => referenceForward(c, w, [[1, 2], [1]]),
      /inputIds\[1\] has 1 tokens, inputIds\[0\] has 2/,
    );
    assert.throws(
      () => referenceForward(c, w, [[1, 2]], { attentionMask: [[1, 2]] }),
      /attentionMask\[0\] holds a value other than 0 or 1/,
    );
  });
});

describe("reference forward on a checkpoint from disk", () => {
  const root = mkdtempSync(join(tmpdir(), "qwen3-ref-"));
  after(() => rmSync(root, { recursive: true, force: true }));

  it("a sharded bf16 tiny model (untied, grouped KV, head_dim ≠ hidden/heads) gives the same logprobs from float32 and float64 loads", () => {
    const out = join(root, "tiny");
    initModel({
      config: presetConfig("tiny", tokenizerIds("bytes")),
      tokenizer: "bytes",
      out,
      seed: 5,
      shards: 2,
    });
    const m = openModelDir(out);
    const w64 = loadWeights(m.config, m.checkpoint, "float64");
    const w32 = loadWeights(m.config, m.checkpoint, "float32");
    m.checkpoint.close();
    const ids = [[257, 117, 115, 101, 114, 10, 50, 43, 50, 258]];
    const a = referenceForward(m.config, w64, ids).logprobs[0];
    // bf16 values are exact in float32, and the reference computes in float64 either way.
    assert.deepEqual(referenceForward(m.config, w32, ids).logprobs[0], a);
    assert.equal(a.length, ids[0].length - 1);
    // Random init (std 0.02): logits are small, so near uniform over the 320 rows, but not exactly.
    for (const lp of a) close(lp, -Math.log(320), 1);
    assert.ok(a.some((lp) => Math.abs(lp + Math.log(320)) > 1e-3));
  });
});
