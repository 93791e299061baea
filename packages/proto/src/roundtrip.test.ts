// Every request and response message of every RPC, populated field by field from the
// descriptor set (so a field added later is covered too), survives encode → decode.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { createFileRegistry, type DescField, type DescMessage, fromBinary } from "@bufbuild/protobuf";
import { FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";
import * as contracts from "./index.ts";

const registry = createFileRegistry(
  fromBinary(FileDescriptorSetSchema, readFileSync(contracts.descriptorSetPath)),
);

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

function scalarJson(field: DescField, seed: number): Json {
  if (field.fieldKind === "enum") return field.enum.values[1]?.name ?? field.enum.values[0].name;
  switch (field.scalar) {
    case 9: // string
      return `${field.name}-${seed}`;
    case 8: // bool
      return true;
    case 1: // double
    case 2: // float
      return 1.5 + seed;
    case 12: // bytes
      return Buffer.from(`b${seed}`).toString("base64");
    default: // integers
      return 3 + seed;
  }
}

// Proto-JSON with every field set: repeated fields get two items, maps one entry, a oneof its
// first member, nested messages recurse (depth-limited for recursive types).
function populate(message: DescMessage, depth = 0): { [k: string]: Json } {
  const out: { [k: string]: Json } = {};
  const seenOneofs = new Set<string>();
  for (const field of message.fields) {
    if (field.oneof) {
      if (seenOneofs.has(field.oneof.name)) continue;
      seenOneofs.add(field.oneof.name);
    }
    const value = (seed: number): Json =>
      field.message ? (depth < 4 ? populate(field.message, depth + 1) : {}) : scalarJson(field, seed);
    if (field.fieldKind === "list") out[field.jsonName] = [value(0), value(1)];
    else if (field.fieldKind === "map") {
      const key = field.mapKey === 9 ? "k" : "7";
      out[field.jsonName] = {
        [key]:
          field.mapKind === "message"
            ? populate(field.message, depth + 1)
            : scalarJson(field as DescField, 2),
      };
    } else out[field.jsonName] = value(0);
  }
  return out;
}

type MessageFns = {
  fromJSON(o: unknown): unknown;
  toJSON(m: unknown): unknown;
  encode(m: unknown): { finish(): Uint8Array };
  decode(b: Uint8Array): unknown;
};

const namespaces = contracts as unknown as Record<string, Record<string, unknown>>;
const services = [...registry].filter((d) => d.kind === "service");

test("the descriptor set holds every service", () => {
  const names = services.map((s) => s.typeName).sort();
  assert.deepEqual(names, [
    "temper.learner.v1.LearnerService",
    "temper.orchestrator.v1.OrchestratorService",
    "temper.reward.v1.RewardService",
    "temper.rollout.v1.RolloutService",
    "temper.scheduler.v1.SchedulerService",
  ]);
});

for (const service of services) {
  if (service.kind !== "service") continue; // narrows the type
  for (const method of service.methods) {
    test(`${service.typeName}/${method.name} round-trips`, () => {
      for (const desc of [method.input, method.output]) {
        const ns = desc.typeName.split(".")[1];
        const fns = namespaces[ns]?.[desc.name] as MessageFns | undefined;
        assert.ok(fns, `generated code for ${desc.typeName}`);
        const json = populate(desc);
        assert.ok(Object.keys(json).length > 0 || desc.fields.length === 0);
        const message = fns.fromJSON(json);
        const bytes = fns.encode(message).finish();
        if (desc.fields.length > 0) assert.ok(bytes.length > 0, `${desc.typeName} encodes to bytes`);
        const decoded = fns.decode(bytes);
        assert.deepEqual(decoded, message, desc.typeName);
        // toJSON of the decoded message gives back every populated field.
        assert.deepEqual(fns.toJSON(decoded), json, `${desc.typeName} keeps every field`);
      }
    });
  }
}

test("every event payload round-trips", () => {
  const events = [...registry].filter(
    (d) => d.kind === "message" && d.typeName.startsWith("temper.events.v1."),
  );
  assert.ok(events.length >= 4);
  for (const desc of events) {
    if (desc.kind !== "message") continue;
    const fns = namespaces.events[desc.name] as MessageFns;
    const json = populate(desc);
    const decoded = fns.decode(fns.encode(fns.fromJSON(json)).finish());
    assert.deepEqual(fns.toJSON(decoded), json, desc.typeName);
  }
});
