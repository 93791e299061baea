// The scoring step of `temper score` as an interface: in-process through @temper/rewards here, or a
// running scheduler (scheduler-scorer.ts).
import {
  type AdvantageScale,
  formatFieldError,
  type GroupInput,
  type PipelineResult,
  resolveStructure,
  type ScheduleState,
  type ScoreParams,
  type StructureInput,
  scoreAndBlend,
  validateScoreRequest,
} from "@temper/rewards";
import { CliError } from "./cli.ts";

/** What a scoring backend needs: the batch, the structure and the step. */
export interface ScoreBatchRequest {
  groups: GroupInput[];
  structure: StructureInput;
  step: number;
  state: ScheduleState;
  params: ScoreParams;
  advantageScale: AdvantageScale;
}

/** A scoring backend: in-process here; a scheduler client can implement the same. */
export interface BatchScorer {
  score(request: ScoreBatchRequest): Promise<PipelineResult>;
}

export const inProcessScorer: BatchScorer = {
  async score(req) {
    const s = resolveStructure(req.structure);
    if (!s.ok) throw new CliError(formatFieldError(s.error));
    const invalid = validateScoreRequest(req.groups, req.params, {
      rejectEmptyText: false,
      maxGroups: Number.MAX_SAFE_INTEGER,
    });
    if (invalid) throw new CliError(formatFieldError(invalid));
    return scoreAndBlend({
      groups: req.groups,
      structure: s.value,
      step: req.step,
      state: req.state,
      params: req.params,
      advantageScale: req.advantageScale,
    });
  },
};
