// grpc.health.v1.Health (Check, Watch, List). The messages are three tiny protos, encoded here by
// hand so server and clients share one definition without another codegen step.

import { BinaryReader, BinaryWriter } from "@bufbuild/protobuf/wire";
import {
  type Server,
  type ServerUnaryCall,
  type ServerWritableStream,
  type sendUnaryData,
  status,
} from "@grpc/grpc-js";
import { quote } from "./validate.ts";

export type ServingStatus = "UNKNOWN" | "SERVING" | "NOT_SERVING" | "SERVICE_UNKNOWN";
const STATUS_NUMBER: Record<ServingStatus, number> = {
  UNKNOWN: 0,
  SERVING: 1,
  NOT_SERVING: 2,
  SERVICE_UNKNOWN: 3,
};
const STATUS_NAME = Object.fromEntries(Object.entries(STATUS_NUMBER).map(([k, v]) => [v, k])) as Record<
  number,
  ServingStatus
>;

export interface HealthCheckRequest {
  service: string;
}
export interface HealthCheckResponse {
  status: ServingStatus;
}
export interface HealthListResponse {
  statuses: Record<string, HealthCheckResponse>;
}

function encodeRequest(m: HealthCheckRequest): Buffer {
  const w = new BinaryWriter();
  if (m.service) w.uint32(10).string(m.service);
  return Buffer.from(w.finish());
}
function decodeRequest(b: Uint8Array): HealthCheckRequest {
  const r = new BinaryReader(b);
  const m: HealthCheckRequest = { service: "" };
  while (r.pos < r.len) {
    const [field, wire] = r.tag();
    if (field === 1) m.service = r.string();
    else r.skip(wire);
  }
  return m;
}
function writeResponse(w: BinaryWriter, m: HealthCheckResponse): BinaryWriter {
  const n = STATUS_NUMBER[m.status];
  if (n) w.uint32(8).int32(n);
  return w;
}
function encodeResponse(m: HealthCheckResponse): Buffer {
  return Buffer.from(writeResponse(new BinaryWriter(), m).finish());
}
function decodeResponse(b: Uint8Array): HealthCheckResponse {
  const r = new BinaryReader(b);
  let n = 0;
  while (r.pos < r.len) {
    const [field, wire] = r.tag();
    if (field === 1) n = r.int32();
    else r.skip(wire);
  }
  return { status: STATUS_NAME[n] ?? "UNKNOWN" };
}
function encodeList(m: HealthListResponse): Buffer {
  const w = new BinaryWriter();
  for (const [k, v] of Object.entries(m.statuses)) {
    w.uint32(10).fork();
    w.uint32(10).string(k);
    w.uint32(18).fork();
    writeResponse(w, v);
    w.join();
    w.join();
  }
  return Buffer.from(w.finish());
}
function decodeList(b: Uint8Array): HealthListResponse {
  const r = new BinaryReader(b);
  const statuses: Record<string, HealthCheckResponse> = {};
  while (r.pos < r.len) {
    const [field, wire] = r.tag();
    if (field !== 1) {
      r.skip(wire);
      continue;
    }
    const end = r.uint32() + r.pos;
    let key = "";
    let value: HealthCheckResponse = { status: "UNKNOWN" };
    while (r.pos < end) {
      const [f, w] = r.tag();
      if (f === 1) key = r.string();
      else if (f === 2) value = decodeResponse(r.bytes());
      else r.skip(w);
    }
    statuses[key] = value;
  }
  return { statuses };
}
const empty = (): Buffer => Buffer.alloc(0);

/** Service definition usable both by a grpc-js Server and by makeGenericClientConstructor. */
export const HealthDefinition = {
  check: {
    path: "/grpc.health.v1.Health/Check",
    requestStream: false,
    responseStream: false,
    requestSerialize: encodeRequest,
    requestDeserialize: decodeRequest,
    responseSerialize: encodeResponse,
    responseDeserialize: decodeResponse,
  },
  watch: {
    path: "/grpc.health.v1.Health/Watch",
    requestStream: false,
    responseStream: true,
    requestSerialize: encodeRequest,
    requestDeserialize: decodeRequest,
    responseSerialize: encodeResponse,
    responseDeserialize: decodeResponse,
  },
  list: {
    path: "/grpc.health.v1.Health/List",
    requestStream: false,
    responseStream: false,
    requestSerialize: (_: Record<string, never>) => empty(),
    requestDeserialize: (_: Buffer) => ({}) as Record<string, never>,
    responseSerialize: encodeList,
    responseDeserialize: decodeList,
  },
} as const;

/**
 * Serving status per service name ("" is the whole server). Watch streams are ended on close(),
 * so open watchers never hold up a graceful shutdown.
 */
export class HealthRegistry {
  private readonly statuses = new Map<string, ServingStatus>();
  private readonly watchers = new Map<
    string,
    Set<ServerWritableStream<HealthCheckRequest, HealthCheckResponse>>
  >();

  set(service: string, value: ServingStatus): void {
    this.statuses.set(service, value);
    for (const w of this.watchers.get(service) ?? []) w.write({ status: value });
  }

  setAll(value: ServingStatus): void {
    for (const service of this.statuses.keys()) this.set(service, value);
  }

  get(service: string): ServingStatus | undefined {
    return this.statuses.get(service);
  }

  /** Ends every Watch stream (after they have seen the last status). */
  close(): void {
    for (const set of this.watchers.values()) for (const w of set) w.end();
    this.watchers.clear();
  }

  addToServer(server: Server): void {
    server.addService(HealthDefinition, {
      check: (
        call: ServerUnaryCall<HealthCheckRequest, HealthCheckResponse>,
        cb: sendUnaryData<HealthCheckResponse>,
      ) => {
        const s = this.statuses.get(call.request.service);
        if (s === undefined)
          cb({ code: status.NOT_FOUND, details: `unknown service ${quote(call.request.service)}` });
        else cb(null, { status: s });
      },
      watch: (call: ServerWritableStream<HealthCheckRequest, HealthCheckResponse>) => {
        const name = call.request.service;
        call.write({ status: this.statuses.get(name) ?? "SERVICE_UNKNOWN" });
        const set = this.watchers.get(name) ?? new Set();
        this.watchers.set(name, set);
        set.add(call);
        call.once("cancelled", () => set.delete(call));
      },
      list: (_call: ServerUnaryCall<unknown, HealthListResponse>, cb: sendUnaryData<HealthListResponse>) => {
        cb(null, { statuses: Object.fromEntries([...this.statuses].map(([k, v]) => [k, { status: v }])) });
      },
    });
  }
}
