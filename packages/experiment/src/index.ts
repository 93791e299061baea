// Experiment files: YAML → fully resolved orchestrator RunSpecs, comparisons of variants × seeds,
// provenance for spec.yaml. The default experiment's recipes: @temper/experiment/default. The file format is documented in examples/README.md.
export { ExperimentError, formatExperimentError, formatPath } from "./errors.ts";
export { isHubModel, pullHubRefs } from "./hub.ts";
export {
  type Comparison,
  deepMerge,
  loadComparison,
  loadExperiment,
  resolveComparison,
  resolveExperiment,
  toYaml,
} from "./load.ts";
export { fileSha256, type Provenance, type ProvenanceOptions, provenance } from "./provenance.ts";
export { type LoadedExperiment, type LoadOptions, toRunSpec } from "./resolve.ts";
export { completeRunSpec, type RunIdentity } from "./run-spec.ts";
export {
  DEFAULTS,
  ExperimentSchema,
  type ParsedExperiment,
  type ResolvedExperiment,
  type ResolvedReward,
} from "./schema.ts";
