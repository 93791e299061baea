// `temper model init-adapter` end to end, through the repository's CLI entry.
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { after, before, describe, it } from "node:test";
import { readConfig } from "../model/model-dir.ts";
import { repoRoot, runTemper } from "../testing/cli.ts";
import { loadAdapter } from "./peft.ts";

const root = mkdtempSync(join(tmpdir(), "qwen3-adapter-cli-"));
after(() => rmSync(root, { recursive: true, force: true }));

function temper(...args: string[]) {
  return runTemper("model", ...args);
}

describe("temper model init-adapter", () => {
  const model = join(root, "tiny");
  before(() => {
    const r = temper("init", "--config", "tiny", "--tokenizer", "bytes", "--dtype", "f32", "--out", model);
    assert.equal(r.code, 0, r.stderr);
  });

  it("writes a PEFT adapter with B = 0 that loads against the model", () => {
    const out = join(root, "a");
    // a relative --model (the CLI runs in the repository root): the config holds its absolute path,
    // which PEFT reads as a local directory, not a Hub id
    const r = temper(
      "init-adapter",
      "--model",
      relative(repoRoot, model),
      "--rank",
      "4",
      "--alpha",
      "8",
      "--targets",
      "v,q,down",
      "--seed",
      "3",
      "--out",
      out,
    );
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /LoRA r=4 alpha=8 scale 2 on q_proj,v_proj,down_proj × 2 layers/);
    assert.deepEqual(readdirSync(out).sort(), ["adapter_config.json", "adapter_model.safetensors"]);
    const json = JSON.parse(readFileSync(join(out, "adapter_config.json"), "utf8"));
    assert.equal(json.base_model_name_or_path, model);
    assert.equal(json.init_lora_weights, true, "B = 0 is PEFT's own initialisation");
    const adapter = loadAdapter(out, readConfig(model));
    assert.deepEqual(adapter.config, {
      rank: 4,
      alpha: 8,
      useRslora: false,
      targetModules: ["q_proj", "v_proj", "down_proj"],
    });
    assert.equal(adapter.pairs.length, 6);
    assert.ok(adapter.pairs.every((p) => p.b.every((v) => v === 0) && p.a.some((v) => v !== 0)));
    // the same seed gives the same bytes
    const again = join(root, "a2");
    temper(
      "init-adapter",
      "--model",
      model,
      "--rank",
      "4",
      "--alpha",
      "8",
      "--targets",
      "q_proj,v_proj,down_proj",
      "--seed",
      "3",
      "--out",
      again,
    );
    assert.deepEqual(
      readFileSync(join(again, "adapter_model.safetensors")),
      readFileSync(join(out, "adapter_model.safetensors")),
    );
  });

  it("--init-b random and --rslora, into a directory whose parents are missing", () => {
    const out = join(root, "deep", "er", "b");
    const r = temper(
      "init-adapter",
      "--model",
      model,
      "--rank",
      "4",
      "--alpha",
      "8",
      "--targets",
      "gate,up",
      "--rslora",
      "--init-b",
      "random",
      "--out",
      out,
    );
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /\(rslora\) scale 4 /);
    const json = JSON.parse(readFileSync(join(out, "adapter_config.json"), "utf8"));
    assert.equal(json.init_lora_weights, false, "a random B is not PEFT's initialisation");
    const adapter = loadAdapter(out, readConfig(model));
    assert.equal(adapter.config.useRslora, true);
    assert.ok(adapter.pairs.every((p) => p.b.some((v) => v !== 0)));
  });

  it("bad input is one line on stderr with exit code 2", () => {
    const base = ["--model", model, "--rank", "4", "--alpha", "8", "--targets", "q"];
    const cases: [string[], RegExp][] = [
      [[...base], /--out is required/],
      [["--model", model, "--alpha", "8", "--targets", "q", "--out", join(root, "x")], /--rank is required/],
      [[...base, "--rank", "0", "--out", join(root, "x")], /--rank: expected an integer ≥ 1, got "0"/],
      [[...base, "--alpha", "x", "--out", join(root, "x")], /--alpha: expected a number, got "x"/],
      [[...base, "--alpha=-2", "--out", join(root, "x")], /--alpha: expected a positive number/],
      [[...base, "--targets", "q,fc1", "--out", join(root, "x")], /--targets: unknown module "fc1"/],
      [
        [...base, "--init-b", "ones", "--out", join(root, "x")],
        /--init-b: expected one of zero, random, got "ones"/,
      ],
      [
        [
          "--model",
          join(root, "none"),
          "--rank",
          "4",
          "--alpha",
          "8",
          "--targets",
          "q",
          "--out",
          join(root, "x"),
        ],
        /none: not a directory/,
      ],
      [[...base, "--out", join(root, "a")], /already holds an adapter/],
      [[...base, "--bogus", "--out", join(root, "x")], /--bogus/],
    ];
    for (const [args, message] of cases) {
      const r = temper("init-adapter", ...args);
      assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
      assert.match(r.stderr, message);
      assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
    }
  });
});
