// `temper sft` through the real CLI entry (node tools/bin/temper.mjs) on the tiny preset with the
// byte tokenizer: a run with evaluation writes a model `temper model generate` loads; bad input is
// one line on stderr with exit code 2.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { after, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { openModelDir } from "@temper/qwen3";

const bin = resolve(dirname(fileURLToPath(import.meta.url)), "../bin/temper.mjs");
const dir = mkdtempSync(join(tmpdir(), "temper-sft-cli-"));
after(() => rmSync(dir, { recursive: true, force: true }));

function temper(...args: string[]) {
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: "utf8", timeout: 120_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const model = join(dir, "tiny");
const data = join(dir, "data");

describe("temper sft", () => {
  it("trains, evaluates, writes a model directory that temper model generate loads", () => {
    let r = temper(
      "model",
      "init",
      "--config",
      "tiny",
      "--tokenizer",
      "bytes",
      "--dtype",
      "f32",
      "--out",
      model,
    );
    assert.equal(r.code, 0, r.stderr);
    r = temper(
      "data",
      "synth",
      "--sft",
      "16",
      "--train",
      "0",
      "--eval",
      "6",
      "--seed",
      "2",
      "--max-steps",
      "1",
    );
    assert.equal(r.code, 2, "--out is required");
    r = temper(
      "data",
      "synth",
      "--sft",
      "16",
      "--train",
      "0",
      "--eval",
      "6",
      "--seed",
      "2",
      "--max-steps",
      "1",
      "--out",
      data,
    );
    assert.equal(r.code, 0, r.stderr);
    const out = join(dir, "out");
    r = temper(
      "sft",
      "--model",
      model,
      "--data",
      join(data, "sft.jsonl"),
      "--eval",
      join(data, "eval.jsonl"),
      "--out",
      out,
      "--steps",
      "4",
      "--batch-size",
      "4",
      "--micro-batch-size",
      "2",
      "--lr",
      "5e-3",
      "--eval-every",
      "2",
      "--max-new-tokens",
      "8",
      "--instruction",
      "",
      "--threads",
      "1",
    );
    assert.equal(r.code, 0, r.stderr);
    // not a terminal: plain progress lines, eval lines, a summary
    assert.match(r.stdout, /^step 1\/4 loss \d+\.\d+ .* tok\/s/m);
    assert.match(r.stdout, /^step 4\/4 /m);
    assert.match(r.stdout, /^eval step 2: accuracy \d\.\d{4} ± \d\.\d{4} \(n=6/m);
    assert.match(r.stdout, /^eval step 4: accuracy/m);
    assert.match(r.stdout, /wrote .*out: 4 steps/);
    assert.ok(!r.stdout.includes("\r"));
    const evals = readFileSync(join(out, "sft_eval.jsonl"), "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    assert.deepEqual(
      evals.map((e) => [e.step, e.n]),
      [
        [2, 6],
        [4, 6],
      ],
    );
    for (const e of evals)
      assert.ok(Math.abs(e.stderr - Math.sqrt((e.accuracy * (1 - e.accuracy)) / 6)) < 1e-12);
    assert.ok(!existsSync(`${out}.partial`));
    const m = openModelDir(out);
    m.checkpoint.close();
    r = temper(
      "model",
      "generate",
      "--model",
      out,
      "--prompt",
      "Question: 1+1?\nAnswer:",
      "--max-new-tokens",
      "4",
      "--temperature",
      "0",
      "--json",
    );
    assert.equal(r.code, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).completions.length, 1);

    // --target-dev-loss: the first check (step 2, --dev-from) at or below it ends the run (every loss is ≤ 1000)
    const early = join(dir, "early");
    r = temper(
      "sft",
      ...["--model", model, "--data", join(data, "sft.jsonl"), "--out", early, "--steps", "4"],
      ...["--batch-size", "2", "--dev", join(data, "eval.jsonl"), "--dev-every", "1", "--dev-from", "2"],
      ...["--target-dev-loss", "1000", "--threads", "1"],
    );
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^dev step 2: loss \d+\.\d{5} \(loss ≤ 1000: stopping\)$/m);
    assert.match(r.stdout, /wrote .*early: 2 steps \(stopped by the dev target with the model of step 2\)/);
    assert.equal(JSON.parse(readFileSync(join(early, "sft_args.json"), "utf8")).end_step, 2);

    // an existing --out is refused
    r = temper("sft", "--model", model, "--data", join(data, "sft.jsonl"), "--out", out);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /already exists/);
  });

  it("bad input is one line on stderr, exit 2", () => {
    mkdirSync(dir, { recursive: true });
    const bad = join(dir, "bad.jsonl");
    writeFileSync(bad, '{"question": "q", "answer": "#### 1"}\nnot json\n');
    const noNumber = join(dir, "nonumber.jsonl");
    writeFileSync(noNumber, '{"question": "q", "answer": "no final line"}\n');
    const train = join(data, "sft.jsonl");
    const out = join(dir, "never");
    const cases: [string[], RegExp][] = [
      [["--data", train, "--out", out], /--model is required/],
      [["--model", model, "--out", out], /--data is required/],
      [["--model", model, "--data", train], /--out is required/],
      [["--model", join(dir, "nope"), "--data", train, "--out", out], /--model: .* does not exist/],
      [["--model", model, "--data", join(dir, "missing.jsonl"), "--out", out], /--data: .* does not exist/],
      [["--model", model, "--data", bad, "--out", out], /bad\.jsonl:2: not valid JSON/],
      [["--model", model, "--data", train, "--out", out, "--steps", "many"], /--steps: expected a number/],
      [["--model", model, "--data", train, "--out", out, "--lr", "0"], /--lr: expected a number > 0/],
      [
        ["--model", model, "--data", train, "--out", out, "--schedule", "step"],
        /--schedule: expected one of/,
      ],
      [["--model", model, "--data", train, "--out", out, "--bogus"], /bogus/],
      [
        ["--model", model, "--data", train, "--out", out, "--batch-size", "2", "--micro-batch-size", "3"],
        /micro-batch/,
      ],
      [
        ["--model", model, "--data", train, "--eval", noNumber, "--out", out, "--steps", "1"],
        /no "#### <number>"/,
      ],
      [["--model", data, "--data", train, "--out", out], /config\.json/],
      [
        ["--model", model, "--data", train, "--out", out, "--target-dev-loss", "0.1"],
        /--target-dev-loss needs --dev/,
      ],
      [
        ["--model", model, "--data", train, "--dev", train, "--out", out, "--target-dev-loss", "-1"],
        /--target-dev-loss: expected a number > 0/,
      ],
      [
        ["--model", model, "--data", train, "--dev", train, "--out", out, "--target-dev-accuracy", "77"],
        /--target-dev-accuracy: expected a number in \(0, 1\], got "77"/,
      ],
      [["--model", model, "--data", train, "--dev", bad, "--out", out], /bad\.jsonl:2: not valid JSON/],
      [
        ["--model", model, "--data", train, "--out", out, "--steps", "4", "--max-steps", "3"],
        /--max-steps \(3\) must be at least --steps \(4\)/,
      ],
      [
        ["--model", model, "--data", train, "--out", out, "--max-steps", "900"],
        /--max-steps needs --target-dev-loss or --target-dev-accuracy/,
      ],
    ];
    for (const [args, pattern] of cases) {
      const r = temper("sft", ...args);
      assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
      assert.match(r.stderr, pattern, args.join(" "));
      assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
      assert.match(r.stderr, /^temper sft: /);
      assert.doesNotMatch(r.stderr, /\bat .*\.ts:\d+/);
    }
    assert.ok(!existsSync(out) && !existsSync(`${out}.partial`));
  });
});
