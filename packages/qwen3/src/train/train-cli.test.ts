// `temper model grads` and `temper model logprobs --adapter` end to end through the CLI: tensor names,
// shapes and values against the in-process trainer and the merged-weights reference; one-line errors.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { loraTensorName, mergeLora } from "../adapter/lora.ts";
import { loadAdapter } from "../adapter/peft.ts";
import { openModelDir } from "../model/model-dir.ts";
import { SafetensorsFile } from "../model/safetensors.ts";
import { loadWeights } from "../model/weights.ts";
import { referenceForward } from "../reference/reference.ts";
import { runTemper } from "../testing/cli.ts";
import { grpoBatch, TRAIN_IDS } from "../testing/train.ts";
import { Qwen3Trainer } from "./train.ts";

const root = mkdtempSync(join(tmpdir(), "qwen3-train-cli-"));
after(() => rmSync(root, { recursive: true, force: true }));
const model = join(root, "tiny");
const adapterDir = join(root, "adapter");
const batchFile = join(root, "batch.jsonl");

function temper(...args: string[]) {
  return runTemper("model", ...args);
}

// old = lp − log-ratio around placeholder logprobs of −5.5 (the tiny model's are near ln(1/320))
const batch = grpoBatch(TRAIN_IDS.map((ids) => ids.map(() => -5.5)));

describe("temper model grads / logprobs --adapter", () => {
  before(() => {
    let r = temper("init", "--config", "tiny", "--tokenizer", "bytes", "--dtype", "f32", "--out", model);
    assert.equal(r.code, 0, r.stderr);
    r = temper(
      "init-adapter",
      ...["--model", model, "--rank", "2", "--alpha", "4", "--targets", "q,v,gate,down"],
      ...["--init-b", "random", "--seed", "4", "--out", adapterDir],
    );
    assert.equal(r.code, 0, r.stderr);
    const lines = batch.map((s) =>
      JSON.stringify({
        input_ids: s.inputIds,
        completion_mask: s.completionMask,
        advantage: s.advantage,
        old_logprobs: s.oldLogprobs,
        ref_logprobs: s.refLogprobs,
      }),
    );
    writeFileSync(batchFile, `${lines.join("\n")}\n`);
  });

  it("writes loss, logprobs [B, T] and every LoRA gradient under its PEFT name, as the trainer computes them", async () => {
    const out = join(root, "grads.safetensors");
    const flags = [
      "--loss",
      "grpo",
      "--beta",
      "0.05",
      "--eps-high",
      "0.28",
      "--agg",
      "sequence",
      "--dtype",
      "float64",
    ];
    const r = temper(
      "grads",
      "--model",
      model,
      "--adapter",
      adapterDir,
      "--batch",
      batchFile,
      "--out",
      out,
      ...flags,
    );
    assert.equal(r.code, 0, r.stderr);
    assert.match(
      r.stdout,
      /wrote .*loss .*clip fraction .*kl .*entropy .*3 sequences, \d+ completion tokens, 16 LoRA gradients/,
    );

    const dir = openModelDir(model);
    const adapter = loadAdapter(adapterDir, dir.config, "float64");
    dir.checkpoint.close();
    const trainer = await Qwen3Trainer.load(model, {
      mode: "lora",
      lora: adapter.config,
      loss: { kind: "grpo", beta: 0.05, epsHigh: 0.28, aggregation: "sequence" },
      dtype: "float64",
      threads: 1,
    });
    const want = await trainer.step(batch, adapter, { microBatchSize: 2 });
    await trainer.release();

    const file = SafetensorsFile.open(out);
    try {
      const T = Math.max(...TRAIN_IDS.map((s) => s.length));
      const expectedNames = [
        "logprobs",
        "loss",
        ...adapter.pairs.flatMap((p) => [
          loraTensorName(p.layer, p.module, "A"),
          loraTensorName(p.layer, p.module, "B"),
        ]),
      ].sort();
      assert.deepEqual([...file.tensors.keys()].sort(), expectedNames);
      assert.deepEqual(file.tensors.get("logprobs")!.shape, [3, T]);
      assert.deepEqual(file.tensors.get("loss")!.shape, []);
      assert.equal(file.tensors.get("loss")!.dtype, "F64");
      assert.ok(Math.abs(file.read("loss", "float64")[0] - want.loss) < 1e-12);
      const lp = file.read("logprobs", "float64");
      want.logprobs.forEach((row, b) => {
        for (let t = 0; t < T; t++) {
          const v = t < row.length ? row[t] : 0; // right padded: entry [b, t] is input_ids[t] of line b
          assert.ok(Math.abs(lp[b * T + t] - v) < 1e-12, `logprobs[${b}, ${t}]`);
        }
      });
      for (const p of adapter.pairs) {
        const r2 = adapter.config.rank;
        for (const [which, shape] of [
          ["A", [r2, p.inFeatures]],
          ["B", [p.outFeatures, r2]],
        ] as const) {
          const name = loraTensorName(p.layer, p.module, which);
          assert.deepEqual(file.tensors.get(name)!.shape, shape, name);
          const got = file.read(name, "float64");
          const g = want.grads.get(name)!;
          const scale = Math.max(...g.map(Math.abs));
          assert.ok(scale > 0, `${name} is not zero`);
          for (let i = 0; i < g.length; i++)
            assert.ok(Math.abs(got[i] - g[i]) <= 1e-10 * scale, `${name}[${i}]`);
        }
      }
    } finally {
      file.close();
    }
  });

  it("float32 by default, SFT and micro-batches accepted", () => {
    const out = join(root, "sft.safetensors");
    const r = temper(
      ...["grads", "--model", model, "--adapter", adapterDir, "--batch", batchFile, "--out", out],
      ...["--loss", "sft", "--micro-batch", "1"],
    );
    assert.equal(r.code, 0, r.stderr);
    const file = SafetensorsFile.open(out);
    assert.equal(file.tensors.get(loraTensorName(1, "down_proj", "B"))!.dtype, "F32");
    file.close();
  });

  it("bad input: one line naming the line and field, exit 2", () => {
    const bad = (name: string, lines: string[]) => {
      const path = join(root, name);
      writeFileSync(path, `${lines.join("\n")}\n`);
      return path;
    };
    const good = JSON.stringify({
      input_ids: [1, 2, 3],
      completion_mask: [0, 1, 1],
      advantage: 1,
      old_logprobs: [0, -5, -5],
    });
    const cases: [string[], RegExp][] = [
      [
        ["--batch", bad("len.jsonl", [good, JSON.stringify({ ...JSON.parse(good), old_logprobs: [0, -5] })])],
        /len\.jsonl line 2: old_logprobs has 2 entries, input_ids has 3/,
      ],
      [
        ["--batch", bad("mask.jsonl", [JSON.stringify({ ...JSON.parse(good), completion_mask: [0, 1] })])],
        /mask\.jsonl line 1: completion_mask has 2 entries, input_ids has 3/,
      ],
      [["--batch", bad("json.jsonl", [good, "{not json"])], /json\.jsonl line 2: not valid JSON/],
      [
        ["--batch", bad("ref.jsonl", [good]), "--beta", "0.1"],
        /ref\.jsonl line 1: ref_logprobs is required when beta > 0/,
      ],
      [["--batch", batchFile, "--agg", "mean"], /--agg: expected one of token, sequence/],
      [["--batch", batchFile, "--micro-batch", "0"], /--micro-batch: expected an integer ≥ 1/],
    ];
    for (const [flags, message] of cases) {
      const r = temper(
        "grads",
        "--model",
        model,
        "--adapter",
        adapterDir,
        "--out",
        join(root, "x.safetensors"),
        ...flags,
      );
      assert.equal(r.code, 2, `${flags.join(" ")}: ${r.stderr}`);
      assert.match(r.stderr, message);
      assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
    }
    const r = temper(
      "grads",
      "--model",
      model,
      "--adapter",
      join(root, "nope"),
      "--batch",
      batchFile,
      "--out",
      "x",
    );
    assert.equal(r.code, 2);
    assert.match(r.stderr, /nope: not a directory/);
  });

  it("logprobs --adapter equals the reference forward on merged weights", () => {
    const ids = TRAIN_IDS[0];
    const r = temper(
      ...[
        "logprobs",
        "--model",
        model,
        "--adapter",
        adapterDir,
        "--ids",
        ids.join(","),
        "--json",
        "--dtype",
        "float64",
      ],
    );
    assert.equal(r.code, 0, r.stderr);
    const got = JSON.parse(r.stdout).logprobs as number[];
    const dir = openModelDir(model);
    const weights = loadWeights(dir.config, dir.checkpoint, "float64");
    const adapter = loadAdapter(adapterDir, dir.config, "float64");
    dir.checkpoint.close();
    const want = referenceForward(dir.config, mergeLora(weights, adapter), [ids]).logprobs[0];
    const base = referenceForward(dir.config, weights, [ids]).logprobs[0];
    assert.equal(got.length, want.length);
    for (const [i, w] of want.entries())
      assert.ok(Math.abs(got[i] - w) < 1e-9, `token ${i + 1}: ${got[i]} vs ${w}`);
    assert.ok(
      base.some((v, i) => Math.abs(v - got[i]) > 1e-4),
      "the adapter changes the logprobs",
    );
    const f32 = temper(
      "logprobs",
      "--model",
      model,
      "--adapter",
      adapterDir,
      "--ids",
      ids.join(","),
      "--json",
    );
    assert.equal(f32.code, 0, f32.stderr);
    for (const [i, v] of (JSON.parse(f32.stdout).logprobs as number[]).entries())
      assert.ok(Math.abs(v - want[i]) < 1e-4, `float32 token ${i + 1}`);
    const missing = temper("logprobs", "--model", model, "--adapter", join(root, "nope"), "--ids", "1,2");
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /--adapter: .*nope: not a directory/);
  });
});
