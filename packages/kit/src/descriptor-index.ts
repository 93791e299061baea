// Indexes a FileDescriptorSet (as written by `buf build`) for server reflection: files by name,
// fully-qualified symbols to their file, and each file's transitive imports. File bytes are kept
// exactly as the set holds them, so clients receive the compiler's own descriptors.
import { readFileSync } from "node:fs";
import { fromBinary } from "@bufbuild/protobuf";
import { BinaryReader } from "@bufbuild/protobuf/wire";
import {
  type DescriptorProto,
  type EnumDescriptorProto,
  type FieldDescriptorProto,
  type FileDescriptorProto,
  FileDescriptorProtoSchema,
} from "@bufbuild/protobuf/wkt";

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);
/** FieldDescriptorProto.Type of the 64-bit integers -> how to read one value. */
const INT64_READERS: Record<number, ((r: BinaryReader) => bigint | string) | undefined> = {
  3: (r) => r.int64(), // TYPE_INT64
  4: (r) => r.uint64(), // TYPE_UINT64
  6: (r) => r.fixed64(), // TYPE_FIXED64
  16: (r) => r.sfixed64(), // TYPE_SFIXED64
  18: (r) => r.sint64(), // TYPE_SINT64
};

export interface IndexedFile {
  name: string;
  bytes: Uint8Array;
  proto: FileDescriptorProto;
}

export class DescriptorIndex {
  readonly files = new Map<string, IndexedFile>();
  readonly symbols = new Map<string, IndexedFile>();
  /** Service full names declared anywhere in the set. */
  readonly services = new Set<string>();
  /** Message full names -> their descriptors. */
  readonly messages = new Map<string, DescriptorProto>();
  /** "/pkg.Service/Method" -> the method's input message full name. */
  readonly methodInputs = new Map<string, string>();
  /** "extendee#number" -> file declaring that extension. */
  private readonly extensions = new Map<string, IndexedFile>();

  constructor(set: Uint8Array) {
    const reader = new BinaryReader(set);
    while (reader.pos < reader.len) {
      const [field, wire] = reader.tag();
      if (field !== 1) {
        reader.skip(wire);
        continue;
      }
      this.addFile(reader.bytes());
    }
    if (this.files.size === 0) throw new Error("descriptor set holds no files");
  }

  /** Adds one serialized FileDescriptorProto (a no-op when a file of that name is indexed). */
  addFile(bytes: Uint8Array): void {
    const proto = fromBinary(FileDescriptorProtoSchema, bytes);
    if (this.files.has(proto.name)) return;
    const file: IndexedFile = { name: proto.name, bytes, proto };
    this.files.set(file.name, file);
    this.indexFile(file);
  }

  /**
   * Walks an encoded message of type `typeName` and returns the first 64-bit integer field whose
   * value is beyond ±(2^53 − 1), which the generated decoders (forceLong=number) cannot represent
   * and reject; undefined when there is none or the bytes are not parseable.
   */
  findUnsafeInteger(
    typeName: string,
    bytes: Uint8Array,
    prefix = "",
  ): { path: string; problem: string } | undefined {
    const message = this.messages.get(typeName.replace(/^\./, ""));
    if (!message) return undefined;
    const reader = new BinaryReader(bytes);
    const seen = new Map<number, number>();
    while (reader.pos < reader.len) {
      const [no, wire] = reader.tag();
      const field = message.field.find((f) => f.number === no);
      if (!field) {
        reader.skip(wire);
        continue;
      }
      const repeated = field.label === 3;
      const index = seen.get(no) ?? 0;
      seen.set(no, index + 1);
      const path = (i: number) => `${prefix ? `${prefix}.` : ""}${field.name}${repeated ? `[${i}]` : ""}`;
      const read = INT64_READERS[field.type];
      if (read) {
        const values: bigint[] = [];
        if (wire === 2) {
          const end = reader.uint32() + reader.pos;
          while (reader.pos < end) values.push(BigInt(read(reader)));
        } else values.push(BigInt(read(reader)));
        for (let k = 0; k < values.length; k++) {
          const v = values[k];
          if (v > MAX_SAFE || v < -MAX_SAFE)
            return {
              path: path(index + k),
              problem: `${v} is beyond 2^53 − 1 (${Number.MAX_SAFE_INTEGER}), the largest integer accepted`,
            };
        }
        if (wire === 2 && repeated) seen.set(no, index + values.length);
      } else if (field.type === 11 && wire === 2) {
        const found = this.findUnsafeInteger(field.typeName, reader.bytes(), path(index));
        if (found) return found;
      } else reader.skip(wire);
    }
    return undefined;
  }

  static fromPath(path: string): DescriptorIndex {
    return new DescriptorIndex(readFileSync(path));
  }

  private indexFile(file: IndexedFile): void {
    const pkg = file.proto.package;
    const scoped = (name: string, scope: string) => (scope ? `${scope}.${name}` : name);
    const add = (fqn: string) => this.symbols.set(fqn, file);
    const addExtensions = (exts: FieldDescriptorProto[], scope: string) => {
      for (const e of exts) {
        add(scoped(e.name, scope));
        this.extensions.set(`${e.extendee.replace(/^\./, "")}#${e.number}`, file);
      }
    };
    const addEnum = (e: EnumDescriptorProto, scope: string) => {
      add(scoped(e.name, scope));
      // Enum values are scoped beside their enum, as in C++.
      for (const v of e.value) add(scoped(v.name, scope));
    };
    const addMessage = (m: DescriptorProto, scope: string) => {
      const fqn = scoped(m.name, scope);
      add(fqn);
      this.messages.set(fqn, m);
      for (const f of m.field) add(`${fqn}.${f.name}`);
      for (const o of m.oneofDecl) add(`${fqn}.${o.name}`);
      for (const n of m.nestedType) addMessage(n, fqn);
      for (const e of m.enumType) addEnum(e, fqn);
      addExtensions(m.extension, fqn);
    };
    for (const m of file.proto.messageType) addMessage(m, pkg);
    for (const e of file.proto.enumType) addEnum(e, pkg);
    addExtensions(file.proto.extension, pkg);
    for (const s of file.proto.service) {
      const fqn = scoped(s.name, pkg);
      add(fqn);
      this.services.add(fqn);
      for (const m of s.method) {
        add(`${fqn}.${m.name}`);
        this.methodInputs.set(`/${fqn}/${m.name}`, m.inputType.replace(/^\./, ""));
      }
    }
  }

  /** The file itself first, then every file it imports, transitively (each once). */
  withDependencies(file: IndexedFile): IndexedFile[] {
    const out: IndexedFile[] = [];
    const seen = new Set<string>();
    const visit = (f: IndexedFile) => {
      if (seen.has(f.name)) return;
      seen.add(f.name);
      out.push(f);
      for (const dep of f.proto.dependency) {
        const d = this.files.get(dep);
        if (d) visit(d);
      }
    };
    visit(file);
    return out;
  }

  fileContainingExtension(extendee: string, number: number): IndexedFile | undefined {
    return this.extensions.get(`${extendee.replace(/^\./, "")}#${number}`);
  }

  extensionNumbersOf(extendee: string): number[] {
    const prefix = `${extendee.replace(/^\./, "")}#`;
    return [...this.extensions.keys()]
      .filter((k) => k.startsWith(prefix))
      .map((k) => Number(k.slice(prefix.length)));
  }
}
