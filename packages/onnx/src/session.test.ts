// External weights (in memory and on disk) and session helpers.
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { fromBinary } from "@bufbuild/protobuf";
import { ModelProtoSchema } from "onnx-buf";
import { GraphBuilder } from "./graph.ts";
import { Session, tensor } from "./session.ts";

/** y = x·W1·W2 with W1 [64, 128], W2 [128, 4] both external at a 1 KiB threshold. */
function twoWeights() {
  const w1 = Float32Array.from({ length: 64 * 128 }, (_, i) => ((i % 7) - 3) / 16);
  const w2 = Float32Array.from({ length: 128 * 4 }, (_, i) => ((i % 5) - 2) / 8);
  const g = new GraphBuilder("ext");
  const x = g.floatInput("x", ["n", 64]);
  const y = g.matmul(
    g.matmul(x, g.weight("w1", "float32", [64, 128], w1)),
    g.weight("w2", "float32", [128, 4], w2),
  );
  g.output(y, "y");
  const model = g.build({ externalThreshold: 1024 });
  // reference in plain JS
  const xs = Float32Array.from({ length: 2 * 64 }, (_, i) => Math.sin(i));
  const ref: number[] = [];
  for (let r = 0; r < 2; r++)
    for (let c = 0; c < 4; c++) {
      let acc = 0;
      for (let j = 0; j < 128; j++) {
        let h = 0;
        for (let k = 0; k < 64; k++) h += xs[r * 64 + k] * w1[k * 128 + j];
        acc += h * w2[j * 4 + c];
      }
      ref.push(acc);
    }
  return { model, xs, ref };
}

function close(got: Float32Array, ref: number[]) {
  ref.forEach((v, i) => {
    assert.ok(Math.abs(got[i] - v) < 1e-4 * (1 + Math.abs(v)), `y[${i}] = ${got[i]}, want ${v}`);
  });
}

test("large weights leave the protobuf and load through ORT's in-memory externalData", async () => {
  const { model, xs, ref } = twoWeights();
  assert.deepEqual(
    model.external.map((e) => e.name),
    ["w1", "w2"],
  );
  assert.ok(model.toBytes().byteLength < 2048, `protobuf is ${model.toBytes().byteLength} bytes`);
  // the raw bytes + { path, data } entries, as onnxruntime-node 1.30 takes them
  const s = await Session.create(model.toBytes(), { externalData: model.externalData(), threads: 1 });
  close((await s.run({ x: tensor("float32", xs, [2, 64]) })).y.data as Float32Array, ref);
  await s.release();
  await assert.rejects(Session.create(model.toBytes(), { threads: 1 }), /cannot create cpu session/);
});

test("save() writes one page-aligned data file beside the model", async () => {
  const { model, xs, ref } = twoWeights();
  const dir = await mkdtemp(join(tmpdir(), "temper-onnx-"));
  try {
    const path = await model.save(dir, "m.onnx");
    const saved = fromBinary(ModelProtoSchema, await readFile(path));
    const ext = saved.graph!.initializer.map((t) =>
      Object.fromEntries(t.externalData.map((e) => [e.key, e.value])),
    );
    assert.deepEqual(
      ext.map((e) => e.location),
      ["m.onnx.data", "m.onnx.data"],
    );
    assert.deepEqual(
      ext.map((e) => Number(e.offset) % 4096),
      [0, 0],
    );
    assert.equal((await stat(join(dir, "m.onnx.data"))).size, Number(ext[1].offset) + 128 * 4 * 4);
    const s = await Session.create(path, { threads: 1 });
    close((await s.run({ x: tensor("float32", xs, [2, 64]) })).y.data as Float32Array, ref);
    await s.release();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("weightFromFile references bytes inside an existing file (safetensors-style) without reading them", async () => {
  const dir = await mkdtemp(join(tmpdir(), "temper-onnx-"));
  try {
    // 13 header bytes, then a float32 [2, 3] tensor: an unaligned offset, as in safetensors shards
    const w = new Float32Array([1, 2, 3, 4, 5, 6]);
    const file = new Uint8Array(13 + w.byteLength);
    file.set(new Uint8Array(w.buffer), 13);
    await writeFile(join(dir, "shard.bin"), file);
    const g = new GraphBuilder("filew");
    const x = g.floatInput("x", [1, 2]);
    g.output(
      g.matmul(x, g.weightFromFile("w", "float32", [2, 3], { location: "shard.bin", offset: 13 })),
      "y",
    );
    const model = g.build();
    await assert.rejects(Session.create(model), /weights w live in files: save\(\) the model next to them/);
    const s = await Session.create(await model.save(dir), { threads: 1 });
    const y = await s.run({ x: tensor("float32", [1, -1], [1, 2]) });
    assert.deepEqual(Array.from(y.y.data as Float32Array), [-3, -3, -3]);
    await s.release();
    assert.throws(
      () => g.weightFromFile("v", "float32", [1], { location: "../x.bin", offset: 0 }),
      /must be relative/,
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("run() checks feeds and names the offending one", async () => {
  const g = new GraphBuilder("feeds");
  const x = g.floatInput("x", ["n", 3]);
  g.output(g.exp(x), "y");
  const s = await Session.create(g.build(), { threads: 1 });
  await assert.rejects(s.run({}), /^Error: run: missing feed "x"$/);
  await assert.rejects(
    s.run({ x: tensor("float64", [1, 2, 3], [1, 3]) }),
    /feed "x" is float64, the graph wants float32/,
  );
  await assert.rejects(
    s.run({ x: tensor("float32", [1, 2, 3], [3, 1]) }),
    /feed "x" has shape \[3,1\], the graph wants \[n,3\]/,
  );
  await assert.rejects(
    s.run({ x: tensor("float32", [1, 2, 3], [1, 3]), z: tensor("float32", [1], [1]) }),
    /"z" is not an input/,
  );
  const y = await s.run({ x: tensor("float32", [0, 0, 0], [1, 3]) }, ["y"]);
  assert.deepEqual(Array.from(y.y.data as Float32Array), [1, 1, 1]);
  await s.release();
  assert.throws(() => tensor("float32", [1, 2], [3]), /2 values for float32\[3\]/);
});

test("unavailable execution providers fail with one line", async () => {
  const g = new GraphBuilder("ep");
  g.output(g.exp(g.floatInput("x", [1])), "y");
  const model = g.build();
  await assert.rejects(Session.create(model, { provider: "cuda" }), (e: Error) => {
    assert.match(
      e.message,
      /^execution provider "cuda" is unavailable: onnxruntime-node was installed without/,
    );
    assert.ok(!e.message.includes("\n"));
    return true;
  });
  // webgpu is bundled; without a GPU adapter (this machine) creation fails with one line
  try {
    const s = await Session.create(model, { provider: "webgpu" });
    const y = await s.run({ x: tensor("float32", [0], [1]) });
    assert.equal((y.y.data as Float32Array)[0], 1);
    await s.release();
  } catch (e) {
    assert.match((e as Error).message, /^cannot create webgpu session: /);
    assert.ok(!(e as Error).message.includes("\n"));
  }
});
