// The Hugging Face Hub for Temper: models and datasets by id into the standard Hub cache.
export { COMMIT, derivedDir, repoCache, repoFolderName, snapshotOf } from "./cache.ts";
export { type HubEnv, hubEnv } from "./env.ts";
export { HubError } from "./errors.ts";
export { cachedHubJsonl, GSM8K_CONFIG, GSM8K_REPO, hubJsonl, parquetToJsonl, pullGsm8k } from "./gsm8k.ts";
export {
  type FileRef,
  isHfUrl,
  looksLikeRepoId,
  parseHfUrl,
  parseRepoId,
  type RepoRef,
  type RepoType,
  showRepo,
} from "./ids.ts";
export {
  cachedModelDir,
  isModelFile,
  isModelId,
  missingModelFile,
  pullModel,
  resolveModel,
} from "./models.ts";
export {
  type PulledFile,
  type PullOptions,
  type PullProgress,
  type PullResult,
  pull,
  revisionInfo,
} from "./pull.ts";
export { HF_HUB_CACHE_VAR, MODEL_VAR, serviceModelDir } from "./service-model.ts";
