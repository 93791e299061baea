// A tiny LoRA "policy" (one adapted linear layer → log-softmax → aligned token logprobs) with the
// GRPO and SFT losses on top and LoRA A, B as graph inputs: gradients w.r.t. A and B against finite
// differences, loss values against float64 loops, micro-batch accumulation with one session.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { assertGradients, GraphBuilder, gradients, makeRng, Session, tensor, type Value } from "@temper/onnx";
import { initLoraAdapter, type LoraConfig, loraLinear, loraScale, loraTensorName } from "../adapter/lora.ts";
import { declareLoraInputs, loraFeeds } from "../graph/lora-graph.ts";
import { presetConfig, type Qwen3Config } from "../model/config.ts";
import { tokenizerIds } from "../model/tokenizer.ts";
import { referenceGrpoLoss, referenceSftLoss } from "../reference/loss-reference.ts";
import {
  alignToTokens,
  type GrpoOptions,
  grpoLoss,
  type LossAggregation,
  lossScales,
  sftLoss,
} from "./loss.ts";

const [N, T, IN, V, R] = [3, 5, 6, 7, 2];
const LORA: LoraConfig = { rank: R, alpha: 3, useRslora: false, targetModules: ["q_proj"] };
const SCALE = loraScale(LORA);
const OPTIONS: GrpoOptions = { epsLow: 0.2, epsHigh: 0.28, beta: 0.04 };
const MASK = [
  [0, 1, 1, 1, 1],
  [0, 0, 1, 1, 0],
  [0, 0, 0, 1, 1],
];
// lp − old per token, away from the clip boundaries ln 0.8 and ln 1.28
const LOG_RATIOS = [
  [0, 0.5, -0.05, -0.4, 0.1],
  [0, 0.9, 0.12, -0.6, 0],
  [0, 0, 0.35, 0.02, -0.3],
];
const ADVANTAGES = [1.3, -0.7, 0.4];

const rng = makeRng(21);
const randn = (n: number, std = 1) => Array.from({ length: n }, () => std * rng.normal());
const X = randn(N * T * IN); // [N, T, IN] hidden states
const W = randn(V * IN, 0.5); // [V, IN]
const A0 = randn(R * IN, 0.4); // [R, IN]
const B0 = randn(V * R, 0.4); // [V, R]: non-zero, so gradients reach A
const IDS = Array.from({ length: N * T }, () => Math.floor(rng.uniform() * V));
// the token after position t (a dummy 0 at the last position, whose row the alignment drops)
const NEXT = IDS.map((_, i) => ((i + 1) % T === 0 ? 0 : IDS[i + 1]));

/** Aligned logprobs [N][T] of the policy in plain float64 (loraLinear per position). */
function policyLogprobs(a: ArrayLike<number>, b: ArrayLike<number>, rows = [0, 1, 2]): number[][] {
  return rows.map((n) => {
    const lp = [0];
    for (let t = 1; t < T; t++) {
      const logits = loraLinear(X.slice((n * T + t - 1) * IN, (n * T + t) * IN), W, a, b, SCALE);
      const m = Math.max(...logits);
      const z = logits.reduce((s, v) => s + Math.exp(v - m), 0);
      lp.push(logits[IDS[n * T + t]] - m - Math.log(z));
    }
    return lp;
  });
}

const LP0 = policyLogprobs(A0, B0);
const OLD = LP0.map((row, n) => row.map((lp, t) => lp - LOG_RATIOS[n][t]));
const REF = LP0.map((row) => row.map((lp) => lp + 0.3 * rng.normal()));

/** Policy logprobs [rows, T] from x [rows, T, IN] and next-token ids [rows, T, 1]. */
function policy(g: GraphBuilder, x: Value, next: Value, a: Value, b: Value): Value {
  const logits = g.add(
    g.matmul(x, g.transpose(g.constant(W, "float64", [V, IN]), [1, 0])),
    g.mul(g.matmul(g.matmul(x, g.transpose(a, [1, 0])), g.transpose(b, [1, 0])), SCALE),
  );
  return alignToTokens(g, g.squeeze(g.gatherElements(g.logSoftmax(logits, -1), next, 2), [2]));
}

function constants(g: GraphBuilder, aggregation: LossAggregation) {
  const c = (x: number[][]) => g.constant(x.flat(), "float64", [N, T]);
  return {
    x: g.constant(X, "float64", [N, T, IN]),
    next: g.constant(NEXT, "int64", [N, T, 1]),
    oldLogprobs: c(OLD),
    refLogprobs: c(REF),
    completionMask: c(MASK),
    advantages: g.constant(ADVANTAGES, "float64", [N]),
    lossScale: g.constant(Array.from(lossScales(MASK, aggregation)), "float64", [N]),
  };
}

const batch = {
  logprobs: LP0,
  oldLogprobs: OLD,
  refLogprobs: REF,
  completionMask: MASK,
  advantages: ADVANTAGES,
};

describe("LoRA policy + loss: gradients w.r.t. A and B", () => {
  for (const aggregation of ["token", "sequence"] as LossAggregation[]) {
    it(`GRPO, ${aggregation} aggregation, β > 0`, async () => {
      // the graph's loss at (A0, B0) is the float64 loops' loss
      const g = new GraphBuilder("value", { dtype: "float64" });
      const k = constants(g, aggregation);
      const lp = policy(
        g,
        k.x,
        k.next,
        g.constant(A0, "float64", [R, IN]),
        g.constant(B0, "float64", [V, R]),
      );
      g.output(grpoLoss(g, { ...k, logprobs: lp }, OPTIONS).loss, "loss");
      const s = await Session.create(g.build(), { threads: 1, optimization: "basic" });
      const value = Number((await s.run({})).loss.data[0]);
      await s.release();
      const ref = referenceGrpoLoss(batch, { ...OPTIONS, aggregation });
      assert.ok(Math.abs(value - ref.loss) < 1e-12, `${value} vs ${ref.loss}`);
      assert.ok(ref.clipFraction > 0 && ref.clipFraction < 1, "the batch exercises both branches");

      await assertGradients({
        name: `lora-grpo-${aggregation}`,
        loss: "scalar",
        inputs: { a: { shape: [R, IN], init: A0 }, b: { shape: [V, R], init: B0 } },
        build: (g2, { a, b }) => {
          const k2 = constants(g2, aggregation);
          return grpoLoss(g2, { ...k2, logprobs: policy(g2, k2.x, k2.next, a, b) }, OPTIONS).loss;
        },
      });
    });

    it(`SFT, ${aggregation} aggregation`, async () => {
      const g = new GraphBuilder("value", { dtype: "float64" });
      const k = constants(g, aggregation);
      const lp = policy(
        g,
        k.x,
        k.next,
        g.constant(A0, "float64", [R, IN]),
        g.constant(B0, "float64", [V, R]),
      );
      g.output(
        sftLoss(g, { logprobs: lp, completionMask: k.completionMask, lossScale: k.lossScale }).loss,
        "loss",
      );
      const s = await Session.create(g.build(), { threads: 1, optimization: "basic" });
      const value = Number((await s.run({})).loss.data[0]);
      await s.release();
      const expected = referenceSftLoss(batch, aggregation);
      assert.ok(Math.abs(value - expected) < 1e-12, `${value} vs ${expected}`);

      await assertGradients({
        name: `lora-sft-${aggregation}`,
        loss: "scalar",
        inputs: { a: { shape: [R, IN], init: A0 }, b: { shape: [V, R], init: B0 } },
        build: (g2, { a, b }) => {
          const k2 = constants(g2, aggregation);
          const logprobs = policy(g2, k2.x, k2.next, a, b);
          return sftLoss(g2, { logprobs, completionMask: k2.completionMask, lossScale: k2.lossScale }).loss;
        },
      });
    });
  }
});

describe("one session, every step", () => {
  /** The GRPO training graph with batch-sized inputs and A, B as inputs; gradients of A and B. */
  async function trainingSession() {
    const g = new GraphBuilder("train", { dtype: "float64" });
    const per = (name: string) => g.floatInput(name, ["batch", T]);
    const a = g.floatInput("a", [R, IN]);
    const b = g.floatInput("b", [V, R]);
    const lp = policy(
      g,
      g.floatInput("x", ["batch", T, IN]),
      g.input("next", "int64", ["batch", T, 1]),
      a,
      b,
    );
    const out = grpoLoss(
      g,
      {
        logprobs: lp,
        oldLogprobs: per("old"),
        refLogprobs: per("ref"),
        completionMask: per("mask"),
        advantages: g.floatInput("adv", ["batch"]),
        lossScale: g.floatInput("scale", ["batch"]),
      },
      OPTIONS,
    );
    g.output(out.loss, "loss");
    g.output(lp, "logprobs");
    gradients(g, out.loss, [a, b]);
    return Session.create(g.build(), { threads: 1, optimization: "basic" });
  }

  function feeds(rows: number[], scale: ArrayLike<number>, a: ArrayLike<number>, b: ArrayLike<number>) {
    const pick = (x: number[][]) => rows.flatMap((n) => x[n]);
    return {
      a: tensor("float64", Float64Array.from(a), [R, IN]),
      b: tensor("float64", Float64Array.from(b), [V, R]),
      x: tensor(
        "float64",
        rows.flatMap((n) => X.slice(n * T * IN, (n + 1) * T * IN)),
        [rows.length, T, IN],
      ),
      next: tensor(
        "int64",
        BigInt64Array.from(
          rows.flatMap((n) => NEXT.slice(n * T, (n + 1) * T)),
          BigInt,
        ),
        [rows.length, T, 1],
      ),
      old: tensor("float64", pick(OLD), [rows.length, T]),
      ref: tensor("float64", pick(REF), [rows.length, T]),
      mask: tensor("float64", pick(MASK), [rows.length, T]),
      adv: tensor(
        "float64",
        rows.map((n) => ADVANTAGES[n]),
        [rows.length],
      ),
      scale: tensor(
        "float64",
        rows.map((n) => scale[n]),
        [rows.length],
      ),
    };
  }

  for (const aggregation of ["token", "sequence"] as LossAggregation[]) {
    it(`${aggregation}: micro-batch gradients of A and B sum to the one-batch gradients`, async () => {
      const s = await trainingSession();
      const scale = lossScales(MASK, aggregation);
      const full = await s.run(feeds([0, 1, 2], scale, A0, B0));
      const parts = [await s.run(feeds([0], scale, A0, B0)), await s.run(feeds([1, 2], scale, A0, B0))];
      await s.release();
      for (const name of ["loss", "a.grad", "b.grad"]) {
        const whole = full[name].data as Float64Array;
        const summed = whole.map((_, i) =>
          parts.reduce((acc, p) => acc + (p[name].data as Float64Array)[i], 0),
        );
        const scaleOf = Math.max(...whole.map(Math.abs));
        assert.ok(scaleOf > 1e-4, `${name} is not trivially zero`);
        for (let i = 0; i < whole.length; i++)
          assert.ok(
            Math.abs(summed[i] - whole[i]) <= 1e-12 * scaleOf,
            `${name}[${i}]: ${summed[i]} vs ${whole[i]}`,
          );
      }
    });
  }

  it("a new adapter is a new feed: loss and logprobs follow it without a new session", async () => {
    const s = await trainingSession();
    const scale = lossScales(MASK, "token");
    const a1 = A0.map((v) => v * 0.5 + 0.1);
    const b1 = B0.map((v) => -v);
    for (const [a, b] of [
      [A0, B0],
      [a1, b1],
    ]) {
      const out = await s.run(feeds([0, 1, 2], scale, a, b));
      const lp = policyLogprobs(a, b);
      const got = out.logprobs.data as Float64Array;
      for (const [i, v] of lp.flat().entries()) assert.ok(Math.abs(got[i] - v) < 1e-12, `logprob ${i}`);
      const expected = referenceGrpoLoss({ ...batch, logprobs: lp }, OPTIONS).loss;
      assert.ok(Math.abs(Number(out.loss.data[0]) - expected) < 1e-12);
    }
    await s.release();
  });
});

describe("declareLoraInputs / loraFeeds", () => {
  it("declares A and B under their PEFT names and feeds an adapter's arrays", async () => {
    const model: Qwen3Config = { ...presetConfig("tiny", tokenizerIds("bytes")), numHiddenLayers: 2 };
    const cfg: LoraConfig = { rank: 3, alpha: 6, useRslora: true, targetModules: ["v_proj", "down_proj"] };
    const g = new GraphBuilder("lora-inputs", { dtype: "float32" });
    const lora = declareLoraInputs(g, model, cfg);
    assert.equal(lora.scale, 6 / Math.sqrt(3));
    assert.deepEqual(
      lora.trainable().map((v) => `${v.name} [${v.shape}]`),
      [0, 1].flatMap((i) => [
        `${loraTensorName(i, "v_proj", "A")} [3,64]`,
        `${loraTensorName(i, "v_proj", "B")} [64,3]`,
        `${loraTensorName(i, "down_proj", "A")} [3,128]`,
        `${loraTensorName(i, "down_proj", "B")} [64,3]`,
      ]),
    );
    assert.equal(lora.get(1, "down"), lora.get(1, "down_proj"));
    assert.equal(lora.get(0, "q"), undefined);
    // the sum of every input reaches the output: each feed lands on its input
    const total = lora
      .trainable()
      .map((v) => g.reduceSum(v, undefined, false))
      .reduce((x, y) => g.add(x, y));
    g.output(total, "total");
    const adapter = initLoraAdapter(model, cfg, { seed: 9, initB: "random" });
    const s = await Session.create(g.build(), { threads: 1 });
    const out = await s.run(loraFeeds(adapter, "float32"));
    await s.release();
    const expected = adapter.pairs.reduce(
      (acc, p) => acc + p.a.reduce((x, y) => x + y, 0) + p.b.reduce((x, y) => x + y, 0),
      0,
    );
    assert.ok(Math.abs(Number(out.total.data[0]) - expected) < 1e-4);
  });
});
