// The mapped weight cache: an engine over mapped weights (prepacked or not) computes bitwise what the
// in-memory engine computes; a second open converts nothing; a racing or broken conversion leaves no
// half-written entry; and sessions in one process and in two processes share one copy of the weights.
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import type { LoraConfig } from "../adapter/lora.ts";
import { initLoraAdapter } from "../adapter/lora.ts";
import { Qwen3Engine } from "../infer/engine.ts";
import { Qwen3DecodeEngine } from "../infer/engine-decode.ts";
import { presetConfig } from "../model/config.ts";
import { initModel } from "../model/init.ts";
import { type DecodeWeightsOptions, decodeWeightBytes } from "../model/load-memory.ts";
import { openModelDir } from "../model/model-dir.ts";
import { tokenizerIds } from "../model/tokenizer.ts";
import { grpoBatch, placeholderBatch, tinyModelDir } from "../testing/train.ts";
import { Qwen3Trainer } from "../train/train.ts";
import type { TrainLossConfig } from "./train-graph.ts";
import { cachedModelHash, MappedWeights } from "./weight-cache.ts";

const root = mkdtempSync(join(tmpdir(), "qwen3-weight-cache-"));
after(() => rmSync(root, { recursive: true, force: true }));

const LORA: LoraConfig = {
  rank: 4,
  alpha: 8,
  useRslora: false,
  targetModules: ["q_proj", "v_proj", "down_proj"],
};

async function run(dir: string, weights: DecodeWeightsOptions, adapterSeed?: number) {
  const model = openModelDir(dir);
  const engine = await Qwen3DecodeEngine.fromCheckpoint(model.config, model.checkpoint, {
    threads: 1,
    lora: adapterSeed === undefined ? undefined : LORA,
    weights,
  });
  model.checkpoint.close();
  if (adapterSeed !== undefined)
    engine.setAdapter(initLoraAdapter(model.config, LORA, { seed: adapterSeed, initB: "random" }));
  const { numHiddenLayers: L } = model.config;
  // a prefill of two rows (the second left-padded), then one decode step over its cache
  const ids = BigInt64Array.from([5n, 9n, 13n, 2n, 0n, 7n, 11n, 3n]);
  const mask = BigInt64Array.from([1n, 1n, 1n, 1n, 0n, 1n, 1n, 1n]);
  const pos = BigInt64Array.from([0n, 1n, 2n, 3n, 0n, 0n, 1n, 2n]);
  const pre = await engine.run({
    batch: 2,
    seq: 4,
    inputIds: ids,
    attentionMask: mask,
    positionIds: pos,
    capacity: 0,
    cacheBias: new Float32Array(0),
    cache: engine.emptyCache,
  });
  const { numKeyValueHeads: kvh, headDim: d } = model.config;
  const cache = Array.from({ length: 2 * L }, (_, i) => {
    const buf = new Float32Array(2 * kvh * 4 * d);
    const per = 2 * L * kvh;
    // new_key_values [batch, 2·L·kvh, seq, d] → buffer i [batch, kvh, 4, d]
    for (let b = 0; b < 2; b++)
      for (let h = 0; h < kvh; h++)
        buf.set(
          pre.newKeyValues.subarray((b * per + i * kvh + h) * 4 * d, ((b * per + i * kvh + h) * 4 + 4) * d),
          (b * kvh + h) * 4 * d,
        );
    return buf;
  });
  const step = await engine.run({
    batch: 2,
    seq: 1,
    inputIds: BigInt64Array.from([17n, 19n]),
    attentionMask: BigInt64Array.from([1n, 1n]),
    positionIds: BigInt64Array.from([4n, 3n]),
    capacity: 4,
    cacheBias: Float32Array.from([0, 0, 0, 0, -1e30, 0, 0, 0]),
    cache,
  });
  await engine.release();
  return { prefill: pre.logits, step: step.logits, kv: pre.newKeyValues };
}

function sameBits(a: Float32Array, b: Float32Array, what: string): void {
  assert.equal(a.length, b.length, what);
  const ua = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const ub = new Uint32Array(b.buffer, b.byteOffset, b.length);
  const i = ua.findIndex((v, k) => v !== ub[k]);
  assert.equal(i, -1, `${what}: first difference at ${i} (${a[i]} vs ${b[i]})`);
}

describe("mapped weight cache (decode engine)", () => {
  const dir = join(root, "tiny");
  initModel({ config: presetConfig("tiny", tokenizerIds("bytes")), tokenizer: "bytes", out: dir, seed: 11 });

  for (const adapterSeed of [undefined, 4]) {
    it(`computes bitwise what the in-memory engine computes, ${adapterSeed === undefined ? "base graph" : "LoRA graph with an adapter"}`, async () => {
      const cacheRoot = join(root, `cache-${adapterSeed ?? "base"}`);
      const memory = await run(dir, { mapped: false }, adapterSeed);
      const packed = await run(dir, { mapped: true, prepack: true, cacheRoot }, adapterSeed);
      for (const k of ["prefill", "step", "kv"] as const) sameBits(packed[k], memory[k], `prepacked ${k}`);
      const unpacked = await run(dir, { mapped: true, prepack: false, cacheRoot }, adapterSeed);
      // no prepacking runs other MatMul kernels: the same values to float32 rounding, not the same bits
      for (const k of ["prefill", "step"] as const) {
        let worst = 0;
        for (let i = 0; i < memory[k].length; i++)
          worst = Math.max(worst, Math.abs(unpacked[k][i] - memory[k][i]));
        assert.ok(worst < 1e-4, `unpacked ${k}: max |difference| ${worst}`);
      }
      // one entry: weights converted once, one graph file, one packed graph for this CPU
      const entries = readdirSync(cacheRoot).filter((e) => e !== "hashes");
      assert.equal(entries.length, 1);
      const files = readdirSync(join(cacheRoot, entries[0])).sort();
      assert.deepEqual(
        files.map((f) => f.replace(/-[0-9a-f]+(-[0-9a-f]+)?(\.onnx)?$/, "$2")),
        [
          adapterSeed === undefined ? "decode.onnx" : "decode-lora.onnx",
          "manifest.json",
          "packed",
          "weights.bin",
        ],
      );
      const weights = statSync(join(cacheRoot, entries[0], "weights.bin")).size;
      const config = openModelDir(dir).config;
      assert.ok(weights >= decodeWeightBytes(config) && weights < decodeWeightBytes(config) + 4096 * 200);
    });
  }

  it("reopens without converting, and a changed model gets a new entry", async () => {
    const cacheRoot = join(root, "cache-reopen");
    await run(dir, { mapped: true, prepack: false, cacheRoot });
    const first = await MappedWeights.open(dir, "decode-v1", cacheRoot);
    assert.equal(first.hit, true);
    const hash = await cachedModelHash(dir, cacheRoot);
    const other = join(root, "tiny-other");
    initModel({
      config: presetConfig("tiny", tokenizerIds("bytes")),
      tokenizer: "bytes",
      out: other,
      seed: 12,
    });
    assert.notEqual(await cachedModelHash(other, cacheRoot), hash);
    assert.equal((await MappedWeights.open(other, "decode-v1", cacheRoot)).hit, false);
  });

  it("a cache it cannot write is one line naming the directory and the variable", async () => {
    const blocked = join(root, "not-a-dir");
    writeFileSync(blocked, "");
    await assert.rejects(
      MappedWeights.open(dir, "decode-v1", join(blocked, "cache")),
      (err: Error) =>
        /^weight cache .*not-a-dir.*: ENOTDIR .*TEMPER_WEIGHT_CACHE/.test(err.message) &&
        !err.message.includes("\n"),
    );
  });

  it("a conversion that fails leaves no entry behind", async () => {
    const cacheRoot = join(root, "cache-fail");
    const cache = await MappedWeights.open(dir, "decode-v1", cacheRoot);
    cache.region("a", [2], () => Float32Array.from([1, 2]));
    assert.throws(() => cache.region("b", [3], () => Float32Array.from([1])), /1 values for \[3\]/);
    cache.abandon();
    assert.deepEqual(readdirSync(cacheRoot), ["hashes"]);
    assert.equal((await MappedWeights.open(dir, "decode-v1", cacheRoot)).hit, false);
  });
});

describe("mapped checkpoint weights (trainer and logprobs engine)", () => {
  const dir = tinyModelDir(mkdtempSync(join(root, "train-")), 7);
  const cacheRoot = join(root, "cache-checkpoint");
  const lora: LoraConfig = {
    rank: 4,
    alpha: 8,
    useRslora: false,
    targetModules: ["q_proj", "v_proj", "up_proj"],
  };
  const loss: TrainLossConfig = { kind: "grpo", aggregation: "token", beta: 0.04 };

  it("a LoRA training step over mapped weights gives bitwise the in-memory step's loss and gradients", async () => {
    const config = openModelDir(dir).config;
    const adapter = initLoraAdapter(config, lora, { seed: 3, initB: "random" });
    const results = [];
    for (const mappedWeights of [false, true]) {
      const trainer = await Qwen3Trainer.load(dir, {
        mode: "lora",
        lora,
        loss,
        dtype: "float32",
        threads: 1,
        evaluate: true,
        mappedWeights,
        weightCache: cacheRoot,
      });
      const lp = (await trainer.step(placeholderBatch(), adapter)).logprobs;
      const step = await trainer.step(grpoBatch(lp), adapter);
      const evaluated = await trainer.evaluate(grpoBatch(lp), adapter);
      results.push({ step, evaluated });
      await trainer.release();
    }
    const [memory, mapped] = results;
    assert.equal(mapped.step.loss, memory.step.loss);
    assert.equal(mapped.evaluated.loss, memory.evaluated.loss);
    for (const [name, g] of memory.step.grads)
      sameBits(mapped.step.grads.get(name) as Float32Array, g as Float32Array, name);
    const entries = readdirSync(cacheRoot).filter((e) => e !== "hashes");
    assert.equal(entries.length, 1);
    const graphs = readdirSync(join(cacheRoot, entries[0])).filter((f) => f.endsWith(".onnx"));
    assert.deepEqual(graphs.map((f) => f.replace(/-[0-9a-f]{16}\.onnx$/, "")).sort(), [
      "train",
      "train-loss",
    ]);
  });

  it("the logprobs engine over mapped weights gives bitwise the in-memory logprobs", async () => {
    const out = [];
    for (const mappedWeights of [false, true]) {
      const engine = await Qwen3Engine.load(dir, {
        threads: 1,
        logits: true,
        mappedWeights,
        weightCache: cacheRoot,
      });
      out.push(
        await engine.logprobs(
          [
            [1, 40, 41, 42, 7],
            [3, 70, 71],
          ],
          { topK: 2 },
        ),
      );
      await engine.release();
    }
    for (let b = 0; b < 2; b++) assert.deepEqual(out[1].logprobs[b], out[0].logprobs[b]);
  });
});

/** A process's anonymous memory, and the PSS of its mappings of files under `under` (bytes). */
function memoryOf(pid: number, under: string): { anon: number; mappedPss: number } {
  const anon = Number(/^Anonymous:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, "utf8"))![1]);
  let mappedPss = 0;
  let inCache = false;
  for (const line of readFileSync(`/proc/${pid}/smaps`, "utf8").split("\n")) {
    const header = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \d+\s*(.*)$/.exec(line);
    if (header) inCache = header[1].startsWith(under);
    else if (inCache && line.startsWith("Pss:")) mappedPss += Number(/(\d+) kB/.exec(line)![1]);
  }
  return { anon: anon * 1024, mappedPss: mappedPss * 1024 };
}

// A model whose float32 weights (~100 MB) dwarf a process's own memory, opened without prepacking
// (the packed form is shared the same way, through its own file).
describe("mapped weights are one copy per machine", { skip: !existsSync("/proc/self/smaps_rollup") }, () => {
  const dir = join(root, "shared");
  const config = {
    ...presetConfig("small", tokenizerIds("bytes")),
    hiddenSize: 512,
    intermediateSize: 1536,
    numHiddenLayers: 8,
    numAttentionHeads: 8,
    numKeyValueHeads: 4,
    headDim: 64,
  };
  const cacheRoot = join(root, "cache-shared");
  const holder = join(import.meta.dirname, "..", "testing", "hold-decode-engines.ts");
  const hold = (sessions: number) =>
    new Promise<{ pid: number; kill: () => void }>((resolve, reject) => {
      const child = spawn(process.execPath, ["--import", "tsx", holder, dir, cacheRoot, String(sessions)], {
        stdio: ["ignore", "pipe", "inherit"],
      });
      child.once("error", reject);
      child.once("exit", (code) => reject(new Error(`holder exited ${code}`)));
      child.stdout.once("data", () => resolve({ pid: child.pid!, kill: () => child.kill("SIGKILL") }));
    });

  it("two sessions in one process and two processes: anonymous growth ≤ 10% of the weights, summed PSS ≤ 1.2×", async () => {
    initModel({ config, tokenizer: "bytes", out: dir, seed: 5 });
    const weightBytes = decodeWeightBytes(config);
    // convert once, outside the measured processes
    execFileSync(process.execPath, ["--import", "tsx", holder, dir, cacheRoot, "0"]);
    const one = await hold(1);
    const two = await hold(2);
    const other = await hold(2);
    try {
      const a = memoryOf(one.pid, cacheRoot);
      const b = memoryOf(two.pid, cacheRoot);
      const c = memoryOf(other.pid, cacheRoot);
      const mb = (x: number) => `${(x / 2 ** 20).toFixed(1)} MiB`;
      const pss = a.mappedPss + b.mappedPss + c.mappedPss;
      const report = `weights ${mb(weightBytes)}; anonymous: 1 session ${mb(a.anon)}, 2 sessions ${mb(b.anon)} and ${mb(c.anon)}; PSS of the mapped weights over the three processes ${mb(pss)}`;
      assert.ok(b.anon - a.anon <= 0.1 * weightBytes, `a second session took private memory: ${report}`);
      assert.ok(
        Math.abs(c.anon - b.anon) <= 0.1 * weightBytes,
        `a second process took private memory: ${report}`,
      );
      assert.ok(pss <= 1.2 * weightBytes, `more than one copy: ${report}`);
      assert.ok(pss >= 0.5 * weightBytes, `the sessions did not compute from the mapping: ${report}`);
    } finally {
      for (const p of [one, two, other]) p.kill();
    }
  });
});
