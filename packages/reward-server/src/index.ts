export {
  componentFromProto,
  componentToProto,
  definedEnumValue,
  groupsFromProto,
  paramsFromProto,
  scoreToProto,
  unknownEnumField,
} from "./convert.ts";
export {
  rewardServiceImplementation,
  rewardSourceConfig,
  type ServeRewardSourceOptions,
  serveRewardSource,
} from "./serve.ts";
