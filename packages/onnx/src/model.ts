// ModelProto encoding (via onnx-buf) and the built model: small protobuf + external weight bytes.
// External tensors never enter the protobuf: in memory each gets its own location (a zero-copy view
// handed to ORT's `externalData` option); on disk they share one data file at page-aligned offsets.
import { open, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { clone, create, toBinary } from "@bufbuild/protobuf";
import {
  type AttributeProto,
  AttributeProto_AttributeType,
  AttributeProtoSchema,
  type ModelProto,
  ModelProtoSchema,
  type NodeProto,
  NodeProtoSchema,
  StringStringEntryProtoSchema,
  type TensorProto,
  TensorProto_DataLocation,
  TensorProtoSchema,
  type ValueInfoProto,
  ValueInfoProtoSchema,
} from "onnx-buf";
import { hostFromNumbers, onnxDataType } from "./dtype.ts";
import { type Attrs, type AttrValue, FLOAT_ATTRS, type TensorAttr, type ValueInfo } from "./infer.ts";

const IR_VERSION = 10n;
/** Protobuf cannot hold 2 GiB; keep inline data well under it. */
const MAX_INLINE_BYTES = 1.5 * 2 ** 30;
const PAGE = 4096;

export interface ExternalTensor {
  readonly name: string;
  /** Location written in the tensor's external_data (in-memory form). */
  readonly location: string;
  readonly bytes: Uint8Array;
}

// What the encoder reads of a graph, written here rather than imported from graph.ts (whose Value,
// Node and Initializer have these shapes) so that graph.ts -> model.ts stays one-way.
export interface EncodeValue extends ValueInfo {
  readonly name: string;
}

export interface EncodeNode {
  readonly name: string;
  readonly opType: string;
  readonly domain: string;
  readonly inputs: readonly (EncodeValue | null)[];
  readonly outputs: readonly EncodeValue[];
  readonly attrs: Attrs;
}

export interface EncodeInitializer {
  readonly value: EncodeValue;
  readonly dims: number[];
  readonly bytes: Uint8Array;
  readonly byteLength: number;
  readonly external: boolean;
  readonly file?: { location: string; offset: number };
}

export interface EncodeInput {
  name: string;
  opset: number;
  nodes: EncodeNode[];
  inputs: EncodeValue[];
  outputs: EncodeValue[];
  initializers: EncodeInitializer[];
}

function owned(bytes: Uint8Array): Uint8Array<ArrayBuffer> {
  return bytes.slice() as Uint8Array<ArrayBuffer>;
}

function encodeAttr(name: string, v: AttrValue): AttributeProto {
  const T = AttributeProto_AttributeType;
  if (typeof v === "string")
    return create(AttributeProtoSchema, { name, type: T.STRING, s: new TextEncoder().encode(v) });
  if (typeof v === "number") {
    if (FLOAT_ATTRS.has(name) || !Number.isInteger(v))
      return create(AttributeProtoSchema, { name, type: T.FLOAT, f: v });
    return create(AttributeProtoSchema, { name, type: T.INT, i: BigInt(v) });
  }
  if (Array.isArray(v)) {
    if (v.every((x) => typeof x === "string"))
      return create(AttributeProtoSchema, {
        name,
        type: T.STRINGS,
        strings: (v as string[]).map((x) => new TextEncoder().encode(x)),
      });
    const nums = v as number[];
    if (nums.every(Number.isInteger))
      return create(AttributeProtoSchema, { name, type: T.INTS, ints: nums.map(BigInt) });
    return create(AttributeProtoSchema, { name, type: T.FLOATS, floats: nums });
  }
  if ("float" in v) return create(AttributeProtoSchema, { name, type: T.FLOAT, f: v.float });
  if ("floats" in v) return create(AttributeProtoSchema, { name, type: T.FLOATS, floats: v.floats });
  if ("int" in v) return create(AttributeProtoSchema, { name, type: T.INT, i: BigInt(v.int) });
  if ("ints" in v) return create(AttributeProtoSchema, { name, type: T.INTS, ints: v.ints.map(BigInt) });
  const t = (v as TensorAttr).tensor;
  const host = hostFromNumbers(t.dtype, t.values);
  return create(AttributeProtoSchema, {
    name,
    type: T.TENSOR,
    t: create(TensorProtoSchema, {
      dims: t.dims.map(BigInt),
      dataType: onnxDataType(t.dtype),
      rawData: owned(new Uint8Array(host.buffer, host.byteOffset, host.byteLength)),
    }),
  });
}

function valueInfo(v: EncodeValue, keepSymbols: boolean): ValueInfoProto {
  const shape =
    v.shape === null
      ? undefined
      : {
          dim: v.shape.map((d) =>
            typeof d === "number"
              ? { value: { case: "dimValue" as const, value: BigInt(d) } }
              : keepSymbols && !d.startsWith("?")
                ? { value: { case: "dimParam" as const, value: d } }
                : { value: { case: undefined } },
          ),
        };
  return create(ValueInfoProtoSchema, {
    name: v.name,
    type: { value: { case: "tensorType", value: { elemType: onnxDataType(v.dtype), shape } } },
  });
}

function encodeNode(n: EncodeNode): NodeProto {
  return create(NodeProtoSchema, {
    name: n.name,
    opType: n.opType,
    domain: n.domain,
    input: n.inputs.map((i) => i?.name ?? ""),
    output: n.outputs.map((o) => o.name),
    attribute: Object.entries(n.attrs)
      .filter((e): e is [string, AttrValue] => e[1] !== undefined)
      .map(([k, v]) => encodeAttr(k, v)),
  });
}

function sanitize(name: string): string {
  return name.replace(/[^A-Za-z0-9_.-]/g, "_");
}

export function encodeModel(m: EncodeInput): {
  proto: ModelProto;
  external: ExternalTensor[];
  fileBacked: string[];
} {
  const external: ExternalTensor[] = [];
  const fileBacked: string[] = [];
  let inline = 0;
  const initializer: TensorProto[] = m.initializers.map((init, i) => {
    const base = {
      name: init.value.name,
      dims: init.dims.map(BigInt),
      dataType: onnxDataType(init.value.dtype),
    };
    if (!init.external) {
      inline += init.bytes.byteLength;
      return create(TensorProtoSchema, { ...base, rawData: owned(init.bytes) });
    }
    const location = init.file ? init.file.location : `w${i}_${sanitize(init.value.name)}.bin`;
    if (!init.file) external.push({ name: init.value.name, location, bytes: init.bytes });
    else fileBacked.push(init.value.name);
    return create(TensorProtoSchema, {
      ...base,
      dataLocation: TensorProto_DataLocation.EXTERNAL,
      externalData: [
        { key: "location", value: location },
        { key: "offset", value: String(init.file?.offset ?? 0) },
        { key: "length", value: String(init.byteLength) },
      ],
    });
  });
  if (inline > MAX_INLINE_BYTES)
    throw new Error(
      `model "${m.name}": ${inline} bytes of inline weights exceed the protobuf limit; mark them external`,
    );
  const domains = new Set(m.nodes.map((n) => n.domain).filter((d) => d !== ""));
  const proto = create(ModelProtoSchema, {
    irVersion: IR_VERSION,
    producerName: "temper-onnx",
    opsetImport: [
      { domain: "", version: BigInt(m.opset) },
      ...[...domains].map((d) => ({ domain: d, version: 1n })),
    ],
    graph: {
      name: m.name,
      node: m.nodes.map(encodeNode),
      input: m.inputs.map((v) => valueInfo(v, true)),
      output: m.outputs.map((v) => valueInfo(v, false)),
      initializer,
    },
  });
  return { proto, external, fileBacked };
}

/** A built model: the ModelProto (weights over the threshold left out) plus those weights' bytes. */
export class OnnxModel {
  constructor(
    readonly proto: ModelProto,
    readonly external: readonly ExternalTensor[],
    /** Weights referencing existing files (weightFromFile): the model must be saved beside them. */
    readonly fileBacked: readonly string[] = [],
  ) {}

  get inputNames(): string[] {
    return this.proto.graph!.input.map((i) => i.name);
  }

  get outputNames(): string[] {
    return this.proto.graph!.output.map((o) => o.name);
  }

  /** The serialized ModelProto; external weights are not in it. */
  toBytes(): Uint8Array {
    return toBinary(ModelProtoSchema, this.proto);
  }

  /** Entries for InferenceSession's `externalData` option: zero-copy views of the weights. */
  externalData(): { path: string; data: Uint8Array }[] {
    return this.external.map((e) => ({ path: e.location, data: e.bytes }));
  }

  /**
   * Writes `<dir>/<file>` and, when there are external weights, `<dir>/<file>.data` holding them at
   * 4096-aligned offsets (streamed tensor by tensor, never concatenated in memory). Returns the model path.
   */
  async save(dir: string, file = "model.onnx"): Promise<string> {
    const dataFile = `${file}.data`;
    const proto = clone(ModelProtoSchema, this.proto);
    const byName = new Map(this.external.map((e) => [e.name, e]));
    const fh = this.external.length ? await open(join(dir, dataFile), "w") : null;
    try {
      let offset = 0;
      for (const t of proto.graph!.initializer) {
        const ext = byName.get(t.name);
        if (!ext) continue;
        offset = Math.ceil(offset / PAGE) * PAGE;
        t.externalData = [
          { key: "location", value: dataFile },
          { key: "offset", value: String(offset) },
          { key: "length", value: String(ext.bytes.byteLength) },
        ].map((e) => create(StringStringEntryProtoSchema, e));
        await writeAll(fh!, ext.bytes, offset);
        offset += ext.bytes.byteLength;
      }
    } finally {
      await fh?.close();
    }
    const path = join(dir, file);
    await writeFile(path, toBinary(ModelProtoSchema, proto));
    return path;
  }
}

async function writeAll(fh: import("node:fs/promises").FileHandle, bytes: Uint8Array, position: number) {
  // fs writes are capped near 2 GiB per call
  const CHUNK = 1 << 30;
  for (let done = 0; done < bytes.byteLength; done += CHUNK) {
    const part = bytes.subarray(done, Math.min(bytes.byteLength, done + CHUNK));
    let written = 0;
    while (written < part.byteLength) {
      const r = await fh.write(part, written, part.byteLength - written, position + done + written);
      written += r.bytesWritten;
    }
  }
}
