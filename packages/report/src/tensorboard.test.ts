// TensorBoard files checked against what can be checked here (TensorBoard itself cannot run): the
// CRC-32C against its published check values and an independent implementation (npm crc-32), the
// TFRecord framing read back by npm tfrecord's reader and frame by frame here, and the Event / Summary protobufs decoded with
// @bufbuild/protobuf's reader by the field numbers of TensorFlow's event.proto (wall_time 1, step 2,
// file_version 3, summary 5) and summary.proto (value 1; Value.tag 1, Value.simple_value 2).
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { BinaryReader, WireType } from "@bufbuild/protobuf/wire";
import { writeExampleRuns } from "./fixture.ts";
import { loadRun } from "./load.ts";
import { crc32c, maskedCrc32c, writeTensorboard } from "./tensorboard.ts";

const require = createRequire(import.meta.url);
const CRC32C = require("crc-32/crc32c") as { buf(b: Uint8Array): number };
/** npm tfrecord's reader: an independent TFRecord implementation that checks both CRCs. */
const { RecordReader } = require("tfrecord/lib/record_reader") as {
  RecordReader: { create(path: string): Promise<{ readRecord(): Promise<Uint8Array | null> }> };
};

/** Reads TFRecord frames, checking both masked CRCs with the independent CRC-32C. */
function frames(bytes: Buffer): Buffer[] {
  const mask = (c: number) => ((((c >>> 15) | (c << 17)) >>> 0) + 0xa282ead8) >>> 0;
  const out: Buffer[] = [];
  for (let at = 0; at < bytes.length; ) {
    const len = Number(bytes.readBigUInt64LE(at));
    assert.equal(
      bytes.readUInt32LE(at + 8),
      mask(CRC32C.buf(bytes.subarray(at, at + 8)) >>> 0),
      `length CRC at ${at}`,
    );
    const data = bytes.subarray(at + 12, at + 12 + len);
    assert.equal(bytes.readUInt32LE(at + 12 + len), mask(CRC32C.buf(data) >>> 0), `data CRC at ${at}`);
    out.push(data);
    at += 12 + len + 4;
  }
  return out;
}

interface Event {
  wallTime: number;
  step: number;
  fileVersion?: string;
  values: [string, number][];
}

function decodeEvent(data: Uint8Array): Event {
  const r = new BinaryReader(data);
  const e: Event = { wallTime: 0, step: 0, values: [] };
  while (r.pos < r.len) {
    const [field, wire] = r.tag();
    if (field === 1 && wire === WireType.Bit64) e.wallTime = r.double();
    else if (field === 2 && wire === WireType.Varint) e.step = Number(r.int64());
    else if (field === 3) e.fileVersion = r.string();
    else if (field === 5) {
      const s = new BinaryReader(r.bytes());
      while (s.pos < s.len) {
        const [f] = s.tag();
        assert.equal(f, 1, "Summary.value");
        const v = new BinaryReader(s.bytes());
        let tag = "";
        let value = Number.NaN;
        while (v.pos < v.len) {
          const [vf, vw] = v.tag();
          if (vf === 1) tag = v.string();
          else if (vf === 2 && vw === WireType.Bit32) value = v.float();
          else v.skip(vw);
        }
        e.values.push([tag, value]);
      }
    } else r.skip(wire);
  }
  return e;
}

describe("TensorBoard event files", () => {
  const root = mkdtempSync(join(tmpdir(), "temper-tb-"));
  after(() => rmSync(root, { recursive: true, force: true }));

  it('CRC-32C: the check value of "123456789" and 32 zero bytes; equal to npm crc-32 on random data', () => {
    assert.equal(crc32c(Buffer.from("123456789")), 0xe3069283);
    assert.equal(crc32c(new Uint8Array(32)), 0x8a9136aa);
    let x = 7;
    const data = Uint8Array.from({ length: 4096 }, () => {
      x = (x * 1103515245 + 12345) >>> 0;
      return x >>> 24;
    });
    assert.equal(crc32c(data), CRC32C.buf(data) >>> 0);
    assert.notEqual(maskedCrc32c(data), crc32c(data));
  });

  it("a run's file reads back equal to its metrics.jsonl and eval.jsonl", async () => {
    const [dir] = writeExampleRuns(root, { variants: ["hard"], seeds: [1], steps: 6 });
    const run = loadRun(dir);
    const file = writeTensorboard(run, join(dir, "tensorboard"));
    const records = frames(readFileSync(file));
    // the same records through npm tfrecord's reader (it throws on a bad length or data CRC)
    const reader = await RecordReader.create(file);
    const theirs: Buffer[] = [];
    for (let r = await reader.readRecord(); r; r = await reader.readRecord()) theirs.push(Buffer.from(r));
    assert.deepEqual(theirs, records);
    const events = records.map(decodeEvent);
    assert.equal(events[0].fileVersion, "brain.Event:2");
    const steps = events.slice(1, 1 + run.metrics.length);
    assert.deepEqual(
      steps.map((e) => e.step),
      run.metrics.map((m) => m.step),
    );
    for (const [k, e] of steps.entries()) {
      const want = Object.entries(run.metrics[k].values);
      assert.deepEqual(
        e.values.map(([t]) => t),
        want.map(([t]) => t),
      );
      for (const [i, [, v]] of e.values.entries()) assert.equal(v, Math.fround(want[i][1]), want[i][0]);
    }
    const evals = events.slice(1 + run.metrics.length);
    assert.deepEqual(
      evals.map((e) => [e.step, e.values[0]]),
      run.evals!.map((e) => [e.step, ["accuracy/eval", Math.fround(e.accuracy)]]),
    );
    assert.ok(evals.every((e) => e.wallTime >= events[0].wallTime));
  });
});
