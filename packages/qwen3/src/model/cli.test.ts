// The `temper model` command end to end, through the repository's CLI entry.
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, rmSync, unlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { runTemper } from "../testing/cli.ts";
import { parameterCount, presetConfig } from "./config.ts";
import { tokenizerIds } from "./tokenizer.ts";

const root = mkdtempSync(join(tmpdir(), "qwen3-cli-"));
after(() => rmSync(root, { recursive: true, force: true }));

function temper(...args: string[]) {
  return runTemper("model", ...args);
}

describe("temper model", () => {
  const out = join(root, "tiny");

  it("init writes a tiny model in HF layout, info describes it", () => {
    const init = temper("init", "--config", "tiny", "--tokenizer", "bytes", "--seed", "3", "--out", out);
    assert.equal(init.code, 0, init.stderr);
    assert.deepEqual(readdirSync(out).sort(), [
      "config.json",
      "generation_config.json",
      "model.safetensors",
      "tokenizer.json",
      "tokenizer_config.json",
    ]);
    const info = temper("info", "--model", out);
    assert.equal(info.code, 0, info.stderr);
    const params = parameterCount(presetConfig("tiny", tokenizerIds("bytes")));
    assert.match(info.stdout, new RegExp(`parameters .*\\(${params}\\)`));
    assert.match(info.stdout, /4 heads, 2 KV heads, head_dim 32/);
    assert.match(info.stdout, /tokenizer +Qwen2Tokenizer, 261 tokens \(embedding rows 320\)/);
    const json = JSON.parse(temper("info", "--model", out, "--json").stdout);
    assert.equal(json.parameters, params);
    assert.deepEqual(json.eos_token_ids, [258, 256]);
    assert.deepEqual(json.weights.dtypes, ["BF16"]);
  });

  it("bad input is one line on stderr with exit code 2", () => {
    const cases: [string[], RegExp][] = [
      [["init", "--config", "tiny", "--tokenizer", "bytes", "--out", out], /already holds a model/],
      [
        ["init", "--config", "tiny", "--tokenizer", "gpt2", "--out", join(root, "x")],
        /--tokenizer: expected one of qwen3, bytes, got "gpt2"/,
      ],
      [["init", "--config", "tiny", "--tokenizer", "bytes"], /--out is required/],
      [
        ["init", "--config", "tiny", "--tokenizer", "bytes", "--seed", "x", "--out", join(root, "y")],
        /--seed: expected a number/,
      ],
      [["info", "--model", join(root, "nope")], /not a directory/],
      [["info", "--model", out, "--bogus"], /--bogus/],
      [["frobnicate"], /unknown model subcommand "frobnicate"/],
    ];
    for (const [args, message] of cases) {
      const r = temper(...args);
      assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
      assert.match(r.stderr, message);
      assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
    }
    unlinkSync(join(out, "model.safetensors"));
    const r = temper("info", "--model", out);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /missing model.safetensors/);
  });
});
