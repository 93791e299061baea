import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { gsm8kSample } from "@temper/fixtures";
import { findEquations } from "./equations.ts";
import { extractAnswer } from "./extract.ts";
import { plainPrompt } from "./prompt.ts";
import { parseReference } from "./reference.ts";
import { mulberry32, SynthError, sftTarget, synthesizeProblem, synthesizeSets } from "./synth.ts";

/** The arithmetic chain an answer states, from its annotations: "4*6=24;24+5=29". */
function chainOf(answer: string): string {
  return [...answer.matchAll(/<<([^<>]*)>>/g)].map((m) => m[1]).join(";");
}

const sets = synthesizeSets({ sft: 300, train: 300, eval: 200, seed: 7 });
const all = [...sets.sft, ...sets.train, ...sets.eval];

describe("synthetic grade-school problems", () => {
  it("three sets of the asked sizes, pairwise disjoint by question and by arithmetic chain", () => {
    assert.deepEqual([sets.sft.length, sets.train.length, sets.eval.length], [300, 300, 200]);
    const texts = new Set(all.map((e) => e.question));
    const chains = new Set(all.map((e) => chainOf(e.answer)));
    // distinct across all three sets (so pairwise disjoint, and no duplicate inside a set)
    assert.equal(texts.size, all.length);
    assert.equal(chains.size, all.length);
  });

  it("disjoint by question only: arithmetic recurs across sets in new wordings, never a question", () => {
    const q = synthesizeSets({
      sft: 400,
      train: 100,
      eval: 100,
      seed: 3,
      maxOperand: 6,
      steps: { min: 1, max: 1 },
      disjoint: "question",
    });
    const qAll = [...q.sft, ...q.train, ...q.eval];
    assert.equal(new Set(qAll.map((e) => e.question)).size, qAll.length);
    // operands ≤ 6 in one step allow fewer than 100 chains: chain-disjoint sets this size can't exist
    assert.throws(
      () =>
        synthesizeSets({
          sft: 400,
          train: 100,
          eval: 100,
          seed: 3,
          maxOperand: 6,
          steps: { min: 1, max: 1 },
        }),
      SynthError,
    );
    const sftChains = new Set(q.sft.map((e) => chainOf(e.answer)));
    const recurring = q.eval.filter((e) => sftChains.has(chainOf(e.answer))).length;
    assert.ok(recurring > 50, `${recurring} of 100 eval chains also in sft`);
    assert.throws(
      () => synthesizeSets({ sft: 1, train: 1, eval: 1, seed: 3, disjoint: "words" as "chain" }),
      /disjoint must be chain or question/,
    );
  });

  it("deterministic for a seed; another seed gives other problems; eval does not depend on the other sizes", () => {
    assert.deepEqual(synthesizeSets({ sft: 300, train: 300, eval: 200, seed: 7 }), sets);
    const other = synthesizeSets({ sft: 10, train: 10, eval: 10, seed: 8 });
    assert.notDeepEqual(other.eval, sets.eval.slice(0, 10));
    const small = synthesizeSets({ sft: 3, train: 0, eval: 50, seed: 7 });
    assert.deepEqual(small.eval, sets.eval.slice(0, 50));
    // a larger eval set made the plain way draws its extra problems first and so moves the others;
    // evalExtra appends held-out problems made after them, leaving the SFT and RL sets as they were
    const grown = synthesizeSets({ sft: 300, train: 300, eval: 200, evalExtra: 150, seed: 7 });
    assert.deepEqual([grown.sft, grown.train], [sets.sft, sets.train]);
    assert.deepEqual(grown.eval.slice(0, 200), sets.eval);
    assert.equal(grown.eval.length, 350);
    const grownAll = [...grown.sft, ...grown.train, ...grown.eval];
    assert.equal(new Set(grownAll.map((e) => e.question)).size, grownAll.length);
    assert.equal(new Set(grownAll.map((e) => chainOf(e.answer))).size, grownAll.length);
    assert.throws(
      () => synthesizeSets({ sft: 1, train: 1, eval: 1, evalExtra: -1, seed: 7 }),
      /evalExtra count/,
    );
    // a dev set (an SFT's early stop) is made last from its own stream: every other set as it was,
    // and it shares neither a question nor a chain with them
    const withDev = synthesizeSets({ sft: 300, train: 300, eval: 200, evalExtra: 150, dev: 120, seed: 7 });
    assert.deepEqual([withDev.sft, withDev.train, withDev.eval], [grown.sft, grown.train, grown.eval]);
    assert.equal(withDev.dev.length, 120);
    assert.deepEqual(grown.dev, []);
    const devAll = [...grownAll, ...withDev.dev];
    assert.equal(new Set(devAll.map((e) => e.question)).size, devAll.length);
    assert.equal(new Set(devAll.map((e) => chainOf(e.answer))).size, devAll.length);
    const r1 = mulberry32(5);
    const r2 = mulberry32(5);
    assert.deepEqual(synthesizeProblem(r1), synthesizeProblem(r2));
  });

  it("every answer checks: extractor and reference parser give N, every equation is stated correctly", () => {
    for (const e of all) {
      const ref = parseReference(e.answer);
      assert.ok(ref.answer !== null && Number.isInteger(ref.answer) && ref.answer >= 0, e.answer);
      assert.equal(extractAnswer(e.answer).value, ref.answer, e.answer);
      assert.equal(extractAnswer(e.answer).rule, "hash");
      const eqs = findEquations(e.answer);
      const annotations = eqs.filter((q) => q.source === "annotation");
      assert.ok(annotations.length >= 1 && annotations.length <= 3, e.answer);
      assert.ok(
        eqs.every((q) => q.valid),
        `${e.answer}\n${JSON.stringify(eqs.filter((q) => !q.valid))}`,
      );
      // the last step's result is the final answer
      assert.equal(annotations.at(-1)!.computed, ref.answer);
      // the completion SFT trains on keeps the answer and the equations, without annotations
      const target = sftTarget(e.answer);
      assert.ok(target.startsWith(" ") && !target.includes("<<"));
      assert.equal(extractAnswer(target).value, ref.answer);
      // (a claim repeated in the text, e.g. "16/4 = 4" twice, is checked once)
      assert.equal(
        findEquations(target).filter((q) => q.valid).length,
        new Set(annotations.map((q) => q.text)).size,
      );
    }
  });

  it("all four operations, several scenes, operands within max operand, 1 to 3 steps", () => {
    const ops = new Set<string>();
    const openings = new Set<string>();
    const stepCounts = new Set<number>();
    for (const e of all) {
      openings.add(e.question.split(" ").slice(0, 2).join(" "));
      const bodies = [...e.answer.matchAll(/<<(\d+)([-+*/])(\d+)=(\d+)>>/g)];
      stepCounts.add(bodies.length);
      for (const [, , op, b, c] of bodies) {
        ops.add(op);
        assert.ok(Number(b) <= 20 && Number(c) <= 400, e.answer);
      }
    }
    assert.deepEqual([...ops].sort(), ["*", "+", "-", "/"]);
    assert.deepEqual([...stepCounts].sort(), [1, 2, 3]);
    assert.ok(openings.size >= 10, `only ${openings.size} distinct openings`);
  });

  it("knobs: step range and max operand", () => {
    const s = synthesizeSets({
      sft: 50,
      train: 50,
      eval: 50,
      seed: 1,
      steps: { min: 2, max: 2 },
      maxOperand: 9,
    });
    for (const e of [...s.sft, ...s.train, ...s.eval]) {
      const bodies = [...e.answer.matchAll(/<<(\d+)([-+*/])(\d+)=(\d+)>>/g)];
      assert.equal(bodies.length, 2, e.answer);
      for (const [, a, , b, c] of bodies) assert.ok(Number(b) <= 9 && Number(c) <= 81 && Number(a) <= 81);
    }
  });

  it("terse rationales fit a 48-token byte-level budget; prose words the same problems as GSM8K-like sentences", () => {
    const knobs = { sft: 100, train: 0, eval: 100, seed: 4, steps: { min: 1, max: 2 }, maxOperand: 20 };
    const terse = synthesizeSets(knobs);
    const prose = synthesizeSets({ ...knobs, rationale: "prose" });
    const longest = Math.max(
      ...[...terse.sft, ...terse.eval].map((e) => Buffer.byteLength(sftTarget(e.answer))),
    );
    assert.ok(longest + 1 <= 48, `longest target ${longest} bytes + EOS`);
    assert.deepEqual(
      prose.eval.map((e) => e.question),
      terse.eval.map((e) => e.question),
    );
    prose.eval.forEach((e, i) => {
      assert.equal(chainOf(e.answer), chainOf(terse.eval[i].answer));
      assert.match(e.answer.split("\n")[0], /^[A-Z][a-z]+.* = <<[^>]+>>\d+ [a-z]+/);
      assert.ok(findEquations(e.answer).every((q) => q.valid));
      assert.equal(extractAnswer(sftTarget(e.answer)).value, parseReference(terse.eval[i].answer).answer);
    });
  });

  it("bad knobs and impossible sizes are one-line SynthErrors", () => {
    assert.throws(
      () => synthesizeSets({ sft: 1, train: 1, eval: 1, seed: 1, steps: { min: 0, max: 2 } }),
      SynthError,
    );
    assert.throws(
      () => synthesizeSets({ sft: 1, train: 1, eval: 1, seed: 1, steps: { min: 2, max: 4 } }),
      SynthError,
    );
    assert.throws(() => synthesizeSets({ sft: -1, train: 1, eval: 1, seed: 1 }), SynthError);
    assert.throws(() => synthesizeSets({ sft: 1, train: 1, eval: 1, seed: 1, maxOperand: 1 }), SynthError);
    // one step with operands ≤ 2 has only a handful of distinct problems
    assert.throws(
      () =>
        synthesizeSets({ sft: 100, train: 0, eval: 0, seed: 1, steps: { min: 1, max: 1 }, maxOperand: 2 }),
      /distinct problems/,
    );
  });

  it("sftTarget on a real GSM8K answer: annotations removed, #### kept, one leading space", () => {
    const first = JSON.parse(readFileSync(gsm8kSample("train"), "utf8").split("\n")[0]);
    assert.equal(
      sftTarget(first.answer),
      " Natalia sold 48/2 = 24 clips in May.\nNatalia sold 48+24 = 72 clips altogether in April and May.\n#### 72",
    );
    assert.equal(
      sftTarget("Weng earns 12/60 = $<<12/60=0.2>>0.2 per minute.\n#### 10"),
      " Weng earns 12/60 = $0.2 per minute.\n#### 10",
    );
  });

  it("plainPrompt with an empty instruction is just the question and Answer:", () => {
    assert.equal(plainPrompt(" What is 2+2? ", ""), "Question: What is 2+2?\nAnswer:");
  });
});
