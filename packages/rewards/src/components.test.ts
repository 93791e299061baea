import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { analyzeCompletion } from "./analysis.ts";
import { internalConsistency, selfConsistency } from "./consistency.ts";
import { correctnessSoft } from "./correctness.ts";
import { perplexityComponent } from "./perplexity.ts";
import { approximateTokenCount, lengthScore, nonRepetition, reasoningComponents } from "./reasoning.ts";
import {
  consistencySource,
  correctnessSource,
  perplexitySource,
  reasoningSource,
  scoreAllSources,
  validateScoreRequest,
} from "./sources.ts";
import type { GroupInput } from "./types.ts";

const v = (c: { value: number | null }) => c.value;

describe("correctness", () => {
  it("hard, soft and format", () => {
    const [a, b, c, d] = correctnessSource.score([
      {
        id: "g",
        reference: "#### 100",
        completions: [
          { id: "1", text: "The answer is 100.0000001" },
          { id: "2", text: "so 150" },
          { id: "3", text: "no idea" },
          { id: "4", text: "so 150", finishReason: "length" },
        ],
      },
    ]);
    assert.deepEqual([v(a.components.correctness_hard), v(a.components.format)], [1, 1]);
    assert.deepEqual(
      [v(b.components.correctness_hard), v(b.components.format), v(b.components.correctness_soft)],
      [0, 0.5, Math.exp(-0.5)],
    );
    assert.deepEqual([v(c.components.correctness_soft), v(c.components.format)], [0, 0]);
    assert.deepEqual([d.details.matchedRule, v(d.components.format)], ["none", 0]);
    assert.equal(b.details.extractedAnswer, "150");
    assert.equal(correctnessSoft(-2, 0.5), Math.exp(-2.5)); // max(1, |y|) = 1
  });
});

describe("reasoning", () => {
  it("length window: ramp below min, 1 inside, linear decay to 0 at 2·max", () => {
    assert.deepEqual(
      [0, 5, 10, 400, 500, 800, 900].map((n) => lengthScore(n, 10, 400)),
      [0, 0.5, 1, 1, 0.75, 0, 0],
    );
  });
  it("non_repetition counts repeated lines and sentences", () => {
    assert.equal(nonRepetition("a\nb\na\nA"), 0.5);
    assert.equal(nonRepetition("It is 5. It is 5. Done"), 1 - 1 / 3);
    assert.equal(nonRepetition(""), 1);
  });
  it("aggregate (0.6·av + 0.2·structure + 0.2·non_repetition)·length", () => {
    const text = "3 * 4 = 12\n12 + 3 = 16\n#### 16";
    const c = reasoningComponents(analyzeCompletion({ id: "x", text }), { tokenCount: 20 });
    assert.deepEqual(Object.fromEntries(Object.entries(c).map(([k, x]) => [k, x.value])), {
      reasoning: 0.6 * 0.5 + 0.2 + 0.2,
      arithmetic_validity: 0.5,
      structure: 1,
      non_repetition: 1,
      length: 1,
    });
    const [r] = reasoningSource.score([
      { id: "g", reference: "16", completions: [{ id: "c", text, tokenIds: [1, 2, 3, 4, 5] }] },
    ]);
    assert.equal(r.components.length.value, 0.5); // 5 supplied token ids, min 10
    assert.deepEqual(
      r.details.equations.map((e) => [e.text, e.valid]),
      [
        ["3 * 4=12", true],
        ["12 + 3=16", false],
      ],
    );
  });
  it("token approximation: words, digits and symbols", () => {
    assert.equal(approximateTokenCount("She has 12 apples."), 6);
  });
});

describe("consistency", () => {
  it("self_consistency over the other completions; internal against the last stated result", () => {
    assert.deepEqual(
      [0, 1, 2, 3].map((i) => selfConsistency([5, 5, null, 7], i)),
      [1 / 3, 1 / 3, 0, 0],
    );
    assert.equal(selfConsistency([5], 0), null);
    assert.equal(
      internalConsistency(16, analyzeCompletion({ id: "", text: "3*4 = 12\n12+3 = 16" }).equations()),
      1,
    );
    assert.equal(
      internalConsistency(15, analyzeCompletion({ id: "", text: "3*4 = 12\n12+3 = 16" }).equations()),
      0,
    );
    assert.equal(internalConsistency(15, []), null);
  });
  it("ABSENT rules", () => {
    const [solo] = consistencySource.score([
      { id: "g", reference: "1", completions: [{ id: "a", text: "The answer is 1" }] },
    ]);
    assert.equal(solo.components.consistency.status, "absent");
    assert.equal(solo.components.self_consistency.status, "absent");
    const [a] = consistencySource.score([
      {
        id: "g",
        reference: "1",
        completions: [
          { id: "a", text: "The answer is 1" },
          { id: "b", text: "The answer is 1" },
        ],
      },
    ]);
    assert.deepEqual([a.components.consistency.value, a.components.internal.status], [1, "absent"]);
  });
});

describe("perplexity", () => {
  it("exp(−NLL/τ); ABSENT without logprobs; ERROR on a positive logprob", () => {
    assert.equal(perplexityComponent([-1, -3]).value, Math.exp(-2));
    assert.equal(perplexityComponent([-1, -3], 2).value, Math.exp(-1));
    assert.equal(perplexityComponent([]).status, "absent");
    assert.equal(perplexityComponent(undefined).status, "absent");
    const e = perplexityComponent([-1, 0.5]);
    assert.deepEqual([e.status, e.detail], ["error", "logprobs[1] = 0.5 is not a log-probability"]);
    const [r] = perplexitySource.score([
      { id: "g", reference: "1", completions: [{ id: "a", text: "x", logprobs: [-0.5] }] },
    ]);
    assert.equal(r.components.perplexity.value, Math.exp(-0.5));
  });
});

describe("sources and validation", () => {
  const good: GroupInput[] = [
    { id: "g", reference: "#### 2", completions: [{ id: "a", text: "1+1 = 2. The answer is 2" }] },
  ];
  it("scoreAllSources returns every component of the four sources", () => {
    const [r] = scoreAllSources(good);
    assert.deepEqual(Object.keys(r.components).sort(), [
      "arithmetic_validity",
      "consistency",
      "correctness_hard",
      "correctness_soft",
      "format",
      "internal",
      "length",
      "non_repetition",
      "perplexity",
      "reasoning",
      "self_consistency",
      "structure",
    ]);
    assert.equal(r.details.matchedRule, "answer_is");
    assert.equal(r.details.equations.length, 1);
  });
  const bad: Array<[GroupInput[], object, string]> = [
    [[], {}, "groups"],
    [[{ id: "g", reference: "2", completions: [] }], {}, "groups[0].completions"],
    [[{ id: "g", reference: "two", completions: [{ id: "a", text: "2" }] }], {}, "groups[0].reference"],
    [
      [{ id: "g", reference: "2", completions: [{ id: "a", text: "" }] }],
      {},
      "groups[0].completions[0].text",
    ],
    [
      [{ id: "g", reference: "2", completions: [{ id: "a", text: "x".repeat(1 << 20) }] }],
      {},
      "groups[0].completions[0].text",
    ],
    [[...good, ...good], {}, "groups[1].id"],
    [good, { perplexityTau: 0 }, "params.perplexity_tau"],
    [good, { perplexityTau: 1e-320 }, "params.perplexity_tau"],
    [[{ id: "g", reference: "2", completions: [{ id: "", text: "2" }] }], {}, "groups[0].completions[0].id"],
    [
      [
        { id: "g", reference: "2", completions: [{ id: "a", text: "2" }] },
        { id: "h", reference: "2", completions: [{ id: "a", text: "2" }] },
      ],
      {},
      "groups[1].completions[0].id",
    ],
    [good, { minTokens: 50, maxTokens: 10 }, "params.max_tokens"],
    [
      [{ id: "g", reference: "2", completions: [{ id: "a", text: "2", tokenIds: [1, 2], logprobs: [-1] }] }],
      {},
      "groups[0].completions[0].logprobs",
    ],
  ];
  for (const [groups, params, field] of bad) {
    it(`rejects ${field}`, () => assert.equal(validateScoreRequest(groups, params)?.field, field));
  }
  it("accepts a valid request", () => assert.equal(validateScoreRequest(good), null));
});
