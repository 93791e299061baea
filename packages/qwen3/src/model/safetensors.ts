// safetensors files: an 8-byte little-endian header length, a JSON header naming each tensor's
// dtype, shape and byte range, then the raw little-endian data. Reads are lazy and per tensor (a
// multi-GB checkpoint is never held whole); writes stream tensor by tensor.
import { closeSync, fstatSync, openSync, readSync, writeSync } from "node:fs";
import { basename } from "node:path";
import { bf16ToFloat32Table, f16ToFloat32Table, numberToBf16Bits, numberToF16Bits } from "./half.ts";

export type SafetensorsDtype = "F64" | "F32" | "F16" | "BF16" | "I64";

export const DTYPE_BYTES: Record<SafetensorsDtype, number> = { F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8 };

/** Where one tensor lives. */
export interface TensorInfo {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  /** File holding the data. */
  path: string;
  /** Absolute byte offset of the data in the file. */
  offset: number;
  byteLength: number;
}

export type Precision = "float32" | "float64";
export type FloatArray = Float32Array | Float64Array;

/** A malformed safetensors file: the message is one line naming the file (and tensor). */
export class SafetensorsError extends Error {
  override name = "SafetensorsError";
}

const MAX_HEADER_BYTES = 100 * 1024 * 1024;
// Read granularity: bounds the transient byte buffer while widening a large tensor.
const CHUNK_BYTES = 8 * 1024 * 1024;

export function elementCount(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** One open .safetensors file. Call close() when done. */
export class SafetensorsFile {
  readonly tensors = new Map<string, TensorInfo>();
  readonly metadata: Record<string, string> = {};
  private fd: number | undefined;

  private constructor(
    readonly path: string,
    fd: number,
  ) {
    this.fd = fd;
  }

  static open(path: string): SafetensorsFile {
    let fd: number;
    try {
      fd = openSync(path, "r");
    } catch (err) {
      throw new SafetensorsError(`${path}: cannot open (${(err as NodeJS.ErrnoException).code ?? err})`);
    }
    const file = new SafetensorsFile(path, fd);
    try {
      file.parseHeader();
    } catch (err) {
      file.close();
      throw err;
    }
    return file;
  }

  private parseHeader(): void {
    const name = this.path;
    const size = fstatSync(this.fd!).size;
    if (size < 8) throw new SafetensorsError(`${name}: too short for a safetensors header`);
    const lenBuf = Buffer.alloc(8);
    readSync(this.fd!, lenBuf, 0, 8, 0);
    const headerLen = Number(lenBuf.readBigUInt64LE(0));
    if (headerLen > MAX_HEADER_BYTES || 8 + headerLen > size) {
      throw new SafetensorsError(`${name}: header length ${headerLen} does not fit the file (${size} bytes)`);
    }
    const headerBuf = Buffer.alloc(headerLen);
    readSync(this.fd!, headerBuf, 0, headerLen, 8);
    let header: Record<string, unknown>;
    try {
      header = JSON.parse(headerBuf.toString("utf8"));
    } catch {
      throw new SafetensorsError(`${name}: header is not valid JSON`);
    }
    if (typeof header !== "object" || header === null || Array.isArray(header)) {
      throw new SafetensorsError(`${name}: header is not a JSON object`);
    }
    const dataStart = 8 + headerLen;
    for (const [key, value] of Object.entries(header)) {
      if (key === "__metadata__") {
        if (typeof value === "object" && value !== null) Object.assign(this.metadata, value);
        continue;
      }
      const v = value as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
      if (typeof v.dtype !== "string" || !(v.dtype in DTYPE_BYTES)) {
        throw new SafetensorsError(`${name}: tensor ${key} has unsupported dtype ${JSON.stringify(v.dtype)}`);
      }
      const dtype = v.dtype as SafetensorsDtype;
      const shape = v.shape;
      if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d >= 0)) {
        throw new SafetensorsError(`${name}: tensor ${key} has an invalid shape ${JSON.stringify(shape)}`);
      }
      const offsets = v.data_offsets;
      if (
        !Array.isArray(offsets) ||
        offsets.length !== 2 ||
        !offsets.every((o) => Number.isInteger(o) && o >= 0)
      ) {
        throw new SafetensorsError(`${name}: tensor ${key} has invalid data_offsets`);
      }
      const [begin, end] = offsets as [number, number];
      const byteLength = elementCount(shape) * DTYPE_BYTES[dtype];
      if (end - begin !== byteLength || dataStart + end > size) {
        throw new SafetensorsError(
          `${name}: tensor ${key} data_offsets [${begin}, ${end}] disagree with its ${dtype} shape [${shape.join(", ")}] or the file size`,
        );
      }
      this.tensors.set(key, {
        name: key,
        dtype,
        shape: shape as number[],
        path: this.path,
        offset: dataStart + begin,
        byteLength,
      });
    }
  }

  info(name: string): TensorInfo {
    const t = this.tensors.get(name);
    if (!t) throw new SafetensorsError(`${basename(this.path)}: no tensor named ${name}`);
    return t;
  }

  /** Reads one tensor, widened to float32 or float64 (I64 becomes floating point too). */
  read(name: string, precision: Precision = "float32"): FloatArray {
    if (this.fd === undefined) throw new SafetensorsError(`${this.path}: file is closed`);
    return readTensor(this.fd, this.info(name), precision);
  }

  /** One tensor's values in row-major chunks (≤ 8 MiB of file data each): stream a large tensor. */
  readChunks(name: string, precision: Precision = "float32"): Generator<FloatArray> {
    if (this.fd === undefined) throw new SafetensorsError(`${this.path}: file is closed`);
    return readTensorChunks(this.fd, this.info(name), precision);
  }

  /** The raw little-endian bytes of one tensor. */
  readBytes(name: string): Buffer {
    if (this.fd === undefined) throw new SafetensorsError(`${this.path}: file is closed`);
    const t = this.info(name);
    const buf = Buffer.alloc(t.byteLength);
    readFully(this.fd, buf, t.offset, t.path);
    return buf;
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }
}

function readFully(fd: number, buf: Buffer, position: number, path: string): void {
  let done = 0;
  while (done < buf.length) {
    const n = readSync(fd, buf, done, buf.length - done, position + done);
    if (n === 0) throw new SafetensorsError(`${path}: unexpected end of file`);
    done += n;
  }
}

function readTensor(fd: number, t: TensorInfo, precision: Precision): FloatArray {
  const count = t.byteLength / DTYPE_BYTES[t.dtype];
  const out = precision === "float64" ? new Float64Array(count) : new Float32Array(count);
  let at = 0;
  for (const chunk of readTensorChunks(fd, t, precision)) {
    out.set(chunk, at);
    at += chunk.length;
  }
  return out;
}

/** A tensor's values in row-major chunks of at most CHUNK_BYTES of file data, widened. */
function* readTensorChunks(fd: number, t: TensorInfo, precision: Precision): Generator<FloatArray> {
  const elementBytes = DTYPE_BYTES[t.dtype];
  const chunk = Buffer.alloc(Math.min(CHUNK_BYTES, t.byteLength));
  for (let start = 0; start < t.byteLength; start += chunk.length) {
    const len = Math.min(chunk.length, t.byteLength - start);
    const view = chunk.subarray(0, len);
    readFully(fd, view, t.offset + start, t.path);
    const out =
      precision === "float64" ? new Float64Array(len / elementBytes) : new Float32Array(len / elementBytes);
    decodeInto(t.dtype, view, out, 0);
    yield out;
  }
}

/** Widens little-endian `bytes` of `dtype` into `out` starting at element `at` (assumes a little-endian host). */
function decodeInto(dtype: SafetensorsDtype, bytes: Buffer, out: FloatArray, at: number): void {
  const n = bytes.length / DTYPE_BYTES[dtype];
  // The chunk buffer is freshly allocated, so its views are aligned.
  switch (dtype) {
    case "BF16":
    case "F16": {
      const table = dtype === "BF16" ? bf16ToFloat32Table() : f16ToFloat32Table();
      const bits = new Uint16Array(bytes.buffer, bytes.byteOffset, n);
      for (let i = 0; i < n; i++) out[at + i] = table[bits[i]];
      return;
    }
    case "F32":
      out.set(new Float32Array(bytes.buffer, bytes.byteOffset, n), at);
      return;
    case "F64":
      out.set(new Float64Array(bytes.buffer, bytes.byteOffset, n), at);
      return;
    case "I64":
      for (let i = 0; i < n; i++) out[at + i] = Number(bytes.readBigInt64LE(8 * i));
      return;
  }
}

/** Narrows `values` into little-endian bytes of `dtype` (floats round to nearest, ties to even). */
export function encodeValues(dtype: SafetensorsDtype, values: ArrayLike<number>): Buffer {
  const n = values.length;
  const out = Buffer.alloc(n * DTYPE_BYTES[dtype]);
  switch (dtype) {
    case "BF16": {
      // Narrow to float32 first (round to nearest), then to bfloat16 bits on a little-endian host.
      const bits = new Uint32Array(Float32Array.from(values).buffer);
      const half = new Uint16Array(out.buffer, out.byteOffset, n);
      for (let i = 0; i < n; i++) {
        const b = bits[i];
        half[i] =
          (b & 0x7f800000) === 0x7f800000 && (b & 0x7fffff) !== 0
            ? numberToBf16Bits(Number.NaN)
            : (b + 0x7fff + ((b >>> 16) & 1)) >>> 16;
      }
      break;
    }
    case "F16":
      for (let i = 0; i < n; i++) out.writeUInt16LE(numberToF16Bits(values[i]), 2 * i);
      break;
    case "F32":
      new Float32Array(out.buffer, out.byteOffset, n).set(values);
      break;
    case "F64":
      new Float64Array(out.buffer, out.byteOffset, n).set(values);
      break;
    case "I64":
      for (let i = 0; i < n; i++) {
        if (!Number.isSafeInteger(values[i]))
          throw new SafetensorsError(`I64 value ${values[i]} is not a safe integer`);
        out.writeBigInt64LE(BigInt(values[i]), 8 * i);
      }
      break;
  }
  return out;
}

/** A tensor to write: its data arrives in chunks (in row-major order) so a large one need not be held whole. */
export interface TensorSource {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  chunks: () => Iterable<ArrayLike<number>>;
}

/**
 * The header bytes of a file holding `tensors`: keys sorted, data laid out in key order, `__metadata__`
 * first, padded with spaces to a multiple of 8 bytes so the data is 8-byte aligned.
 */
export function encodeHeader(
  tensors: readonly Pick<TensorSource, "name" | "dtype" | "shape">[],
  metadata: Record<string, string> = { format: "pt" },
): Buffer {
  const sorted = [...tensors].sort((a, b) => compareNames(a.name, b.name));
  const header: Record<string, unknown> = { __metadata__: metadata };
  let offset = 0;
  for (const t of sorted) {
    if (t.name === "__metadata__") throw new SafetensorsError(`tensor name __metadata__ is reserved`);
    if (t.name in header) throw new SafetensorsError(`tensor ${t.name} is listed twice`);
    const bytes = elementCount(t.shape) * DTYPE_BYTES[t.dtype];
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  const json = Buffer.from(JSON.stringify(header), "utf8");
  const padded = Math.ceil(json.length / 8) * 8;
  const out = Buffer.alloc(8 + padded, 0x20);
  out.writeBigUInt64LE(BigInt(padded), 0);
  json.copy(out, 8);
  return out;
}

/** Byte-wise (code unit) order, as Rust's safetensors and Python's sorted() order ASCII names. */
export function compareNames(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Writes one .safetensors file, streaming each tensor's chunks; returns the data byte count. */
export function writeSafetensors(
  path: string,
  tensors: readonly TensorSource[],
  metadata?: Record<string, string>,
): number {
  const sorted = [...tensors].sort((a, b) => compareNames(a.name, b.name));
  const fd = openSync(path, "w");
  let total = 0;
  try {
    writeAll(fd, encodeHeader(sorted, metadata));
    for (const t of sorted) {
      const expected = elementCount(t.shape);
      let written = 0;
      for (const chunk of t.chunks()) {
        writeAll(fd, encodeValues(t.dtype, chunk));
        written += chunk.length;
      }
      if (written !== expected) {
        throw new SafetensorsError(
          `${path}: tensor ${t.name} produced ${written} values, shape needs ${expected}`,
        );
      }
      total += expected * DTYPE_BYTES[t.dtype];
    }
  } finally {
    closeSync(fd);
  }
  return total;
}

function writeAll(fd: number, buf: Buffer): void {
  let done = 0;
  while (done < buf.length) done += writeSync(fd, buf, done, buf.length - done);
}
