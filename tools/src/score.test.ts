// `temper score` through the real CLI entry (node tools/bin/temper.mjs), in-process scoring.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";

const bin = resolve(dirname(fileURLToPath(import.meta.url)), "../bin/temper.mjs");
const dir = mkdtempSync(join(tmpdir(), "temper-score-"));

function temper(...args: string[]) {
  const r = spawnSync(process.execPath, [bin, "score", ...args], { encoding: "utf8", timeout: 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function file(name: string, lines: unknown[]): string {
  const p = join(dir, name);
  writeFileSync(p, `${lines.map((l) => (typeof l === "string" ? l : JSON.stringify(l))).join("\n")}\n`);
  return p;
}

const input = file("in.jsonl", [
  {
    question: "q1",
    reference: "So 48+24 = 72\n#### 72",
    completion: "48 + 24 = 72\nThe answer is 72",
    group: "a",
    id: 7,
  },
  {
    question: "q1",
    reference: "So 48+24 = 72\n#### 72",
    completion: "The answer is 70",
    group: "a",
    logprobs: [-0.5, -1.5],
  },
  { question: "q2", reference: 18, completion: "9 * 2 = 18", finish_reason: "length" },
  { question: "q3", reference: "5", completion: "#### 5", group: 3 },
]);

describe("temper score", () => {
  it("hard: rewards = correctness_hard, advantages per group, unknown fields kept", () => {
    const out = join(dir, "out-hard.jsonl");
    const r = temper("--data", input, "--out", out);
    assert.equal(r.code, 0, r.stderr);
    const rows = readFileSync(out, "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    assert.equal(rows.length, 4);
    assert.equal(rows[0].id, 7);
    assert.deepEqual(
      rows.map((x) => x.rewards.reward),
      [1, 0, 0, 1],
    );
    assert.deepEqual(
      rows.map((x) => x.rewards.rule),
      ["answer_is", "answer_is", "none", "hash"],
    );
    assert.deepEqual(
      rows.map((x) => x.rewards.extracted),
      ["72", "70", null, "5"],
    );
    // group "a": rewards 1, 0 → ±0.5/(√0.5 + 1e-4); groups of one → 0
    assert.ok(Math.abs(rows[0].rewards.advantage - 0.5 / (Math.SQRT1_2 + 1e-4)) < 1e-12);
    assert.equal(rows[2].rewards.advantage, 0);
    assert.equal(rows[1].rewards.components.perplexity, Math.exp(-1));
    assert.equal(rows[0].rewards.components.perplexity, null);
    assert.equal(rows[2].rewards.components.self_consistency, null);
    assert.match(r.stderr, /4 completions in 3 groups, structure hard/);
    assert.match(r.stderr, /accuracy\s+0\.5000/);
    assert.match(r.stderr, /zero-signal groups\s+2\/3/);
    assert.match(r.stderr, /perplexity\s+0\.3679\s+1\/4/);
  });
  it("continuous with custom weights to stdout", () => {
    const r = temper(
      "--data",
      input,
      "--structure",
      "continuous",
      "--weights",
      "correctness_soft=1,format=1",
    );
    assert.equal(r.code, 0, r.stderr);
    const rows = r.stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    // item 2: (exp(−2/72) + 1) / 2
    assert.ok(Math.abs(rows[1].rewards.reward - (Math.exp(-2 / 72) + 1) / 2) < 1e-12);
    assert.equal(rows[2].rewards.reward, 0);
  });
  it("hybrid alpha and adaptive schedules run", () => {
    assert.equal(temper("--data", input, "--structure", "hybrid", "--alpha", "0.3").code, 0);
    const r = temper(
      "--data",
      input,
      "--structure",
      "adaptive",
      "--schedule",
      "cosine",
      "--total-steps",
      "10",
      "--step",
      "5",
    );
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /alpha 0\.5500/);
  });
  const bad: Array<[string, string[], RegExp]> = [
    [
      "a bad line",
      [file("bad.jsonl", [{ reference: 1, completion: "1" }, "{oops"])],
      /bad\.jsonl:2: not valid JSON$/,
    ],
    [
      "a missing completion",
      [file("nocomp.jsonl", [{ reference: 1 }])],
      /nocomp\.jsonl:1: "completion" must be a string$/,
    ],
    [
      "a reference without a number",
      [file("noref.jsonl", [{ reference: "none", completion: "1" }])],
      /noref\.jsonl:1: "reference"/,
    ],
    ["an unknown structure", ["--structure", "soft"], /--structure: unknown structure "soft"/],
    [
      "alpha outside [0, 1]",
      ["--structure", "hybrid", "--alpha", "1.5"],
      /structure\.hybrid\.alpha: must be in \[0, 1\]/,
    ],
    [
      "negative weights",
      ["--structure", "continuous", "--weights", "reasoning=-1"],
      /weights\["reasoning"\]: must be ≥ 0/,
    ],
    ["zero-sum weights", ["--structure", "continuous", "--weights", "reasoning=0"], /weights sum to zero/],
    [
      "an unknown weight",
      ["--structure", "continuous", "--weights", "nope=1"],
      /weights\["nope"\]: unknown component/,
    ],
    ["an unknown flag", ["--bogus"], /bogus/],
  ];
  for (const [name, args, re] of bad) {
    it(`${name}: one-line error, exit 2`, () => {
      const r = temper(...(args[0].startsWith("--") ? ["--data", input, ...args] : ["--data", ...args]));
      assert.equal(r.code, 2);
      assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
      assert.match(r.stderr.trim(), re);
    });
  }
});
