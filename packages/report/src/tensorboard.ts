// TensorBoard event files from a run directory: one scalar per metric per step. A file is TFRecord
// framing — uint64 length (little-endian), masked CRC-32C of those 8 bytes, the data, masked
// CRC-32C of the data — around tensorflow.Event protobufs. Field numbers, from TensorFlow's
// event.proto and summary.proto: Event.wall_time 1 (double), Event.step 2 (int64),
// Event.file_version 3 (string), Event.summary 5; Summary.value 1 (repeated Value);
// Value.tag 1 (string), Value.simple_value 2 (float).
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { BinaryWriter, WireType } from "@bufbuild/protobuf/wire";
import type { Run } from "./load.ts";

const CRC32C_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    t[i] = c >>> 0;
  }
  return t;
})();

/** CRC-32C (Castagnoli), as TFRecord frames use it. */
export function crc32c(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) c = CRC32C_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** TFRecord's masked CRC: rotate right by 15, add a constant (so a CRC of CRCs is not trivial). */
export function maskedCrc32c(bytes: Uint8Array): number {
  const c = crc32c(bytes);
  return (((c >>> 15) | (c << 17)) + 0xa282ead8) >>> 0;
}

/** One TFRecord frame around `data`. */
export function tfRecord(data: Uint8Array): Buffer {
  const head = Buffer.alloc(12);
  head.writeBigUInt64LE(BigInt(data.length), 0);
  head.writeUInt32LE(maskedCrc32c(head.subarray(0, 8)), 8);
  const tail = Buffer.alloc(4);
  tail.writeUInt32LE(maskedCrc32c(data), 0);
  return Buffer.concat([head, data, tail]);
}

/** An Event holding one scalar per tag at `step`, or (no scalars) the file-version header. */
export function eventBytes(wallTime: number, step: number, scalars: [string, number][] | string): Uint8Array {
  const w = new BinaryWriter();
  w.tag(1, WireType.Bit64).double(wallTime);
  w.tag(2, WireType.Varint).int64(step);
  if (typeof scalars === "string") w.tag(3, WireType.LengthDelimited).string(scalars);
  else {
    const summary = new BinaryWriter();
    for (const [tag, value] of scalars) {
      const v = new BinaryWriter();
      v.tag(1, WireType.LengthDelimited).string(tag);
      v.tag(2, WireType.Bit32).float(value);
      summary.tag(1, WireType.LengthDelimited).bytes(v.finish());
    }
    w.tag(5, WireType.LengthDelimited).bytes(summary.finish());
  }
  return w.finish();
}

/**
 * Writes `<out>/events.out.tfevents.<seconds>.temper` for a run: every numeric metrics.jsonl value
 * under its own name at its step, and each evaluation as `accuracy/eval` (and `accuracy/eval_maj`,
 * `accuracy/eval_pass1` where measured). Returns the file's path.
 */
export function writeTensorboard(run: Run, out: string): string {
  const started = run.spec.createdAt ? Date.parse(run.spec.createdAt) / 1000 : 0;
  const frames: Buffer[] = [tfRecord(eventBytes(started, 0, "brain.Event:2"))];
  for (const row of run.metrics) {
    const elapsed = row.values["time/elapsed"];
    const scalars = Object.entries(row.values).filter(([, v]) => Number.isFinite(v));
    frames.push(tfRecord(eventBytes(started + (elapsed ?? 0), row.step, scalars)));
  }
  for (const e of run.evals ?? []) {
    const scalars: [string, number][] = [["accuracy/eval", e.accuracy]];
    if (e.majAccuracy !== null) scalars.push(["accuracy/eval_maj", e.majAccuracy]);
    if (e.pass1 !== null) scalars.push(["accuracy/eval_pass1", e.pass1]);
    frames.push(tfRecord(eventBytes(started + (e.elapsed ?? 0), e.step, scalars)));
  }
  mkdirSync(out, { recursive: true });
  const file = join(out, `events.out.tfevents.${Math.floor(started)}.temper`);
  writeFileSync(file, Buffer.concat(frames));
  return file;
}
