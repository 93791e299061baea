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
      const bytes = reader.bytes();
      const proto = fromBinary(FileDescriptorProtoSchema, bytes);
      const file: IndexedFile = { name: proto.name, bytes, proto };
      this.files.set(file.name, file);
      this.indexFile(file);
    }
    if (this.files.size === 0) throw new Error("descriptor set holds no files");
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
      for (const m of s.method) add(`${fqn}.${m.name}`);
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
