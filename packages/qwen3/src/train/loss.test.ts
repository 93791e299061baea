// GRPO and SFT loss graphs: values against the float64 loops of loss-reference.ts, gradients against
// central finite differences, micro-batch accumulation, diagnostics against hand-computed values.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { assertGradients, GraphBuilder, gradients, makeRng, Session, tensor, type Value } from "@temper/onnx";
import { referenceGrpoLoss, referenceSftLoss } from "../reference/loss-reference.ts";
import {
  type GrpoOptions,
  grpoLoss,
  type LossAggregation,
  lossScales,
  maskedEntropy,
  sftLoss,
} from "./loss.ts";

const [B, T] = [3, 6];
// entry 0 is never a completion token; sequence 2 has a gap and a shorter completion
const MASK = [
  [0, 0, 1, 1, 1, 1],
  [0, 1, 1, 1, 1, 0],
  [0, 0, 0, 1, 0, 1],
];
// log-ratios lp − old, away from the clip boundaries ln(1 − 0.2) ≈ −0.223 and ln(1 + 0.28) ≈ 0.247
const LOG_RATIOS = [
  [0.9, -0.6, 0.05, 0.4, -0.5, 0.12],
  [0.3, -0.1, 0.35, -0.35, 0.6, 0.02],
  [0.0, 0.2, -0.8, 0.5, 0.1, -0.15],
];
const ADVANTAGES = [0.8, -1.1, 0.5];
const OPTIONS: GrpoOptions = { epsLow: 0.2, epsHigh: 0.28, beta: 0.05 };

function batchData(seed: number) {
  const rng = makeRng(seed);
  const logprobs = MASK.map((row) => row.map(() => -0.2 - 2 * rng.uniform()));
  return {
    logprobs,
    oldLogprobs: logprobs.map((row, b) => row.map((lp, t) => lp - LOG_RATIOS[b][t])),
    refLogprobs: logprobs.map((row) => row.map((lp) => lp + 0.4 * rng.normal())),
    completionMask: MASK,
    advantages: ADVANTAGES,
  };
}
type Batch = ReturnType<typeof batchData>;

/** GRPO graph over [batch, seq] inputs; returns the session plus its input/output names. */
async function grpoSession(options: GrpoOptions) {
  const g = new GraphBuilder("grpo", { dtype: "float64" });
  const lp = g.floatInput("logprobs", ["batch", "seq"]);
  const out = grpoLoss(
    g,
    {
      logprobs: lp,
      oldLogprobs: g.floatInput("old", ["batch", "seq"]),
      refLogprobs: g.floatInput("ref", ["batch", "seq"]),
      completionMask: g.input("mask", "int64", ["batch", "seq"]),
      advantages: g.floatInput("adv", ["batch"]),
      lossScale: g.floatInput("scale", ["batch"]),
    },
    options,
  );
  g.output(out.loss, "loss");
  g.output(out.clipFraction, "clip_fraction");
  g.output(out.kl!, "kl");
  g.output(out.maskedTokens, "tokens");
  const [grad] = gradients(g, out.loss, [lp]);
  return { session: await Session.create(g.build(), { threads: 1, optimization: "basic" }), grad: grad.name };
}

function feeds(batch: Batch, scale: ArrayLike<number>, rows: number[]) {
  const pick = (x: number[][]) => rows.flatMap((b) => x[b]);
  const dims = [rows.length, T];
  return {
    logprobs: tensor("float64", pick(batch.logprobs), dims),
    old: tensor("float64", pick(batch.oldLogprobs), dims),
    ref: tensor("float64", pick(batch.refLogprobs), dims),
    mask: tensor("int64", BigInt64Array.from(pick(batch.completionMask), BigInt), dims),
    adv: tensor(
      "float64",
      rows.map((b) => batch.advantages[b]),
      [rows.length],
    ),
    scale: tensor(
      "float64",
      rows.map((b) => scale[b]),
      [rows.length],
    ),
  };
}

const close = (a: number, b: number, tol = 1e-12) =>
  assert.ok(Math.abs(a - b) <= tol * Math.max(1, Math.abs(b)), `${a} vs ${b}`);

describe("GRPO loss", () => {
  for (const aggregation of ["token", "sequence"] as LossAggregation[]) {
    it(`${aggregation} aggregation: value and diagnostics match the float64 loops`, async () => {
      const batch = batchData(1);
      const { session } = await grpoSession(OPTIONS);
      const out = await session.run(feeds(batch, lossScales(MASK, aggregation), [0, 1, 2]));
      await session.release();
      const ref = referenceGrpoLoss(batch, { ...OPTIONS, aggregation });
      close(Number(out.loss.data[0]), ref.loss);
      close(Number(out.clip_fraction.data[0]), ref.clipFraction);
      close(Number(out.kl.data[0]), ref.kl);
      assert.equal(Number(out.tokens.data[0]), 10);
    });

    it(`${aggregation} aggregation: micro-batches sum to the one-batch loss and gradient`, async () => {
      const batch = batchData(2);
      const { session, grad } = await grpoSession(OPTIONS);
      const scale = lossScales(MASK, aggregation);
      const full = await session.run(feeds(batch, scale, [0, 1, 2]));
      const first = await session.run(feeds(batch, scale, [0, 1]));
      const second = await session.run(feeds(batch, scale, [2]));
      await session.release();
      close(Number(first.loss.data[0]) + Number(second.loss.data[0]), Number(full.loss.data[0]));
      const stitched = [...first[grad].data, ...second[grad].data] as number[];
      for (const [i, v] of (full[grad].data as Float64Array).entries()) close(stitched[i], v);
      assert.ok((full[grad].data as Float64Array).some((v) => Math.abs(v) > 1e-3));
    });

    it(`${aggregation} aggregation: gradient w.r.t. logprobs matches finite differences`, async () => {
      const batch = batchData(3);
      const scale = Array.from(lossScales(MASK, aggregation));
      await assertGradients({
        name: `grpo-${aggregation}`,
        loss: "scalar",
        inputs: { logprobs: { shape: [B, T], init: batch.logprobs.flat() } },
        build: (g, { logprobs }) =>
          grpoLoss(
            g,
            {
              logprobs,
              oldLogprobs: g.constant(batch.oldLogprobs.flat(), "float64", [B, T]),
              refLogprobs: g.constant(batch.refLogprobs.flat(), "float64", [B, T]),
              completionMask: g.constant(MASK.flat(), "float64", [B, T]),
              advantages: g.constant(ADVANTAGES, "float64", [B]),
              lossScale: g.constant(scale, "float64", [B]),
            },
            OPTIONS,
          ).loss,
      });
    });
  }

  it("clip fraction and KL match hand-computed values", async () => {
    // one sequence, tokens 1..4 masked in: ratios e^0.5 (A>0: clipped at 1.28), e^−0.5 (A>0: unclipped
    // is smaller), 1 (inside), and token 4 e^0.3 but masked out.
    const lp = [[0, -1, -2, -1.5, -0.7]];
    const old = [[0, -1.5, -1.5, -1.5, -1.0]];
    const ref = [[0, -1, -1.8, -1.5, -5]];
    const mask = [[0, 1, 1, 1, 0]];
    const g = new GraphBuilder("diag", { dtype: "float64" });
    const c = (x: number[][]) => g.constant(x.flat(), "float64", [1, 5]);
    const out = grpoLoss(
      g,
      {
        logprobs: c(lp),
        oldLogprobs: c(old),
        refLogprobs: c(ref),
        completionMask: c(mask),
        advantages: g.constant([1], "float64", [1]),
        lossScale: g.constant([1 / 3], "float64", [1]),
      },
      { epsLow: 0.2, epsHigh: 0.28, beta: 0.1 },
    );
    g.output(out.clipFraction, "clip");
    g.output(out.kl!, "kl");
    g.output(out.loss, "loss");
    const s = await Session.create(g.build(), { threads: 1 });
    const res = await s.run({});
    await s.release();
    close(Number(res.clip.data[0]), 1 / 3);
    // k3 at tokens 1..3: d = 0, 0.2, 0 → (e^0.2 − 1.2) / 3
    close(Number(res.kl.data[0]), (Math.exp(0.2) - 1.2) / 3);
    const surrogate = 1.28 + Math.exp(-0.5) + 1;
    close(Number(res.loss.data[0]), (-surrogate + 0.1 * (Math.exp(0.2) - 1.2)) / 3);
  });

  it("padding with extreme values stays finite", async () => {
    const g = new GraphBuilder("pad", { dtype: "float32" });
    const lp = g.floatInput("lp", [1, 4]);
    const out = grpoLoss(
      g,
      {
        logprobs: lp,
        oldLogprobs: g.constant([0, -1, 0, 0], "float32", [1, 4]),
        refLogprobs: g.constant([0, -1, 0, 0], "float32", [1, 4]),
        completionMask: g.constant([0, 1, 0, 0], "float32", [1, 4]),
        // A < 0: an unmasked r = e^500 = ∞ would make ℓ = ∞ and 0·∞ = NaN
        advantages: g.constant([-1], "float32", [1]),
        lossScale: g.constant([1], "float32", [1]),
      },
      { beta: 0.1 },
    );
    g.output(out.loss, "loss");
    const [grad] = gradients(g, out.loss, [lp]);
    const s = await Session.create(g.build(), { threads: 1 });
    const res = await s.run({ lp: tensor("float32", [-1000, -1, 500, -1e30], [1, 4]) });
    await s.release();
    assert.ok(Number.isFinite(Number(res.loss.data[0])));
    close(Number(res.loss.data[0]), 1, 1e-6);
    assert.deepEqual(
      Array.from(res[grad.name].data as Float32Array).map((v) => Math.abs(v) > 0),
      [false, true, false, false],
    );
  });

  it("rejects bad options and shapes with one-line errors", () => {
    const g = new GraphBuilder("bad", { dtype: "float64" });
    const x = g.floatInput("x", [2, 3]);
    const v = g.floatInput("v", [2]);
    const base = { logprobs: x, oldLogprobs: x, completionMask: x, advantages: v, lossScale: v };
    assert.throws(() => grpoLoss(g, base, { beta: 0.1 }), /beta 0.1 > 0 needs refLogprobs/);
    assert.throws(() => grpoLoss(g, { ...base, advantages: x }), /advantages "x" must be \[B\]/);
    assert.throws(() => grpoLoss(g, base, { epsLow: 1.5 }), /epsLow must be a number in \[0, 1\]/);
    assert.throws(
      () => sftLoss(g, { logprobs: v, completionMask: x, lossScale: v }),
      /SFT logprobs "v" must be \[B, T\]/,
    );
  });
});

describe("SFT loss", () => {
  for (const aggregation of ["token", "sequence"] as LossAggregation[]) {
    it(`${aggregation}: value matches −Σ m·lp / Σ m and the gradient matches finite differences`, async () => {
      const batch = batchData(4);
      const scale = Array.from(lossScales(MASK, aggregation));
      const build = (g: GraphBuilder, logprobs: Value) =>
        sftLoss(g, {
          logprobs,
          completionMask: g.constant(MASK.flat(), "float64", [B, T]),
          lossScale: g.constant(scale, "float64", [B]),
        }).loss;
      const g = new GraphBuilder("sft", { dtype: "float64" });
      g.output(build(g, g.constant(batch.logprobs.flat(), "float64", [B, T])), "loss");
      const s = await Session.create(g.build(), { threads: 1 });
      const out = await s.run({});
      await s.release();
      close(Number(out.loss.data[0]), referenceSftLoss(batch, aggregation));
      await assertGradients({
        name: `sft-${aggregation}`,
        loss: "scalar",
        inputs: { logprobs: { shape: [B, T], init: batch.logprobs.flat() } },
        build: (g2, { logprobs }) => build(g2, logprobs),
      });
    });
  }
});

describe("lossScales", () => {
  it("token: 1/Σm of the whole batch; sequence: 1/(N·Σ_t m)", () => {
    assert.deepEqual(Array.from(lossScales(MASK, "token")), [1 / 10, 1 / 10, 1 / 10]);
    assert.deepEqual(Array.from(lossScales(MASK, "sequence")), [1 / 12, 1 / 12, 1 / 6]);
    assert.deepEqual(
      Array.from(
        lossScales(
          [
            [0, 1],
            [0, 0],
          ],
          "sequence",
        ),
      ),
      [1 / 2, 0],
    );
  });

  it("rejects masks that break the alignment convention", () => {
    assert.throws(() => lossScales([[1, 1]], "token"), /sequence 0: completion_mask\[0\] must be 0/);
    assert.throws(
      () =>
        lossScales(
          [
            [0, 1],
            [0, 2],
          ],
          "token",
        ),
      /sequence 1: completion_mask\[1\] is 2/,
    );
    assert.throws(() => lossScales([[0, 0]], "token"), /no completion tokens/);
    assert.throws(() => lossScales([], "token"), /no sequences/);
    assert.throws(
      () => lossScales(MASK, "mean" as LossAggregation),
      /aggregation must be one of token, sequence/,
    );
  });
});

describe("maskedEntropy", () => {
  it("aligns row t−1 with token t and averages over masked tokens", async () => {
    const V = 3;
    // rows: uniform (H = ln 3), one-hot-ish, two-way split; the last row predicts nothing
    const rows = [
      [0, 0, 0],
      [50, 0, 0],
      [0, 0, -1e4],
      [1, 2, 3],
    ];
    const g = new GraphBuilder("entropy", { dtype: "float64" });
    const logits = g.constant(rows.flat(), "float64", [1, 4, V]);
    const out = maskedEntropy(g, logits, g.constant([0, 1, 0, 1], "float64", [1, 4]));
    g.output(out.entropy, "entropy");
    g.output(out.tokenEntropy, "per_token");
    const s = await Session.create(g.build(), { threads: 1 });
    const res = await s.run({});
    await s.release();
    const per = Array.from(res.per_token.data as Float64Array);
    close(per[0], 0);
    close(per[1], Math.log(3));
    close(per[3], Math.log(2));
    close(Number(res.entropy.data[0]), (Math.log(3) + Math.log(2)) / 2);
  });
});
