import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { devGsm8kPath, devGsm8kSkip, GSM8K_SAMPLE_ROWS, gsm8kSample } from "@temper/fixtures";
import { Gsm8kDataError, loadGsm8k, parseGsm8k } from "./data.ts";
import { parseReference, referenceValue } from "./reference.ts";

describe("GSM8K data", () => {
  it("loads the repository's sample of both splits", () => {
    for (const split of ["train", "test"] as const) {
      const rows = loadGsm8k(gsm8kSample(split));
      assert.equal(rows.length, GSM8K_SAMPLE_ROWS, split);
      assert.ok(
        rows.every((r) => r.question.length > 0 && /\n#### /.test(r.answer)),
        split,
      );
    }
  });
  it("loads the full train split (7,473 rows)", { skip: devGsm8kSkip("train") }, () => {
    assert.equal(loadGsm8k(devGsm8kPath("train")).length, 7473);
  });
  it("loads the full test split (1,319 rows)", { skip: devGsm8kSkip("test") }, () => {
    assert.equal(loadGsm8k(devGsm8kPath("test")).length, 1319);
  });
  it("names file and line of a bad line", () => {
    const dir = mkdtempSync(join(tmpdir(), "gsm8k-"));
    const file = join(dir, "bad.jsonl");
    writeFileSync(file, '{"question":"q","answer":"#### 1"}\n\n{"question":"q"\n');
    assert.throws(
      () => loadGsm8k(file),
      (e: Error) => e instanceof Gsm8kDataError && e.message === `${file}:3: not valid JSON`,
    );
    assert.throws(
      () => parseGsm8k('{"question":1,"answer":"x"}', "f.jsonl"),
      /f\.jsonl:1: "question" must be a string/,
    );
    assert.throws(() => parseGsm8k("[1]", "f.jsonl"), /f\.jsonl:1: expected a JSON object/);
    assert.throws(() => loadGsm8k(join(dir, "missing.jsonl")), /missing\.jsonl: cannot read \(ENOENT\)/);
  });
  it("parses references: final answer with commas, annotations checked", () => {
    const r = parseReference("It costs 2*540 = <<2*540=1080>>1080.\n#### 1,080");
    assert.equal(r.answer, 1080);
    assert.equal(r.answerText, "1,080");
    assert.deepEqual(
      r.equations.map((e) => [e.text, e.valid]),
      [["2*540=1080", true]],
    );
    assert.equal(referenceValue("72"), 72);
    assert.equal(referenceValue("$1,080"), 1080);
    assert.equal(referenceValue("blah\n#### -3"), -3);
    assert.equal(referenceValue("no number"), null);
    assert.equal(referenceValue("3 or 4"), null);
  });
});
