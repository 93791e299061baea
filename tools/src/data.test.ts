// `temper data synth` through the real CLI entry (node tools/bin/temper.mjs).
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { after, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { extractAnswer, parseGsm8k, referenceValue } from "@temper/gsm8k";

const bin = resolve(dirname(fileURLToPath(import.meta.url)), "../bin/temper.mjs");
const dir = mkdtempSync(join(tmpdir(), "temper-data-"));
after(() => rmSync(dir, { recursive: true, force: true }));

function temper(...args: string[]) {
  const r = spawnSync(process.execPath, [bin, "data", ...args], { encoding: "utf8", timeout: 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const read = (path: string) => parseGsm8k(readFileSync(path, "utf8"), path);

describe("temper data synth", () => {
  it("writes three disjoint GSM8K-format sets; the same flags give the same bytes", () => {
    const args = ["synth", "--sft", "40", "--train", "30", "--eval", "20", "--seed", "3"];
    const r = temper(...args, "--max-steps", "2", "--max-operand", "12", "--out", join(dir, "a"));
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /sft\.jsonl: 40 problems/);
    const sets = ["sft", "train", "eval"].map((n) => read(join(dir, "a", `${n}.jsonl`)));
    assert.deepEqual(
      sets.map((s) => s.length),
      [40, 30, 20],
    );
    const questions = new Set(sets.flat().map((e) => e.question));
    assert.equal(questions.size, 90);
    for (const e of sets.flat()) {
      assert.equal(extractAnswer(e.answer).value, referenceValue(e.answer));
      const steps = (e.answer.match(/<</g) ?? []).length;
      assert.ok(steps >= 1 && steps <= 2, e.answer);
    }
    const again = temper(...args, "--max-steps", "2", "--max-operand", "12", "--out", join(dir, "b"));
    assert.equal(again.code, 0, again.stderr);
    for (const n of ["sft", "train", "eval"])
      assert.equal(
        readFileSync(join(dir, "b", `${n}.jsonl`), "utf8"),
        readFileSync(join(dir, "a", `${n}.jsonl`), "utf8"),
      );
    // --eval-extra: more held-out problems after the same 20, sft and train unchanged
    const more = temper(
      ...args,
      "--eval-extra",
      "15",
      "--max-steps",
      "2",
      "--max-operand",
      "12",
      "--out",
      join(dir, "c"),
    );
    assert.equal(more.code, 0, more.stderr);
    for (const n of ["sft", "train"])
      assert.equal(
        readFileSync(join(dir, "c", `${n}.jsonl`), "utf8"),
        readFileSync(join(dir, "a", `${n}.jsonl`), "utf8"),
      );
    const grown = read(join(dir, "c", "eval.jsonl"));
    assert.deepEqual(grown.slice(0, 20), sets[2]);
    assert.equal(new Set([...sets[0], ...sets[1], ...grown].map((e) => e.question)).size, 105);
    // --dev: dev.jsonl beside the same three files
    const withDev = temper(
      ...args,
      "--dev",
      "12",
      "--max-steps",
      "2",
      "--max-operand",
      "12",
      "--out",
      join(dir, "d"),
    );
    assert.equal(withDev.code, 0, withDev.stderr);
    assert.match(withDev.stdout, /dev\.jsonl: 12 problems/);
    for (const n of ["sft", "train", "eval"])
      assert.equal(
        readFileSync(join(dir, "d", `${n}.jsonl`), "utf8"),
        readFileSync(join(dir, "a", `${n}.jsonl`), "utf8"),
      );
    const dev = read(join(dir, "d", "dev.jsonl"));
    assert.equal(new Set([...sets.flat(), ...dev].map((e) => e.question)).size, 102);
  });

  it("bad input is one line on stderr, exit 2", () => {
    const cases: [string[], RegExp][] = [
      [["synth", "--train", "1", "--eval", "1", "--seed", "1", "--out", dir], /--sft is required/],
      [
        ["synth", "--sft", "x", "--train", "1", "--eval", "1", "--seed", "1", "--out", dir],
        /--sft: expected a number/,
      ],
      [["synth", "--sft", "1", "--train", "1", "--eval", "1", "--seed", "1"], /--out is required/],
      [
        ["synth", "--sft", "1", "--train", "1", "--eval", "1", "--seed", "1", "--bogus", "--out", dir],
        /bogus/,
      ],
      [
        [
          "synth",
          "--sft",
          "1",
          "--train",
          "1",
          "--eval",
          "1",
          "--seed",
          "1",
          "--max-steps",
          "4",
          "--out",
          dir,
        ],
        /max steps/,
      ],
      [
        [
          "synth",
          "--sft",
          "500",
          "--train",
          "0",
          "--eval",
          "0",
          "--seed",
          "1",
          "--max-steps",
          "1",
          "--max-operand",
          "3",
          "--out",
          dir,
        ],
        /distinct problems/,
      ],
      [
        [
          "synth",
          "--sft",
          "1",
          "--train",
          "1",
          "--eval",
          "1",
          "--seed",
          "1",
          "--rationale",
          "fancy",
          "--out",
          dir,
        ],
        /--rationale: expected one of terse, prose/,
      ],
      [["nope"], /unknown data subcommand/],
    ];
    for (const [args, pattern] of cases) {
      const r = temper(...args);
      assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
      assert.match(r.stderr, pattern);
      assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
      assert.match(r.stderr, /^temper data: /);
    }
  });
});
