// Build-time dtype and shape inference for the ops the builder knows. Each rule throws a plain
// message; the builder prefixes it with the node's op type and name.
import { type DType, dtypeFromOnnx, isFloat } from "./dtype.ts";
import { broadcastShapes, type Dim, formatShape, freshDim, normAxis, type Shape } from "./shape.ts";

/** A tensor attribute (Constant's `value`, ConstantOfShape's `value`). */
export interface TensorAttr {
  tensor: { dtype: DType; dims: number[]; values: ArrayLike<number> };
}
export type AttrValue =
  | number
  | number[]
  | string
  | string[]
  | TensorAttr
  | { float: number }
  | { floats: number[] }
  | { int: number }
  | { ints: number[] };
export type Attrs = Record<string, AttrValue | undefined>;

/** What inference sees of a value: dtype, shape and, for small integer tensors, known contents. */
export interface ValueInfo {
  dtype: DType;
  shape: Shape;
  /** Contents of a scalar or 1-D integer tensor when known at build time (numbers or symbolic dims). */
  known?: Dim[];
}

export interface InferredOutput {
  dtype: DType;
  shape: Shape;
  known?: Dim[];
}

/** Attribute names whose plain-number values are floats rather than ints. */
export const FLOAT_ATTRS = new Set([
  "alpha",
  "beta",
  "epsilon",
  "gamma",
  "lambd",
  "bias",
  "momentum",
  "ratio",
]);

export function intAttr(attrs: Attrs, name: string, dflt: number): number {
  const v = attrs[name];
  if (v === undefined) return dflt;
  if (typeof v === "number") return v;
  if (typeof v === "object" && "int" in v) return v.int;
  throw new Error(`attribute ${name} must be an int`);
}

export function floatAttr(attrs: Attrs, name: string, dflt: number): number {
  const v = attrs[name];
  if (v === undefined) return dflt;
  if (typeof v === "number") return v;
  if (typeof v === "object" && "float" in v) return v.float;
  throw new Error(`attribute ${name} must be a float`);
}

export function intsAttr(attrs: Attrs, name: string): number[] | undefined {
  const v = attrs[name];
  if (v === undefined) return undefined;
  if (Array.isArray(v) && v.every((x) => typeof x === "number")) return v as number[];
  if (typeof v === "object" && "ints" in v) return v.ints;
  throw new Error(`attribute ${name} must be a list of ints`);
}

const UNARY_FLOAT = new Set([
  "Neg",
  "Sqrt",
  "Reciprocal",
  "Exp",
  "Log",
  "Sigmoid",
  "Tanh",
  "Relu",
  "Abs",
  "Erf",
  "Softmax",
  "LogSoftmax",
  "Sin",
  "Cos",
]);
const SAME_AS_FIRST = new Set(["Identity", "Trilu", "Clip", "ScatterND", "ScatterElements"]);
const BINARY_SAME = new Set(["Add", "Sub", "Mul", "Div", "Min", "Max", "Sum", "Mean"]);
const COMPARE = new Set(["Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual"]);
const LOGICAL = new Set(["And", "Or", "Xor"]);
const INDEX_TYPES = new Set<DType>(["int64", "int32"]);

function need(v: ValueInfo | null | undefined, what: string): ValueInfo {
  if (!v) throw new Error(`missing ${what}`);
  return v;
}

function sameDtypes(inputs: ValueInfo[], what = "inputs"): DType {
  const d = inputs[0].dtype;
  for (const x of inputs)
    if (x.dtype !== d)
      throw new Error(`${what} must share a dtype, got ${inputs.map((i) => i.dtype).join(" and ")}`);
  return d;
}

function rankOf(v: ValueInfo, what: string): number {
  if (v.shape === null) throw new Error(`${what} needs a known rank`);
  return v.shape.length;
}

/** Known integer values of an input, or undefined when not known at build time. */
function knownInts(v: ValueInfo | null | undefined): number[] | undefined {
  if (!v?.known) return undefined;
  return v.known.every((d) => typeof d === "number") ? (v.known as number[]) : undefined;
}

function reduceShape(
  x: ValueInfo,
  axesIn: number[] | undefined,
  keepdims: boolean,
  noopEmpty: boolean,
): Shape {
  if (x.shape === null) return null;
  const rank = x.shape.length;
  if (axesIn === undefined) {
    // axes not known at build time: rank is only known when keepdims
    return keepdims ? x.shape.map(() => freshDim()) : null;
  }
  if (axesIn.length === 0 && noopEmpty) return [...x.shape];
  const axes = axesIn.length === 0 ? x.shape.map((_, i) => i) : axesIn.map((a) => normAxis(a, rank));
  const out: Dim[] = [];
  x.shape.forEach((d, i) => {
    if (!axes.includes(i)) out.push(d);
    else if (keepdims) out.push(1);
  });
  return out;
}

function sliceDim(d: Dim, start: number, end: number, step: number): Dim {
  if (typeof d !== "number") {
    if (start === 0 && step === 1 && end >= 2 ** 31 - 1) return d;
    return freshDim();
  }
  if (step === 0) throw new Error("slice step must not be 0");
  const clamp = (v: number, lo: number, hi: number) => Math.min(Math.max(v, lo), hi);
  let s = start < 0 ? start + d : start;
  let e = end < 0 ? end + d : end;
  if (step > 0) {
    s = clamp(s, 0, d);
    e = clamp(e, 0, d);
    return Math.max(0, Math.ceil((e - s) / step));
  }
  s = clamp(s, -1, d - 1);
  e = clamp(e, -1, d - 1);
  return Math.max(0, Math.ceil((e - s) / step));
}

function reshapeShape(x: ValueInfo, target: Dim[], allowzero: boolean): Shape {
  const out: Dim[] = target.map((d, i) => {
    if (d === 0 && !allowzero) {
      if (x.shape === null || i >= x.shape.length) return freshDim();
      return x.shape[i];
    }
    return d;
  });
  const minus = out.indexOf(-1);
  if (minus >= 0) {
    if (out.indexOf(-1, minus + 1) >= 0) throw new Error("reshape target has more than one -1");
    if (x.shape === null) {
      out[minus] = freshDim();
      return out;
    }
    // cancel matching symbolic dims, then divide the numeric remainder
    const syms = x.shape.filter((d): d is string => typeof d === "string");
    let num = x.shape.reduce<number>((a, d) => (typeof d === "number" ? a * d : a), 1);
    let ok = true;
    out.forEach((d, i) => {
      if (i === minus) return;
      if (typeof d === "number") num /= d;
      else {
        const j = syms.indexOf(d);
        if (j >= 0) syms.splice(j, 1);
        else ok = false;
      }
    });
    out[minus] = ok && syms.length === 0 && Number.isInteger(num) ? num : freshDim();
  } else if (
    x.shape !== null &&
    out.every((d) => typeof d === "number") &&
    x.shape.every((d) => typeof d === "number")
  ) {
    const a = (x.shape as number[]).reduce((p, q) => p * q, 1);
    const b = (out as number[]).reduce((p, q) => p * q, 1);
    if (a !== b) throw new Error(`cannot reshape ${formatShape(x.shape)} to ${formatShape(out)}`);
  }
  return out;
}

export function inferOutputs(
  op: string,
  inputs: (ValueInfo | null)[],
  attrs: Attrs,
  nOut: number,
): InferredOutput[] {
  const x = inputs[0] ?? null;
  if (UNARY_FLOAT.has(op)) {
    const v = need(x, "input");
    if (!isFloat(v.dtype)) throw new Error(`needs a float input, got ${v.dtype}`);
    if (op === "Softmax" || op === "LogSoftmax") normAxis(intAttr(attrs, "axis", -1), rankOf(v, "input"));
    return [{ dtype: v.dtype, shape: v.shape }];
  }
  if (SAME_AS_FIRST.has(op)) {
    const v = need(x, "input");
    if (op === "Clip") {
      for (const b of inputs.slice(1))
        if (b) {
          if (b.dtype !== v.dtype) throw new Error(`min/max dtype ${b.dtype} differs from input ${v.dtype}`);
          if (b.shape !== null && b.shape.length !== 0)
            throw new Error(`min/max must be scalars, got ${formatShape(b.shape)}`);
        }
    }
    if (op === "ScatterND" || op === "ScatterElements") {
      const upd = need(inputs[2], "updates");
      if (upd.dtype !== v.dtype) throw new Error(`updates dtype ${upd.dtype} differs from data ${v.dtype}`);
    }
    return [{ dtype: v.dtype, shape: v.shape, known: op === "Identity" ? v.known : undefined }];
  }
  if (BINARY_SAME.has(op)) {
    const ins = inputs.map((v, i) => need(v, `input ${i}`));
    const dtype = sameDtypes(ins);
    return [{ dtype, shape: broadcastShapes(ins.map((v) => v.shape)) }];
  }
  if (op === "Pow") {
    const a = need(inputs[0], "base");
    const b = need(inputs[1], "exponent");
    if (!isFloat(a.dtype)) throw new Error(`base must be float, got ${a.dtype}`);
    return [{ dtype: a.dtype, shape: broadcastShapes([a.shape, b.shape]) }];
  }
  if (COMPARE.has(op) || LOGICAL.has(op)) {
    const ins = inputs.map((v, i) => need(v, `input ${i}`));
    sameDtypes(ins);
    if (LOGICAL.has(op) && ins.some((v) => v.dtype !== "bool")) throw new Error("needs bool inputs");
    return [{ dtype: "bool", shape: broadcastShapes(ins.map((v) => v.shape)) }];
  }
  switch (op) {
    case "Not": {
      const v = need(x, "input");
      if (v.dtype !== "bool") throw new Error(`needs a bool input, got ${v.dtype}`);
      return [{ dtype: "bool", shape: v.shape }];
    }
    case "Where": {
      const c = need(inputs[0], "condition");
      const a = need(inputs[1], "X");
      const b = need(inputs[2], "Y");
      if (c.dtype !== "bool") throw new Error(`condition must be bool, got ${c.dtype}`);
      const dtype = sameDtypes([a, b], "X and Y");
      return [{ dtype, shape: broadcastShapes([c.shape, a.shape, b.shape]) }];
    }
    case "MatMul": {
      const a = need(inputs[0], "A");
      const b = need(inputs[1], "B");
      const dtype = sameDtypes([a, b], "A and B");
      if (a.shape === null || b.shape === null) return [{ dtype, shape: null }];
      if (a.shape.length === 0 || b.shape.length === 0) throw new Error("inputs must have rank >= 1");
      const as = a.shape.length === 1 ? [1, a.shape[0]] : a.shape;
      const bs = b.shape.length === 1 ? [b.shape[0], 1] : b.shape;
      const k1 = as[as.length - 1];
      const k2 = bs[bs.length - 2];
      if (typeof k1 === "number" && typeof k2 === "number" && k1 !== k2)
        throw new Error(`inner dims differ: A ${formatShape(a.shape)} · B ${formatShape(b.shape)}`);
      if (
        typeof k1 === "string" &&
        typeof k2 === "string" &&
        k1 !== k2 &&
        !k1.startsWith("?") &&
        !k2.startsWith("?")
      )
        throw new Error(`inner dims differ: A ${formatShape(a.shape)} · B ${formatShape(b.shape)}`);
      const batch = broadcastShapes([as.slice(0, -2), bs.slice(0, -2)]) as Dim[];
      const out = [...batch];
      if (a.shape.length > 1) out.push(as[as.length - 2]);
      if (b.shape.length > 1) out.push(bs[bs.length - 1]);
      return [{ dtype, shape: out }];
    }
    case "Gemm": {
      const a = need(inputs[0], "A");
      const b = need(inputs[1], "B");
      const ins = [a, b, ...(inputs[2] ? [inputs[2]] : [])];
      const dtype = sameDtypes(ins);
      if (rankOf(a, "A") !== 2 || rankOf(b, "B") !== 2) throw new Error("A and B must be 2-D");
      const as = a.shape as Dim[];
      const bs = b.shape as Dim[];
      const [m, ka] = intAttr(attrs, "transA", 0) ? [as[1], as[0]] : [as[0], as[1]];
      const [kb, n] = intAttr(attrs, "transB", 0) ? [bs[1], bs[0]] : [bs[0], bs[1]];
      if (typeof ka === "number" && typeof kb === "number" && ka !== kb)
        throw new Error(
          `inner dims differ: A ${formatShape(as)} · B ${formatShape(bs)} (transA/transB applied)`,
        );
      const out = [m, n];
      if (inputs[2]) broadcastShapes([out, inputs[2].shape]);
      return [{ dtype, shape: out }];
    }
    case "ReduceSum":
    case "ReduceMean":
    case "ReduceMax":
    case "ReduceMin":
    case "ReduceProd":
    case "ReduceL2":
    case "ReduceLogSumExp": {
      const v = need(x, "data");
      const axesIn = inputs[1] ? knownInts(inputs[1]) : [];
      if (inputs[1] && inputs[1].dtype !== "int64")
        throw new Error(`axes must be int64, got ${inputs[1].dtype}`);
      const keep = intAttr(attrs, "keepdims", 1) !== 0;
      const noop = intAttr(attrs, "noop_with_empty_axes", 0) !== 0;
      return [{ dtype: v.dtype, shape: reduceShape(v, axesIn, keep, noop) }];
    }
    case "Reshape": {
      const v = need(x, "data");
      const s = need(inputs[1], "shape");
      if (s.dtype !== "int64") throw new Error(`shape must be int64, got ${s.dtype}`);
      if (s.known)
        return [{ dtype: v.dtype, shape: reshapeShape(v, s.known, intAttr(attrs, "allowzero", 0) !== 0) }];
      const len = s.shape?.[0];
      return [
        {
          dtype: v.dtype,
          shape: typeof len === "number" ? Array.from({ length: len }, () => freshDim()) : null,
        },
      ];
    }
    case "Transpose": {
      const v = need(x, "data");
      if (v.shape === null) return [{ dtype: v.dtype, shape: null }];
      const rank = v.shape.length;
      const perm = intsAttr(attrs, "perm") ?? v.shape.map((_, i) => rank - 1 - i);
      if (perm.length !== rank || [...perm].sort((p, q) => p - q).some((p, i) => p !== i))
        throw new Error(`perm [${perm}] is not a permutation of rank ${rank}`);
      const s = v.shape;
      return [{ dtype: v.dtype, shape: perm.map((p) => s[p]) }];
    }
    case "Unsqueeze": {
      const v = need(x, "data");
      const axes = knownInts(need(inputs[1], "axes"));
      if (v.shape === null || axes === undefined) return [{ dtype: v.dtype, shape: null }];
      const rank = v.shape.length + axes.length;
      const norm = axes.map((a) => normAxis(a, rank));
      if (new Set(norm).size !== norm.length) throw new Error(`repeated axes [${axes}]`);
      const out: Dim[] = [];
      let j = 0;
      for (let i = 0; i < rank; i++) out.push(norm.includes(i) ? 1 : v.shape[j++]);
      const known = v.known && v.shape.length === 0 ? v.known : undefined;
      return [{ dtype: v.dtype, shape: out, known }];
    }
    case "Squeeze": {
      const v = need(x, "data");
      if (v.shape === null) return [{ dtype: v.dtype, shape: null }];
      const s = v.shape;
      const axes = inputs[1] ? knownInts(inputs[1]) : s.flatMap((d, i) => (d === 1 ? [i] : []));
      if (axes === undefined) return [{ dtype: v.dtype, shape: null }];
      if (!inputs[1] && s.some((d) => typeof d === "string"))
        throw new Error(`squeeze without axes needs a static shape, got ${formatShape(s)}`);
      const norm = axes.map((a) => normAxis(a, s.length));
      for (const a of norm)
        if (typeof s[a] === "number" && s[a] !== 1)
          throw new Error(`cannot squeeze axis ${a} of size ${s[a]}`);
      return [{ dtype: v.dtype, shape: s.filter((_, i) => !norm.includes(i)), known: v.known }];
    }
    case "Slice": {
      const v = need(x, "data");
      ["starts", "ends", "axes", "steps"].forEach((what, i) => {
        const b = inputs[i + 1];
        if (b && b.shape !== null && b.shape.length !== 1)
          throw new Error(`${what} must be 1-D, got ${formatShape(b.shape)}`);
        if (b && !INDEX_TYPES.has(b.dtype)) throw new Error(`${what} must be int32 or int64, got ${b.dtype}`);
      });
      const starts = knownInts(need(inputs[1], "starts"));
      const ends = knownInts(need(inputs[2], "ends"));
      if (v.shape === null) return [{ dtype: v.dtype, shape: null }];
      const rank = v.shape.length;
      const axes = inputs[3] ? knownInts(inputs[3]) : starts?.map((_, i) => i);
      const steps = inputs[4] ? knownInts(inputs[4]) : starts?.map(() => 1);
      if (!starts || !ends || !axes || !steps) {
        const sliced = inputs[3] ? knownInts(inputs[3])?.map((a) => normAxis(a, rank)) : undefined;
        return [
          { dtype: v.dtype, shape: v.shape.map((d, i) => (sliced && !sliced.includes(i) ? d : freshDim())) },
        ];
      }
      if (ends.length !== starts.length || axes.length !== starts.length || steps.length !== starts.length)
        throw new Error("starts, ends, axes and steps must have equal lengths");
      const out = [...v.shape];
      axes.forEach((a, i) => {
        const ax = normAxis(a, rank);
        out[ax] = sliceDim(v.shape![ax], starts[i], ends[i], steps[i]);
      });
      let known: Dim[] | undefined;
      if (v.known && rank === 1 && typeof out[0] === "number") {
        const s0 = starts[0] < 0 ? starts[0] + v.known.length : Math.min(starts[0], v.known.length);
        known = [];
        for (let i = 0, p = s0; i < out[0]; i++, p += steps[0]) known.push(v.known[p]);
      }
      return [{ dtype: v.dtype, shape: out, known }];
    }
    case "Concat": {
      const ins = inputs.map((v, i) => need(v, `input ${i}`));
      const dtype = sameDtypes(ins);
      if (ins.some((v) => v.shape === null)) return [{ dtype, shape: null }];
      const rank = (ins[0].shape as Dim[]).length;
      const axis = normAxis(intAttr(attrs, "axis", Number.NaN), rank);
      const out = [...(ins[0].shape as Dim[])];
      for (const v of ins.slice(1)) {
        const s = v.shape as Dim[];
        if (s.length !== rank)
          throw new Error(`inputs have ranks ${ins.map((q) => q.shape?.length).join(", ")}`);
        s.forEach((d, i) => {
          if (i === axis) return;
          if (typeof d === "number" && typeof out[i] === "number" && d !== out[i])
            throw new Error(`dim ${i} differs: ${ins.map((q) => formatShape(q.shape)).join(", ")}`);
        });
      }
      const sizes = ins.map((v) => (v.shape as Dim[])[axis]);
      out[axis] = sizes.every((d) => typeof d === "number")
        ? (sizes as number[]).reduce((a, b) => a + b, 0)
        : freshDim();
      const known =
        rank === 1 && ins.every((v) => v.known) ? ins.flatMap((v) => v.known as Dim[]) : undefined;
      return [{ dtype, shape: out, known }];
    }
    case "Split": {
      const v = need(x, "input");
      if (v.shape === null) return Array.from({ length: nOut }, () => ({ dtype: v.dtype, shape: null }));
      const axis = normAxis(intAttr(attrs, "axis", 0), v.shape.length);
      const d = v.shape[axis];
      let sizes: Dim[] | undefined;
      if (inputs[1]) {
        sizes = knownInts(inputs[1]);
        if (sizes && sizes.length !== nOut)
          throw new Error(`split has ${sizes.length} sizes for ${nOut} outputs`);
        if (sizes && typeof d === "number" && (sizes as number[]).reduce((a, b) => a + b, 0) !== d)
          throw new Error(`split sizes [${sizes}] do not sum to dim ${d}`);
      } else if (typeof d === "number") {
        const per = Math.ceil(d / nOut);
        sizes = Array.from({ length: nOut }, (_, i) => Math.min(per, d - per * i));
      }
      return Array.from({ length: nOut }, (_, i) => {
        const s = [...(v.shape as Dim[])];
        s[axis] = sizes ? sizes[i] : freshDim();
        return { dtype: v.dtype, shape: s };
      });
    }
    case "Expand": {
      const v = need(x, "input");
      const s = need(inputs[1], "shape");
      if (s.known) return [{ dtype: v.dtype, shape: broadcastShapes([v.shape, s.known]) }];
      return [{ dtype: v.dtype, shape: null }];
    }
    case "Gather": {
      const v = need(x, "data");
      const ind = need(inputs[1], "indices");
      if (!INDEX_TYPES.has(ind.dtype)) throw new Error(`indices must be int32 or int64, got ${ind.dtype}`);
      if (v.shape === null || ind.shape === null) return [{ dtype: v.dtype, shape: null }];
      const axis = normAxis(intAttr(attrs, "axis", 0), v.shape.length);
      const shape = [...v.shape.slice(0, axis), ...ind.shape, ...v.shape.slice(axis + 1)];
      const ki = knownInts(ind);
      const known = v.known && ki ? ki.map((i) => v.known![i < 0 ? i + v.known!.length : i]) : undefined;
      return [{ dtype: v.dtype, shape, known }];
    }
    case "GatherElements": {
      const v = need(x, "data");
      const ind = need(inputs[1], "indices");
      if (!INDEX_TYPES.has(ind.dtype)) throw new Error(`indices must be int32 or int64, got ${ind.dtype}`);
      if (v.shape && ind.shape && v.shape.length !== ind.shape.length)
        throw new Error(`data ${formatShape(v.shape)} and indices ${formatShape(ind.shape)} differ in rank`);
      if (v.shape) normAxis(intAttr(attrs, "axis", 0), v.shape.length);
      return [{ dtype: v.dtype, shape: ind.shape }];
    }
    case "Cast": {
      const v = need(x, "input");
      const to = dtypeFromOnnx(intAttr(attrs, "to", 0));
      return [{ dtype: to, shape: v.shape, known: v.known }];
    }
    case "Shape": {
      const v = need(x, "data");
      if (v.shape === null) return [{ dtype: "int64", shape: [freshDim()] }];
      const r = v.shape.length;
      const clampIdx = (i: number) => Math.min(Math.max(i < 0 ? i + r : i, 0), r);
      const s = v.shape.slice(clampIdx(intAttr(attrs, "start", 0)), clampIdx(intAttr(attrs, "end", r)));
      return [{ dtype: "int64", shape: [s.length], known: s }];
    }
    case "Size":
      need(x, "data");
      return [{ dtype: "int64", shape: [] }];
    case "Range": {
      const ins = inputs.map((v, i) => need(v, `input ${i}`));
      const dtype = sameDtypes(ins);
      const [s, l, d] = ins.map((v) => knownInts(v)?.[0]);
      const n =
        s !== undefined && l !== undefined && d !== undefined
          ? Math.max(Math.ceil((l - s) / d), 0)
          : freshDim();
      return [{ dtype, shape: [n] }];
    }
    case "Constant": {
      const t = attrs.value as TensorAttr | undefined;
      if (!t || typeof t !== "object" || !("tensor" in t))
        throw new Error("Constant needs a tensor `value` attribute");
      const known = t.tensor.dims.length <= 1 ? Array.from(t.tensor.values) : undefined;
      return [{ dtype: t.tensor.dtype, shape: [...t.tensor.dims], known }];
    }
    case "ConstantOfShape": {
      const s = need(x, "shape");
      const t = attrs.value as TensorAttr | undefined;
      const dtype = t && typeof t === "object" && "tensor" in t ? t.tensor.dtype : "float32";
      if (s.known) return [{ dtype, shape: [...s.known] }];
      const len = s.shape?.[0];
      return [
        { dtype, shape: typeof len === "number" ? Array.from({ length: len }, () => freshDim()) : null },
      ];
    }
    case "Compress": {
      const v = need(x, "input");
      if (need(inputs[1], "condition").dtype !== "bool") throw new Error("condition must be bool");
      if (attrs.axis === undefined || v.shape === null) return [{ dtype: v.dtype, shape: [freshDim()] }];
      const axis = normAxis(intAttr(attrs, "axis", 0), v.shape.length);
      return [{ dtype: v.dtype, shape: v.shape.map((d, i) => (i === axis ? freshDim() : d)) }];
    }
    case "Pad": {
      const v = need(x, "data");
      const pads = knownInts(need(inputs[1], "pads"));
      if (v.shape === null) return [{ dtype: v.dtype, shape: null }];
      const rank = v.shape.length;
      const axes = inputs[3] ? knownInts(inputs[3]) : v.shape.map((_, i) => i);
      if (!pads || !axes) return [{ dtype: v.dtype, shape: v.shape.map(() => freshDim()) }];
      const out = [...v.shape];
      axes.forEach((a, i) => {
        const ax = normAxis(a, rank);
        const d = out[ax];
        out[ax] = typeof d === "number" ? d + pads[i] + pads[i + axes.length] : freshDim();
      });
      return [{ dtype: v.dtype, shape: out }];
    }
  }
  throw new Error(`no shape inference for ${op}; pass explicit output types`);
}
