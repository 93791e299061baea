import assert from "node:assert/strict";
import { test } from "node:test";
import { GrpcError, Status } from "@temper/kit";
import { scheduler } from "@temper/proto";
import type { StructureInput } from "@temper/rewards";
import { structureInputFromProto, structureToProto } from "./structure.ts";

test("every kind of structure survives the trip to the proto and back", () => {
  const weights = { correctness_soft: 0.5, reasoning: 0.5 };
  const structures: StructureInput[] = [
    { kind: "hard" },
    { kind: "continuous", weights },
    { kind: "hybrid", alpha: 0.25, continuous: { weights } },
    {
      kind: "adaptive",
      schedule: {
        kind: "time",
        shape: "step",
        alphaStart: 1,
        alphaEnd: 0,
        totalSteps: 40,
        milestones: [10, 20],
        sigmoidK: 8,
      },
      fallback: false,
      continuous: { weights },
    },
    {
      kind: "adaptive",
      schedule: { kind: "progress", alphaMin: 0.1, alphaMax: 0.8, targetAccuracy: 0.7, emaDecay: 0.5 },
      fallback: true,
      continuous: { weights },
    },
  ];
  for (const s of structures) {
    const proto = structureToProto(s);
    // through the wire format, as the scheduler receives it
    const decoded = scheduler.Structure.decode(scheduler.Structure.encode(proto).finish());
    assert.deepEqual(structureInputFromProto(decoded), s, s.kind);
  }
});

test("each schedule shape is its own enum value", () => {
  const shapes = ["constant", "linear", "cosine", "step", "sigmoid"] as const;
  const numbers = shapes.map((shape) => {
    const p = structureToProto({ kind: "adaptive", schedule: { kind: "time", shape } });
    assert.ok(p.kind?.$case === "adaptive" && p.kind.value.schedule?.$case === "time");
    return p.kind.value.schedule.value.shape;
  });
  assert.equal(new Set(numbers).size, shapes.length);
  assert.ok(!numbers.includes(scheduler.ScheduleShape.SCHEDULE_SHAPE_UNSPECIFIED));
});

test("a shape the enum does not define, or no structure at all, is INVALID_ARGUMENT naming the field", () => {
  assert.throws(
    () =>
      structureInputFromProto({
        kind: {
          $case: "adaptive",
          value: {
            schedule: {
              $case: "time",
              value: { shape: 99 as scheduler.ScheduleShape, totalSteps: 10, milestones: [] },
            },
          },
        },
      }),
    (e: Error) =>
      e instanceof GrpcError &&
      e.code === Status.INVALID_ARGUMENT &&
      e.message.includes("config.structure.adaptive.time.shape"),
  );
  assert.throws(
    () => structureInputFromProto(undefined),
    (e: Error) => e instanceof GrpcError && e.message.includes("config.structure"),
  );
});
