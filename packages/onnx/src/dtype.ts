// Element types the builder understands, their ONNX enum values and host typed arrays.
import { TensorProto_DataType } from "onnx-buf";

export type DType = "float32" | "float64" | "float16" | "int64" | "int32" | "int8" | "uint8" | "bool";
export type FloatDType = "float32" | "float64" | "float16";

export const DTYPES: readonly DType[] = [
  "float32",
  "float64",
  "float16",
  "int64",
  "int32",
  "int8",
  "uint8",
  "bool",
];

const ONNX_TYPE: Record<DType, TensorProto_DataType> = {
  float32: TensorProto_DataType.FLOAT,
  float64: TensorProto_DataType.DOUBLE,
  float16: TensorProto_DataType.FLOAT16,
  int64: TensorProto_DataType.INT64,
  int32: TensorProto_DataType.INT32,
  int8: TensorProto_DataType.INT8,
  uint8: TensorProto_DataType.UINT8,
  bool: TensorProto_DataType.BOOL,
};

const BYTES: Record<DType, number> = {
  float32: 4,
  float64: 8,
  float16: 2,
  int64: 8,
  int32: 4,
  int8: 1,
  uint8: 1,
  bool: 1,
};

/** Host storage per dtype; float16 is carried as raw IEEE half bits. */
export interface HostArrays {
  float32: Float32Array;
  float64: Float64Array;
  float16: Uint16Array;
  int64: BigInt64Array;
  int32: Int32Array;
  int8: Int8Array;
  uint8: Uint8Array;
  bool: Uint8Array;
}
export type HostArray = HostArrays[DType];

export function onnxDataType(dtype: DType): TensorProto_DataType {
  return ONNX_TYPE[dtype];
}

export function dtypeFromOnnx(t: number): DType {
  for (const d of DTYPES) if (ONNX_TYPE[d] === t) return d;
  throw new Error(`unsupported ONNX data type ${t}`);
}

export function bytesPerElement(dtype: DType): number {
  return BYTES[dtype];
}

export function isFloat(dtype: DType): dtype is FloatDType {
  return dtype === "float32" || dtype === "float64" || dtype === "float16";
}

export function isDType(s: string): s is DType {
  return (DTYPES as readonly string[]).includes(s);
}

/** Typed array of `n` zeros for `dtype`. */
export function allocHost<D extends DType>(dtype: D, n: number): HostArrays[D] {
  const ctor = {
    float32: Float32Array,
    float64: Float64Array,
    float16: Uint16Array,
    int64: BigInt64Array,
    int32: Int32Array,
    int8: Int8Array,
    uint8: Uint8Array,
    bool: Uint8Array,
  }[dtype];
  return new ctor(n) as HostArrays[D];
}

/** Host array of `dtype` from plain numbers (float16 values are rounded to half precision). */
export function hostFromNumbers<D extends DType>(dtype: D, values: ArrayLike<number>): HostArrays[D] {
  const out = allocHost(dtype, values.length);
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (dtype === "int64") (out as BigInt64Array)[i] = BigInt(Math.trunc(v));
    else if (dtype === "float16") (out as Uint16Array)[i] = float32ToFloat16Bits(v);
    else if (dtype === "bool") (out as Uint8Array)[i] = v ? 1 : 0;
    else (out as Float64Array)[i] = v;
  }
  return out;
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** IEEE half bits for a number, round-to-nearest-even; overflow goes to ±Inf. */
export function float32ToFloat16Bits(value: number): number {
  f32[0] = value;
  const x = u32[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  let e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let half = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const mid = 1 << (shift - 1);
    if (rem > mid || (rem === mid && half & 1)) half++;
    return sign | half;
  }
  let half = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && half & 1)) half++;
  e = half >>> 10;
  return sign | half;
}

export function float16BitsToFloat32(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exp = (bits >>> 10) & 0x1f;
  const mant = bits & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant ? Number.NaN : sign * Number.POSITIVE_INFINITY;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

export function float32ToFloat16(values: ArrayLike<number>): Uint16Array {
  const out = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = float32ToFloat16Bits(values[i]);
  return out;
}

export function float16ToFloat32(bits: Uint16Array): Float32Array {
  const out = new Float32Array(bits.length);
  for (let i = 0; i < bits.length; i++) out[i] = float16BitsToFloat32(bits[i]);
  return out;
}

/**
 * bfloat16 (the upper 16 bits of a float32) to float32: exact, since every bfloat16 is a float32.
 * Accepts the raw little-endian bytes as found in safetensors files.
 */
export function bfloat16ToFloat32(bits: Uint16Array | Uint8Array): Float32Array {
  if (bits instanceof Uint8Array && bits.byteLength % 2 !== 0)
    throw new Error(`bfloat16 data has an odd byte length ${bits.byteLength}`);
  let halves: Uint16Array;
  if (bits instanceof Uint16Array) halves = bits;
  else {
    // a Uint16Array view needs 2-byte alignment; safetensors offsets need not be aligned
    const aligned = bits.byteOffset % 2 === 0 ? bits : bits.slice();
    halves = new Uint16Array(aligned.buffer, aligned.byteOffset, aligned.byteLength >>> 1);
  }
  const out = new Float32Array(halves.length);
  const outBits = new Uint32Array(out.buffer);
  for (let i = 0; i < halves.length; i++) outBits[i] = halves[i] << 16;
  return out;
}
