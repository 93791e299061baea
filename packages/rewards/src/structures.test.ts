import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { grpoAdvantages } from "./advantages.ts";
import { type BlendItem, blendBatch, componentStats } from "./blend.ts";
import {
  continuousReward,
  resolveStructure,
  type Structure,
  type StructureInput,
  scheduledAlpha,
} from "./structures.ts";

const close = (a: number, b: number, msg = "") => assert.ok(Math.abs(a - b) < 1e-12, `${msg} ${a} vs ${b}`);

function structure(input: StructureInput): Structure {
  const r = resolveStructure(input);
  if (!r.ok) throw new Error(JSON.stringify(r.error));
  return r.value;
}

// Two items of one group; hand-computed continuous rewards (default weights):
// item 1: (0.4·0.5 + 0.25·0.8 + 0.15·0.6) / (0.4 + 0.25 + 0.15) = 0.6125 (consistency absent, renormalised)
// item 2: (0.4·1 + 0.25·0.4 + 0.2·1 + 0.15·0.2) / 1 = 0.73
const items: BlendItem[] = [
  {
    groupId: "g",
    correctnessHard: 1,
    components: { correctness_soft: 0.5, reasoning: 0.8, consistency: null, perplexity: 0.6 },
  },
  {
    groupId: "g",
    correctnessHard: 0,
    components: { correctness_soft: 1, reasoning: 0.4, consistency: 1, perplexity: 0.2 },
  },
];
const blend = (s: StructureInput, step = 0, extra: Partial<Parameters<typeof blendBatch>[0]> = {}) =>
  blendBatch({ items, structure: structure(s), step, state: { accuracyEma: null }, ...extra });

describe("structures (hand-computed)", () => {
  it("hard: R = correctness_hard, A = ±0.5/(√0.5 + 1e-4)", () => {
    const r = blend({ kind: "hard" });
    assert.deepEqual(
      r.items.map((i) => i.reward),
      [1, 0],
    );
    close(r.items[0].advantage, 0.7070067953266834);
    close(r.items[1].advantage, -0.7070067953266834);
    assert.equal(r.alpha, 1);
    assert.equal(r.groups[0].zeroSignal, false);
  });
  it("continuous: renormalised over present components", () => {
    const r = blend({ kind: "continuous" });
    close(r.items[0].reward, 0.6125);
    close(r.items[1].reward, 0.73);
    assert.equal(r.alpha, 0);
  });
  it("continuous: custom weights, qualified names match too", () => {
    close(
      continuousReward(
        { "correctness.correctness_soft": 0.5, "reasoning.reasoning": 1 },
        { correctness_soft: 1, reasoning: 3 },
      ) ?? Number.NaN,
      0.875,
    );
    assert.equal(continuousReward({ perplexity: null }, { perplexity: 1 }), null);
  });
  it("hybrid α = 0.5: 0.5·1 + 0.5·0.6125 and 0.5·0 + 0.5·0.73", () => {
    const r = blend({ kind: "hybrid" });
    close(r.items[0].reward, 0.80625);
    close(r.items[1].reward, 0.365);
    close(r.groups[0].meanReward, 0.585625);
    close(r.groups[0].stdReward, 0.312010867198564);
    close(r.items[0].advantage, 0.7068802249030277);
    close(r.items[1].advantage, -0.7068802249030277);
    assert.deepEqual(
      r.items.map((i) => i.alphaUsed),
      [0.5, 0.5],
    );
  });
  it("hybrid α = 0.25", () => {
    const r = blend({ kind: "hybrid", alpha: 0.25 });
    close(r.items[0].reward, 0.25 + 0.75 * 0.6125);
  });
});

describe("time schedules (α₀ = 0.2, α₁ = 0.9)", () => {
  const time = (shape: string, step: number, extra = {}) =>
    scheduledAlpha(
      structure({
        kind: "adaptive",
        schedule: { kind: "time", shape: shape as never, totalSteps: 100, ...extra },
      }),
      step,
    );
  it("constant", () => close(time("constant", 50), 0.2));
  it("linear: 0.2 + 0.7·0.5 at t = 50; capped at u = 1", () => {
    close(time("linear", 0), 0.2);
    close(time("linear", 50), 0.55);
    close(time("linear", 100), 0.9);
    close(time("linear", 250), 0.9);
  });
  it("cosine: 0.2 + 0.7·(1 − cos(π/4))/2 at t = 25", () => close(time("cosine", 25), 0.30251262658470834));
  it("step: milestones 10 and 20", () => {
    close(time("step", 9, { milestones: [10, 20] }), 0.2);
    close(time("step", 10, { milestones: [10, 20] }), 0.55);
    close(time("step", 20, { milestones: [10, 20] }), 0.9);
  });
  it("sigmoid k = 10, rescaled: ends at 0.2 and 0.9, 0.2490726015815757 at u = 0.25", () => {
    close(time("sigmoid", 0), 0.2);
    close(time("sigmoid", 25), 0.2490726015815757);
    close(time("sigmoid", 50), 0.55);
    close(time("sigmoid", 100), 0.9);
  });
  it("custom α₀ > α₁ decays", () => close(time("linear", 50, { alphaStart: 1, alphaEnd: 0 }), 0.5));
});

describe("progress mode", () => {
  it("α from the EMA before the step; EMA starts at the first batch accuracy, then decays 0.9", () => {
    const s = structure({ kind: "adaptive", schedule: { kind: "progress" } });
    const b = (acc: number[], state: { accuracyEma: number | null }, step: number) =>
      blendBatch({
        items: acc.map((c, i) => ({
          groupId: `g${i}`,
          correctnessHard: c,
          components: { correctness_soft: c },
        })),
        structure: s,
        step,
        state,
      });
    const s0 = b([1, 0], { accuracyEma: null }, 0);
    close(s0.alpha, 0.2); // no EMA yet → α_min
    close(s0.state.accuracyEma!, 0.5);
    const s1 = b([1, 1], s0.state, 1);
    close(s1.alpha, 0.2 + (0.7 * 0.5) / 0.8); // 0.6375
    close(s1.state.accuracyEma!, 0.9 * 0.5 + 0.1 * 1); // 0.55
    const s2 = b([1, 1], s1.state, 2);
    close(s2.alpha, 0.2 + (0.7 * 0.55) / 0.8); // 0.68125
    close(scheduledAlpha(s, 3, { accuracyEma: 0.9 }), 0.9); // clipped at α_max
  });
});

describe("group fallback", () => {
  const batch: BlendItem[] = [
    { groupId: "same", correctnessHard: 1, components: { correctness_soft: 1, reasoning: 0.2 } },
    { groupId: "same", correctnessHard: 1, components: { correctness_soft: 1, reasoning: 0.6 } },
    { groupId: "mixed", correctnessHard: 1, components: { correctness_soft: 1, reasoning: 1 } },
    { groupId: "mixed", correctnessHard: 0, components: { correctness_soft: 0.5, reasoning: 0 } },
    { groupId: "solo", correctnessHard: 0, components: { correctness_soft: 0.3, reasoning: 0.3 } },
  ];
  const adaptive = (fallback?: boolean) =>
    blendBatch({
      items: batch,
      structure: structure({
        kind: "adaptive",
        schedule: { kind: "time", totalSteps: 100 },
        fallback,
        continuous: { weights: { correctness_soft: 1, reasoning: 1 } },
      }),
      step: 50,
      state: { accuracyEma: null },
    });
  it("zero-signal groups blend with α = 0; others with the step's α = 0.55", () => {
    const r = adaptive();
    close(r.alpha, 0.55);
    assert.deepEqual(
      r.items.map((i) => i.alphaUsed),
      [0, 0, 0.55, 0.55, 0],
    );
    // same: R = continuous = (1 + 0.2)/2, (1 + 0.6)/2 → advantages ∓0.2/(std + 1e-4), std = 0.2·√2
    close(r.items[0].reward, 0.6);
    close(r.items[1].reward, 0.8);
    close(r.items[0].advantage, -0.1 / (Math.SQRT2 * 0.1 + 1e-4));
    // mixed: 0.55·1 + 0.45·1 = 1 and 0.55·0 + 0.45·0.25 = 0.1125
    close(r.items[2].reward, 1);
    close(r.items[3].reward, 0.1125);
    assert.deepEqual(
      r.groups.map((g) => [g.groupId, g.zeroSignal, g.fallbackApplied]),
      [
        ["same", true, true],
        ["mixed", false, false],
        ["solo", true, true],
      ],
    );
    assert.equal(r.items[4].advantage, 0); // a group of one
    close(r.zeroSignalFraction, 2 / 3);
    close(r.batchAccuracy, 0.6);
  });
  it("fallback off: the step's α everywhere, zero_signal still reported", () => {
    const r = adaptive(false);
    assert.deepEqual(
      r.items.map((i) => i.alphaUsed),
      [0.55, 0.55, 0.55, 0.55, 0.55],
    );
    assert.deepEqual(
      r.groups.map((g) => [g.zeroSignal, g.fallbackApplied]),
      [
        [true, false],
        [false, false],
        [true, false],
      ],
    );
  });
});

describe("advantages", () => {
  const rs = [[1, 2, 3, 6], [5], [0, 0]];
  it("group scale: sample std (n − 1)", () => {
    const a = grpoAdvantages(rs, "group");
    const std = Math.sqrt((4 + 1 + 0 + 9) / 3); // mean 3
    for (const [i, x] of a[0].entries()) close(x, (rs[0][i] - 3) / (std + 1e-4));
    assert.deepEqual(a[1], [0]);
    assert.deepEqual(a[2], [0, 0]);
  });
  it("batch scale: the batch's sample std", () => {
    const a = grpoAdvantages(rs, "batch");
    const all = [1, 2, 3, 6, 5, 0, 0];
    const m = 17 / 7;
    const std = Math.sqrt(all.reduce((s, x) => s + (x - m) ** 2, 0) / 6);
    for (const [i, x] of a[0].entries()) close(x, (rs[0][i] - 3) / (std + 1e-4));
    assert.deepEqual(a[1], [0]);
  });
  it("none: R − mean_g", () => {
    assert.deepEqual(grpoAdvantages(rs, "none"), [[-2, -1, 0, 3], [0], [0, 0]]);
  });
});

describe("component statistics", () => {
  it("mean, sample std and counts, absent values excluded", () => {
    const s = componentStats([
      { a: 1, b: null },
      { a: 3, b: 0.5 },
      { a: 5, b: null },
    ]);
    assert.deepEqual(s.a, { mean: 3, std: 2, present: 3, absent: 0 });
    assert.deepEqual(s.b, { mean: 0.5, std: 0, present: 1, absent: 2 });
  });
});

describe("validation names the field", () => {
  const cases: Array<[StructureInput, string, RegExp]> = [
    [{ kind: "hybrid", alpha: 1.5 }, "structure.hybrid.alpha", /\[0, 1\]/],
    [{ kind: "hybrid", alpha: -0.1 }, "structure.hybrid.alpha", /\[0, 1\]/],
    [{ kind: "continuous", weights: { reasoning: -1 } }, 'structure.continuous.weights["reasoning"]', /≥ 0/],
    [
      { kind: "continuous", weights: { reasoning: 0, perplexity: 0 } },
      "structure.continuous.weights",
      /sum to zero/,
    ],
    [
      { kind: "continuous", weights: { bogus: 1 } },
      'structure.continuous.weights["bogus"]',
      /unknown component/,
    ],
    [
      { kind: "continuous", weights: { reasoning: Number.NaN } },
      'structure.continuous.weights["reasoning"]',
      /finite/,
    ],
    [
      { kind: "hybrid", continuous: { weights: { x: 1 } } },
      'structure.hybrid.continuous.weights["x"]',
      /unknown/,
    ],
    [
      { kind: "continuous", weights: { reasoning: 1e308, perplexity: 1e308 } },
      'structure.continuous.weights["reasoning"]',
      /overflow/,
    ],
    [
      { kind: "continuous", weights: { reasoning: 5e-324 } },
      'structure.continuous.weights["reasoning"]',
      /overflow/,
    ],
    [
      { kind: "adaptive", schedule: { kind: "time", shape: "sigmoid", totalSteps: 9, sigmoidK: 1e-17 } },
      "structure.adaptive.time.sigmoid_k",
      /overflow/,
    ],
    [{ kind: "adaptive" }, "structure.adaptive.schedule", /required/],
    [{ kind: "adaptive", schedule: { kind: "time" } }, "structure.adaptive.time.total_steps", /> 0/],
    [
      { kind: "adaptive", schedule: { kind: "time", shape: "step" } },
      "structure.adaptive.time.milestones",
      /milestone/,
    ],
    [
      { kind: "adaptive", schedule: { kind: "time", totalSteps: 5, alphaEnd: 2 } },
      "structure.adaptive.time.alpha_end",
      /\[0, 1\]/,
    ],
    [
      { kind: "adaptive", schedule: { kind: "progress", emaDecay: 1 } },
      "structure.adaptive.progress.ema_decay",
      /\[0, 1\)/,
    ],
    [
      { kind: "adaptive", schedule: { kind: "progress", targetAccuracy: 0 } },
      "structure.adaptive.progress.target_accuracy",
      /\(0, 1\]/,
    ],
    [
      { kind: "adaptive", schedule: { kind: "progress", alphaMin: 0.9, alphaMax: 0.1 } },
      "structure.adaptive.progress.alpha_max",
      /alpha_min/,
    ],
    [{ kind: "nope" } as never, "structure.kind", /unknown structure/],
  ];
  for (const [input, field, re] of cases) {
    it(`${JSON.stringify(input)} → ${field}`, () => {
      const r = resolveStructure(input);
      assert.equal(r.ok, false);
      if (!r.ok) {
        assert.equal(r.error.field, field);
        assert.match(r.error.message, re);
      }
    });
  }
  it("defaults are filled", () => {
    assert.deepEqual(structure({ kind: "continuous" }), {
      kind: "continuous",
      weights: { correctness_soft: 0.4, reasoning: 0.25, consistency: 0.2, perplexity: 0.15 },
    });
    const a = structure({ kind: "adaptive", schedule: { kind: "progress" } });
    assert.deepEqual(a, {
      kind: "adaptive",
      schedule: { kind: "progress", alphaMin: 0.2, alphaMax: 0.9, targetAccuracy: 0.8, emaDecay: 0.9 },
      fallback: true,
      weights: { correctness_soft: 0.4, reasoning: 0.25, consistency: 0.2, perplexity: 0.15 },
    });
  });
});

describe("control: permute", () => {
  // 6 groups of 4 with varied correctness: enough items that a shuffle moves most rewards
  const many: BlendItem[] = Array.from({ length: 24 }, (_, i) => ({
    groupId: `g${Math.floor(i / 4)}`,
    correctnessHard: (i * 7) % 5 < 2 ? 1 : 0,
    components: { "reasoning.reasoning": ((i * 13) % 10) / 10 },
  }));
  const run = (seed: number, step: number, s: StructureInput = { kind: "hybrid", alpha: 0.5 }) =>
    blendBatch({
      items: many,
      structure: structure(s),
      step,
      state: { accuracyEma: null },
      control: { kind: "permute", seed },
    });
  const plain = blendBatch({
    items: many,
    structure: structure({ kind: "hybrid", alpha: 0.5 }),
    step: 3,
    state: { accuracyEma: null },
  });

  it("keeps the step's rewards as a multiset, moves them between items, reproduces under its seed", () => {
    const p = run(7, 3);
    const sorted = (xs: number[]) => [...xs].sort((a, b) => a - b);
    assert.deepEqual(sorted(p.items.map((i) => i.reward)), sorted(plain.items.map((i) => i.reward)));
    const moved = p.items.filter((it, i) => it.reward !== plain.items[i].reward).length;
    assert.ok(moved >= 8, `only ${moved} of 24 rewards moved`);
    assert.deepEqual(
      run(7, 3).items.map((i) => i.reward),
      p.items.map((i) => i.reward),
    );
    assert.notDeepEqual(
      run(7, 4).items.map((i) => i.reward),
      p.items.map((i) => i.reward),
      "another step shuffles otherwise",
    );
    assert.notDeepEqual(
      run(8, 3).items.map((i) => i.reward),
      p.items.map((i) => i.reward),
      "another seed shuffles otherwise",
    );
    // what the control leaves alone: the step's accuracy (the adaptive schedule's input) and α
    assert.equal(p.batchAccuracy, plain.batchAccuracy);
    assert.equal(p.alpha, plain.alpha);
  });

  it("advantages and group statistics come from the shuffled rewards", () => {
    const p = run(11, 0, { kind: "hard" });
    const byGroup = new Map<string, number[]>();
    many.forEach((it, i) => {
      byGroup.set(it.groupId, [...(byGroup.get(it.groupId) ?? []), p.items[i].reward]);
    });
    const expected = grpoAdvantages([...byGroup.values()], "group");
    [...byGroup.keys()].forEach((g, k) => {
      const idx = many.flatMap((it, i) => (it.groupId === g ? [i] : []));
      for (const [j, i] of idx.entries()) close(p.items[i].advantage, expected[k][j], `${g}[${j}]`);
      const group = p.groups.find((x) => x.groupId === g)!;
      close(group.meanReward, byGroup.get(g)!.reduce((a, b) => a + b, 0) / idx.length);
    });
  });
});
