// Every GSM8K reference, scored as a completion against its own answer and a perturbed one;
// and the reasoning checks' arithmetic validity on the reference rationales. On the repository's
// sample always, and on all 8,792 references where the full splits are here.
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import { devGsm8kPath, devGsm8kSkip, type Gsm8kSplit, gsm8kSample } from "@temper/fixtures";
import { type Gsm8kExample, loadGsm8k, parseReference } from "@temper/gsm8k";
import { arithmeticValidity } from "./reasoning.ts";
import { correctnessSource } from "./sources.ts";

const both = (path: (split: Gsm8kSplit) => string) => [
  ...loadGsm8k(path("train")),
  ...loadGsm8k(path("test")),
];

describe("GSM8K references, the sample (train + test)", () => referenceChecks(() => both(gsm8kSample)));

describe(
  "GSM8K references, all of them (train + test)",
  { skip: devGsm8kSkip("train") || devGsm8kSkip("test") },
  () => referenceChecks(() => both(devGsm8kPath)),
);

function referenceChecks(load: () => Gsm8kExample[]): void {
  let examples: Gsm8kExample[] = [];
  before(() => {
    examples = load();
    assert.ok(examples.length > 0);
  });
  it("correctness_hard = 1 against the own answer, 0 against a perturbed one", () => {
    const own = correctnessSource.score(
      examples.map((e, i) => ({
        id: `${i}`,
        reference: e.answer,
        completions: [{ id: "c", text: e.answer }],
      })),
    );
    const perturbed = correctnessSource.score(
      examples.map((e, i) => {
        const y = parseReference(e.answer).answer!;
        return {
          id: `${i}`,
          reference: String(y + Math.max(1, Math.abs(y) * 0.01)),
          completions: [{ id: "c", text: e.answer }],
        };
      }),
    );
    const ownFails = own.filter((r) => r.components.correctness_hard.value !== 1).map((r) => r.groupId);
    const perturbedPasses = perturbed
      .filter((r) => r.components.correctness_hard.value !== 0)
      .map((r) => r.groupId);
    console.log(
      `references: ${examples.length}, own answer correct: ${examples.length - ownFails.length}, perturbed rejected: ${examples.length - perturbedPasses.length}`,
    );
    assert.deepEqual(ownFails, []);
    assert.deepEqual(perturbedPasses, []);
    assert.ok(own.every((r) => r.details.matchedRule === "hash"));
  });
  it("arithmetic validity of the rationales (rate printed, exceptions listed)", () => {
    let total = 0;
    let valid = 0;
    const exceptions: string[] = [];
    let perfect = 0;
    for (const e of examples) {
      const eqs = parseReference(e.answer).equations;
      total += eqs.length;
      for (const q of eqs) {
        if (q.valid) valid++;
        else exceptions.push(`${q.source}: ${q.text} (computed ${q.computed ?? q.error})`);
      }
      if (eqs.length > 0 && arithmeticValidity(eqs) === 1) perfect++;
    }
    const rate = valid / total;
    console.log(
      `reference equations: ${total}, valid: ${valid}, rate ${(100 * rate).toFixed(2)}%, references all-valid: ${perfect}/${examples.length}`,
    );
    console.log(`first exceptions:\n  ${exceptions.slice(0, 15).join("\n  ")}`);
    assert.ok(rate > 0.98, `rate ${rate}`);
  });
}
