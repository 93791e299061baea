// temper.scheduler.v1 Structure <-> @temper/rewards' StructureInput, both ways in one place: the
// scheduler reads a run's structure with the one, `temper score --scheduler` sends it with the other.
import { invalidArgument } from "@temper/kit";
import { scheduler } from "@temper/proto";
import type { ScheduleShape, StructureInput } from "@temper/rewards";

const SHAPE_NUMBERS: Record<string, scheduler.ScheduleShape> = {
  constant: scheduler.ScheduleShape.SCHEDULE_SHAPE_CONSTANT,
  linear: scheduler.ScheduleShape.SCHEDULE_SHAPE_LINEAR,
  cosine: scheduler.ScheduleShape.SCHEDULE_SHAPE_COSINE,
  step: scheduler.ScheduleShape.SCHEDULE_SHAPE_STEP,
  sigmoid: scheduler.ScheduleShape.SCHEDULE_SHAPE_SIGMOID,
};

const SHAPE_NAMES: Record<number, ScheduleShape | undefined> = {
  [scheduler.ScheduleShape.SCHEDULE_SHAPE_UNSPECIFIED]: undefined,
  [scheduler.ScheduleShape.SCHEDULE_SHAPE_CONSTANT]: "constant",
  [scheduler.ScheduleShape.SCHEDULE_SHAPE_LINEAR]: "linear",
  [scheduler.ScheduleShape.SCHEDULE_SHAPE_COSINE]: "cosine",
  [scheduler.ScheduleShape.SCHEDULE_SHAPE_STEP]: "step",
  [scheduler.ScheduleShape.SCHEDULE_SHAPE_SIGMOID]: "sigmoid",
};

/** The proto oneof → @temper/rewards' StructureInput (validation happens in resolveStructure). */
export function structureInputFromProto(s: scheduler.Structure | undefined): StructureInput {
  const kind = s?.kind;
  switch (kind?.$case) {
    case "hard":
      return { kind: "hard" };
    case "continuous":
      return { kind: "continuous", weights: kind.value.weights };
    case "hybrid":
      return {
        kind: "hybrid",
        alpha: kind.value.alpha,
        continuous: { weights: kind.value.continuous?.weights },
      };
    case "adaptive": {
      const a = kind.value;
      let schedule: Extract<StructureInput, { kind: "adaptive" }>["schedule"];
      if (a.schedule?.$case === "time") {
        const t = a.schedule.value;
        const shape = SHAPE_NAMES[t.shape];
        if (!(t.shape in SHAPE_NAMES))
          throw invalidArgument("config.structure.adaptive.time.shape", `unknown shape ${t.shape}`);
        schedule = {
          kind: "time",
          shape,
          alphaStart: t.alphaStart,
          alphaEnd: t.alphaEnd,
          totalSteps: t.totalSteps,
          milestones: t.milestones,
          sigmoidK: t.sigmoidK,
        };
      } else if (a.schedule?.$case === "progress") {
        const p = a.schedule.value;
        schedule = {
          kind: "progress",
          alphaMin: p.alphaMin,
          alphaMax: p.alphaMax,
          targetAccuracy: p.targetAccuracy,
          emaDecay: p.emaDecay,
        };
      }
      return {
        kind: "adaptive",
        schedule,
        fallback: a.fallback,
        continuous: { weights: a.continuous?.weights },
      };
    }
    default:
      throw invalidArgument("config.structure", "required: one of hard, continuous, hybrid, adaptive");
  }
}

/** @temper/rewards' StructureInput → the proto oneof (the inverse of structureInputFromProto). */
export function structureToProto(s: StructureInput): scheduler.Structure {
  switch (s.kind) {
    case "hard":
      return { kind: { $case: "hard", value: {} } };
    case "continuous":
      return { kind: { $case: "continuous", value: { weights: { ...s.weights } } } };
    case "hybrid":
      return {
        kind: {
          $case: "hybrid",
          value: { alpha: s.alpha, continuous: { weights: { ...s.continuous?.weights } } },
        },
      };
    case "adaptive": {
      const continuous = { weights: { ...s.continuous?.weights } };
      const sch = s.schedule;
      const schedule: scheduler.AdaptiveStructure["schedule"] =
        sch?.kind === "progress"
          ? {
              $case: "progress",
              value: {
                alphaMin: sch.alphaMin,
                alphaMax: sch.alphaMax,
                targetAccuracy: sch.targetAccuracy,
                emaDecay: sch.emaDecay,
              },
            }
          : sch?.kind === "time"
            ? {
                $case: "time",
                value: {
                  shape: SHAPE_NUMBERS[sch.shape ?? "linear"] ?? -1,
                  alphaStart: sch.alphaStart,
                  alphaEnd: sch.alphaEnd,
                  totalSteps: sch.totalSteps ?? 0,
                  milestones: [...(sch.milestones ?? [])],
                  sigmoidK: sch.sigmoidK,
                },
              }
            : undefined;
      return { kind: { $case: "adaptive", value: { schedule, fallback: s.fallback, continuous } } };
    }
  }
}
