// Serves one reward source (a pure @temper/rewards RewardSource) as temper.reward.v1.RewardService:
// request limits from the environment, INVALID_ARGUMENT naming the field, one result per completion.
import {
  env,
  invalidArgument,
  type RunningService,
  runService,
  type ServiceDeclaration,
  service,
} from "@temper/kit";
import { descriptorSetPath, reward } from "@temper/proto";
import { DEFAULT_SCORE_LIMITS, type RewardSource, validateScoreRequest } from "@temper/rewards";
import { groupsFromProto, paramsFromProto, scoreToProto, unknownEnumField } from "./convert.ts";

export const rewardSourceConfig = {
  MAX_GROUPS: env.int({
    default: DEFAULT_SCORE_LIMITS.maxGroups,
    min: 1,
    max: 65_536,
    doc: "most groups in one Score request",
  }),
  MAX_GROUP_SIZE: env.int({
    default: DEFAULT_SCORE_LIMITS.maxGroupSize,
    min: 1,
    max: 65_536,
    doc: "most completions in one group",
  }),
  MAX_TEXT_CHARS: env.int({
    default: DEFAULT_SCORE_LIMITS.maxTextLength,
    min: 1,
    max: 16 * 1024 * 1024,
    doc: "longest completion text, in UTF-16 code units",
  }),
  ALLOW_EMPTY_TEXT: env.bool({
    default: false,
    doc: "score an empty completion (0) instead of rejecting it",
  }),
};

/** A reward source service's declaration (ServiceDeclaration): its name, port, API and variables. */
export function rewardSourceDeclaration(name: string, defaultPort: number) {
  return {
    name,
    defaultPort,
    api: reward.RewardServiceService,
    config: rewardSourceConfig,
  } satisfies ServiceDeclaration<typeof rewardSourceConfig>;
}

export interface ServeRewardSourceOptions {
  source: RewardSource;
  /** Process/service name, e.g. "reward-correctness". */
  name: string;
  defaultPort: number;
}

export function rewardServiceImplementation(
  source: RewardSource,
  limits: { maxGroups: number; maxGroupSize: number; maxTextLength: number; rejectEmptyText: boolean },
) {
  return {
    score(req: reward.ScoreRequest): reward.ScoreResponse {
      const unknown = unknownEnumField(req.groups, req.params);
      if (unknown) throw invalidArgument(unknown.field, unknown.message);
      const groups = groupsFromProto(req.groups);
      const params = paramsFromProto(req.params);
      const problem = validateScoreRequest(groups, params, limits);
      if (problem) throw invalidArgument(problem.field, problem.message);
      return { results: source.score(groups, params).map(scoreToProto) };
    },
    info(): reward.InfoResponse {
      return { name: source.name, version: source.version, components: [...source.components] };
    },
  };
}

export function serveRewardSource(
  options: ServeRewardSourceOptions,
): Promise<RunningService<typeof rewardSourceConfig>> {
  return runService({
    name: options.name,
    version: options.source.version,
    defaultPort: options.defaultPort,
    descriptorSet: descriptorSetPath,
    config: rewardSourceConfig,
    services: ({ config }) => [
      service(
        reward.RewardServiceService,
        rewardServiceImplementation(options.source, {
          maxGroups: config.MAX_GROUPS,
          maxGroupSize: config.MAX_GROUP_SIZE,
          maxTextLength: config.MAX_TEXT_CHARS,
          rejectEmptyText: !config.ALLOW_EMPTY_TEXT,
        }),
      ),
    ],
  });
}
