import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readFileSync, rmSync, unlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { Checkpoint } from "./checkpoint.ts";
import { parameterCount, presetConfig } from "./config.ts";
import { INIT_STD, initModel } from "./init.ts";
import { openModelDir } from "./model-dir.ts";
import { SafetensorsFile, type TensorSource, writeSafetensors } from "./safetensors.ts";
import { tokenizerIds } from "./tokenizer.ts";
import { expectedTensors, loadWeights } from "./weights.ts";

const root = mkdtempSync(join(tmpdir(), "qwen3-init-"));
after(() => rmSync(root, { recursive: true, force: true }));
const tiny = presetConfig("tiny", tokenizerIds("bytes"));

function dirBytes(dir: string): Map<string, Buffer> {
  return new Map(readdirSync(dir).map((f) => [f, readFileSync(join(dir, f))]));
}

describe("initModel", () => {
  it("same seed → same bytes; different seed → different weights, same config", () => {
    const a = join(root, "a");
    const b = join(root, "b");
    const c = join(root, "c");
    initModel({ config: tiny, tokenizer: "bytes", out: a, seed: 7, shards: 2 });
    initModel({ config: tiny, tokenizer: "bytes", out: b, seed: 7, shards: 2 });
    initModel({ config: tiny, tokenizer: "bytes", out: c, seed: 8, shards: 2 });
    const [ba, bb, bc] = [dirBytes(a), dirBytes(b), dirBytes(c)];
    assert.deepEqual([...ba.keys()].sort(), [
      "config.json",
      "generation_config.json",
      "model-00001-of-00002.safetensors",
      "model-00002-of-00002.safetensors",
      "model.safetensors.index.json",
      "tokenizer.json",
      "tokenizer_config.json",
    ]);
    assert.deepEqual(ba, bb);
    assert.deepEqual(ba.get("config.json"), bc.get("config.json"));
    assert.notDeepEqual(
      ba.get("model-00001-of-00002.safetensors"),
      bc.get("model-00001-of-00002.safetensors"),
    );
  });

  it("reports progress as the weights stream out, from 0 to every parameter, the bytes unchanged", () => {
    const calls: [number, number][] = [];
    const out = join(root, "progress");
    initModel({ config: tiny, tokenizer: "bytes", out, seed: 7, onProgress: (w, t) => calls.push([w, t]) });
    const total = parameterCount(tiny);
    assert.deepEqual(calls[0], [0, total]);
    assert.deepEqual(calls.at(-1), [total, total]);
    assert.ok(calls.length > expectedTensors(tiny).length, `${calls.length} calls`);
    assert.ok(calls.every(([w, t], i) => t === total && (i === 0 || w >= calls[i - 1][0])));
    const plain = join(root, "no-progress");
    initModel({ config: tiny, tokenizer: "bytes", out: plain, seed: 7 });
    assert.deepEqual(dirBytes(out), dirBytes(plain));
  });

  it("draws normal(0, 0.02) matrices, ones for norms, in the requested dtype", () => {
    const out = join(root, "stats");
    initModel({ config: tiny, tokenizer: "bytes", out, seed: 1, dtype: "f32" });
    const m = openModelDir(out);
    try {
      assert.equal(m.config.torchDtype, "float32");
      assert.deepEqual(m.eosTokenIds, [258, 256]);
      const w = loadWeights(m.config, m.checkpoint, "float64");
      assert.ok(w.layers[1].qNorm.every((x) => x === 1));
      assert.ok(w.norm.every((x) => x === 1));
      const all = w.embedTokens;
      const mean = all.reduce((s, x) => s + x, 0) / all.length;
      const std = Math.sqrt(all.reduce((s, x) => s + (x - mean) ** 2, 0) / all.length);
      assert.ok(Math.abs(mean) < 3 * (INIT_STD / Math.sqrt(all.length)) + 1e-6, `mean ${mean}`);
      assert.ok(Math.abs(std - INIT_STD) < 0.02 * INIT_STD, `std ${std}`);
      // Separate streams per tensor: embed and lm_head differ.
      assert.notDeepEqual(w.lmHead.subarray(0, 10), w.embedTokens.subarray(0, 10));
      assert.equal(m.checkpoint.info("model.norm.weight").dtype, "F32");
    } finally {
      m.checkpoint.close();
    }
  });

  it("refuses to overwrite a model and a vocab smaller than the tokenizer", () => {
    const out = join(root, "twice");
    initModel({ config: tiny, tokenizer: "bytes", out });
    assert.throws(
      () => initModel({ config: tiny, tokenizer: "bytes", out }),
      /already holds a model \(config.json\)/,
    );
    assert.throws(
      () =>
        initModel({
          config: { ...tiny, vocabSize: 100 },
          tokenizer: "bytes",
          out: join(root, "small-vocab"),
        }),
      /vocab_size 100 is smaller than the bytes tokenizer's 261 tokens/,
    );
  });
});

describe("checkpoint validation", () => {
  // Rewrites a single-file model with `edit` applied to its tensor list.
  function rewritten(name: string, edit: (tensors: TensorSource[]) => TensorSource[]): string {
    const out = join(root, name);
    initModel({ config: tiny, tokenizer: "bytes", out, dtype: "f32" });
    const path = join(out, "model.safetensors");
    const f = SafetensorsFile.open(path);
    const tensors: TensorSource[] = [...f.tensors.values()].map((t) => {
      const data = f.read(t.name);
      return { name: t.name, dtype: t.dtype, shape: t.shape, chunks: () => [data] };
    });
    f.close();
    unlinkSync(path);
    writeSafetensors(path, edit(tensors));
    return out;
  }

  it("names a missing tensor", () => {
    const out = rewritten("missing", (ts) =>
      ts.filter((t) => t.name !== "model.layers.1.self_attn.k_norm.weight"),
    );
    assert.throws(() => openModelDir(out), /missing tensor model.layers.1.self_attn.k_norm.weight$/);
  });

  it("names a tensor whose shape disagrees with config.json", () => {
    const out = rewritten("shape", (ts) =>
      ts.map((t) => (t.name === "model.layers.0.self_attn.k_proj.weight" ? { ...t, shape: [32, 128] } : t)),
    );
    assert.throws(
      () => openModelDir(out),
      /tensor model.layers.0.self_attn.k_proj.weight has shape \[32, 128\], config.json implies \[64, 64\]/,
    );
  });

  it("requires lm_head.weight only when untied", () => {
    const out = rewritten("tied", (ts) => ts.filter((t) => t.name !== "lm_head.weight"));
    assert.throws(() => openModelDir(out), /missing tensor lm_head.weight/);
    const cfgPath = join(out, "config.json");
    const cfg = JSON.parse(readFileSync(cfgPath, "utf8"));
    writeFileSync(cfgPath, JSON.stringify({ ...cfg, tie_word_embeddings: true }));
    const m = openModelDir(out);
    const w = loadWeights(m.config, m.checkpoint);
    m.checkpoint.close();
    assert.equal(w.lmHead, w.embedTokens);
  });

  it("names missing config.json and an unsupported architecture", () => {
    const out = rewritten("arch", (ts) => ts);
    const cfgPath = join(out, "config.json");
    const cfg = JSON.parse(readFileSync(cfgPath, "utf8"));
    writeFileSync(
      cfgPath,
      JSON.stringify({ ...cfg, model_type: "qwen2", architectures: ["Qwen2ForCausalLM"] }),
    );
    assert.throws(() => openModelDir(out), /config.json: model_type "qwen2" is not supported/);
    unlinkSync(cfgPath);
    assert.throws(() => openModelDir(out), /missing config.json/);
  });

  it("lists every expected tensor in HF order", () => {
    const names = expectedTensors(tiny).map((t) => t.name);
    assert.equal(names.length, 1 + 11 * 2 + 1 + 1);
    assert.equal(names[0], "model.embed_tokens.weight");
    assert.equal(names.at(-1), "lm_head.weight");
    const c = Checkpoint.open(join(root, "arch"));
    assert.deepEqual([...c.tensors.keys()].sort(), [...names].sort());
    c.close();
  });
});
