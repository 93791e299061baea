// GraphBuilder: declare inputs, weights and nodes with eager dtype/shape inference, then build()
// an OnnxModel. Every op call checks its inputs at once, so a mistake throws at the line that made it,
// with the node's name in the message.
import {
  allocHost,
  bytesPerElement,
  type DType,
  type FloatDType,
  type HostArray,
  hostFromNumbers,
  onnxDataType,
} from "./dtype.ts";
import { type Attrs, type InferredOutput, inferOutputs, type ValueInfo } from "./infer.ts";
import { encodeModel, OnnxModel } from "./model.ts";
import { type Dim, formatShape, type Shape } from "./shape.ts";

export class Value implements ValueInfo {
  constructor(
    readonly graph: GraphBuilder,
    readonly name: string,
    readonly dtype: DType,
    readonly shape: Shape,
    readonly producer: Node | null,
    readonly known?: Dim[],
  ) {}

  get rank(): number {
    if (this.shape === null) throw new Error(`value "${this.name}" has unknown rank`);
    return this.shape.length;
  }

  toString(): string {
    return `${this.name}: ${this.dtype}${formatShape(this.shape)}`;
  }
}

export interface Node {
  readonly name: string;
  readonly opType: string;
  readonly domain: string;
  readonly inputs: readonly (Value | null)[];
  readonly outputs: readonly Value[];
  readonly attrs: Attrs;
}

export interface Initializer {
  readonly value: Value;
  readonly dims: number[];
  /** Little-endian element bytes (a view, never copied); empty for file-backed weights. */
  readonly bytes: Uint8Array;
  readonly byteLength: number;
  /** true: stored as external data; false: inline; undefined: decided by size at build(). */
  readonly external?: boolean;
  /** Data that already lives in a file (e.g. a safetensors shard), referenced in place. */
  readonly file?: FileRegion;
}

/** A byte range of an existing file; `location` is relative to the directory the model is saved in. */
export interface FileRegion {
  location: string;
  offset: number;
}

export interface GraphOptions {
  /** Default opset of the ai.onnx domain (>= 21). */
  opset?: number;
  /** Float type for scalars made from JS numbers and for `floatInput`; float64 gives a gradient-checkable twin. */
  dtype?: FloatDType;
}

export interface BuildOptions {
  /** Weights of at least this many bytes go to external data unless marked otherwise (default 1 MiB). */
  externalThreshold?: number;
}

export interface OpOptions {
  name?: string;
  domain?: string;
  /** Number of outputs (multi-output ops). */
  outputs?: number;
  /** Explicit output types for ops the builder cannot infer. */
  outputTypes?: { dtype: DType; shape: Shape }[];
}

export type Operand = Value | number;

const MIN_OPSET = 21;

/** Anything the weight() call accepts as element data. */
export type WeightData = HostArray | Uint8Array | number[];

export class GraphBuilder {
  readonly opset: number;
  readonly dtype: FloatDType;
  readonly nodes: Node[] = [];
  readonly inputs: Value[] = [];
  readonly outputs: Value[] = [];
  readonly initializers = new Map<string, Initializer>();
  private readonly names = new Set<string>();
  private readonly constCache = new Map<string, Value>();
  private readonly prefixes: string[] = [];
  private counter = 0;

  constructor(
    readonly name: string,
    options: GraphOptions = {},
  ) {
    this.opset = options.opset ?? MIN_OPSET;
    if (this.opset < MIN_OPSET) throw new Error(`graph "${name}": opset ${this.opset} is below ${MIN_OPSET}`);
    this.dtype = options.dtype ?? "float32";
  }

  // ---------- declarations ----------

  input(name: string, dtype: DType, shape: Dim[]): Value {
    const v = new Value(this, this.claim(name), dtype, [...shape], null);
    this.inputs.push(v);
    return v;
  }

  /** Input of the graph's float dtype. */
  floatInput(name: string, shape: Dim[]): Value {
    return this.input(name, this.dtype, shape);
  }

  /**
   * A named weight (initializer). `data` is a typed array of the dtype (Uint16Array bits for float16),
   * raw little-endian bytes, or plain numbers (converted). Large weights become external data at build().
   */
  weight(
    name: string,
    dtype: DType,
    dims: number[],
    data: WeightData,
    opts: { external?: boolean } = {},
  ): Value {
    const n = dims.reduce((a, b) => a * b, 1);
    if (dims.some((d) => !Number.isInteger(d) || d < 0))
      throw new Error(`weight "${name}": dims [${dims}] must be non-negative integers`);
    const host = Array.isArray(data) ? hostFromNumbers(dtype, data) : data;
    const expected = allocHost(dtype, 0).constructor;
    if (!(host instanceof Uint8Array) && host.constructor !== expected)
      throw new Error(
        `weight "${name}": ${host.constructor.name} given for dtype ${dtype} (want ${expected.name})`,
      );
    const bytes = new Uint8Array(host.buffer, host.byteOffset, host.byteLength);
    if (bytes.byteLength !== n * bytesPerElement(dtype))
      throw new Error(
        `weight "${name}": ${bytes.byteLength} bytes given, ${dtype}[${dims}] needs ${n * bytesPerElement(dtype)}`,
      );
    const known =
      dtype === "int64" && dims.length <= 1 && n <= 64
        ? Array.from(new BigInt64Array(bytes.slice().buffer), Number)
        : undefined;
    const v = new Value(this, this.claim(name), dtype, [...dims], null, known);
    const init = { value: v, dims: [...dims], bytes, byteLength: bytes.byteLength };
    this.initializers.set(v.name, { ...init, external: opts.external });
    return v;
  }

  /**
   * A weight whose little-endian bytes already sit in a file at `region` (relative to the directory the
   * model will be saved in), e.g. a float32/float16 tensor inside a safetensors shard. Nothing is read
   * into memory; such a model must be saved next to the file and opened by path.
   */
  weightFromFile(name: string, dtype: DType, dims: number[], region: FileRegion): Value {
    if (dims.some((d) => !Number.isInteger(d) || d < 0))
      throw new Error(`weight "${name}": dims [${dims}] must be non-negative integers`);
    if (region.location.startsWith("/") || region.location.split(/[\\/]/).includes(".."))
      throw new Error(
        `weight "${name}": file location "${region.location}" must be relative, inside the model directory`,
      );
    const v = new Value(this, this.claim(name), dtype, [...dims], null);
    const length = dims.reduce((a, b) => a * b, 1) * bytesPerElement(dtype);
    const init = { value: v, dims: [...dims], bytes: new Uint8Array(0), byteLength: length };
    this.initializers.set(v.name, { ...init, external: true, file: { ...region } });
    return v;
  }

  /** A small constant (inline initializer), deduplicated by content. */
  constant(values: ArrayLike<number>, dtype: DType, dims: number[] = [values.length]): Value {
    const key = `${dtype}|${dims.join(",")}|${Array.from(values).join(",")}`;
    const hit = this.constCache.get(key);
    if (hit) return hit;
    const v = this.weight(this.uniqueName("const"), dtype, dims, hostFromNumbers(dtype, values), {
      external: false,
    });
    this.constCache.set(key, v);
    return v;
  }

  /** 1-D int64 constant (axes, shapes, starts...). */
  ints(values: number[]): Value {
    return this.constant(values, "int64", [values.length]);
  }

  /** Scalar constant; dtype defaults to the graph's float dtype. */
  scalar(value: number, dtype: DType = this.dtype): Value {
    return this.constant([value], dtype, []);
  }

  /** Marks a value as a graph output; with `name`, an Identity gives it that name. */
  output(v: Value, name?: string): Value {
    let out = v;
    if (name !== undefined && name !== v.name) {
      if (v.producer && !this.outputs.includes(v)) {
        // Name the node's own output: an Identity on a graph output is a copy ORT cannot remove
        // (e.g. every KV-cache tensor, every decode step). Consumers hold the Value, so they follow.
        this.claim(name);
        this.names.delete(v.name);
        (v as unknown as { name: string }).name = name;
      } else {
        out = this.rename(this.op("Identity", [v], {}, { name: `${name}_identity` }), name);
      }
    }
    if (!this.outputs.includes(out)) this.outputs.push(out);
    return out;
  }

  /** Names nodes made inside `fn` as `<prefix>/<op>_<n>`. */
  scope<T>(prefix: string, fn: () => T): T {
    this.prefixes.push(prefix);
    try {
      return fn();
    } finally {
      this.prefixes.pop();
    }
  }

  // ---------- generic op ----------

  /** Adds one node and returns its first output. */
  op(opType: string, inputs: (Value | null)[], attrs: Attrs = {}, opts: OpOptions = {}): Value {
    return this.opMulti(opType, inputs, attrs, opts)[0];
  }

  /** Adds one node and returns all its outputs. */
  opMulti(opType: string, inputs: (Value | null)[], attrs: Attrs = {}, opts: OpOptions = {}): Value[] {
    const nodeName = opts.name ? this.claim(this.prefixed(opts.name)) : this.uniqueName(opType);
    const nOut = opts.outputs ?? opts.outputTypes?.length ?? 1;
    const fail = (msg: string): never => {
      throw new Error(`${opType} node "${nodeName}": ${msg}`);
    };
    inputs.forEach((v, i) => {
      if (v && v.graph !== this) fail(`input ${i} ("${v.name}") belongs to another graph`);
    });
    let infos: InferredOutput[];
    if (opts.outputTypes) infos = opts.outputTypes;
    else {
      try {
        infos = inferOutputs(opType, inputs, attrs, nOut);
      } catch (e) {
        const shapes = inputs.map((v) => (v ? `${v.dtype}${formatShape(v.shape)}` : "-")).join(", ");
        return fail(`${(e as Error).message} (inputs: ${shapes})`);
      }
    }
    const outputs = infos.map(
      (o, i) =>
        new Value(
          this,
          this.claim(nOut === 1 ? `${nodeName}_out` : `${nodeName}_out${i}`),
          o.dtype,
          o.shape,
          null,
          o.known,
        ),
    );
    const node: Node = {
      name: nodeName,
      opType,
      domain: opts.domain ?? "",
      inputs: [...inputs],
      outputs,
      attrs,
    };
    for (const o of outputs) (o as { producer: Node | null }).producer = node;
    this.nodes.push(node);
    return outputs;
  }

  // ---------- typed helpers ----------

  matmul(a: Value, b: Value): Value {
    return this.op("MatMul", [a, b]);
  }
  gemm(
    a: Value,
    b: Value,
    c?: Value,
    o: { transA?: boolean; transB?: boolean; alpha?: number; beta?: number } = {},
  ) {
    return this.op("Gemm", c ? [a, b, c] : [a, b], {
      transA: o.transA ? 1 : 0,
      transB: o.transB ? 1 : 0,
      alpha: { float: o.alpha ?? 1 },
      beta: { float: o.beta ?? 1 },
    });
  }
  add(a: Operand, b: Operand): Value {
    return this.binary("Add", a, b);
  }
  sub(a: Operand, b: Operand): Value {
    return this.binary("Sub", a, b);
  }
  mul(a: Operand, b: Operand): Value {
    return this.binary("Mul", a, b);
  }
  div(a: Operand, b: Operand): Value {
    return this.binary("Div", a, b);
  }
  pow(a: Operand, b: Operand): Value {
    return this.binary("Pow", a, b);
  }
  min(a: Operand, b: Operand): Value {
    return this.binary("Min", a, b);
  }
  max(a: Operand, b: Operand): Value {
    return this.binary("Max", a, b);
  }
  equal(a: Operand, b: Operand): Value {
    return this.binary("Equal", a, b);
  }
  less(a: Operand, b: Operand): Value {
    return this.binary("Less", a, b);
  }
  greater(a: Operand, b: Operand): Value {
    return this.binary("Greater", a, b);
  }
  lessOrEqual(a: Operand, b: Operand): Value {
    return this.binary("LessOrEqual", a, b);
  }
  greaterOrEqual(a: Operand, b: Operand): Value {
    return this.binary("GreaterOrEqual", a, b);
  }
  and(a: Value, b: Value): Value {
    return this.op("And", [a, b]);
  }
  not(a: Value): Value {
    return this.op("Not", [a]);
  }
  neg(x: Value): Value {
    return this.op("Neg", [x]);
  }
  sqrt(x: Value): Value {
    return this.op("Sqrt", [x]);
  }
  reciprocal(x: Value): Value {
    return this.op("Reciprocal", [x]);
  }
  exp(x: Value): Value {
    return this.op("Exp", [x]);
  }
  log(x: Value): Value {
    return this.op("Log", [x]);
  }
  sigmoid(x: Value): Value {
    return this.op("Sigmoid", [x]);
  }
  tanh(x: Value): Value {
    return this.op("Tanh", [x]);
  }
  identity(x: Value): Value {
    return this.op("Identity", [x]);
  }
  softmax(x: Value, axis = -1): Value {
    return this.op("Softmax", [x], { axis });
  }
  logSoftmax(x: Value, axis = -1): Value {
    return this.op("LogSoftmax", [x], { axis });
  }
  reduceSum(x: Value, axes?: number[], keepdims = true): Value {
    return this.reduce("ReduceSum", x, axes, keepdims);
  }
  reduceMean(x: Value, axes?: number[], keepdims = true): Value {
    return this.reduce("ReduceMean", x, axes, keepdims);
  }
  /** ReduceMax passes no gradient: use it as a constant stabiliser (x - max(x)). */
  reduceMax(x: Value, axes?: number[], keepdims = true): Value {
    return this.reduce("ReduceMax", x, axes, keepdims);
  }
  reshape(x: Value, shape: number[] | Value): Value {
    return this.op("Reshape", [x, Array.isArray(shape) ? this.ints(shape) : shape]);
  }
  transpose(x: Value, perm?: number[]): Value {
    return this.op("Transpose", [x], perm ? { perm } : {});
  }
  unsqueeze(x: Value, axes: number[]): Value {
    return this.op("Unsqueeze", [x, this.ints(axes)]);
  }
  squeeze(x: Value, axes?: number[]): Value {
    return this.op("Squeeze", axes ? [x, this.ints(axes)] : [x]);
  }
  slice(x: Value, starts: number[], ends: number[], axes?: number[], steps?: number[]): Value {
    const ins: (Value | null)[] = [x, this.ints(starts), this.ints(ends)];
    if (axes || steps) ins.push(axes ? this.ints(axes) : null);
    if (steps) ins.push(this.ints(steps));
    return this.op("Slice", ins);
  }
  concat(xs: Value[], axis: number): Value {
    return this.op("Concat", xs, { axis });
  }
  /** Split into `parts` equal pieces or pieces of the given sizes. */
  split(x: Value, parts: number | number[], axis = 0): Value[] {
    if (typeof parts === "number")
      return this.opMulti("Split", [x], { axis, num_outputs: parts }, { outputs: parts });
    return this.opMulti("Split", [x, this.ints(parts)], { axis }, { outputs: parts.length });
  }
  expand(x: Value, shape: number[] | Value): Value {
    return this.op("Expand", [x, Array.isArray(shape) ? this.ints(shape) : shape]);
  }
  gather(x: Value, indices: Value, axis = 0): Value {
    return this.op("Gather", [x, indices], { axis });
  }
  gatherElements(x: Value, indices: Value, axis = 0): Value {
    return this.op("GatherElements", [x, indices], { axis });
  }
  where(cond: Value, a: Operand, b: Operand): Value {
    const [x, y] = this.operands(a, b);
    return this.op("Where", [cond, x, y]);
  }
  cast(x: Value, to: DType): Value {
    return this.op("Cast", [x], { to: onnxDataType(to) });
  }
  clip(x: Value, min?: Operand, max?: Operand): Value {
    const lo = min === undefined ? null : typeof min === "number" ? this.scalar(min, x.dtype) : min;
    const hi = max === undefined ? null : typeof max === "number" ? this.scalar(max, x.dtype) : max;
    return this.op("Clip", hi ? [x, lo, hi] : lo ? [x, lo] : [x]);
  }
  shapeOf(x: Value): Value {
    return this.op("Shape", [x]);
  }
  trilu(x: Value, upper: boolean, k = 0): Value {
    return this.op("Trilu", [x, this.constant([k], "int64", [])], { upper: upper ? 1 : 0 });
  }
  range(start: Operand, limit: Operand, delta: Operand, dtype: DType = "int64"): Value {
    const s = typeof start === "number" ? this.scalar(start, dtype) : start;
    const l = typeof limit === "number" ? this.scalar(limit, dtype) : limit;
    const d = typeof delta === "number" ? this.scalar(delta, dtype) : delta;
    return this.op("Range", [s, l, d]);
  }
  /** Tensor of `shape` (a 1-D int64 value) filled with `value`. */
  fill(shape: Value, value: number, dtype: DType): Value {
    return this.op("ConstantOfShape", [shape], { value: { tensor: { dtype, dims: [1], values: [value] } } });
  }

  // ---------- build ----------

  /** Encodes the graph as it stands; the builder stays usable (e.g. build forward, add gradients, build again). */
  build(opts: BuildOptions = {}): OnnxModel {
    if (this.outputs.length === 0) throw new Error(`graph "${this.name}": no outputs declared`);
    const threshold = opts.externalThreshold ?? 1 << 20;
    const used = this.liveValues();
    const inits = [...this.initializers.values()].filter((i) => used.has(i.value));
    const { proto, external, fileBacked } = encodeModel({
      name: this.name,
      opset: this.opset,
      nodes: this.nodes.filter((n) => n.outputs.some((o) => used.has(o))),
      inputs: this.inputs,
      outputs: this.outputs,
      initializers: inits.map((i) => ({ ...i, external: i.external ?? i.byteLength >= threshold })),
    });
    return new OnnxModel(proto, external, fileBacked);
  }

  /** Values the outputs depend on (nodes not feeding an output are dropped from the model). */
  private liveValues(): Set<Value> {
    const live = new Set<Value>();
    const stack = [...this.outputs];
    while (stack.length) {
      const v = stack.pop()!;
      if (live.has(v)) continue;
      live.add(v);
      if (v.producer) for (const i of v.producer.inputs) if (i) stack.push(i);
      if (v.producer) for (const o of v.producer.outputs) live.add(o);
    }
    return live;
  }

  // ---------- internals ----------

  /** Makes `a`,`b` Values; a JS number becomes a scalar of the other operand's dtype. */
  operands(a: Operand, b: Operand): [Value, Value] {
    if (typeof a === "number" && typeof b === "number") return [this.scalar(a), this.scalar(b)];
    const x = typeof a === "number" ? this.scalar(a, (b as Value).dtype) : a;
    const y = typeof b === "number" ? this.scalar(b, x.dtype) : b;
    return [x, y];
  }

  private binary(op: string, a: Operand, b: Operand): Value {
    return this.op(op, this.operands(a, b));
  }

  private reduce(op: string, x: Value, axes: number[] | undefined, keepdims: boolean): Value {
    return this.op(op, axes === undefined ? [x] : [x, this.ints(axes)], { keepdims: keepdims ? 1 : 0 });
  }

  private prefixed(name: string): string {
    return this.prefixes.length ? `${this.prefixes.join("/")}/${name}` : name;
  }

  uniqueName(base: string): string {
    let name: string;
    do {
      this.counter += 1;
      name = this.prefixed(`${base}_${this.counter}`);
    } while (this.names.has(name) || this.names.has(`${name}_out`) || this.names.has(`${name}_out0`));
    return name;
  }

  private claim(name: string): string {
    if (name.length === 0) throw new Error(`graph "${this.name}": empty value name`);
    if (this.names.has(name)) throw new Error(`graph "${this.name}": name "${name}" is already used`);
    this.names.add(name);
    return name;
  }

  private rename(v: Value, name: string): Value {
    // the Identity's output takes the requested name
    const node = v.producer!;
    this.names.delete(v.name);
    const renamed = new Value(this, this.claim(name), v.dtype, v.shape, node, v.known);
    (node as unknown as { outputs: Value[] }).outputs = [renamed];
    return renamed;
  }
}
