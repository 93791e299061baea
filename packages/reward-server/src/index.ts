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
  rewardSourceDeclaration,
  type ServeRewardSourceOptions,
  serveRewardSource,
} from "./serve.ts";
export { structureInputFromProto, structureToProto } from "./structure.ts";
