// Per-op gradient checks: loss = Σ op(x)·r in float64 on ORT CPU against central finite differences.
import { test } from "node:test";
import type { FloatDType } from "./dtype.ts";
import { assertGradients, type GradCheckSpec } from "./gradcheck.ts";
import type { GraphBuilder, Value } from "./graph.ts";

/**
 * Ops checked in float32 (tolerance 1e-3) instead of float64. Empty: ORT CPU 1.30 has float64 kernels
 * for every op the backward passes here use. The Cast round trip through float32 is the one case that
 * cannot be exact in float64 and is checked at the float32 tolerance below.
 */
export const FLOAT32_ONLY_OPS: readonly string[] = [];

type Build = (g: GraphBuilder, x: Record<string, Value>) => Value | Value[];

function check(
  name: string,
  inputs: GradCheckSpec["inputs"],
  build: Build,
  extra: Partial<GradCheckSpec> = {},
) {
  const dtype: FloatDType = FLOAT32_ONLY_OPS.includes(name.split(" ")[0]) ? "float32" : "float64";
  test(name, async () => {
    await assertGradients({ name, inputs, build, dtype, ...extra });
  });
}

const pos = (shape: number[]) => ({ shape, init: "positive" as const });
const i64 = (g: GraphBuilder, v: number[], dims: number[]) => g.constant(v, "int64", dims);

// unary
check("Neg", { x: [2, 3] }, (g, { x }) => g.neg(x));
check("Sqrt", { x: pos([2, 3]) }, (g, { x }) => g.sqrt(x));
check("Reciprocal", { x: pos([2, 3]) }, (g, { x }) => g.reciprocal(x));
check("Exp", { x: [2, 3] }, (g, { x }) => g.exp(x));
check("Log", { x: pos([2, 3]) }, (g, { x }) => g.log(x));
check("Sigmoid", { x: [2, 3] }, (g, { x }) => g.sigmoid(x));
check("Tanh", { x: [2, 3] }, (g, { x }) => g.tanh(x));
check("Identity", { x: [2, 3] }, (g, { x }) => g.identity(x));
for (const axis of [-1, 0, 1]) {
  check(`Softmax axis=${axis}`, { x: [2, 3, 4] }, (g, { x }) => g.softmax(x, axis));
  check(`LogSoftmax axis=${axis}`, { x: [2, 3, 4] }, (g, { x }) => g.logSoftmax(x, axis));
}

// binary, with broadcasting both ways
check("Add broadcast", { a: [2, 3, 4], b: [3, 1] }, (g, { a, b }) => g.add(a, b));
check("Add same shape", { a: [2, 3], b: [2, 3] }, (g, { a, b }) => g.add(a, b));
check("Sub broadcast", { a: [3, 1], b: [2, 3, 4] }, (g, { a, b }) => g.sub(a, b));
check("Mul broadcast", { a: [2, 3], b: [3] }, (g, { a, b }) => g.mul(a, b));
check("Mul fan-out (x·x)", { x: [2, 3] }, (g, { x }) => g.mul(x, x));
check("Div broadcast", { a: [2, 3], b: pos([2, 1]) }, (g, { a, b }) => g.div(a, b));
check("Pow both inputs", { a: pos([2, 3]), b: [3] }, (g, { a, b }) => g.pow(a, b));
check("Pow constant exponent", { a: [2, 3] }, (g, { a }) => g.pow(a, 2));
check("Min broadcast", { a: [2, 3], b: [3] }, (g, { a, b }) => g.min(a, b));
check("Max broadcast", { a: [2, 3], b: [3] }, (g, { a, b }) => g.max(a, b));
check("Min exact ties split evenly", { x: [2, 3] }, (g, { x }) => g.min(x, g.identity(x)));
check("Max three inputs", { a: [2, 3], b: [2, 3], c: [3] }, (g, { a, b, c }) => g.op("Max", [a, b, c]));
check("Where broadcast", { a: [2, 3], b: [3] }, (g, { a, b }) =>
  g.where(g.cast(g.constant([1, 0, 0, 1, 1, 0], "int64", [2, 3]), "bool"), a, b),
);

// matmul family
check("MatMul 2-D", { a: [3, 4], b: [4, 5] }, (g, { a, b }) => g.matmul(a, b));
check("MatMul batched · shared weight", { a: [2, 3, 4], b: [4, 5] }, (g, { a, b }) => g.matmul(a, b));
check("MatMul batched · batched", { a: [2, 3, 4], b: [2, 4, 5] }, (g, { a, b }) => g.matmul(a, b));
check("MatMul broadcast batch", { a: [2, 1, 3, 4], b: [3, 4, 2] }, (g, { a, b }) => g.matmul(a, b));
check("MatMul vector · matrix", { a: [4], b: [4, 5] }, (g, { a, b }) => g.matmul(a, b));
check("MatMul matrix · vector", { a: [3, 4], b: [4] }, (g, { a, b }) => g.matmul(a, b));
check("MatMul vector · vector", { a: [4], b: [4] }, (g, { a, b }) => g.matmul(a, b));
for (const transA of [false, true])
  for (const transB of [false, true])
    check(
      `Gemm transA=${+transA} transB=${+transB}`,
      { a: transA ? [4, 3] : [3, 4], b: transB ? [5, 4] : [4, 5], c: [5] },
      (g, { a, b, c }) => g.gemm(a, b, c, { transA, transB, alpha: 0.7, beta: 1.3 }),
    );
check("Gemm without C", { a: [3, 4], b: [4, 5] }, (g, { a, b }) => g.gemm(a, b));
check("Gemm C [3,1]", { a: [3, 4], b: [4, 5], c: [3, 1] }, (g, { a, b, c }) => g.gemm(a, b, c));

// reductions
for (const op of ["ReduceSum", "ReduceMean"] as const) {
  const f = (g: GraphBuilder, x: Value, axes?: number[], keep = true) =>
    op === "ReduceSum" ? g.reduceSum(x, axes, keep) : g.reduceMean(x, axes, keep);
  for (const keep of [true, false]) {
    check(`${op} axes=[1] keepdims=${+keep}`, { x: [2, 3, 4] }, (g, { x }) => f(g, x, [1], keep));
    check(`${op} axes=[0,2] keepdims=${+keep}`, { x: [2, 3, 4] }, (g, { x }) => f(g, x, [0, 2], keep));
    check(`${op} axes=[-1] keepdims=${+keep}`, { x: [2, 3, 4] }, (g, { x }) => f(g, x, [-1], keep));
    check(`${op} all axes keepdims=${+keep}`, { x: [2, 3, 4] }, (g, { x }) => f(g, x, undefined, keep));
  }
}
check("ReduceMax as stabiliser (logsumexp)", { x: [3, 5] }, (g, { x }) => {
  const m = g.reduceMax(x, [1], true);
  return g.add(g.log(g.reduceSum(g.exp(g.sub(x, m)), [1], true)), m);
});

// shape ops
check("Reshape static", { x: [2, 3, 4] }, (g, { x }) => g.reshape(x, [6, 4]));
check("Reshape 0 and -1", { x: [2, 3, 4] }, (g, { x }) => g.reshape(x, [0, -1]));
check("Transpose perm", { x: [2, 3, 4] }, (g, { x }) => g.transpose(x, [2, 0, 1]));
check("Transpose default", { x: [2, 3, 4] }, (g, { x }) => g.transpose(x));
check("Unsqueeze", { x: [2, 3] }, (g, { x }) => g.unsqueeze(x, [0, -1]));
check("Squeeze axes", { x: [2, 1, 3] }, (g, { x }) => g.squeeze(x, [1]));
check("Squeeze all ones", { x: [1, 3, 1] }, (g, { x }) => g.squeeze(x));
check("Expand", { x: [3, 1] }, (g, { x }) => g.expand(x, [2, 3, 4]));
check("Slice unit steps", { x: [4, 5] }, (g, { x }) => g.slice(x, [1], [3], [1]));
check("Slice negative axes and bounds", { x: [3, 4, 5] }, (g, { x }) =>
  g.slice(x, [-4, 1], [-1, 100], [-1, 0]),
);
check("Slice steps", { x: [4, 7] }, (g, { x }) => g.slice(x, [0, 1], [4, 7], [0, 1], [2, 3]));
check("Slice negative step", { x: [4, 6] }, (g, { x }) => g.slice(x, [-1], [-7], [1], [-2]));
check("Slice run-time bounds", { x: [4, 6] }, (g, { x }) =>
  g.op("Slice", [x, g.ints([1]), g.sub(g.op("Size", [g.ints([0, 0, 0, 0, 0])]), g.ints([1])), g.ints([1])]),
);
check("Concat axis 1", { a: [2, 1, 3], b: [2, 2, 3], c: [2, 3, 3] }, (g, { a, b, c }) =>
  g.concat([a, b, c], 1),
);
check("Concat axis -1", { a: [2, 3], b: [2, 2] }, (g, { a, b }) => g.concat([a, b], -1));
check("Split sizes", { x: [2, 4] }, (g, { x }) => g.split(x, [1, 3], 1));
check("Split equal parts", { x: [4, 3] }, (g, { x }) => g.split(x, 2, 0));
check("Split one output used", { x: [2, 6] }, (g, { x }) => g.split(x, [2, 1, 3], 1)[1]);
check("Gather axis 0 repeated", { x: [4, 3] }, (g, { x }) => g.gather(x, i64(g, [0, 2, 2, 2], [2, 2]), 0));
check("Gather axis 1 repeated", { x: [2, 4, 3] }, (g, { x }) => g.gather(x, i64(g, [3, 1, 3], [3]), 1));
check("Gather negative indices", { x: [4, 3] }, (g, { x }) => g.gather(x, i64(g, [-1, 0, -1], [3]), 0));
check("Gather int32 scalar index", { x: [4, 3] }, (g, { x }) => g.gather(x, g.constant([2], "int32", []), 1));
check("GatherElements axis 1 repeated", { x: [2, 4] }, (g, { x }) =>
  g.gatherElements(x, i64(g, [3, 3, 0, 1, 1, 2], [2, 3]), 1),
);
check("GatherElements axis 0 negative", { x: [3, 2] }, (g, { x }) =>
  g.gatherElements(x, i64(g, [-1, 0, 0, -1], [2, 2]), 0),
);
check("Trilu upper k=1", { x: [3, 4] }, (g, { x }) => g.trilu(x, true, 1));
check("Trilu lower", { x: [2, 3, 3] }, (g, { x }) => g.trilu(x, false));

// clipping and casts
check(
  "Clip min and max inputs",
  { x: [3, 4], lo: { shape: [], init: [-0.45] }, hi: { shape: [], init: [0.55] } },
  (g, { x, lo, hi }) => g.clip(x, lo, hi),
);
check("Clip min only", { x: [3, 4] }, (g, { x }) => g.clip(x, -0.35));
check("Clip max only", { x: [3, 4] }, (g, { x }) => g.clip(x, undefined, 0.25));
check("Cast float64 → float64", { x: [2, 3] }, (g, { x }) => g.cast(x, "float64"));
test("Cast float64 → float32 → float64 (float32 tolerance)", async () => {
  await assertGradients(
    {
      name: "Cast round trip",
      inputs: { x: [2, 3] },
      build: (g, { x }) => g.cast(g.mul(g.cast(x, "float32"), g.scalar(1.5, "float32")), "float64"),
      step: 1e-2,
    },
    1e-3,
  );
});
