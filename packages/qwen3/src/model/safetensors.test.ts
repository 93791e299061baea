import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { Checkpoint, INDEX_FILE, shardFileName, writeCheckpoint } from "./checkpoint.ts";
import { bf16ToFloat32Table, f16ToFloat32Table, numberToBf16Bits, numberToF16Bits } from "./half.ts";
import { encodeHeader, SafetensorsFile, type TensorSource, writeSafetensors } from "./safetensors.ts";

const dir = mkdtempSync(join(tmpdir(), "qwen3-st-"));
after(() => rmSync(dir, { recursive: true, force: true }));

const source = (
  name: string,
  dtype: TensorSource["dtype"],
  shape: number[],
  values: number[],
): TensorSource => ({
  name,
  dtype,
  shape,
  chunks: () => [values.slice(0, 3), values.slice(3)],
});

describe("half-precision conversion", () => {
  it("bf16: exact values, ties to even, NaN and infinities", () => {
    assert.equal(numberToBf16Bits(1), 0x3f80);
    assert.equal(numberToBf16Bits(-2), 0xc000);
    // 1 + 2^-8 lies halfway between 1 and 1 + 2^-7: ties to the even mantissa (1).
    assert.equal(numberToBf16Bits(1 + 2 ** -8), 0x3f80);
    // 1 + 3·2^-8 lies halfway between 1 + 2^-7 (odd) and 1 + 2^-6: rounds up to even.
    assert.equal(numberToBf16Bits(1 + 3 * 2 ** -8), 0x3f82);
    assert.equal(numberToBf16Bits(1 + 2 ** -8 + 2 ** -12), 0x3f81);
    assert.equal(numberToBf16Bits(Infinity), 0x7f80);
    assert.ok(Number.isNaN(bf16ToFloat32Table()[numberToBf16Bits(Number.NaN)]));
    assert.equal(bf16ToFloat32Table()[0x3fc0], 1.5);
    assert.equal(bf16ToFloat32Table()[0xc2f7], -123.5);
  });

  it("f16: normals, subnormals, ties, overflow", () => {
    const t = f16ToFloat32Table();
    assert.equal(t[0x3c00], 1);
    assert.equal(t[0xc000], -2);
    assert.equal(t[0x7bff], 65504);
    assert.equal(t[0x0001], 2 ** -24);
    assert.equal(t[0x0400], 2 ** -14);
    assert.equal(t[0x7c00], Infinity);
    assert.ok(Number.isNaN(t[0x7e00]));
    assert.equal(numberToF16Bits(65504), 0x7bff);
    assert.equal(numberToF16Bits(65520), 0x7c00); // halfway to 2^16 rounds to even → overflow
    assert.equal(numberToF16Bits(1 + 2 ** -11), 0x3c00); // tie → even
    assert.equal(numberToF16Bits(1 + 3 * 2 ** -11), 0x3c02);
    assert.equal(numberToF16Bits(2 ** -25), 0x0000); // tie between 0 and the smallest subnormal
    assert.equal(numberToF16Bits(3 * 2 ** -25), 0x0002);
    assert.equal(numberToF16Bits(-0), 0x8000);
  });

  it("every finite f16 and bf16 value survives value → bits → value", () => {
    const f16 = f16ToFloat32Table();
    const bf16 = bf16ToFloat32Table();
    for (let bits = 0; bits < 65536; bits++) {
      if (Number.isFinite(f16[bits])) assert.equal(numberToF16Bits(f16[bits]), bits);
      if (Number.isFinite(bf16[bits])) assert.equal(numberToBf16Bits(bf16[bits]), bits);
    }
  });
});

describe("safetensors files", () => {
  it("round-trips every dtype, widening to float32 and float64", () => {
    const path = join(dir, "all.safetensors");
    const vals = [1.5, -2.25, 0, 3.0517578125e-5, 1024, -0.5];
    writeSafetensors(path, [
      source("z.f64", "F64", [2, 3], [Math.PI, ...vals.slice(1)]),
      source("a.f32", "F32", [3, 2], vals),
      source("m.bf16", "BF16", [6], vals),
      source("m.f16", "F16", [2, 3], vals),
      source("i.i64", "I64", [6], [1, -2, 3, 2 ** 40, 0, 7]),
    ]);
    const f = SafetensorsFile.open(path);
    try {
      assert.deepEqual([...f.tensors.keys()], ["a.f32", "i.i64", "m.bf16", "m.f16", "z.f64"]);
      assert.deepEqual(f.metadata, { format: "pt" });
      assert.deepEqual(f.info("m.f16").shape, [2, 3]);
      for (const name of ["a.f32", "m.bf16", "m.f16"]) {
        assert.deepEqual([...f.read(name, "float64")], vals, name);
        assert.deepEqual([...f.read(name)], vals, name);
      }
      assert.ok(f.read("a.f32") instanceof Float32Array);
      assert.equal(f.read("z.f64", "float64")[0], Math.PI);
      assert.equal(f.read("z.f64", "float32")[0], Math.fround(Math.PI));
      assert.deepEqual([...f.read("i.i64", "float64")], [1, -2, 3, 2 ** 40, 0, 7]);
      assert.deepEqual(
        [...f.readChunks("m.f16", "float64")].flatMap((c) => [...c]),
        vals,
      );
      assert.throws(() => f.read("nope"), /no tensor named nope/);
    } finally {
      f.close();
    }
  });

  it("reads a tensor spanning several 8 MiB read chunks", () => {
    const path = join(dir, "big.safetensors");
    const n = 2_500_000; // 10 MB of F32
    const values = Float64Array.from({ length: n }, (_, i) => (i % 1000) - 500);
    writeSafetensors(path, [{ name: "big", dtype: "F32", shape: [n], chunks: () => [values] }]);
    const f = SafetensorsFile.open(path);
    const chunks = [...f.readChunks("big")];
    const whole = f.read("big", "float64");
    f.close();
    assert.ok(chunks.length >= 2);
    assert.equal(
      chunks.reduce((a, c) => a + c.length, 0),
      n,
    );
    assert.deepEqual(whole, values);
  });

  it("narrows to bf16 by rounding and reads back the rounded value", () => {
    const path = join(dir, "round.safetensors");
    writeSafetensors(path, [
      source("x", "BF16", [6], [0.1, -0.3, 1 + 2 ** -8, 1 + 3 * 2 ** -8, 1e-3, 333.3]),
    ]);
    const f = SafetensorsFile.open(path);
    const back = f.read("x", "float64");
    f.close();
    const expected = [0.10009765625, -0.30078125, 1, 1.015625, 0.00099945068359375, 334];
    assert.deepEqual([...back], expected);
  });

  it("writes deterministic bytes: sorted keys, 8-byte aligned header, format pt", () => {
    const a = join(dir, "a.safetensors");
    const b = join(dir, "b.safetensors");
    const tensors = [source("b", "F32", [2, 3], [1, 2, 3, 4, 5, 6]), source("a", "F16", [3], [1, 2, 3])];
    writeSafetensors(a, tensors);
    writeSafetensors(b, [...tensors].reverse());
    const bytes = readFileSync(a);
    assert.deepEqual(bytes, readFileSync(b));
    const n = Number(bytes.readBigUInt64LE(0));
    assert.equal(n % 8, 0);
    const header = bytes.subarray(8, 8 + n).toString("utf8");
    assert.equal(
      header.trimEnd(),
      '{"__metadata__":{"format":"pt"},"a":{"dtype":"F16","shape":[3],"data_offsets":[0,6]},"b":{"dtype":"F32","shape":[2,3],"data_offsets":[6,30]}}',
    );
    assert.equal(bytes.length, 8 + n + 30);
    assert.deepEqual(encodeHeader(tensors), bytes.subarray(0, 8 + n));
  });

  it("rejects a chunk stream of the wrong length naming the tensor", () => {
    assert.throws(
      () => writeSafetensors(join(dir, "bad.safetensors"), [source("w", "F32", [2, 2], [1, 2, 3])]),
      /tensor w produced 3 values, shape needs 4/,
    );
  });

  it("rejects corrupt files with one line naming the file", () => {
    const path = join(dir, "corrupt.safetensors");
    writeFileSync(path, Buffer.from([1, 2, 3]));
    assert.throws(() => SafetensorsFile.open(path), /corrupt.safetensors: too short/);
    const header = Buffer.from('{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,8]}}');
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(header.length));
    writeFileSync(path, Buffer.concat([len, header, Buffer.alloc(16)]));
    assert.throws(
      () => SafetensorsFile.open(path),
      /tensor w data_offsets \[0, 8\] disagree with its F32 shape \[4\]/,
    );
    const badDtype = Buffer.from('{"w":{"dtype":"I8","shape":[1],"data_offsets":[0,1]}}');
    len.writeBigUInt64LE(BigInt(badDtype.length));
    writeFileSync(path, Buffer.concat([len, badDtype, Buffer.alloc(1)]));
    assert.throws(() => SafetensorsFile.open(path), /tensor w has unsupported dtype "I8"/);
  });
});

describe("sharded checkpoints", () => {
  const tensors = (n: number) =>
    Array.from({ length: n }, (_, i) =>
      source(`t.${i}`, "BF16", [2, 3], [i, i + 1, i + 2, i + 3, i + 4, -i]),
    );

  it("splits into N shards with an index and reads back every tensor", () => {
    const d = mkdtempSync(join(dir, "sharded-"));
    const files = writeCheckpoint(d, tensors(7), 3);
    assert.deepEqual(files, [shardFileName(0, 3), shardFileName(1, 3), shardFileName(2, 3), INDEX_FILE]);
    assert.equal(shardFileName(0, 3), "model-00001-of-00003.safetensors");
    const index = JSON.parse(readFileSync(join(d, INDEX_FILE), "utf8"));
    assert.equal(index.metadata.total_size, 7 * 12);
    assert.equal(new Set(Object.values(index.weight_map)).size, 3);
    const ckpt = Checkpoint.open(d);
    try {
      assert.equal(ckpt.tensors.size, 7);
      for (let i = 0; i < 7; i++)
        assert.deepEqual([...ckpt.read(`t.${i}`, "float64")], [i, i + 1, i + 2, i + 3, i + 4, -i]);
    } finally {
      ckpt.close();
    }
  });

  it("never leaves a shard empty", () => {
    const d = mkdtempSync(join(dir, "even-"));
    writeCheckpoint(d, tensors(3), 3);
    const index = JSON.parse(readFileSync(join(d, INDEX_FILE), "utf8"));
    assert.deepEqual(Object.values(index.weight_map), [
      shardFileName(0, 3),
      shardFileName(1, 3),
      shardFileName(2, 3),
    ]);
    assert.throws(
      () => writeCheckpoint(mkdtempSync(join(dir, "x-")), tensors(2), 3),
      /cannot split 2 tensors into 3 shards/,
    );
  });

  it("names a missing shard and a tensor missing from its shard", () => {
    const d = mkdtempSync(join(dir, "broken-"));
    writeCheckpoint(d, tensors(4), 2);
    const indexPath = join(d, INDEX_FILE);
    const index = JSON.parse(readFileSync(indexPath, "utf8"));
    index.weight_map["t.extra"] = shardFileName(0, 2);
    writeFileSync(indexPath, JSON.stringify(index));
    assert.throws(
      () => Checkpoint.open(d),
      /tensor t.extra is mapped to model-00001-of-00002.safetensors but not stored there/,
    );
    index.weight_map["t.extra"] = "model-00009-of-00009.safetensors";
    writeFileSync(indexPath, JSON.stringify(index));
    assert.throws(() => Checkpoint.open(d), /missing shard model-00009-of-00009.safetensors/);
  });

  it("names a directory without weights", () => {
    assert.throws(
      () => Checkpoint.open(mkdtempSync(join(dir, "empty-"))),
      /missing model.safetensors \(or model.safetensors.index.json\)/,
    );
  });
});
