// gRPC server reflection, v1 and v1alpha (same messages, two package names), answered from the
// descriptor set. Written here rather than taken from @grpc/reflection because that package
// re-serialises files through protobufjs and drops their `dependency` lists, so a client that
// only knows what reflection sends cannot resolve an imported type (e.g. temper.common.v1.Group).
import { BinaryReader, BinaryWriter } from "@bufbuild/protobuf/wire";
import { type Server, type ServerDuplexStream, status } from "@grpc/grpc-js";
import type { DescriptorIndex } from "./descriptor-index.ts";

export type ReflectionRequest =
  | { kind: "fileByFilename"; value: string }
  | { kind: "fileContainingSymbol"; value: string }
  | { kind: "fileContainingExtension"; containingType: string; extensionNumber: number }
  | { kind: "allExtensionNumbersOfType"; value: string }
  | { kind: "listServices"; value: string }
  | { kind: "unknown" };

/** A decoded request plus its original bytes (echoed back in original_request). */
export interface RawReflectionRequest {
  host: string;
  request: ReflectionRequest;
  raw: Uint8Array;
}

export type ReflectionResponse =
  | { kind: "files"; files: Uint8Array[] }
  | { kind: "services"; names: string[] }
  | { kind: "extensionNumbers"; baseTypeName: string; numbers: number[] }
  | { kind: "error"; code: status; message: string };

export function encodeReflectionRequest(host: string, req: ReflectionRequest): Buffer {
  const w = new BinaryWriter();
  if (host) w.uint32(10).string(host);
  switch (req.kind) {
    case "fileByFilename":
      w.uint32(26).string(req.value);
      break;
    case "fileContainingSymbol":
      w.uint32(34).string(req.value);
      break;
    case "fileContainingExtension":
      w.uint32(42).fork().uint32(10).string(req.containingType).uint32(16).int32(req.extensionNumber).join();
      break;
    case "allExtensionNumbersOfType":
      w.uint32(50).string(req.value);
      break;
    case "listServices":
      w.uint32(58).string(req.value);
      break;
  }
  return Buffer.from(w.finish());
}

export function decodeReflectionRequest(raw: Uint8Array): RawReflectionRequest {
  const r = new BinaryReader(raw);
  let host = "";
  let request: ReflectionRequest = { kind: "unknown" };
  while (r.pos < r.len) {
    const [field, wire] = r.tag();
    switch (field) {
      case 1:
        host = r.string();
        break;
      case 3:
        request = { kind: "fileByFilename", value: r.string() };
        break;
      case 4:
        request = { kind: "fileContainingSymbol", value: r.string() };
        break;
      case 5: {
        const sub = new BinaryReader(r.bytes());
        let containingType = "";
        let extensionNumber = 0;
        while (sub.pos < sub.len) {
          const [f, w] = sub.tag();
          if (f === 1) containingType = sub.string();
          else if (f === 2) extensionNumber = sub.int32();
          else sub.skip(w);
        }
        request = { kind: "fileContainingExtension", containingType, extensionNumber };
        break;
      }
      case 6:
        request = { kind: "allExtensionNumbersOfType", value: r.string() };
        break;
      case 7:
        request = { kind: "listServices", value: r.string() };
        break;
      default:
        r.skip(wire);
    }
  }
  return { host, request, raw };
}

export function encodeReflectionResponse(req: RawReflectionRequest, res: ReflectionResponse): Buffer {
  const w = new BinaryWriter();
  if (req.host) w.uint32(10).string(req.host);
  w.uint32(18).bytes(req.raw);
  switch (res.kind) {
    case "files":
      w.uint32(34).fork();
      for (const f of res.files) w.uint32(10).bytes(f);
      w.join();
      break;
    case "extensionNumbers":
      w.uint32(42).fork().uint32(10).string(res.baseTypeName);
      for (const n of res.numbers) w.uint32(16).int32(n);
      w.join();
      break;
    case "services":
      w.uint32(50).fork();
      for (const name of res.names) w.uint32(10).fork().uint32(10).string(name).join();
      w.join();
      break;
    case "error":
      w.uint32(58).fork().uint32(8).int32(res.code).uint32(18).string(res.message).join();
      break;
  }
  return Buffer.from(w.finish());
}

export function decodeReflectionResponse(bytes: Uint8Array): ReflectionResponse {
  const r = new BinaryReader(bytes);
  let res: ReflectionResponse = { kind: "error", code: status.UNKNOWN, message: "empty response" };
  while (r.pos < r.len) {
    const [field, wire] = r.tag();
    if (field === 4 || field === 5 || field === 6 || field === 7) {
      const sub = new BinaryReader(r.bytes());
      const files: Uint8Array[] = [];
      const names: string[] = [];
      const numbers: number[] = [];
      let text = "";
      let code = 0;
      while (sub.pos < sub.len) {
        const [f, w] = sub.tag();
        if (field === 4 && f === 1) files.push(sub.bytes());
        else if (field === 5 && f === 1) text = sub.string();
        else if (field === 5 && f === 2) {
          if (w === 2) {
            const end = sub.uint32() + sub.pos;
            while (sub.pos < end) numbers.push(sub.int32());
          } else numbers.push(sub.int32());
        } else if (field === 6 && f === 1) {
          const svc = new BinaryReader(sub.bytes());
          while (svc.pos < svc.len) {
            const [sf, sw] = svc.tag();
            if (sf === 1) names.push(svc.string());
            else svc.skip(sw);
          }
        } else if (field === 7 && f === 1) code = sub.int32();
        else if (field === 7 && f === 2) text = sub.string();
        else sub.skip(w);
      }
      if (field === 4) res = { kind: "files", files };
      else if (field === 5) res = { kind: "extensionNumbers", baseTypeName: text, numbers };
      else if (field === 6) res = { kind: "services", names };
      else res = { kind: "error", code, message: text };
    } else r.skip(wire);
  }
  return res;
}

/** Answers one request from the index; `services` are the names ListServices reports. */
export function answerReflection(
  index: DescriptorIndex,
  services: string[],
  req: ReflectionRequest,
): ReflectionResponse {
  const files = (f: ReturnType<DescriptorIndex["files"]["get"]>, what: string): ReflectionResponse =>
    f
      ? { kind: "files", files: index.withDependencies(f).map((x) => x.bytes) }
      : { kind: "error", code: status.NOT_FOUND, message: `${what} not found` };
  switch (req.kind) {
    case "fileByFilename":
      return files(index.files.get(req.value), `file "${req.value}"`);
    case "fileContainingSymbol":
      return files(index.symbols.get(req.value.replace(/^\./, "")), `symbol "${req.value}"`);
    case "fileContainingExtension":
      return files(
        index.fileContainingExtension(req.containingType, req.extensionNumber),
        `extension ${req.extensionNumber} of "${req.containingType}"`,
      );
    case "allExtensionNumbersOfType":
      if (!index.symbols.has(req.value))
        return { kind: "error", code: status.NOT_FOUND, message: `type "${req.value}" not found` };
      return {
        kind: "extensionNumbers",
        baseTypeName: req.value,
        numbers: index.extensionNumbersOf(req.value),
      };
    case "listServices":
      return { kind: "services", names: services };
    default:
      return { kind: "error", code: status.UNIMPLEMENTED, message: "unsupported reflection request" };
  }
}

function definition(version: "v1" | "v1alpha") {
  return {
    serverReflectionInfo: {
      path: `/grpc.reflection.${version}.ServerReflection/ServerReflectionInfo`,
      requestStream: true,
      responseStream: true,
      requestSerialize: (m: RawReflectionRequest) => Buffer.from(m.raw),
      requestDeserialize: (b: Buffer) => decodeReflectionRequest(b),
      responseSerialize: (b: Buffer) => b,
      responseDeserialize: (b: Buffer) => b,
    },
  } as const;
}

export const ReflectionV1Definition = definition("v1");
export const ReflectionV1AlphaDefinition = definition("v1alpha");

/**
 * Adds both reflection services; `services` is what ListServices returns. The returned close()
 * ends open reflection streams so they never hold up a graceful shutdown.
 */
export function addReflection(server: Server, index: DescriptorIndex, services: string[]): { close(): void } {
  const open = new Set<ServerDuplexStream<RawReflectionRequest, Buffer>>();
  const handler = (stream: ServerDuplexStream<RawReflectionRequest, Buffer>) => {
    open.add(stream);
    stream.once("close", () => open.delete(stream));
    stream.once("cancelled", () => open.delete(stream));
    stream.on("data", (req: RawReflectionRequest) => {
      stream.write(encodeReflectionResponse(req, answerReflection(index, services, req.request)));
    });
    stream.on("end", () => stream.end());
  };
  server.addService(ReflectionV1Definition, { serverReflectionInfo: handler });
  server.addService(ReflectionV1AlphaDefinition, { serverReflectionInfo: handler });
  return {
    close() {
      for (const s of open) s.end();
      open.clear();
    },
  };
}
