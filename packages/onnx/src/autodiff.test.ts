// gradients(): what gets differentiated, symbolic shapes, seeds, and that the check can fail.
import assert from "node:assert/strict";
import { test } from "node:test";
import { gradients } from "./autodiff.ts";
import { GRAD_RULES } from "./grad-rules.ts";
import { assertGradients } from "./gradcheck.ts";
import { GraphBuilder } from "./graph.ts";
import { Session, tensor } from "./session.ts";

test("a wrong gradient rule is caught by the finite-difference check", async () => {
  const original = GRAD_RULES.Tanh;
  // d tanh = 1 - y², not 1 - y
  GRAD_RULES.Tanh = (ops, n, [d]) => [ops.g.mul(d!, ops.g.sub(1, n.outputs[0]))];
  try {
    await assert.rejects(
      assertGradients({ name: "broken tanh", inputs: { x: [2, 3] }, build: (g, { x }) => g.tanh(x) }),
      /broken tanh: gradient mismatch x/,
    );
  } finally {
    GRAD_RULES.Tanh = original;
  }
});

test("only paths reaching wrt are differentiated; an unreached wrt gets zeros", async () => {
  const g = new GraphBuilder("paths", { dtype: "float64" });
  const x = g.floatInput("x", [3]);
  const c = g.floatInput("c", [3]);
  const unused = g.floatInput("unused", [2]);
  // Abs has no gradient rule, but it only touches c, which is not differentiated
  const loss = g.reduceSum(g.mul(g.exp(x), g.op("Abs", [c])), undefined, false);
  g.output(loss, "loss");
  const [dx, du] = gradients(g, loss, [x, unused]);
  assert.equal(dx.name, "x.grad");
  const s = await Session.create(g.build(), { threads: 1 });
  const out = await s.run({
    x: tensor("float64", [0, 1, 2], [3]),
    c: tensor("float64", [0.5, -0.5, 1], [3]),
    unused: tensor("float64", [1, 2], [2]),
  });
  const abs = [0.5, 0.5, 1];
  (out[dx.name].data as Float64Array).forEach((v, i) => {
    assert.ok(Math.abs(v - Math.exp(i) * abs[i]) < 1e-12);
  });
  assert.deepEqual(Array.from(out[du.name].data as Float64Array), [0, 0]);
  await s.release();

  const h = new GraphBuilder("no-rule");
  const y = h.floatInput("y", [3]);
  const l2 = h.reduceSum(h.op("Abs", [y]), undefined, false);
  assert.throws(() => gradients(h, l2, [y]), /gradients: no gradient rule for Abs node "Abs_\d+"/);
});

test("broadcasts between symbolic dims are undone at run time", async () => {
  const g = new GraphBuilder("sym", { dtype: "float64" });
  const x = g.floatInput("x", ["a", 3]);
  const b = g.floatInput("b", ["b", 3]);
  const loss = g.reduceSum(g.mul(g.add(x, b), g.add(x, b)), undefined, false);
  g.output(loss, "loss");
  const [dx, db] = gradients(g, loss, [x, b]);
  const s = await Session.create(g.build(), { threads: 1 });
  // a = 1 broadcasts against b = 2 rows: dL/dx sums over the rows
  const xs = [1, 2, 3];
  const bs = [0.5, -1, 2, 1, 1, -3];
  const out = await s.run({ x: tensor("float64", xs, [1, 3]), b: tensor("float64", bs, [2, 3]) });
  assert.deepEqual([...out[dx.name].dims], [1, 3]);
  const want = [0, 1, 2].map((j) => 2 * (xs[j] + bs[j]) + 2 * (xs[j] + bs[3 + j]));
  assert.deepEqual(Array.from(out[dx.name].data as Float64Array), want);
  assert.deepEqual([...out[db.name].dims], [2, 3]);
  await s.release();
});

test("embedding gather with symbolic batch accumulates repeated tokens", async () => {
  const g = new GraphBuilder("embed", { dtype: "float64" });
  const table = g.weight(
    "table",
    "float64",
    [5, 2],
    new Float64Array(10).map((_, i) => i),
  );
  const ids = g.input("ids", "int64", ["batch", "seq"]);
  const emb = g.gather(table, ids, 0);
  const loss = g.reduceSum(emb, undefined, false);
  g.output(loss, "loss");
  const [dt] = gradients(g, loss, [table]);
  const s = await Session.create(g.build(), { threads: 1 });
  const out = await s.run({ ids: tensor("int64", new BigInt64Array([1n, 3n, 1n, 1n, 4n, 3n]), [2, 3]) });
  assert.deepEqual(Array.from(out[dt.name].data as Float64Array), [0, 0, 3, 3, 0, 0, 2, 2, 1, 1]);
  await s.release();
});

test("a seed gives a vector-Jacobian product of a non-scalar output", async () => {
  const g = new GraphBuilder("vjp", { dtype: "float64" });
  const x = g.floatInput("x", [2, 3]);
  const w = g.floatInput("w", [3, 2]);
  const y = g.matmul(x, w);
  const seed = g.floatInput("seed", [2, 2]);
  const [dw] = gradients(g, y, [w], { seed });
  const s = await Session.create(g.build(), { threads: 1 });
  const xs = [1, 2, 3, 4, 5, 6];
  const ss = [1, 0, 0, 2];
  const out = await s.run({
    x: tensor("float64", xs, [2, 3]),
    w: tensor("float64", [0, 0, 0, 0, 0, 0], [3, 2]),
    seed: tensor("float64", ss, [2, 2]),
  });
  // dW = xᵀ·seed
  const want = [0, 1, 2].flatMap((i) => [0, 1].map((j) => xs[i] * ss[j] + xs[3 + i] * ss[2 + j]));
  assert.deepEqual(Array.from(out[dw.name].data as Float64Array), want);
  await s.release();
});
