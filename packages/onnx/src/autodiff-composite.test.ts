// Composite gradient checks: the shapes the Qwen3 engine and the GRPO learner build.
import assert from "node:assert/strict";
import { test } from "node:test";
import { assertGradients, makeRng } from "./gradcheck.ts";
import { GraphBuilder, type Value } from "./graph.ts";
import { Session, tensor } from "./session.ts";

test("two-layer MLP with cross-entropy", async () => {
  await assertGradients({
    name: "mlp",
    loss: "scalar",
    inputs: { x: [4, 5], w1: [5, 6], b1: [6], w2: [6, 3], b2: [3] },
    build: (g, { x, w1, b1, w2, b2 }) => {
      const h = g.tanh(g.add(g.matmul(x, w1), b1));
      const logp = g.logSoftmax(g.add(g.matmul(h, w2), b2), -1);
      const labels = g.constant([2, 0, 1, 2], "int64", [4, 1]);
      return g.neg(g.reduceMean(g.gatherElements(logp, labels, 1)));
    },
  });
});

test("RMSNorm", async () => {
  await assertGradients({
    name: "rmsnorm",
    inputs: { x: [2, 3, 8], w: [8] },
    build: (g, { x, w }) => {
      const ms = g.reduceMean(g.pow(x, 2), [-1], true);
      return g.mul(g.div(x, g.sqrt(g.add(ms, 1e-6))), w);
    },
  });
});

/** [B, S, H, D] → [B, H, S, D] */
function heads(g: GraphBuilder, x: Value): Value {
  return g.transpose(x, [0, 2, 1, 3]);
}

/** rotate_half RoPE on [B, S, H, D] with cos/sin [S, 1, D]. */
function rope(g: GraphBuilder, x: Value, cos: Value, sin: Value, d: number): Value {
  const [x1, x2] = g.split(x, [d / 2, d / 2], -1);
  return g.add(g.mul(x, cos), g.mul(g.concat([g.neg(x2), x1], -1), sin));
}

/** Causal grouped-query attention: q [B, S, Hq, D], k/v [B, S, Hkv, D] → [B, S, Hq, D]. */
function gqaAttention(g: GraphBuilder, q: Value, k: Value, v: Value, hq: number, hkv: number): Value {
  const [b, s, , d] = q.shape as number[];
  const rep = hq / hkv;
  // KV head j serves query heads j·rep … (j+1)·rep−1
  const repeat = (x: Value) =>
    g.reshape(g.expand(g.unsqueeze(heads(g, x), [2]), [b, hkv, rep, s, d]), [b, hq, s, d]);
  const scores = g.div(g.matmul(heads(g, q), g.transpose(repeat(k), [0, 1, 3, 2])), Math.sqrt(d));
  const allowed = g.cast(g.trilu(g.constant(Array(s * s).fill(1), "int64", [s, s]), false), "bool");
  const masked = g.where(allowed, scores, -1e9);
  const stable = g.sub(masked, g.reduceMax(masked, [-1], true));
  const probs = g.softmax(stable, -1);
  return g.transpose(g.matmul(probs, repeat(v)), [0, 2, 1, 3]);
}

/** Plain-loop reference of the same attention (no RoPE). */
function referenceAttention(
  q: number[],
  k: number[],
  v: number[],
  B: number,
  S: number,
  Hq: number,
  Hkv: number,
  D: number,
) {
  const out = new Array<number>(B * S * Hq * D).fill(0);
  const at = (x: number[], H: number, b: number, s: number, h: number, i: number) =>
    x[((b * S + s) * H + h) * D + i];
  for (let b = 0; b < B; b++)
    for (let h = 0; h < Hq; h++) {
      const kh = Math.floor(h / (Hq / Hkv));
      for (let t = 0; t < S; t++) {
        const logits: number[] = [];
        for (let u = 0; u <= t; u++) {
          let dot = 0;
          for (let i = 0; i < D; i++) dot += at(q, Hq, b, t, h, i) * at(k, Hkv, b, u, kh, i);
          logits.push(dot / Math.sqrt(D));
        }
        const m = Math.max(...logits);
        const e = logits.map((l) => Math.exp(l - m));
        const z = e.reduce((p, c) => p + c, 0);
        for (let i = 0; i < D; i++) {
          let acc = 0;
          for (let u = 0; u <= t; u++) acc += (e[u] / z) * at(v, Hkv, b, u, kh, i);
          out[((b * S + t) * Hq + h) * D + i] = acc;
        }
      }
    }
  return out;
}

test("causal GQA attention matches a loop reference", async () => {
  const [B, S, Hq, Hkv, D] = [2, 4, 4, 2, 3];
  const rng = makeRng(7);
  const rand = (n: number) => Array.from({ length: n }, () => rng.normal());
  const [q, k, v] = [rand(B * S * Hq * D), rand(B * S * Hkv * D), rand(B * S * Hkv * D)];
  const g = new GraphBuilder("attn", { dtype: "float64" });
  const qi = g.floatInput("q", [B, S, Hq, D]);
  const ki = g.floatInput("k", [B, S, Hkv, D]);
  const vi = g.floatInput("v", [B, S, Hkv, D]);
  g.output(gqaAttention(g, qi, ki, vi, Hq, Hkv), "y");
  const session = await Session.create(g.build(), { threads: 1, optimization: "basic" });
  const out = await session.run({
    q: tensor("float64", q, [B, S, Hq, D]),
    k: tensor("float64", k, [B, S, Hkv, D]),
    v: tensor("float64", v, [B, S, Hkv, D]),
  });
  await session.release();
  const ref = referenceAttention(q, k, v, B, S, Hq, Hkv, D);
  const got = out.y.data as Float64Array;
  for (let i = 0; i < ref.length; i++)
    assert.ok(Math.abs(got[i] - ref[i]) < 1e-12, `element ${i}: ${got[i]} vs ${ref[i]}`);
});

test("causal GQA attention with RoPE: gradients of q, k, v", async () => {
  const [B, S, Hq, Hkv, D] = [1, 4, 4, 2, 4];
  await assertGradients({
    name: "gqa",
    inputs: { q: [B, S, Hq, D], k: [B, S, Hkv, D], v: [B, S, Hkv, D] },
    build: (g, { q, k, v }) => {
      const angles = Array.from({ length: S * D }, (_, i) => Math.floor(i / D) * 0.3 * ((i % (D / 2)) + 1));
      const cos = g.constant(angles.map(Math.cos), g.dtype, [S, 1, D]);
      const sin = g.constant(angles.map(Math.sin), g.dtype, [S, 1, D]);
      return gqaAttention(g, rope(g, q, cos, sin, D), rope(g, k, cos, sin, D), v, Hq, Hkv);
    },
  });
});

test("log-softmax + gather + clipped PPO ratio (GRPO)", async () => {
  const [B, T, V] = [2, 3, 5];
  const eps = 0.2;
  const rng = makeRng(11);
  const logits = Array.from({ length: B * T * V }, () => rng.normal());
  const tokens = Array.from({ length: B * T }, () => Math.floor(rng.uniform() * V));
  // old log-probs chosen so ratios sit clearly inside and outside [1-ε, 1+ε], never on the boundary
  const logRatios = [-0.5, -0.1, 0.05, 0.3, 0.12, -0.35];
  const logp = tokens.map((tok, i) => {
    const row = logits.slice(i * V, (i + 1) * V);
    const m = Math.max(...row);
    return row[tok] - m - Math.log(row.reduce((p, c) => p + Math.exp(c - m), 0));
  });
  const oldLogp = logp.map((l, i) => l - logRatios[i]);
  const advantages = [0.8, -1.1];
  await assertGradients({
    name: "grpo",
    loss: "scalar",
    inputs: { logits: { shape: [B, T, V], init: logits } },
    build: (g, { logits: z }) => {
      const lp = g.squeeze(
        g.gatherElements(g.logSoftmax(z, -1), g.constant(tokens, "int64", [B, T, 1]), 2),
        [2],
      );
      const ratio = g.exp(g.sub(lp, g.constant(oldLogp, g.dtype, [B, T])));
      const adv = g.constant(advantages, g.dtype, [B, 1]);
      const surrogate = g.min(g.mul(ratio, adv), g.mul(g.clip(ratio, 1 - eps, 1 + eps), adv));
      return g.neg(g.reduceMean(surrogate));
    },
  });
});
