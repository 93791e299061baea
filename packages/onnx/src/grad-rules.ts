// Vector-Jacobian products per op, written with standard ONNX ops through the builder (so backward
// nodes get the same shape/dtype checks as forward ones). A rule gets the node, the gradient of each
// output (null when none flows) and which inputs need a gradient, and returns one gradient per input.
import type { GraphBuilder, Node, Value } from "./graph.ts";
import { intAttr, intsAttr } from "./infer.ts";
import { freshDim, isStatic, normAxis } from "./shape.ts";

export type GradRule = (ops: GradOps, node: Node, dy: (Value | null)[], needs: boolean[]) => (Value | null)[];

/**
 * Ops that pass no gradient: integer/bool producers, shape plumbing and ReduceMax, which is treated as
 * a constant (its only use in these graphs is the x - max(x) stabiliser, whose true gradient is zero).
 */
export const NO_GRADIENT = new Set([
  "Shape",
  "Size",
  "Range",
  "Constant",
  "ConstantOfShape",
  "ReduceMax",
  "Equal",
  "Less",
  "Greater",
  "LessOrEqual",
  "GreaterOrEqual",
  "Not",
  "And",
  "Or",
  "Xor",
  "ArgMax",
  "ArgMin",
]);

/** Shared building blocks for the rules. */
export class GradOps {
  constructor(readonly g: GraphBuilder) {}

  /** 1-D int64 shape of `x`: a constant when static, else a Shape node. */
  shape(x: Value): Value {
    return isStatic(x.shape) ? this.g.ints(x.shape) : this.g.shapeOf(x);
  }

  /** The number held by a one-element float32/float64 constant (an in-memory initializer), else undefined. */
  scalarConstant(v: Value): number | undefined {
    if (v.producer || (v.dtype !== "float32" && v.dtype !== "float64")) return undefined;
    const init = this.g.initializers.get(v.name);
    if (!init || init.value !== v || init.file || init.dims.reduce((a, b) => a * b, 1) !== 1)
      return undefined;
    const view = new DataView(init.bytes.buffer, init.bytes.byteOffset, init.bytes.byteLength);
    if (view.byteLength !== (v.dtype === "float32" ? 4 : 8)) return undefined;
    return v.dtype === "float32" ? view.getFloat32(0, true) : view.getFloat64(0, true);
  }

  zerosLike(x: Value): Value {
    return this.g.fill(this.shape(x), 0, x.dtype);
  }

  zero(x: Value): Value {
    return this.g.scalar(0, x.dtype);
  }

  /** Scalar int64 size of `x`'s dim `axis`. */
  dim(x: Value, axis: number): Value {
    const d = x.shape?.[axis];
    if (typeof d === "number") return this.g.constant([d], "int64", []);
    return this.g.op("Shape", [x], { start: axis, end: axis + 1 });
  }

  reshapeLike(d: Value, x: Value): Value {
    return this.g.reshape(d, this.shape(x));
  }

  /**
   * Sums `d` (shaped like a broadcast result) back to `x`'s shape. The last `same` axes of `d` are
   * known to equal `x`'s (e.g. the matrix axes of a MatMul's input gradient), even where shape
   * inference lost track of their symbolic sizes.
   */
  unbroadcast(d: Value, x: Value, same = 0): Value {
    const g = this.g;
    const rx = x.rank;
    const ry = d.rank;
    if (ry < rx) throw new Error(`gradient rank ${ry} is below input rank ${rx}`);
    const lead = ry - rx;
    const axes: number[] = [];
    for (let i = 0; i < lead; i++) axes.push(i);
    let ambiguous = false;
    for (let j = 0; j < rx; j++) {
      const xd = x.shape![j];
      const yd = d.shape![lead + j];
      if (j >= rx - same || xd === yd || (typeof xd === "number" && xd !== 1)) continue;
      if (xd === 1) axes.push(lead + j);
      else ambiguous = true;
    }
    if (!ambiguous) {
      if (axes.length === 0) return d;
      const r = g.reduceSum(d, axes, true);
      return lead ? g.squeeze(r, axes.slice(0, lead)) : r;
    }
    // symbolic dims that may or may not be broadcast: find the summed axes at run time
    const ones = lead ? [g.ints(Array(lead).fill(1))] : [];
    const xs = lead ? g.concat([...ones, g.shapeOf(x)], 0) : g.shapeOf(x);
    const differ = g.not(g.equal(xs, g.shapeOf(d)));
    const runtimeAxes = g.op("Compress", [g.range(0, ry, 1), differ], { axis: 0 });
    const r = g.op("ReduceSum", [d, runtimeAxes], { keepdims: 1, noop_with_empty_axes: 1 });
    return this.reshapeLike(r, x);
  }

  /** Swaps the last two axes. */
  transposeLast(x: Value): Value {
    const r = x.rank;
    const perm = Array.from({ length: r }, (_, i) => i);
    perm[r - 2] = r - 1;
    perm[r - 1] = r - 2;
    return this.g.transpose(x, perm);
  }

  /** Int64 indices with negatives wrapped by `size` (a scalar int64). */
  wrapIndices(indices: Value, size: Value): Value {
    const g = this.g;
    const ix = indices.dtype === "int64" ? indices : g.cast(indices, "int64");
    return g.where(g.less(ix, 0), g.add(ix, size), ix);
  }

  /** Flattens all leading axes: [..., k] → [N, k]. */
  flattenLeading(x: Value): Value {
    const g = this.g;
    const k = x.shape![x.rank - 1];
    const target =
      typeof k === "number"
        ? g.ints([-1, k])
        : g.concat([g.ints([-1]), g.op("Shape", [x], { start: -1 })], 0);
    return g.reshape(x, target);
  }

  sum(xs: Value[]): Value {
    return xs.reduce((a, b) => this.g.add(a, b));
  }
}

const unary =
  (f: (ops: GradOps, x: Value, y: Value, d: Value) => Value): GradRule =>
  (ops, n, [d]) => [f(ops, n.inputs[0]!, n.outputs[0], d!)];

function reduceAxes(n: Node): number[] | null | undefined {
  // undefined: no axes input (all axes); null: axes only known at run time
  const a = n.inputs[1];
  if (!a) return undefined;
  return a.known?.every((v) => typeof v === "number") ? (a.known as number[]) : null;
}

/** Gradient of ReduceSum/ReduceMean before the mean scaling: dy expanded back to x's shape. */
function expandReduced(ops: GradOps, n: Node, d: Value): Value {
  const g = ops.g;
  const x = n.inputs[0]!;
  const axes = reduceAxes(n);
  const keep = intAttr(n.attrs, "keepdims", 1) !== 0;
  const noop = intAttr(n.attrs, "noop_with_empty_axes", 0) !== 0;
  if (axes !== null && axes !== undefined && axes.length === 0 && noop) return d;
  let dk = d;
  if (!keep && axes !== undefined && !(axes !== null && axes.length === 0)) {
    const norm = axes === null ? n.inputs[1]! : g.ints(axes.map((a) => normAxis(a, x.rank)));
    dk = g.op("Unsqueeze", [d, norm]);
  }
  return g.expand(dk, ops.shape(x));
}

function mulGrad(ops: GradOps, d: Value, other: Value, self: Value): Value {
  return ops.unbroadcast(ops.g.mul(d, other), self);
}

export const GRAD_RULES: Record<string, GradRule> = {
  Identity: (_ops, _n, [d]) => [d],
  Neg: unary((ops, _x, _y, d) => ops.g.neg(d)),
  Sqrt: unary((ops, _x, y, d) => ops.g.div(d, ops.g.mul(y, 2))),
  Reciprocal: unary((ops, _x, y, d) => ops.g.neg(ops.g.mul(d, ops.g.mul(y, y)))),
  Exp: unary((ops, _x, y, d) => ops.g.mul(d, y)),
  Log: unary((ops, x, _y, d) => ops.g.div(d, x)),
  Sigmoid: unary((ops, _x, y, d) => ops.g.mul(d, ops.g.mul(y, ops.g.sub(1, y)))),
  Tanh: unary((ops, _x, y, d) => ops.g.mul(d, ops.g.sub(1, ops.g.mul(y, y)))),
  Softmax: (ops, n, [d]) => {
    const g = ops.g;
    const y = n.outputs[0];
    const s = g.reduceSum(g.mul(d!, y), [intAttr(n.attrs, "axis", -1)], true);
    return [g.mul(y, g.sub(d!, s))];
  },
  LogSoftmax: (ops, n, [d]) => {
    const g = ops.g;
    const y = n.outputs[0];
    return [g.sub(d!, g.mul(g.exp(y), g.reduceSum(d!, [intAttr(n.attrs, "axis", -1)], true)))];
  },
  Trilu: (ops, n, [d]) => [ops.g.op("Trilu", [d, n.inputs[1] ?? null], n.attrs)],

  Add: (ops, n, [d], needs) => n.inputs.map((x, i) => (needs[i] ? ops.unbroadcast(d!, x!) : null)),
  Sum: (ops, n, [d], needs) => n.inputs.map((x, i) => (needs[i] ? ops.unbroadcast(d!, x!) : null)),
  Sub: (ops, n, [d], needs) => {
    const [a, b] = n.inputs as Value[];
    return [needs[0] ? ops.unbroadcast(d!, a) : null, needs[1] ? ops.unbroadcast(ops.g.neg(d!), b) : null];
  },
  Mul: (ops, n, [d], needs) => {
    const [a, b] = n.inputs as Value[];
    return [needs[0] ? mulGrad(ops, d!, b, a) : null, needs[1] ? mulGrad(ops, d!, a, b) : null];
  },
  Div: (ops, n, [d], needs) => {
    const g = ops.g;
    const [a, b] = n.inputs as Value[];
    const y = n.outputs[0];
    return [
      needs[0] ? ops.unbroadcast(g.div(d!, b), a) : null,
      needs[1] ? ops.unbroadcast(g.neg(g.div(g.mul(d!, y), b)), b) : null,
    ];
  },
  Pow: (ops, n, [d], needs) => {
    const g = ops.g;
    const [a, b] = n.inputs as Value[];
    const y = n.outputs[0];
    const bf = b.dtype === a.dtype ? b : g.cast(b, a.dtype);
    // a constant exponent p: a^(p−1) folded at build time; x² (RMSNorm) needs no Pow at all, and
    // Pow(a, 1) would run ORT's generic std::pow loop for a value equal to a
    const p = b.dtype === a.dtype ? ops.scalarConstant(b) : undefined;
    const power = p === undefined ? g.pow(a, g.sub(bf, 1)) : p === 2 ? a : g.pow(a, g.scalar(p - 1, a.dtype));
    return [
      needs[0] ? ops.unbroadcast(g.mul(d!, g.mul(bf, power)), a) : null,
      needs[1] && b.dtype === a.dtype ? ops.unbroadcast(g.mul(d!, g.mul(y, g.log(a))), b) : null,
    ];
  },
  Min: (ops, n, [d], needs) => selectGrad(ops, n, d!, needs),
  Max: (ops, n, [d], needs) => selectGrad(ops, n, d!, needs),
  Where: (ops, n, [d], needs) => {
    const g = ops.g;
    const [c, a, b] = n.inputs as Value[];
    const z = ops.zero(d!);
    return [
      null,
      needs[1] ? ops.unbroadcast(g.where(c, d!, z), a) : null,
      needs[2] ? ops.unbroadcast(g.where(c, z, d!), b) : null,
    ];
  },
  Clip: (ops, n, [d], needs) => {
    const g = ops.g;
    const [x, lo, hi] = n.inputs as (Value | null)[];
    const z = ops.zero(d!);
    let inside: Value | null = null;
    if (lo) inside = g.greaterOrEqual(x!, lo);
    if (hi) inside = inside ? g.and(inside, g.lessOrEqual(x!, hi)) : g.lessOrEqual(x!, hi);
    const total = (v: Value) => g.reduceSum(v, undefined, false);
    return [
      needs[0] ? (inside ? g.where(inside, d!, z) : d) : null,
      needs[1] && lo ? total(g.where(g.less(x!, lo), d!, z)) : null,
      needs[2] && hi ? total(g.where(g.greater(x!, hi), d!, z)) : null,
    ];
  },
  Cast: (ops, n, [d]) => {
    const x = n.inputs[0]!;
    return [d!.dtype === x.dtype ? d : ops.g.cast(d!, x.dtype)];
  },
  Expand: (ops, n, [d]) => [ops.unbroadcast(d!, n.inputs[0]!), null],

  MatMul: (ops, n, [d], needs) => {
    const g = ops.g;
    const [A, B] = n.inputs as Value[];
    let a = A;
    let b = B;
    let dy = d!;
    if (A.rank === 1 && B.rank === 1) dy = g.unsqueeze(dy, [0, 1]);
    else if (A.rank === 1) dy = g.unsqueeze(dy, [-2]);
    else if (B.rank === 1) dy = g.unsqueeze(dy, [-1]);
    if (A.rank === 1) a = g.unsqueeze(A, [0]);
    if (B.rank === 1) b = g.unsqueeze(B, [-1]);
    let dA: Value | null = null;
    let dB: Value | null = null;
    if (needs[0]) {
      dA = ops.unbroadcast(g.matmul(dy, ops.transposeLast(b)), a, 2);
      if (A.rank === 1) dA = g.squeeze(dA, [0]);
    }
    if (needs[1]) {
      // a shared 2-D weight: one [k, N]·[N, n] product instead of a batch of them summed afterwards
      if (b.rank === 2 && a.rank > 2)
        dB = isSwap(B.producer)
          ? // B = Wᵀ (a linear layer's [out, in] weight): dW = dyᵀ·a comes out in W's layout, and the
            // Transpose rule cancels the transpose back (no [in, out] product transposed afterwards)
            g.transpose(g.matmul(g.transpose(ops.flattenLeading(dy)), ops.flattenLeading(a)), [1, 0])
          : g.matmul(g.transpose(ops.flattenLeading(a)), ops.flattenLeading(dy));
      else dB = ops.unbroadcast(g.matmul(ops.transposeLast(a), dy), b, 2);
      if (B.rank === 1) dB = g.squeeze(dB, [-1]);
    }
    return [dA, dB];
  },
  Gemm: (ops, n, [d], needs) => {
    const g = ops.g;
    const [A, B, C] = n.inputs as (Value | null)[];
    const tA = intAttr(n.attrs, "transA", 0) !== 0;
    const tB = intAttr(n.attrs, "transB", 0) !== 0;
    const alpha = floatOf(n, "alpha");
    const beta = floatOf(n, "beta");
    const dA = !needs[0]
      ? null
      : tA
        ? g.gemm(B!, d!, undefined, { transA: tB, transB: true, alpha })
        : g.gemm(d!, B!, undefined, { transB: !tB, alpha });
    const dB = !needs[1]
      ? null
      : tB
        ? g.gemm(d!, A!, undefined, { transA: true, transB: tA, alpha })
        : g.gemm(A!, d!, undefined, { transA: !tA, alpha });
    const dC = needs[2] && C ? ops.unbroadcast(beta === 1 ? d! : g.mul(d!, beta), C) : null;
    return [dA, dB, dC];
  },

  ReduceSum: (ops, n, [d]) => [expandReduced(ops, n, d!), null],
  ReduceMean: (ops, n, [d]) => {
    const g = ops.g;
    const x = n.inputs[0]!;
    const y = n.outputs[0];
    const e = expandReduced(ops, n, d!);
    if (isStatic(x.shape) && isStatic(y.shape)) {
      const nx = x.shape.reduce((p, q) => p * q, 1);
      const ny = y.shape.reduce((p, q) => p * q, 1);
      return [nx === ny ? e : g.mul(e, ny / nx), null];
    }
    const count = g.div(g.cast(g.op("Size", [y]), x.dtype), g.cast(g.op("Size", [x]), x.dtype));
    return [g.mul(e, count), null];
  },

  Reshape: (ops, n, [d]) => [ops.reshapeLike(d!, n.inputs[0]!), null],
  Squeeze: (ops, n, [d]) => [ops.reshapeLike(d!, n.inputs[0]!), null],
  Unsqueeze: (ops, n, [d]) => [ops.reshapeLike(d!, n.inputs[0]!), null],
  Flatten: (ops, n, [d]) => [ops.reshapeLike(d!, n.inputs[0]!)],
  Transpose: (ops, n, [d]) => {
    const r = n.inputs[0]!.rank;
    const perm = permOf(n);
    const inv = new Array<number>(r);
    perm.forEach((p, i) => {
      inv[p] = i;
    });
    // d = Transpose(m) with the same permutation: transposing back gives m itself
    const src = d!.producer;
    if (src?.opType === "Transpose" && src.inputs[0]!.rank === r) {
      const p1 = permOf(src);
      if (inv.every((q, i) => p1[q] === i)) return [src.inputs[0]];
    }
    return [ops.g.transpose(d!, inv)];
  },
  Slice: (ops, n, [d]) => [sliceGrad(ops, n, d!), null, null, null, null],
  Concat: (ops, n, [d], needs) => {
    const g = ops.g;
    const xs = n.inputs as Value[];
    const axis = normAxis(intAttr(n.attrs, "axis", 0), xs[0].rank);
    const sizes = xs.map((x) => x.shape![axis]);
    const split = sizes.every((s) => typeof s === "number")
      ? g.ints(sizes as number[])
      : g.concat(
          xs.map((x) => g.op("Shape", [x], { start: axis, end: axis + 1 })),
          0,
        );
    const parts = g.opMulti("Split", [d!, split], { axis }, { outputs: xs.length });
    return parts.map((p, i) => (needs[i] ? p : null));
  },
  Split: (ops, n, dys) => {
    const x = n.inputs[0]!;
    const axis = normAxis(intAttr(n.attrs, "axis", 0), x.rank);
    const parts = n.outputs.map((o, i) => dys[i] ?? ops.zerosLike(o));
    return [ops.g.concat(parts, axis), null];
  },
  Gather: (ops, n, [d]) => [gatherGrad(ops, n, d!), null],
  GatherElements: (ops, n, [d]) => [gatherElementsGrad(ops, n, d!), null],
};

/** A Transpose node's permutation (default: reversed axes). */
function permOf(n: Node): number[] {
  const r = n.inputs[0]!.rank;
  return intsAttr(n.attrs, "perm") ?? Array.from({ length: r }, (_, i) => r - 1 - i);
}

/** Whether `n` swaps the two axes of a 2-D value. */
function isSwap(n: Node | null): boolean {
  if (n?.opType !== "Transpose" || n.inputs[0]?.rank !== 2) return false;
  const p = permOf(n);
  return p[0] === 1 && p[1] === 0;
}

function floatOf(n: Node, name: string): number {
  const v = n.attrs[name];
  if (v === undefined) return 1;
  if (typeof v === "number") return v;
  if (typeof v === "object" && "float" in v) return v.float;
  throw new Error(`attribute ${name} is not a float`);
}

/** Min/Max: the gradient goes to the input(s) equal to the result, split evenly between ties. */
function selectGrad(ops: GradOps, n: Node, d: Value, needs: boolean[]): (Value | null)[] {
  const g = ops.g;
  const y = n.outputs[0];
  const z = ops.zero(d);
  const masks = n.inputs.map((x) => g.equal(x!, y));
  const count = ops.sum(masks.map((m) => g.cast(m, d.dtype)));
  const share = g.div(d, count);
  return n.inputs.map((x, i) => (needs[i] ? ops.unbroadcast(g.where(masks[i], share, z), x!) : null));
}

function sliceGrad(ops: GradOps, n: Node, d: Value): Value {
  const g = ops.g;
  const x = n.inputs[0]!;
  const known = (v: Value | null) =>
    v?.known?.every((k) => typeof k === "number") ? (v.known as number[]) : undefined;
  const starts = known(n.inputs[1]);
  const ends = known(n.inputs[2]);
  const axes = n.inputs[3] ? known(n.inputs[3]) : starts?.map((_, i) => i);
  const steps = n.inputs[4] ? known(n.inputs[4]) : starts?.map(() => 1);
  if (starts && ends && axes && steps?.every((s) => s === 1)) {
    const r = x.rank;
    const norm = axes.map((a) => normAxis(a, r));
    const dims = norm.map((a) => x.shape![a]);
    if (dims.every((v) => typeof v === "number")) {
      // unit steps on static dims: zero-pad the gradient back to the input's extent
      const pads = new Array<number>(2 * r).fill(0);
      norm.forEach((a, i) => {
        const size = dims[i] as number;
        const clamp = (v: number) => Math.min(Math.max(v < 0 ? v + size : v, 0), size);
        const s = clamp(starts[i]);
        const e = Math.max(clamp(ends[i]), s);
        pads[a] = s;
        pads[r + a] = size - e;
      });
      return g.op("Pad", [d, g.ints(pads)], { mode: "constant" });
    }
  }
  // general case (steps, symbolic dims, run-time bounds): slice a map of flat positions the same way,
  // then scatter the gradient to those positions. A slice picks each position at most once, so a
  // plain scatter (no reduction, no two writes to one place) is exact and deterministic.
  const size = g.op("Size", [x]);
  const positions = g.reshape(
    g.range(g.constant([0], "int64", []), size, g.constant([1], "int64", [])),
    ops.shape(x),
  );
  const picked = g.op("Slice", [positions, ...n.inputs.slice(1)]);
  const flat = g.fill(g.unsqueeze(size, [0]), 0, x.dtype);
  const scattered = g.op("ScatterElements", [flat, g.reshape(picked, [-1]), g.reshape(d, [-1])], {
    axis: 0,
  });
  return ops.reshapeLike(scattered, x);
}

// Gradients of gathers sum the rows that share an index. ONNX's direct form, a ScatterND or
// ScatterElements with reduction="add", is a data race in ONNX Runtime's CPU kernels: their threads
// add with an unsynchronised `+=`, so two updates of one row (a token id twice in a batch) can lose
// one, and ten identical steps gave ten different embedding gradients at 2 threads. The rules below
// sum with ops whose threads each own their outputs (MatMul, ReduceSum), so every gradient is the
// same bits at a given thread count, whatever else the machine runs; scatters that remain write each
// place once.

/**
 * Gather along `axis`: the segment sum of the gradient rows by index, as a MatMul of a one-hot matrix
 * over the K distinct indices ([K, N], N = the number of indices) with the rows ([N, R]), written once
 * per distinct index into zeros. Memory is K·N, K ≤ min(N, x's extent on `axis`): 10 MB for 1600
 * tokens of the byte tokenizer, where a one-hot over Qwen3's 151,936-token vocabulary would be 1 GB.
 */
function gatherGrad(ops: GradOps, n: Node, d: Value): Value {
  const g = ops.g;
  const [x, ind] = n.inputs as Value[];
  const r = x.rank;
  const q = ind.rank;
  const axis = normAxis(intAttr(n.attrs, "axis", 0), r);
  // the gathered axis first: x [A, ...rest], dy [...I, ...rest]
  const range = (a: number, b: number) => Array.from({ length: b - a }, (_, i) => a + i);
  const xPerm = [axis, ...range(0, axis), ...range(axis + 1, r)];
  const dPerm = [...range(axis, axis + q), ...range(0, axis), ...range(axis + q, r + q - 1)];
  const xt = axis === 0 ? x : g.transpose(x, xPerm);
  const dt = axis === 0 ? d : g.transpose(d, dPerm);
  const flat = g.reshape(ops.wrapIndices(ind, ops.dim(x, axis)), [-1]); // [N]
  const rest = xt.shape?.slice(1);
  const rows = // [N, R]
    rest?.every((v) => typeof v === "number")
      ? g.reshape(dt, [-1, rest.reduce((a, b) => a * b, 1)])
      : g.reshape(dt, g.concat([g.unsqueeze(g.op("Size", [flat]), [0]), g.ints([-1])], 0));
  const k = freshDim();
  const [unique, , inverse] = g.opMulti(
    "Unique",
    [flat],
    { sorted: 1 },
    {
      outputTypes: [
        { dtype: "int64", shape: [k] }, // the distinct indices, ascending
        { dtype: "int64", shape: [k] },
        { dtype: "int64", shape: flat.shape }, // each index's position among them
        { dtype: "int64", shape: [k] },
      ],
    },
  );
  const slots = g.range(0, g.op("Size", [unique]), 1); // [K]
  const oneHot = g.cast(g.equal(g.unsqueeze(slots, [1]), g.unsqueeze(inverse, [0])), d.dtype); // [K, N]
  const sums = g.matmul(oneHot, rows); // [K, R]
  const extent = g.reshape(ops.dim(x, axis), [1]);
  const zeros = g.fill(g.concat([extent, g.op("Shape", [sums], { start: 1 })], 0), 0, d.dtype); // [A, R]
  const scattered = g.reshape(g.op("ScatterND", [zeros, g.unsqueeze(unique, [1]), sums]), ops.shape(xt));
  if (axis === 0) return scattered;
  const xInv = new Array<number>(r);
  xPerm.forEach((p, i) => {
    xInv[p] = i;
  });
  return g.transpose(scattered, xInv);
}

/**
 * GatherElements along `axis` (indices [..., k, ...] where x is [..., A, ...]): a mask of which of the
 * A places each of the k indices picks ([..., k, A, ...]), the gradient put where it is set and summed
 * over k. Memory is size(indices)·A: for the usual k = 1 (a token's logprob picked from the logits),
 * the logits' own size.
 */
function gatherElementsGrad(ops: GradOps, n: Node, d: Value): Value {
  const g = ops.g;
  const [x, ind] = n.inputs as Value[];
  const r = x.rank;
  const axis = normAxis(intAttr(n.attrs, "axis", 0), r);
  const size = ops.dim(x, axis);
  const idx = g.unsqueeze(ops.wrapIndices(ind, size), [axis + 1]); // [..., k, 1, ...]
  const places = g.reshape(
    g.range(0, g.reshape(size, []), 1),
    Array.from({ length: r + 1 }, (_, i) => (i === axis + 1 ? -1 : 1)),
  ); // [1, ..., 1, A, 1, ...]
  const picked = g.where(g.equal(idx, places), g.unsqueeze(d, [axis + 1]), ops.zero(d)); // [..., k, A, ...]
  const summed = g.reduceSum(picked, [axis], false); // [..., A, ...], the other axes as in indices
  const same =
    x.shape !== null && ind.shape !== null && x.shape.every((v, i) => i === axis || v === ind.shape![i]);
  if (same) return g.reshape(summed, ops.shape(x));
  // indices narrower than x on another axis: the places they never reach get zeros
  const short = g.sub(g.shapeOf(x), g.shapeOf(summed));
  return g.op("Pad", [summed, g.concat([g.ints(new Array(r).fill(0)), short], 0)], { mode: "constant" });
}
