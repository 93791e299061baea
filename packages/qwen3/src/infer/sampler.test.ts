import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Rng } from "../model/prng.ts";
import {
  argmax,
  checkSamplingParams,
  keptTokens,
  SamplingError,
  type SamplingParams,
  sampleToken,
  tokenLogprob,
} from "./sampler.ts";

const row = (values: number[]) => Float64Array.from(values);
const logs = (probs: number[]) => row(probs.map(Math.log));

/** Naive log softmax over the whole row (a different formula from the sampler's shifted one). */
function naiveLogprob(values: ArrayLike<number>, token: number, temperature: number): number {
  let z = 0;
  for (let i = 0; i < values.length; i++) z += Math.exp(values[i] / temperature);
  return Math.log(Math.exp(values[token] / temperature) / z);
}

/**
 * The definition written out by brute force: candidate sets are {i < limit : logit_i ≥ c} for each
 * distinct logit c (descending); top-k takes the one at the k-th largest value, top-p the first
 * whose mass (renormalised over the top-k set) reaches p. Returns the set, sorted by id.
 */
function bruteForceKept(values: number[], params: SamplingParams, limit: number): number[] {
  const ids = values.slice(0, limit).map((_, i) => i);
  const levels = [...new Set(ids.map((i) => values[i]))].sort((a, b) => b - a);
  const atLeast = (c: number, pool: number[]) => pool.filter((i) => values[i] >= c);
  if (params.temperature === 0) {
    const m = Math.max(...ids.map((i) => values[i]));
    return [ids.find((i) => values[i] === m)!];
  }
  let pool = ids;
  const k = params.topK ?? 0;
  if (k > 0 && k < limit) {
    const sorted = ids.map((i) => values[i]).sort((a, b) => b - a);
    pool = atLeast(sorted[k - 1], ids);
  }
  const p = params.topP ?? 1;
  if (p >= 1) return pool;
  const weight = (i: number) => Math.exp(values[i] / params.temperature);
  const total = pool.reduce((s, i) => s + weight(i), 0);
  for (const c of levels) {
    const set = atLeast(c, pool);
    if (set.reduce((s, i) => s + weight(i), 0) / total >= p - 1e-12) return set;
  }
  return pool;
}

describe("sampling parameters", () => {
  it("rejects bad values with a message naming them", () => {
    const bad: [SamplingParams, RegExp][] = [
      [{ temperature: -1 }, /temperature .* got -1/],
      [{ temperature: Number.NaN }, /temperature/],
      [{ temperature: Infinity }, /temperature/],
      [{ temperature: 1, topK: 1.5 }, /top_k .* got 1.5/],
      [{ temperature: 1, topK: -2 }, /top_k/],
      [{ temperature: 1, topP: 0 }, /top_p must be in \(0, 1\], got 0/],
      [{ temperature: 1, topP: 1.2 }, /top_p .* 1.2/],
    ];
    for (const [params, message] of bad) {
      assert.throws(
        () => checkSamplingParams(params),
        (e: Error) => e instanceof SamplingError && message.test(e.message),
      );
      assert.throws(() => sampleToken(row([0, 1]), params, new Rng(1)), SamplingError);
    }
  });

  it("rejects NaN or +Infinity logits, an all -Infinity row and a bad vocabLimit", () => {
    const rng = new Rng(1);
    assert.throws(
      () => sampleToken(row([0, Number.NaN]), { temperature: 1 }, rng),
      /logit of token 1 is NaN/,
    );
    assert.throws(() => sampleToken(row([Infinity, 0]), { temperature: 0 }, rng), /token 0 is Infinity/);
    assert.throws(() => sampleToken(row([-Infinity, -Infinity]), { temperature: 1 }, rng), /every logit/);
    assert.throws(
      () => sampleToken(row([0, 1]), { temperature: 1 }, rng, 3),
      /vocabLimit .* \[1, 2\], got 3/,
    );
    assert.throws(() => sampleToken(row([0, 1]), { temperature: 1 }, rng, 0), /vocabLimit/);
  });
});

describe("greedy", () => {
  it("is the argmax, lowest id on ties, and reports the temperature-1 logprob", () => {
    const values = [0.5, 2, -1, 2, 1.5];
    const r = sampleToken(row(values), { temperature: 0, topK: 1, topP: 0.1 }, new Rng(3));
    assert.equal(r.token, 1);
    assert.ok(Math.abs(r.logprob - naiveLogprob(values, 1, 1)) < 1e-12);
    assert.equal(argmax(Float32Array.from([3, 1, 7, 7])), 2);
  });

  it("never returns an id at or above vocabLimit, even with the highest logit", () => {
    const values = [0.1, 0.3, 0.2, 9, 8];
    assert.equal(sampleToken(row(values), { temperature: 0 }, new Rng(0), 3).token, 1);
    // The logprob still normalises over the whole row, as the learner's forward pass does.
    const r = sampleToken(row(values), { temperature: 0 }, new Rng(0), 3);
    assert.ok(Math.abs(r.logprob - naiveLogprob(values, 1, 1)) < 1e-12);
  });
});

describe("top-k", () => {
  it("keeps exactly the k highest, every token tied with the k-th, nothing ≥ vocabLimit", () => {
    const t = { temperature: 1 };
    assert.deepEqual(keptTokens(row([1, 5, 3, 5, 2, 0]), { ...t, topK: 2 }), [1, 3]);
    assert.deepEqual(keptTokens(row([1, 5, 3, 5, 2, 0]), { ...t, topK: 3 }), [1, 3, 2]);
    assert.deepEqual(keptTokens(row([4, 2, 3, 3, 1]), { ...t, topK: 2 }), [0, 2, 3]);
    assert.deepEqual(keptTokens(row([4, 2, 3, 3, 1]), { ...t, topK: 1 }), [0]);
    assert.deepEqual(keptTokens(row([4, 2, 3, 3, 1]), { ...t, topK: 5 }), [0, 2, 3, 1, 4]);
    assert.deepEqual(keptTokens(row([4, 2, 3, 3, 1]), { ...t, topK: 9 }), [0, 2, 3, 1, 4]);
    assert.deepEqual(keptTokens(row([4, 2, 3, 3, 1]), { ...t, topK: 0 }), [0, 2, 3, 1, 4]);
    assert.deepEqual(keptTokens(row([1, 5, 3, 9, 8]), { ...t, topK: 2 }, 3), [1, 2]);
  });

  it("drops -Infinity logits even when k reaches them", () => {
    assert.deepEqual(keptTokens(row([1, -Infinity, 0, -Infinity]), { temperature: 1, topK: 4 }), [0, 2]);
    assert.deepEqual(keptTokens(row([1, -Infinity, 0, -Infinity]), { temperature: 1, topK: 3 }), [0, 2]);
  });
});

describe("top-p", () => {
  const probs = logs([0.125, 0.5, 0.125, 0.25]);
  const t1 = { temperature: 1 };
  it("keeps the smallest most-probable set reaching p, exact boundaries included", () => {
    assert.deepEqual(keptTokens(probs, { ...t1, topP: 0.5 }), [1]);
    assert.deepEqual(keptTokens(probs, { ...t1, topP: 0.6 }), [1, 3]);
    assert.deepEqual(keptTokens(probs, { ...t1, topP: 0.75 }), [1, 3]);
    assert.deepEqual(keptTokens(probs, { ...t1, topP: 1e-9 }), [1]);
  });

  it("keeps every token tied with the last one kept", () => {
    // 0.5 + 0.25 + 0.125 ≥ 0.76 at the first 0.125, and the other 0.125 is tied with it.
    assert.deepEqual(keptTokens(probs, { ...t1, topP: 0.76 }), [1, 3, 0, 2]);
  });

  it("p = 1 keeps everything finite; nothing at or above vocabLimit", () => {
    assert.deepEqual(keptTokens(probs, { ...t1, topP: 1 }), [1, 3, 0, 2]);
    assert.deepEqual(keptTokens(row([0, -Infinity, 1]), { ...t1, topP: 1 }), [2, 0]);
    assert.deepEqual(keptTokens(probs, { ...t1, topP: 0.9 }, 3), [1, 0, 2]);
  });

  it("applies after temperature", () => {
    // T = 0.5 squares the probabilities: [1, 4, 1, 2]² → 0.727 for token 1.
    assert.deepEqual(keptTokens(probs, { temperature: 0.5, topP: 0.7 }), [1]);
    assert.deepEqual(keptTokens(probs, { temperature: 1, topP: 0.7 }), [1, 3]);
  });

  it("renormalises over the top-k survivors", () => {
    const r = logs([0.4, 0.3, 0.2, 0.1]);
    // Over top-2, token 0 has 4/7 ≈ 0.571 ≥ 0.55; over all four it would have only 0.4.
    assert.deepEqual(keptTokens(r, { temperature: 1, topK: 2, topP: 0.55 }), [0]);
    assert.deepEqual(keptTokens(r, { temperature: 1, topP: 0.55 }), [0, 1]);
  });

  it("matches the brute-force definition on random rows with ties", () => {
    const rng = new Rng(11);
    for (let trial = 0; trial < 300; trial++) {
      const n = 2 + (rng.nextU32() % 40);
      // Logits rounded to quarters so ties are common.
      const values = Array.from({ length: n }, () => Math.round(rng.normal() * 8) / 4);
      const params: SamplingParams = {
        temperature: [0, 0.3, 1, 2][rng.nextU32() % 4],
        topK: rng.nextU32() % 3 === 0 ? 0 : 1 + (rng.nextU32() % n),
        topP: rng.nextU32() % 3 === 0 ? 1 : 0.05 + 0.95 * rng.uniform(),
      };
      const limit = 1 + (rng.nextU32() % n);
      const got = keptTokens(row(values), params, limit);
      assert.deepEqual(
        [...got].sort((a, b) => a - b),
        bruteForceKept(values, params, limit),
        JSON.stringify({ values, params, limit }),
      );
      // Listed in descending logit order, ties by ascending id.
      for (let j = 1; j < got.length; j++) {
        const [a, b] = [got[j - 1], got[j]];
        assert.ok(values[a] > values[b] || (values[a] === values[b] && a < b));
      }
    }
  });
});

describe("sampleToken", () => {
  const values = [1.2, -0.3, 2.5, 0.7, 2.5, -1, 0.1, 1.9, 0.4, 3.5];

  it("returns the untruncated temperature-scaled logprob of the sampled token", () => {
    const rng = new Rng(5);
    for (const params of [
      { temperature: 0.7, topK: 3 },
      { temperature: 1.3, topP: 0.5 },
      { temperature: 1 },
    ] as SamplingParams[]) {
      for (let i = 0; i < 20; i++) {
        const r = sampleToken(row(values), params, rng, 9);
        assert.ok(Math.abs(r.logprob - naiveLogprob(values, r.token, params.temperature)) < 1e-12);
        assert.ok(
          Math.abs(tokenLogprob(Float32Array.from(values), r.token, params.temperature) - r.logprob) < 1e-6,
        );
      }
    }
  });

  it("gives the same samples for the same seed and different ones for another seed", () => {
    const draw = (seed: number) => {
      const rng = new Rng(seed);
      return Array.from({ length: 40 }, () => sampleToken(row(values), { temperature: 2 }, rng).token);
    };
    assert.deepEqual(draw(42), draw(42));
    assert.notDeepEqual(draw(42), draw(43));
  });

  it("draws with the truncated distribution's frequencies (chi-square, fixed seed)", () => {
    const cases: [SamplingParams, number][] = [
      [{ temperature: 0.8, topK: 6, topP: 0.9 }, 9],
      [{ temperature: 1.5 }, 9],
      [{ temperature: 1, topP: 0.8 }, 10],
    ];
    const draws = 20000;
    for (const [params, limit] of cases) {
      const kept = bruteForceKept(values, params, limit);
      const weights = kept.map((i) => Math.exp(values[i] / params.temperature));
      const total = weights.reduce((a, b) => a + b, 0);
      const counts = new Map<number, number>();
      const rng = new Rng(2024);
      for (let d = 0; d < draws; d++) {
        const { token } = sampleToken(row(values), params, rng, limit);
        counts.set(token, (counts.get(token) ?? 0) + 1);
      }
      for (const token of counts.keys()) assert.ok(kept.includes(token), `token ${token} is outside ${kept}`);
      let chi2 = 0;
      kept.forEach((i, j) => {
        const expected = (draws * weights[j]) / total;
        chi2 += ((counts.get(i) ?? 0) - expected) ** 2 / expected;
      });
      // df = kept − 1 ≤ 8; the 99.99th percentile of χ²(8) is 31.8.
      assert.ok(kept.length >= 2 && chi2 < 31.8, `χ² = ${chi2.toFixed(2)} over ${kept.length} tokens`);
    }
  });
});
