// What a RunSpec implies without saying it: the one place its derived fields are filled. The
// experiment loader calls it, and so does the orchestrator for every StartRun, so a spec sent raw
// (grpcurl) runs as the same spec written as an experiment file would.
import type { orchestrator } from "@temper/proto";

export interface RunIdentity {
  /** The run's id, copied to the scheduler's configuration. */
  runId: string;
  /** The model's content hash, which the learner checks its model against (omit: left as is). */
  modelHash?: string;
}

/** `spec` with its derived fields filled; `spec` itself is not changed. */
export function completeRunSpec(spec: orchestrator.RunSpec, id: RunIdentity): orchestrator.RunSpec {
  const out = structuredClone(spec);
  out.runId = id.runId;
  if (out.reward) {
    out.reward.runId = id.runId;
    const s = out.reward.structure?.kind;
    // an adaptive time schedule runs over the whole run unless it says otherwise
    if (
      s?.$case === "adaptive" &&
      s.value.schedule?.$case === "time" &&
      s.value.schedule.value.totalSteps === 0
    )
      s.value.schedule.value.totalSteps = out.steps;
  }
  if (out.training) {
    if (id.modelHash !== undefined) out.training.model = id.modelHash;
    // the learner recomputes logprobs at the temperature the rollout sampled at
    out.training.temperature = out.sampling?.temperature ?? 1;
    out.training.seed = out.seed;
  }
  return out;
}
