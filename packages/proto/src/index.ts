// The generated contracts, one namespace per proto package, plus the descriptor set that
// feeds server reflection.
import { fileURLToPath } from "node:url";

export * as common from "../gen/temper/common/v1/common.ts";
export * as events from "../gen/temper/events/v1/events.ts";
export * as learner from "../gen/temper/learner/v1/learner.ts";
export * as orchestrator from "../gen/temper/orchestrator/v1/orchestrator.ts";
export * as reward from "../gen/temper/reward/v1/reward.ts";
export * as rollout from "../gen/temper/rollout/v1/rollout.ts";
export * as scheduler from "../gen/temper/scheduler/v1/scheduler.ts";

/** FileDescriptorSet (binary) of every temper.*.v1 file with its imports, written by `buf build`. */
export const descriptorSetPath = fileURLToPath(new URL("../gen/descriptor.binpb", import.meta.url));
