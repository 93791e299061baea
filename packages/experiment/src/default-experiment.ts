// @temper/experiment/default: the default experiment's recipes and the making of its inputs, apart
// from the main entry because they load the model code (the ONNX runtime) and the trainer.
export { defaultPaths, invalidateStaleCache, prepareDefault } from "./default-prepare.ts";
export {
  applySetting,
  DEFAULT_FULL,
  DEFAULT_LONG,
  DEFAULT_SEEDS,
  DEFAULT_SMOKE,
  DEFAULT_SPARSE,
  type DefaultSetting,
} from "./default-settings.ts";
