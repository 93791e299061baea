// The ONNX forward graph and engine against the independent float64 reference (reference.ts).
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { GraphBuilder, Session, tensor } from "@temper/onnx";
import { Qwen3Engine } from "../infer/engine.ts";
import { presetConfig, type Qwen3Config } from "../model/config.ts";
import { initModel } from "../model/init.ts";
import { openModelDir } from "../model/model-dir.ts";
import { tokenizerIds } from "../model/tokenizer.ts";
import { loadWeights, type Qwen3Weights } from "../model/weights.ts";
import { referenceForward } from "../reference/reference.ts";
import { EngineInputError, leftPad, positionIdsFromMask } from "./engine-batch.ts";
import { declareLogprobsGraph, forwardInputs, linear, qwen3Forward } from "./forward-graph.ts";
import { checkpointWeights, fileRegionWeights } from "./graph-weights.ts";

const root = mkdtempSync(join(tmpdir(), "qwen3-graph-"));
after(() => rmSync(root, { recursive: true, force: true }));

// Different lengths → left padding; ids near both ends of the embedding (including rows the
// tokenizer lacks).
const SEQUENCES = [
  [1, 5, 9, 33, 70, 2, 101, 255],
  [4, 8, 15, 16],
  [300, 12, 319],
  [7, 7],
];

function maxDiff(got: readonly number[], want: readonly number[]): number {
  assert.equal(got.length, want.length);
  return got.reduce((m, v, i) => Math.max(m, Math.abs(v - want[i])), 0);
}

function referenceLogprobs(config: Qwen3Config, weights: Qwen3Weights, temperature: number): number[][] {
  return SEQUENCES.map((s) => referenceForward(config, weights, [s], { temperature }).logprobs[0]);
}

function checkAgainstReference(label: string, dir: string) {
  let config: Qwen3Config;
  let weights: Qwen3Weights<Float64Array>;
  before(() => {
    const model = openModelDir(dir);
    config = model.config;
    weights = loadWeights(config, model.checkpoint, "float64");
    model.checkpoint.close();
  });

  for (const [dtype, tol] of [
    ["float64", 1e-9],
    ["float32", 1e-4],
  ] as const) {
    it(`${label}: ${dtype} logprobs within ${tol} of the float64 reference (left padding, T = 1 and 0.7)`, async () => {
      const engine = await Qwen3Engine.load(dir, { dtype, threads: 1 });
      try {
        for (const temperature of [1, 0.7]) {
          const got = await engine.logprobs(SEQUENCES, { temperature });
          const want = referenceLogprobs(config, weights, temperature);
          got.logprobs.forEach((row, b) => {
            assert.equal(row.length, SEQUENCES[b].length - 1);
            const d = maxDiff(row, want[b]);
            assert.ok(d < tol, `sequence ${b} at T=${temperature}: max |Δ| = ${d}`);
          });
        }
      } finally {
        await engine.release();
      }
    });
  }
}

describe("sharded bf16 checkpoint, untied head, grouped KV heads, head_dim ≠ hidden/heads", () => {
  const dir = join(root, "tiny-sharded");
  const config = presetConfig("tiny", tokenizerIds("bytes"));
  before(() => initModel({ config, tokenizer: "bytes", out: dir, seed: 11, dtype: "bf16", shards: 3 }));

  it("the checkpoint has the properties under test", () => {
    assert.equal(config.tieWordEmbeddings, false);
    assert.ok(config.numKeyValueHeads < config.numAttentionHeads);
    assert.notEqual(config.headDim, config.hiddenSize / config.numAttentionHeads);
    const shards = readdirSync(dir).filter((f) => /^model-\d+-of-00003\.safetensors$/.test(f));
    assert.equal(shards.length, 3);
    const model = openModelDir(dir);
    assert.deepEqual([...new Set([...model.checkpoint.tensors.values()].map((t) => t.dtype))], ["BF16"]);
    model.checkpoint.close();
  });

  checkAgainstReference("untied", dir);

  it("logits match the reference's raw logits; top-k is the sorted distribution", async () => {
    const model = openModelDir(dir);
    const weights = loadWeights(model.config, model.checkpoint, "float64");
    model.checkpoint.close();
    const engine = await Qwen3Engine.load(dir, { dtype: "float64", logits: true, threads: 1 });
    try {
      const batch = leftPad(SEQUENCES);
      const out = await engine.forward(batch, { temperature: 0.5, topK: 5 });
      const V = config.vocabSize;
      const S = batch.seq;
      SEQUENCES.forEach((s, b) => {
        const pad = S - s.length;
        const ref = referenceForward(model.config, weights, [s], { returnLogits: true }).logits![0];
        const got = Array.from(out.logits!.subarray((b * S + pad) * V, (b + 1) * S * V));
        assert.ok(maxDiff(got, Array.from(ref)) < 1e-9, `logits of sequence ${b}`);
        // graph logprobs row: 0 at padding and at the first real token
        for (let t = 0; t <= pad; t++) assert.equal(out.logprobs[b * S + t], 0);
        // top-5 of the last scored position = the 5 largest of log_softmax(logits / 0.5)
        const last = ref.subarray((s.length - 2) * V, (s.length - 1) * V);
        const scaled = Array.from(last, (z) => z / 0.5);
        const m = Math.max(...scaled);
        const lse = m + Math.log(scaled.reduce((a, z) => a + Math.exp(z - m), 0));
        const order = scaled.map((z, id) => ({ id, lp: z - lse })).sort((x, y) => y.lp - x.lp);
        const at = (b * (S - 1) + S - 2) * 5;
        for (let j = 0; j < 5; j++) {
          assert.equal(Number(out.topKIds[at + j]), order[j].id);
          assert.ok(Math.abs(out.topKLogprobs[at + j] - order[j].lp) < 1e-9);
        }
      });
    } finally {
      await engine.release();
    }
  });

  it("logprobs() returns T−1 values and top-k aligned with them", async () => {
    const engine = await Qwen3Engine.load(dir, { dtype: "float64", threads: 1 });
    try {
      const r = await engine.logprobs([[3, 4, 5], [9]], { topK: 3 });
      assert.equal(r.logprobs[0].length, 2);
      assert.deepEqual(r.logprobs[1], []);
      assert.equal(r.topK![0].length, 2);
      assert.deepEqual(r.topK![1], []);
      r.topK![0].forEach((top, i) => {
        assert.equal(top.length, 3);
        assert.ok(top[0].logprob >= top[1].logprob && top[1].logprob >= top[2].logprob);
        // the scored token's logprob can exceed the top-3 only if it is among them
        assert.ok(r.logprobs[0][i] <= top[0].logprob + 1e-12);
      });
      const single = await engine.logprobs([[9], [10]]);
      assert.deepEqual(single.logprobs, [[], []]);
    } finally {
      await engine.release();
    }
  });

  it("bad input is one line naming it", async () => {
    const engine = await Qwen3Engine.load(dir, { threads: 1 });
    try {
      const cases: [Promise<unknown>, RegExp][] = [
        [engine.logprobs([]), /no sequences given/],
        [engine.logprobs([[1, 2], []]), /sequence 1 is empty/],
        [engine.logprobs([[1, 320]]), /sequence 0 token 1: id 320 is outside vocab_size 320/],
        [engine.logprobs([[1, 2]], { temperature: 0 }), /temperature must be a positive number/],
        [engine.logprobs([[1, 2]], { topK: 0 }), /top-k must be an integer in 1\.\.320/],
      ];
      for (const [p, message] of cases)
        await assert.rejects(p, (e: Error) => e instanceof EngineInputError && message.test(e.message));
    } finally {
      await engine.release();
    }
    await assert.rejects(Qwen3Engine.load(dir, { provider: "cuda" }), /execution provider "cuda"/);
  });
});

describe("tied head", () => {
  const dir = join(root, "tiny-tied");
  before(() => {
    const config = { ...presetConfig("tiny", tokenizerIds("bytes")), tieWordEmbeddings: true };
    initModel({ config, tokenizer: "bytes", out: dir, seed: 12 });
  });
  checkAgainstReference("tied", dir);
});

describe("graph pieces for the decode and training graphs", () => {
  it("linear with a LoRA pair equals the merged weight W + s·B·A", async () => {
    const [n, din, dout, r, s] = [3, 5, 4, 2, 0.75];
    const vals = (len: number, k: number) => Array.from({ length: len }, (_, i) => Math.sin(k * (i + 1)));
    const [x, w, a, b] = [vals(n * din, 1.3), vals(dout * din, 0.7), vals(r * din, 2.1), vals(dout * r, 0.4)];
    const g = new GraphBuilder("lora", { dtype: "float64" });
    const xi = g.floatInput("x", [n, din]);
    const y = linear(g, xi, g.weight("w", "float64", [dout, din], w), {
      a: g.floatInput("a", [r, din]),
      b: g.floatInput("b", [dout, r]),
      scale: s,
    });
    g.output(y, "y");
    const session = await Session.create(g.build(), { threads: 1, optimization: "basic" });
    const out = (
      await session.run({
        x: tensor("float64", x, [n, din]),
        a: tensor("float64", a, [r, din]),
        b: tensor("float64", b, [dout, r]),
      })
    ).y.data as Float64Array;
    await session.release();
    for (let i = 0; i < n; i++)
      for (let o = 0; o < dout; o++) {
        let want = 0;
        for (let j = 0; j < din; j++) {
          let ba = 0;
          for (let q = 0; q < r; q++) ba += b[o * r + q] * a[q * din + j];
          want += x[i * din + j] * (w[o * din + j] + s * ba);
        }
        assert.ok(Math.abs(out[i * dout + o] - want) < 1e-12, `y[${i},${o}]`);
      }
  });

  it("attention continues from past keys/values: prefix + cached step = full forward", async () => {
    const dir = join(root, "tiny-sharded");
    const model = openModelDir(dir);
    const config = model.config;
    const g = new GraphBuilder("kv", { dtype: "float64" });
    const inputs = forwardInputs(g, config, true);
    const fwd = qwen3Forward(g, config, checkpointWeights(g, model.checkpoint), inputs);
    model.checkpoint.close();
    g.output(fwd.logits, "logits");
    fwd.present.forEach((kv, i) => {
      g.output(kv.key, `present.${i}.key`);
      g.output(kv.value, `present.${i}.value`);
    });
    const session = await Session.create(g.build(), { threads: 1, optimization: "basic" });
    const { numKeyValueHeads: kvh, headDim: d, numHiddenLayers: L, vocabSize: V } = config;
    // two rows, the second left-padded by 2
    const rows = [
      [5, 6, 7, 8, 9],
      [0, 0, 11, 12, 13],
    ];
    const mask = rows.map((r, b) => r.map((_, t) => (b === 1 && t < 2 ? 0 : 1)));
    const run = async (cols: [number, number], past: Record<string, Float64Array>, pastLen: number) => {
      const [from, to] = cols;
      const S = to - from;
      const fullMask = BigInt64Array.from(
        mask.flatMap((m) => m.slice(0, to)),
        BigInt,
      );
      const pos = positionIdsFromMask(fullMask, 2, to);
      const feeds: Record<string, ReturnType<typeof tensor>> = {
        input_ids: tensor(
          "int64",
          BigInt64Array.from(
            rows.flatMap((r) => r.slice(from, to)),
            BigInt,
          ),
          [2, S],
        ),
        attention_mask: tensor("int64", fullMask, [2, to]),
        position_ids: tensor(
          "int64",
          BigInt64Array.from([0, 1].flatMap((b) => Array.from(pos.subarray(b * to + from, b * to + to)))),
          [2, S],
        ),
      };
      for (let i = 0; i < L; i++)
        for (const kind of ["key", "value"])
          feeds[`past_key_values.${i}.${kind}`] = tensor(
            "float64",
            past[`present.${i}.${kind}`] ?? new Float64Array(0),
            [2, kvh, pastLen, d],
          );
      return session.run(feeds);
    };
    const full = await run([0, 5], {}, 0);
    const prefix = await run([0, 3], {}, 0);
    const cache = Object.fromEntries(
      Object.entries(prefix)
        .filter(([k]) => k.startsWith("present"))
        .map(([k, t]) => [k, t.data as Float64Array]),
    );
    const step = await run([3, 5], cache, 3);
    await session.release();
    const fullLogits = full.logits.data as Float64Array;
    const stepLogits = step.logits.data as Float64Array;
    for (let b = 0; b < 2; b++)
      for (let t = 3; t < 5; t++) {
        if (!mask[b][t]) continue;
        const want = Array.from(fullLogits.subarray((b * 5 + t) * V, (b * 5 + t + 1) * V));
        const got = Array.from(stepLogits.subarray((b * 2 + t - 3) * V, (b * 2 + t - 2) * V));
        assert.ok(maxDiff(got, want) < 1e-10, `row ${b} position ${t}`);
      }
    assert.deepEqual(step["present.0.key"].dims, [2, kvh, 5, d]);
  });

  it("f32 checkpoint tensors referenced in place (file regions) give the same logprobs", async () => {
    const dir = join(root, "tiny-f32");
    const config = presetConfig("tiny", tokenizerIds("bytes"));
    initModel({ config, tokenizer: "bytes", out: dir, seed: 13, dtype: "f32", shards: 2 });
    const model = openModelDir(dir);
    const g = new GraphBuilder("regions", { dtype: "float32" });
    declareLogprobsGraph(g, model.config, fileRegionWeights(g, model.checkpoint, dir), { topK: true });
    model.checkpoint.close();
    const built = g.build();
    assert.equal(built.external.length, 0);
    assert.equal(built.fileBacked.length, 2 + 11 * config.numHiddenLayers + 1);
    const session = await Session.create(await built.save(dir, "logprobs.onnx"), { threads: 1 });
    const batch = leftPad(SEQUENCES);
    const dims = [batch.batch, batch.seq];
    const out = await session.run({
      input_ids: tensor("int64", batch.inputIds, dims),
      attention_mask: tensor("int64", batch.attentionMask, dims),
      position_ids: tensor("int64", batch.positionIds, dims),
      temperature: tensor("float32", [1], []),
      top_k: tensor("int64", [1], [1]),
    });
    await session.release();
    const engine = await Qwen3Engine.load(dir, { threads: 1 });
    const want = await engine.forward(batch);
    await engine.release();
    assert.ok(maxDiff(Array.from(out.logprobs.data as Float32Array), Array.from(want.logprobs)) < 1e-5);
  });
});
