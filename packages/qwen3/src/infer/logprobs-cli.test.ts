// `temper model logprobs` end to end through the repository's CLI entry, checked against the float64
// reference and the tokenizer.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, unlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { presetConfig } from "../model/config.ts";
import { initModel } from "../model/init.ts";
import { openModelDir } from "../model/model-dir.ts";
import { loadTokenizer, tokenizerIds } from "../model/tokenizer.ts";
import { loadWeights } from "../model/weights.ts";
import { referenceForward } from "../reference/reference.ts";
import { runTemper } from "../testing/cli.ts";

const root = mkdtempSync(join(tmpdir(), "qwen3-logprobs-cli-"));
after(() => rmSync(root, { recursive: true, force: true }));

function temper(...args: string[]) {
  return runTemper("model", "logprobs", ...args);
}

describe("temper model logprobs", () => {
  const dir = join(root, "tiny");
  const bare = join(root, "no-tokenizer");
  before(() => {
    const config = presetConfig("tiny", tokenizerIds("bytes"));
    initModel({ config, tokenizer: "bytes", out: dir, seed: 21, shards: 2 });
    initModel({ config, tokenizer: "bytes", out: bare, seed: 21 });
    unlinkSync(join(bare, "tokenizer.json"));
    unlinkSync(join(bare, "tokenizer_config.json"));
  });

  function reference(ids: number[], temperature = 1): number[] {
    const model = openModelDir(dir);
    const weights = loadWeights(model.config, model.checkpoint, "float64");
    model.checkpoint.close();
    return referenceForward(model.config, weights, [ids], { temperature }).logprobs[0];
  }

  it("--ids --json prints T−1 logprobs (float64: 1e-9, float32: 1e-4), no tokenizer needed", () => {
    const want = reference([1, 2, 3]);
    for (const [model, dtype, tol] of [
      [dir, "float64", 1e-9],
      [bare, "float32", 1e-4],
    ] as const) {
      const r = temper("--model", model, "--ids", "1,2,3", "--json", "--dtype", dtype);
      assert.equal(r.code, 0, r.stderr);
      const got = JSON.parse(r.stdout);
      assert.deepEqual(Object.keys(got), ["logprobs"]);
      assert.equal(got.logprobs.length, 2);
      for (const [i, v] of (got.logprobs as number[]).entries())
        assert.ok(Math.abs(v - want[i]) < tol, `${dtype}[${i}]`);
    }
  });

  it("--text with the bytes tokenizer, temperature and top-k", async () => {
    const ids = (await loadTokenizer(dir)).encode("2+3=5");
    assert.equal(ids.length, 5);
    const want = reference(ids, 0.8);
    const r = temper(
      "--model",
      dir,
      "--text",
      "2+3=5",
      "--top-k",
      "4",
      "--temperature",
      "0.8",
      "--json",
      "--dtype",
      "float64",
    );
    assert.equal(r.code, 0, r.stderr);
    const got = JSON.parse(r.stdout);
    assert.equal(got.logprobs.length, 4);
    for (const [i, v] of (got.logprobs as number[]).entries()) assert.ok(Math.abs(v - want[i]) < 1e-9);
    assert.equal(got.top_k.length, 4);
    for (const [i, top] of got.top_k.entries()) {
      assert.equal(top.length, 4);
      // the scored token is either among the top 4 (with the same logprob) or below the 4th
      const hit = top.find((e: { id: number }) => e.id === ids[i + 1]);
      if (hit) assert.ok(Math.abs(hit.logprob - got.logprobs[i]) < 1e-12);
      else assert.ok(got.logprobs[i] <= top[3].logprob);
    }
    const text = temper("--model", dir, "--text", "2+3=5");
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /5 tokens, 4 scored/);
    assert.match(text.stdout, /t=4 +id=53 /);
  });

  it("bad flags and files are one line with exit code 2", () => {
    const cases: [string[], RegExp][] = [
      [["--ids", "1,2"], /--model is required/],
      [["--model", dir], /exactly one of --ids or --text/],
      [["--model", dir, "--ids", "1,2", "--text", "x"], /exactly one of --ids or --text/],
      [["--model", dir, "--ids", "1,x"], /--ids: expected comma-separated non-negative integers/],
      [["--model", dir, "--ids", "1,320"], /token id 320 is outside vocab_size 320/],
      [["--model", dir, "--ids", "1,2", "--top-k", "0"], /--top-k: expected an integer ≥ 1/],
      [["--model", dir, "--ids", "1,2", "--dtype", "float16"], /--dtype: expected one of float32, float64/],
      [["--model", dir, "--ids", "1,2", "--provider", "cuda"], /execution provider "cuda" is unavailable/],
      [["--model", dir, "--ids", "1,2", "--adapter", dir], /--adapter: .*missing adapter_config.json/],
      [["--model", bare, "--text", "hi"], /missing tokenizer.json/],
      [["--model", join(root, "nope"), "--ids", "1"], /not a directory/],
    ];
    for (const [args, message] of cases) {
      const r = temper(...args);
      assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
      assert.match(r.stderr, message);
      assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
    }
  });
});
