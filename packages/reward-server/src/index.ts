export {
  componentFromProto,
  componentToProto,
  groupsFromProto,
  paramsFromProto,
  scoreToProto,
} from "./convert.ts";
export {
  rewardServiceImplementation,
  rewardSourceConfig,
  type ServeRewardSourceOptions,
  serveRewardSource,
} from "./serve.ts";
