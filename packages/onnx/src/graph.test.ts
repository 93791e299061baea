// Builder behaviour: inference, build-time errors naming the node, encoding, weights of each dtype.
import assert from "node:assert/strict";
import { test } from "node:test";
import { fromBinary } from "@bufbuild/protobuf";
import { ModelProtoSchema } from "onnx-buf";
import {
  bfloat16ToFloat32,
  float16BitsToFloat32,
  float16ToFloat32,
  float32ToFloat16,
  float32ToFloat16Bits,
} from "./dtype.ts";
import { GraphBuilder } from "./graph.ts";
import { Session, tensor } from "./session.ts";

test("a dtype mismatch fails at the op, naming the node", () => {
  const g = new GraphBuilder("t");
  const a = g.input("a", "float32", [2]);
  const b = g.input("b", "float64", [2]);
  assert.throws(
    () => g.add(a, b),
    /^Error: Add node "Add_\d+": inputs must share a dtype, got float32 and float64/,
  );
});

test("a rank or inner-dim mistake names the scoped node", () => {
  const g = new GraphBuilder("t");
  const x = g.input("x", "float32", ["batch", 8]);
  const w = g.weight("w", "float32", [4, 2], new Float32Array(8));
  assert.throws(
    () => g.scope("layer0", () => g.matmul(x, w)),
    /MatMul node "layer0\/MatMul_\d+": inner dims differ: A \[batch, 8\] · B \[4, 2\]/,
  );
  assert.throws(() => g.softmax(x, 2), /Softmax node "Softmax_\d+": axis 2 is out of range for rank 2/);
  assert.throws(() => g.gemm(g.input("v", "float32", [3]), w), /Gemm node .*A and B must be 2-D/);
  assert.throws(() => g.op("FancyOp", [x]), /FancyOp node "FancyOp_\d+": no shape inference for FancyOp/);
});

test("symbolic shapes flow through reshape, transpose, matmul and Shape-built targets", () => {
  const g = new GraphBuilder("t");
  const x = g.input("x", "float32", ["batch", "seq", 64]);
  const h = g.reshape(x, [0, 0, 4, -1]);
  assert.deepEqual(h.shape, ["batch", "seq", 4, 16]);
  assert.deepEqual(g.transpose(h, [0, 2, 1, 3]).shape, ["batch", 4, "seq", 16]);
  const s = g.shapeOf(x);
  const target = g.concat([g.slice(s, [0], [2]), g.ints([8, 8])], 0);
  assert.deepEqual(target.known, ["batch", "seq", 8, 8]);
  assert.deepEqual(g.reshape(x, target).shape, ["batch", "seq", 8, 8]);
  const w = g.weight("w", "float32", [64, 32], new Float32Array(64 * 32));
  assert.deepEqual(g.matmul(x, w).shape, ["batch", "seq", 32]);
  assert.deepEqual(g.gather(w, g.input("ids", "int64", ["batch", "seq"]), 0).shape, ["batch", "seq", 32]);
  assert.throws(() => g.reshape(w, [7, 7]), /cannot reshape \[64, 32\] to \[7, 7\]/);
});

test("build() encodes a valid opset-21 ModelProto that ORT runs", async () => {
  const g = new GraphBuilder("enc", { opset: 21 });
  const x = g.floatInput("x", ["n", 3]);
  const w = g.weight("w", "float32", [3, 2], [1, 2, 3, 4, 5, 6]);
  g.output(g.gemm(x, w, undefined, { alpha: 0.5 }), "y");
  const model = g.build();
  const decoded = fromBinary(ModelProtoSchema, model.toBytes());
  assert.equal(decoded.irVersion, 10n);
  assert.equal(decoded.opsetImport[0].version, 21n);
  assert.deepEqual(
    decoded.graph!.node.map((n) => n.opType),
    ["Gemm"],
  );
  assert.deepEqual(
    decoded.graph!.output.map((o) => o.name),
    ["y"],
  );
  const inputType = decoded.graph!.input[0].type!.value;
  assert.equal(inputType.case === "tensorType" && inputType.value.shape!.dim[0].value.value, "n");
  const s = await Session.create(model, { threads: 1 });
  const y = await s.run({ x: tensor("float32", [1, 0, 0, 0, 1, 1], [2, 3]) });
  assert.deepEqual(Array.from(y.y.data as Float32Array), [0.5, 1, 4, 5]);
  await s.release();
});

test("nodes not feeding an output are left out of the model", () => {
  const g = new GraphBuilder("prune");
  const x = g.floatInput("x", [2]);
  g.exp(x);
  g.output(g.neg(x), "y");
  assert.deepEqual(
    g.build().proto.graph!.node.map((n) => n.opType),
    ["Neg"],
  );
});

test("an output named after an input or an existing output is a copy under the new name", async () => {
  const g = new GraphBuilder("alias");
  const x = g.floatInput("x", [2]);
  const y = g.output(g.neg(x), "y");
  g.output(y, "y_again");
  g.output(x, "x_out");
  const model = g.build();
  assert.deepEqual(
    model.proto.graph!.node.map((n) => n.opType),
    ["Neg", "Identity", "Identity"],
  );
  const s = await Session.create(model, { threads: 1 });
  const out = await s.run({ x: tensor("float32", [1, -2], [2]) });
  assert.deepEqual(Array.from(out.y.data as Float32Array), [-1, 2]);
  assert.deepEqual(Array.from(out.y_again.data as Float32Array), [-1, 2]);
  assert.deepEqual(Array.from(out.x_out.data as Float32Array), [1, -2]);
  await s.release();
});

test("float16, int64 and float64 initializers load and compute", async () => {
  const g = new GraphBuilder("types", { dtype: "float64" });
  const half = g.weight("half", "float16", [3], float32ToFloat16([1.5, -2, 0.25]));
  const ids = g.weight("ids", "int64", [2], new BigInt64Array([2n, 0n]));
  const dbl = g.weight("dbl", "float64", [3], new Float64Array([0.1, 0.2, 0.3]));
  const sum = g.add(g.cast(half, "float64"), dbl);
  g.output(g.gather(sum, ids, 0), "y");
  const s = await Session.create(g.build(), { threads: 1 });
  const y = await s.run({});
  assert.deepEqual(Array.from(y.y.data as Float64Array), [0.25 + 0.3, 1.5 + 0.1]);
  await s.release();
});

test("weight() rejects data of the wrong size or type", () => {
  const g = new GraphBuilder("t");
  assert.throws(() => g.weight("w", "float32", [2, 2], new Float32Array(3)), /weight "w": 12 bytes given/);
  assert.throws(
    () => g.weight("v", "float32", [2], new Float64Array(2)),
    /Float64Array given for dtype float32/,
  );
  g.weight("w", "float32", [3], new Float32Array(3));
  assert.throws(() => g.weight("w", "float32", [3], new Float32Array(3)), /name "w" is already used/);
});

test("float16 and bfloat16 conversions", () => {
  for (const v of [0, 1, -2.5, 65504, 6.103515625e-5, 2 ** -24, 0.1])
    assert.equal(float16BitsToFloat32(float32ToFloat16Bits(v)), v === 0.1 ? 0.0999755859375 : v);
  assert.equal(float16BitsToFloat32(float32ToFloat16Bits(1e6)), Number.POSITIVE_INFINITY);
  assert.deepEqual(Array.from(float16ToFloat32(float32ToFloat16([3, -0.5]))), [3, -0.5]);
  // bfloat16 is the upper half of a float32: 1.0 = 0x3f80, -2.0 = 0xc000, pi ≈ 0x4049
  const bf = new Uint16Array([0x3f80, 0xc000, 0x4049]);
  assert.deepEqual(Array.from(bfloat16ToFloat32(bf)), [1, -2, 3.140625]);
  const bytes = new Uint8Array(7);
  bytes.set(new Uint8Array(bf.buffer), 1); // unaligned, as inside a safetensors file
  assert.deepEqual(Array.from(bfloat16ToFloat32(bytes.subarray(1))), [1, -2, 3.140625]);
  assert.throws(() => bfloat16ToFloat32(new Uint8Array(3)), /odd byte length 3/);
});

test("the same builder code yields float32 and float64 graphs that agree", async () => {
  const results: number[][] = [];
  for (const dtype of ["float32", "float64"] as const) {
    const g = new GraphBuilder("twin", { dtype });
    const x = g.floatInput("x", [2, 3]);
    g.output(g.logSoftmax(g.mul(g.tanh(x), 3), -1), "y");
    const s = await Session.create(g.build(), { threads: 1 });
    const y = await s.run({ x: tensor(dtype, [0.1, -0.2, 0.3, 1, 2, -3], [2, 3]) });
    assert.equal(y.y.type, dtype);
    results.push(Array.from(y.y.data as Float64Array));
    await s.release();
  }
  results[0].forEach((v, i) => {
    assert.ok(Math.abs(v - results[1][i]) < 1e-6);
  });
});
